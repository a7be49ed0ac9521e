"""How keyrings put the data key into an EDK: the MPL's EDK wrapping.

ESDK suites use *direct* wrapping: the keyring's wrapping key encrypts the data key itself.
DB-ESDK suites (``DbeSuite``, symmetric signature) use *intermediate key wrapping*: the keyring wraps a
random intermediate key, from which a data-key encryption key and a per-EDK symmetric signing key
are derived (MPL ``framework/algorithm-suites.md``, "Intermediate Key Wrapping").

Keyrings supply three small functions and call :func:`on_encrypt` / :func:`unwrap_edk`; this module
decides how to use them for the suite at hand.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from ..errors import AuthenticationError, MalformedInputError
from ..materials.materials import DecryptionMaterials, EncryptedDataKey, EncryptionMaterials

__all__ = ["GenerateAndWrap", "Unwrap", "Wrap", "on_encrypt", "unwrap_edk"]

Wrap = Callable[[bytes, Mapping[str, str]], EncryptedDataKey]
"""wrap(key, encryption_context) -> EDK holding ``key``."""
GenerateAndWrap = Callable[[int, Mapping[str, str]], tuple[bytes, EncryptedDataKey]]
"""generate_and_wrap(length, encryption_context) -> (fresh key, EDK holding it); e.g. KMS GenerateDataKey."""
Unwrap = Callable[[EncryptedDataKey, Mapping[str, str]], bytes]
"""unwrap(edk_with_wrapped_part, encryption_context) -> the key it holds."""


def on_encrypt(
    materials: EncryptionMaterials, wrap: Wrap, generate_and_wrap: GenerateAndWrap | None = None
) -> EncryptionMaterials:
    """Generate the data key if needed, then add one EDK made by this keyring."""
    if materials.suite.symmetric_signature:
        return _intermediate_on_encrypt(materials, wrap, generate_and_wrap)
    context = materials.encryption_context
    if materials.plaintext_data_key is None:
        length = materials.suite.data_key_length
        if generate_and_wrap is not None:
            key, edk = generate_and_wrap(length, context)
            if len(key) != length:
                raise MalformedInputError("key provider returned a data key of the wrong length")
        else:
            key = os.urandom(length)
            edk = wrap(key, context)
        return materials.with_data_key(key, edk)
    return materials.with_edk(wrap(materials.plaintext_data_key, context))


def unwrap_edk(materials: DecryptionMaterials, edk: EncryptedDataKey, unwrap: Unwrap) -> DecryptionMaterials:
    """Recover the data key from one EDK; errors propagate so the caller can record them."""
    if materials.suite.symmetric_signature:
        return _intermediate_unwrap(materials, edk, unwrap)
    key = unwrap(edk, materials.encryption_context)
    if len(key) != materials.suite.data_key_length:
        raise AuthenticationError("unwrapped data key has the wrong length")
    return materials.with_data_key(key)


def _intermediate_on_encrypt(
    materials: EncryptionMaterials, wrap: Wrap, generate_and_wrap: GenerateAndWrap | None
) -> EncryptionMaterials:
    raise NotImplementedError("intermediate key wrapping (DB-ESDK suites) is not implemented yet")


def _intermediate_unwrap(materials: DecryptionMaterials, edk: EncryptedDataKey, unwrap: Unwrap) -> DecryptionMaterials:
    raise NotImplementedError("intermediate key wrapping (DB-ESDK suites) is not implemented yet")
