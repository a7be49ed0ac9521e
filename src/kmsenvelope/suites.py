"""Algorithm suites: the ESDK message suites and the DB-ESDK structured-encryption suites.

Source: awslabs/aws-encryption-sdk-specification ``framework/algorithm-suites.md``.
Both enums expose the same read-only properties, so keyrings and materials managers can serve either.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .errors import MalformedInputError

__all__ = ["CommitmentPolicy", "DbeSuite", "Suite", "SuiteInfo"]


@dataclass(frozen=True)
class SuiteInfo:
    """The parameters of one algorithm suite."""

    id: int
    key_length: int
    kdf_hash: str | None
    signature_curve: str | None
    committing: bool
    message_version: int
    symmetric_signature: bool = False

    iv_length: int = 12
    tag_length: int = 16

    @property
    def signing(self) -> bool:
        return self.signature_curve is not None

    @property
    def signature_hash(self) -> str | None:
        return {"secp256r1": "sha256", "secp384r1": "sha384"}.get(self.signature_curve or "")

    @property
    def id_bytes(self) -> bytes:
        return self.id.to_bytes(2, "big")

    data_key_length: int = field(init=False)
    """Length of the data key keyrings must produce (the KDF input length)."""

    def __post_init__(self) -> None:
        # A field rather than a property: read on every message.
        object.__setattr__(self, "data_key_length", 32 if self.committing else self.key_length)


def _info(
    sid: int,
    key_length: int,
    kdf_hash: str | None,
    curve: str | None = None,
    committing: bool = False,
    symmetric_signature: bool = False,
) -> SuiteInfo:
    return SuiteInfo(
        id=sid,
        key_length=key_length,
        kdf_hash=kdf_hash,
        signature_curve=curve,
        committing=committing,
        message_version=2 if committing else 1,
        symmetric_signature=symmetric_signature,
    )


class _SuiteMixin:
    """Shared accessors, read from a plain attribute (enum ``.value`` lookups are slow on hot paths)."""

    _info: SuiteInfo

    def __init__(self, info: SuiteInfo) -> None:
        self._info = info

    # Members are singletons compared by identity, so the identity hash is the consistent one; Enum's
    # own __hash__ is a Python function, and suites are dict and set keys on every message.
    __hash__ = object.__hash__

    @property
    def id(self) -> int:
        return self._info.id

    @property
    def info(self) -> SuiteInfo:
        return self._info

    @property
    def key_length(self) -> int:
        return self._info.key_length

    @property
    def data_key_length(self) -> int:
        return self._info.data_key_length

    @property
    def committing(self) -> bool:
        return self._info.committing

    @property
    def signing(self) -> bool:
        return self._info.signature_curve is not None

    @property
    def symmetric_signature(self) -> bool:
        return self._info.symmetric_signature

    @property
    def message_version(self) -> int:
        return self._info.message_version

    @property
    def id_bytes(self) -> bytes:
        return self._info.id_bytes


class Suite(_SuiteMixin, enum.Enum):
    """The 11 AWS Encryption SDK algorithm suites, under their ESDK names."""

    AES_128_GCM_IV12_TAG16_NO_KDF = _info(0x0014, 16, None)
    AES_192_GCM_IV12_TAG16_NO_KDF = _info(0x0046, 24, None)
    AES_256_GCM_IV12_TAG16_NO_KDF = _info(0x0078, 32, None)
    AES_128_GCM_IV12_TAG16_HKDF_SHA256 = _info(0x0114, 16, "sha256")
    AES_192_GCM_IV12_TAG16_HKDF_SHA256 = _info(0x0146, 24, "sha256")
    AES_256_GCM_IV12_TAG16_HKDF_SHA256 = _info(0x0178, 32, "sha256")
    AES_128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256 = _info(0x0214, 16, "sha256", "secp256r1")
    AES_192_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384 = _info(0x0346, 24, "sha384", "secp384r1")
    AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384 = _info(0x0378, 32, "sha384", "secp384r1")
    AES_256_GCM_HKDF_SHA512_COMMIT_KEY = _info(0x0478, 32, "sha512", committing=True)
    AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384 = _info(0x0578, 32, "sha512", "secp384r1", committing=True)

    @classmethod
    def from_id(cls, suite_id: int) -> Suite:
        """The suite with this two-byte identifier; :class:`MalformedInputError` if there is none."""
        found = _ESDK_BY_ID.get(suite_id)
        if found is None:
            raise MalformedInputError(f"unknown algorithm suite id 0x{suite_id:04x}")
        return found

    def __repr__(self) -> str:
        return f"<Suite.{self.name}: 0x{self.id:04X}>"


class DbeSuite(_SuiteMixin, enum.Enum):
    """The AWS Database Encryption SDK suites (structured encryption, message format 1)."""

    AES_256_GCM_HKDF_SHA512_COMMIT_KEY_SYMSIG_HMAC_SHA384 = SuiteInfo(
        id=0x6700,
        key_length=32,
        kdf_hash="sha512",
        signature_curve=None,
        committing=True,
        message_version=1,
        symmetric_signature=True,
    )
    AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384_SYMSIG_HMAC_SHA384 = SuiteInfo(
        id=0x6701,
        key_length=32,
        kdf_hash="sha512",
        signature_curve="secp384r1",
        committing=True,
        message_version=1,
        symmetric_signature=True,
    )

    @classmethod
    def from_id(cls, suite_id: int) -> DbeSuite:
        """The DB-ESDK suite with this identifier; :class:`MalformedInputError` if there is none."""
        for member in cls:
            if member.id == suite_id:
                return member
        raise MalformedInputError(f"unknown database algorithm suite id 0x{suite_id:04x}")

    def __repr__(self) -> str:
        return f"<DbeSuite.{self.name}: 0x{self.id:04X}>"


_ESDK_BY_ID: dict[int, Suite] = {s.id: s for s in Suite}


class CommitmentPolicy(enum.Enum):
    """Whether key commitment is required on encrypt and on decrypt (ESDK ``client-apis/client.md``)."""

    FORBID_ENCRYPT_ALLOW_DECRYPT = "FORBID_ENCRYPT_ALLOW_DECRYPT"
    REQUIRE_ENCRYPT_ALLOW_DECRYPT = "REQUIRE_ENCRYPT_ALLOW_DECRYPT"
    REQUIRE_ENCRYPT_REQUIRE_DECRYPT = "REQUIRE_ENCRYPT_REQUIRE_DECRYPT"

    __hash__ = object.__hash__  # identity, like its equality (see _SuiteMixin)

    @property
    def encrypt_requires_commitment(self) -> bool:
        return self is not CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT

    @property
    def decrypt_requires_commitment(self) -> bool:
        return self is CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
