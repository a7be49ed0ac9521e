"""Branch key stores: where the hierarchical keyring gets its branch keys and beacon keys.

Source: awslabs/aws-encryption-sdk-specification ``framework/branch-key-store.md`` and
``framework/structures.md`` (branch key materials, beacon key materials).

:class:`BranchKeyStore` is the interface the hierarchical keyring (and, later, searchable encryption)
depends on. A DynamoDB-backed store that unwraps branch keys with AWS KMS implements the same three
operations; :class:`StaticBranchKeyStore` serves one fixed branch key, for tests, test vectors and
offline tools.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from ..errors import ConfigurationError, KeyStoreError
from ..values import freeze_context, seal_dataclass

__all__ = [
    "BRANCH_KEY_LENGTH",
    "BeaconKeyMaterials",
    "BranchKeyMaterials",
    "BranchKeyStore",
    "StaticBranchKeyStore",
    "check_branch_key_version",
]

BRANCH_KEY_LENGTH = 32
"""Branch keys and beacon keys are 256-bit keys (``structures.md#branch-key``)."""


def check_branch_key_version(version: str) -> bytes:
    """The 16 bytes of a branch key version, which must be a UUID in canonical text form."""
    if not isinstance(version, str) or len(version) != 36:
        raise KeyStoreError("branch key version is not a UUID string")
    try:
        parsed = uuid.UUID(version)
    except ValueError:
        raise KeyStoreError("branch key version is not a UUID string") from None
    # Only the canonical lowercase form round-trips through the 16 bytes stored in EDKs.
    if str(parsed) != version:
        raise KeyStoreError("branch key version must be a lowercase canonical UUID")
    return parsed.bytes


@dataclass(frozen=True, slots=True, init=False)
class BranchKeyMaterials:
    """One version of a branch key. The key itself is never shown in ``repr``."""

    branch_key_id: str
    branch_key_version: str
    branch_key: bytes = field(repr=False)
    encryption_context: Mapping[str, str] = field(default_factory=dict)

    def __new__(
        cls,
        branch_key_id: str,
        branch_key_version: str,
        branch_key: bytes,
        encryption_context: Mapping[str, str] | None = None,
    ) -> BranchKeyMaterials:
        # Sealed (values.seal_dataclass): key stores and caches share one object between callers.
        if len(branch_key) != BRANCH_KEY_LENGTH:
            raise KeyStoreError(f"branch key must be {BRANCH_KEY_LENGTH} bytes")
        return _build_branch_key(
            cls, branch_key_id, branch_key_version, bytes(branch_key), freeze_context(encryption_context)
        )

    @property
    def version_bytes(self) -> bytes:
        """The version as the 16 UUID bytes stored in hierarchical EDKs."""
        return check_branch_key_version(self.branch_key_version)


@dataclass(frozen=True, slots=True, init=False)
class BeaconKeyMaterials:
    """The beacon key of a branch key id, for searchable encryption. Secrets are not shown."""

    beacon_key_id: str
    beacon_key: bytes | None = field(default=None, repr=False)
    hmac_keys: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    encryption_context: Mapping[str, str] = field(default_factory=dict)

    def __new__(
        cls,
        beacon_key_id: str,
        beacon_key: bytes | None = None,
        hmac_keys: Mapping[str, bytes] | None = None,
        encryption_context: Mapping[str, str] | None = None,
    ) -> BeaconKeyMaterials:
        # Sealed (values.seal_dataclass); hmac_keys is a read-only view of a private copy.
        if beacon_key is not None:
            if len(beacon_key) != BRANCH_KEY_LENGTH:
                raise KeyStoreError(f"beacon key must be {BRANCH_KEY_LENGTH} bytes")
            beacon_key = bytes(beacon_key)
        keys = MappingProxyType({name: bytes(key) for name, key in (hmac_keys or {}).items()})
        return _build_beacon_key(cls, beacon_key_id, beacon_key, keys, freeze_context(encryption_context))


_build_branch_key = seal_dataclass(BranchKeyMaterials)
_build_beacon_key = seal_dataclass(BeaconKeyMaterials)


@runtime_checkable
class BranchKeyStore(Protocol):
    """The read side of a branch key store (``branch-key-store.md``).

    Every operation raises :class:`~kmsenvelope.errors.KeyStoreError` when it cannot return a valid key;
    implementations must be safe to share between threads.
    """

    def get_active_branch_key(self, branch_key_id: str) -> BranchKeyMaterials:
        """The ACTIVE version of ``branch_key_id``: the one new data keys are wrapped under."""
        ...

    def get_branch_key_version(self, branch_key_id: str, version: str) -> BranchKeyMaterials:
        """A specific version of ``branch_key_id``, active or not, to unwrap existing data keys."""
        ...

    def get_beacon_key(self, branch_key_id: str) -> BeaconKeyMaterials:
        """The beacon key of ``branch_key_id``."""
        ...


class StaticBranchKeyStore:
    """A key store holding exactly one branch key version and its beacon key, in memory.

    It never calls AWS: use it for tests, for the DB-ESDK test vectors (``static-branch-key`` keys)
    and for offline tools that were handed the plaintext branch key.
    """

    def __init__(self, branch_key_id: str, version: str, branch_key: bytes, beacon_key: bytes) -> None:
        if not isinstance(branch_key_id, str) or not branch_key_id:
            raise ConfigurationError("branch_key_id must be a non-empty string")
        try:
            check_branch_key_version(version)
            self._branch = BranchKeyMaterials(branch_key_id, version, bytes(branch_key))
            self._beacon = BeaconKeyMaterials(branch_key_id, bytes(beacon_key))
        except KeyStoreError as exc:
            raise ConfigurationError(str(exc)) from None

    @property
    def branch_key_id(self) -> str:
        return self._branch.branch_key_id

    def get_active_branch_key(self, branch_key_id: str) -> BranchKeyMaterials:
        self._check_id(branch_key_id)
        return self._branch

    def get_branch_key_version(self, branch_key_id: str, version: str) -> BranchKeyMaterials:
        self._check_id(branch_key_id)
        if version != self._branch.branch_key_version:
            raise KeyStoreError("this key store does not hold the requested branch key version")
        return self._branch

    def get_beacon_key(self, branch_key_id: str) -> BeaconKeyMaterials:
        self._check_id(branch_key_id)
        return self._beacon

    def _check_id(self, branch_key_id: str) -> None:
        if branch_key_id != self._branch.branch_key_id:
            raise KeyStoreError("this key store does not hold the requested branch key id")

    def __repr__(self) -> str:
        return (
            f"StaticBranchKeyStore(branch_key_id={self._branch.branch_key_id!r}, "
            f"version={self._branch.branch_key_version!r})"
        )
