"""Cryptographic materials: the values that flow between a materials manager and its keyrings.

Source: ``framework/structures.md`` and ``framework/cmm-interface.md`` of the ESDK specification.
Materials are immutable; a keyring returns a new value via :meth:`with_data_key` / :meth:`with_edks`.
Secrets are excluded from ``repr``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from ..errors import MalformedInputError, PolicyError
from ..suites import CommitmentPolicy, DbeSuite, Suite
from ..values import (
    EMPTY_CONTEXT,
    EncryptedDataKey,
    EncryptionContext,
    freeze_context,
    frozen_field,
    seal_dataclass,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey, EllipticCurvePublicKey

__all__ = [
    "RESERVED_CONTEXT_PREFIX",
    "AnySuite",
    "DecryptionMaterials",
    "DecryptionRequest",
    "EncryptedDataKey",
    "EncryptionMaterials",
    "EncryptionRequest",
]

AnySuite: TypeAlias = Suite | DbeSuite

RESERVED_CONTEXT_PREFIX = "aws-crypto-"


# These values are shared (CachingMaterials hands one object to many callers), so they are sealed:
# slots only, filled once in __new__ by the builder seal_dataclass returns, then read-only to every API.
# __new__ takes the fields positionally in declaration order, with the same defaults.


@dataclass(frozen=True, slots=True, init=False)
class EncryptionRequest:
    """What an encryptor asks a materials manager for."""

    encryption_context: EncryptionContext
    commitment_policy: CommitmentPolicy
    suite: AnySuite | None = None
    max_plaintext_length: int | None = None
    required_context_keys: frozenset[str] = frozenset()

    def __new__(
        cls,
        encryption_context: Mapping[str, str],
        commitment_policy: CommitmentPolicy,
        suite: AnySuite | None = None,
        max_plaintext_length: int | None = None,
        required_context_keys: frozenset[str] = frozenset(),
    ) -> EncryptionRequest:
        return _build_encryption_request(
            cls,
            _frozen(encryption_context),
            commitment_policy,
            suite,
            max_plaintext_length,
            _frozenset(required_context_keys),
        )


@dataclass(frozen=True, slots=True, init=False)
class DecryptionRequest:
    """What a decryptor asks a materials manager for.

    ``authenticate``, when the decryptor gives one, raises unless the materials open *this* message:
    key commitment and header tag (ESDK), or commitment and recipient tag (DB-ESDK records). A caching
    manager calls it before caching fresh materials, and caches nothing when it is None: everything in
    a request comes from an unauthenticated header. Other managers may ignore it; the decryptor checks
    the header against whatever materials it gets back in any case.
    """

    suite: AnySuite
    encrypted_data_keys: tuple[EncryptedDataKey, ...]
    encryption_context: EncryptionContext
    commitment_policy: CommitmentPolicy
    reproduced_context: EncryptionContext = EMPTY_CONTEXT
    authenticate: Callable[[DecryptionMaterials], None] | None = field(
        default=None, repr=False, compare=False
    )

    def __new__(
        cls,
        suite: AnySuite,
        encrypted_data_keys: tuple[EncryptedDataKey, ...],
        encryption_context: Mapping[str, str],
        commitment_policy: CommitmentPolicy,
        reproduced_context: Mapping[str, str] | None = EMPTY_CONTEXT,
        authenticate: Callable[[DecryptionMaterials], None] | None = None,
    ) -> DecryptionRequest:
        return _build_decryption_request(
            cls,
            suite,
            _tuple(encrypted_data_keys),
            _frozen(encryption_context),
            commitment_policy,
            _frozen(reproduced_context),
            authenticate,
        )

    def unauthenticated(self) -> DecryptionRequest:
        """This request without its ``authenticate`` check (what a shared fetch passes on)."""
        if self.authenticate is None:
            return self
        return DecryptionRequest(
            self.suite,
            self.encrypted_data_keys,
            self.encryption_context,
            self.commitment_policy,
            self.reproduced_context,
        )


@dataclass(frozen=True, slots=True, init=False)
class EncryptionMaterials:
    """Everything needed to encrypt one message."""

    suite: AnySuite
    encryption_context: EncryptionContext
    encrypted_data_keys: tuple[EncryptedDataKey, ...] = ()
    plaintext_data_key: bytes | None = field(default=None, repr=False)
    signing_key: EllipticCurvePrivateKey | None = field(default=None, repr=False)
    required_context_keys: frozenset[str] = frozenset()
    symmetric_signing_keys: tuple[bytes, ...] = field(default=(), repr=False)

    def __new__(
        cls,
        suite: AnySuite,
        encryption_context: Mapping[str, str],
        encrypted_data_keys: tuple[EncryptedDataKey, ...] = (),
        plaintext_data_key: bytes | None = None,
        signing_key: EllipticCurvePrivateKey | None = None,
        required_context_keys: frozenset[str] = frozenset(),
        symmetric_signing_keys: tuple[bytes, ...] = (),
    ) -> EncryptionMaterials:
        return _build_encryption_materials(
            cls,
            suite,
            _frozen(encryption_context),
            _tuple(encrypted_data_keys),
            _bytes_or_none(plaintext_data_key),
            signing_key,
            _frozenset(required_context_keys),
            _tuple(symmetric_signing_keys),
        )

    def with_data_key(
        self,
        plaintext_data_key: bytes,
        edk: EncryptedDataKey | None = None,
        symmetric_signing_key: bytes | None = None,
    ) -> EncryptionMaterials:
        """Materials with a freshly generated data key (and optionally its first EDK)."""
        if self.plaintext_data_key is not None:
            raise PolicyError("encryption materials already hold a data key")
        check_data_key(self.suite, plaintext_data_key)
        edks = self.encrypted_data_keys + ((edk,) if edk is not None else ())
        sym = self.symmetric_signing_keys + (
            (symmetric_signing_key,) if symmetric_signing_key is not None else ()
        )
        # Every field but the new ones comes from this (normalized) value: no need to normalize again.
        return _build_encryption_materials(
            EncryptionMaterials,
            self.suite,
            self.encryption_context,
            edks,
            bytes(plaintext_data_key),
            self.signing_key,
            self.required_context_keys,
            sym,
        )

    def with_edk(
        self, edk: EncryptedDataKey, symmetric_signing_key: bytes | None = None
    ) -> EncryptionMaterials:
        """Materials with one more encrypted data key."""
        if self.plaintext_data_key is None:
            raise PolicyError("cannot add an encrypted data key before a data key exists")
        sym = self.symmetric_signing_keys + (
            (symmetric_signing_key,) if symmetric_signing_key is not None else ()
        )
        return _build_encryption_materials(
            EncryptionMaterials,
            self.suite,
            self.encryption_context,
            (*self.encrypted_data_keys, edk),
            self.plaintext_data_key,
            self.signing_key,
            self.required_context_keys,
            sym,
        )

    def __repr__(self) -> str:
        return (
            f"EncryptionMaterials(suite={self.suite!r}, context_keys={sorted(self.encryption_context)!r}, "
            f"edks={len(self.encrypted_data_keys)}, has_data_key={self.plaintext_data_key is not None})"
        )


@dataclass(frozen=True, slots=True, init=False)
class DecryptionMaterials:
    """Everything needed to decrypt one message."""

    suite: AnySuite
    encryption_context: EncryptionContext
    plaintext_data_key: bytes | None = field(default=None, repr=False)
    verification_key: EllipticCurvePublicKey | None = field(default=None, repr=False)
    required_context_keys: frozenset[str] = frozenset()
    symmetric_signing_key: bytes | None = field(default=None, repr=False)

    def __new__(
        cls,
        suite: AnySuite,
        encryption_context: Mapping[str, str],
        plaintext_data_key: bytes | None = None,
        verification_key: EllipticCurvePublicKey | None = None,
        required_context_keys: frozenset[str] = frozenset(),
        symmetric_signing_key: bytes | None = None,
    ) -> DecryptionMaterials:
        return _build_decryption_materials(
            cls,
            suite,
            _frozen(encryption_context),
            _bytes_or_none(plaintext_data_key),
            verification_key,
            _frozenset(required_context_keys),
            _bytes_or_none(symmetric_signing_key),
        )

    def with_data_key(
        self, plaintext_data_key: bytes, symmetric_signing_key: bytes | None = None
    ) -> DecryptionMaterials:
        """Materials with the recovered data key."""
        if self.plaintext_data_key is not None:
            raise PolicyError("decryption materials already hold a data key")
        check_data_key(self.suite, plaintext_data_key)
        return _build_decryption_materials(
            DecryptionMaterials,
            self.suite,
            self.encryption_context,
            bytes(plaintext_data_key),
            self.verification_key,
            self.required_context_keys,
            _bytes_or_none(symmetric_signing_key),
        )

    def __repr__(self) -> str:
        return (
            f"DecryptionMaterials(suite={self.suite!r}, context_keys={sorted(self.encryption_context)!r}, "
            f"has_data_key={self.plaintext_data_key is not None})"
        )


_build_encryption_request = seal_dataclass(EncryptionRequest)
_build_decryption_request = seal_dataclass(DecryptionRequest)
_build_encryption_materials = seal_dataclass(EncryptionMaterials)
_build_decryption_materials = seal_dataclass(DecryptionMaterials)


# A value is shared along with its fields: a caller's mutable container is copied (frozen_field).
def _tuple(items: tuple[Any, ...]) -> tuple[Any, ...]:
    return items if items.__class__ is tuple else frozen_field(items)


def _frozenset(keys: frozenset[str]) -> frozenset[str]:
    return keys if keys.__class__ is frozenset else frozen_field(keys)


def _bytes_or_none(key: bytes | None) -> bytes | None:
    return key if key is None or key.__class__ is bytes else frozen_field(key)


def _frozen(context: Mapping[str, str] | None) -> EncryptionContext:
    # Materials are built several times per message, almost always from an EncryptionContext.
    if context.__class__ is EncryptionContext:
        return context
    return freeze_context(context)


def check_data_key(suite: AnySuite, key: bytes) -> None:
    """Refuse a data key whose length is not the suite's."""
    if len(key) != suite.data_key_length:
        raise MalformedInputError(
            f"data key length {len(key)} does not match the suite's {suite.data_key_length}"
        )
