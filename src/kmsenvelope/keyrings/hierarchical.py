"""The AWS KMS hierarchical keyring: data keys wrapped under keys derived from cached branch keys.

Source: awslabs/aws-encryption-sdk-specification ``framework/aws-kms/aws-kms-hierarchical-keyring.md``;
bytes as the MPL's ``AwsKmsHierarchicalKeyring.dfy``. The EDK format, the branch key cache and the rules
of what to fetch when are :class:`~kmsenvelope.keyrings.hierarchical_rules.HierarchicalRules` (sans-IO,
shared with :class:`kmsenvelope.aio.AsyncHierarchicalKeyring`); this module adds the blocking key store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from ..aws.key_store import BranchKeyMaterials, BranchKeyStore
from ..aws.requests import run
from ..errors import ConfigurationError
from ..materials.materials import AnySuite, DecryptionMaterials, EncryptedDataKey, EncryptionMaterials
from .hierarchical_rules import PROVIDER_ID, BranchKeyIdSupplier, BranchKeyRequest, HierarchicalRules

__all__ = [
    "PROVIDER_ID",
    "BranchKeyIdSupplier",
    "BranchKeyRequest",
    "HierarchicalKeyring",
    "HierarchicalRules",
]


class HierarchicalKeyring:
    """Wraps data keys under branch keys from a :class:`~kmsenvelope.aws.key_store.BranchKeyStore`.

    Give either ``branch_key_id`` (one tenant) or ``branch_key_id_supplier`` (called with the encryption
    context, on encrypt and on decrypt). Branch keys are cached for ``ttl_seconds`` (at most
    ``cache_capacity`` versions, least recently used evicted first); the cache only ever holds keys
    that served a successful operation. Works with ESDK suites (direct wrapping) and DB-ESDK suites
    (intermediate wrapping, which also yields each EDK's symmetric signing key).
    """

    def __init__(
        self,
        key_store: BranchKeyStore,
        *,
        branch_key_id: str | None = None,
        branch_key_id_supplier: BranchKeyIdSupplier | None = None,
        ttl_seconds: float = 600,
        cache_capacity: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(key_store, BranchKeyStore):
            raise ConfigurationError("key_store must implement the BranchKeyStore protocol")
        self._store = key_store
        self._rules = HierarchicalRules(
            branch_key_id, branch_key_id_supplier, ttl_seconds, cache_capacity, clock
        )

    @property
    def cache_size(self) -> int:
        """How many branch key versions are cached right now."""
        return len(self._rules.cache)

    def clear_cache(self) -> None:
        """Forget every cached branch key (e.g. right after a rotation)."""
        self._rules.cache.clear()

    @property
    def key_store(self) -> BranchKeyStore:
        """The branch key store this keyring reads (beacons take their beacon key from it too)."""
        return self._store

    @property
    def branch_key_id(self) -> str | None:
        """The fixed branch key id, or ``None`` when a supplier picks it per message."""
        return self._rules.branch_key_id

    def on_encrypt(self, materials: EncryptionMaterials) -> EncryptionMaterials:
        """Add an EDK wrapped under the active branch key version, generating the data key if needed."""
        return run(self._rules.encrypt_steps(materials), self._fetch)

    def fresh_record_key(
        self, suite: AnySuite, context: Mapping[str, str]
    ) -> tuple[bytes, EncryptedDataKey, bytes]:
        """A new data key for a DB-ESDK record, with its EDK and that EDK's symmetric signing key.

        Intermediate key wrapping (``wrapping``) with a fresh intermediate key sealed under the active
        branch key: the EDK :meth:`on_encrypt` adds for such suites, without building materials twice.
        """
        return run(self._rules.fresh_record_key_steps(suite, context), self._fetch)

    def on_decrypt(
        self, materials: DecryptionMaterials, edks: Sequence[EncryptedDataKey]
    ) -> DecryptionMaterials:
        """Recover the data key from the first EDK of this keyring's branch key that unwraps."""
        return run(self._rules.decrypt_steps(materials, edks), self._fetch)

    def open_record_key(
        self, suite: AnySuite, context: Mapping[str, str], edks: Sequence[EncryptedDataKey]
    ) -> tuple[bytes, bytes]:
        """(data key, symmetric signing key) of a DB-ESDK record, from the first of its EDKs that opens.

        The inverse of :meth:`fresh_record_key`; :meth:`on_decrypt` uses it for such suites.
        """
        return run(self._rules.open_record_key_steps(suite, context, edks), self._fetch)

    def _fetch(self, request: BranchKeyRequest) -> BranchKeyMaterials:
        if request.version is None:
            return self._store.get_active_branch_key(request.branch_key_id)
        return self._store.get_branch_key_version(request.branch_key_id, request.version)

    def __repr__(self) -> str:
        source = (
            f"branch_key_id={self.branch_key_id!r}" if self.branch_key_id else "branch_key_id_supplier=..."
        )
        return f"HierarchicalKeyring({self._store!r}, {source})"
