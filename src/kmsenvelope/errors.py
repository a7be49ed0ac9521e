"""Every exception kmsenvelope raises on purpose derives from :class:`KmsEnvelopeError`.

The classes split by what the caller can do about the failure:

* :class:`MalformedInputError` -- the bytes (or item) are not a well-formed message. Retrying will not help.
* :class:`AuthenticationError` -- well formed, but a tag, key commitment or signature did not verify:
  the data was tampered with or belongs to another key or context.
* :class:`NoUsableKeyError` -- no keyring could produce or recover the data key.
* :class:`ContextMismatchError` -- the encryption context is not the one the caller required.
* :class:`PolicyError` -- the operation is forbidden by configuration (commitment policy, EDK limit,
  reserved context keys, ...).
* :class:`ConfigurationError` -- an object was constructed with invalid arguments.

Messages never contain key material or plaintext.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "ContextMismatchError",
    "EdkFailure",
    "KeyStoreError",
    "KmsEnvelopeError",
    "MalformedInputError",
    "NoUsableKeyError",
    "PolicyError",
    "SignatureError",
]


class KmsEnvelopeError(Exception):
    """Base class of every error raised deliberately by kmsenvelope."""


class MalformedInputError(KmsEnvelopeError, ValueError):
    """The input is not a well-formed message, header, item or value."""


class AuthenticationError(KmsEnvelopeError):
    """An authentication tag, key commitment or signature failed to verify."""


class SignatureError(AuthenticationError):
    """The message or item signature (ECDSA footer) failed to verify."""


@dataclass(frozen=True)
class EdkFailure:
    """Why one encrypted data key could not be used. Holds no secrets."""

    provider_id: str
    provider_info: str
    reason: str

    def __str__(self) -> str:
        return f"{self.provider_id} {self.provider_info}: {self.reason}"


class NoUsableKeyError(KmsEnvelopeError):
    """No keyring could generate, encrypt or decrypt the data key.

    ``failures`` lists each encrypted data key that was considered and why it failed.
    """

    def __init__(self, message: str, failures: Sequence[EdkFailure] = ()) -> None:
        self.failures: tuple[EdkFailure, ...] = tuple(failures)
        if self.failures:
            message = message + "; " + "; ".join(str(f) for f in self.failures)
        super().__init__(message)


class ContextMismatchError(KmsEnvelopeError):
    """The encryption context does not contain what the caller required."""


class PolicyError(KmsEnvelopeError):
    """The operation violates a configured policy (commitment, EDK limit, reserved keys, limits)."""


class ConfigurationError(KmsEnvelopeError, ValueError):
    """An object was constructed with invalid arguments."""


class KeyStoreError(KmsEnvelopeError):
    """A branch key store could not produce a valid branch key."""
