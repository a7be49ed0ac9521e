"""The AWS KMS hierarchical keyring: data keys wrapped under keys derived from cached branch keys.

Source: awslabs/aws-encryption-sdk-specification ``framework/aws-kms/aws-kms-hierarchical-keyring.md``;
bytes as the MPL's ``AwsKmsHierarchicalKeyring.dfy``.

Each EDK (provider id ``aws-kms-hierarchy``, provider info = branch key id) holds::

    salt (16) || IV (12) || branch key version (16 UUID bytes) || AES-256-GCM ciphertext || tag (16)

The AES key is ``KDF-CTR-HMAC-SHA256(branch key, label "aws-kms-hierarchy", context salt)`` and the AAD is
``"aws-kms-hierarchy" || branch key id || version bytes || serialized encryption context``. Under DB-ESDK
suites this is the keyring-wrapped part of an intermediate-wrapped EDK (see :mod:`.wrapping`).
"""

from __future__ import annotations

import functools
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

from ..aws.key_store import BranchKeyMaterials, BranchKeyStore
from ..errors import (
    ConfigurationError,
    EdkFailure,
    KeyStoreError,
    KmsEnvelopeError,
    MalformedInputError,
    NoUsableKeyError,
    PolicyError,
)
from ..materials.materials import DecryptionMaterials, EncryptedDataKey, EncryptionMaterials
from ..primitives.aead import AesGcm
from ..primitives.kdf import Hmac, kdf_counter_hmac
from . import wrapping

__all__ = ["PROVIDER_ID", "BranchKeyIdSupplier", "HierarchicalKeyring"]

PROVIDER_ID = "aws-kms-hierarchy"
_PROVIDER_ID_BYTES = PROVIDER_ID.encode("ascii")
_SALT_LENGTH = 16
_IV_LENGTH = 12
_VERSION_LENGTH = 16
_TAG_LENGTH = 16
_OVERHEAD = _SALT_LENGTH + _IV_LENGTH + _VERSION_LENGTH + _TAG_LENGTH
_DERIVED_KEY_LENGTH = 32

BranchKeyIdSupplier = Callable[[Mapping[str, str]], str]
"""``supplier(encryption_context) -> branch key id``, for one keyring serving many tenants."""

_ACTIVE = ""  # cache-key marker for "the active version"; real versions are 36-character UUIDs


class _BranchKey:
    """A branch key version ready for use: materials plus the values derived once from them."""

    __slots__ = ("id_bytes", "key", "version", "version_bytes")

    def __init__(self, materials: BranchKeyMaterials) -> None:
        # Keyed once: every wrap and unwrap derives a fresh key from this branch key.
        self.key = Hmac("sha256", materials.branch_key)
        self.version = materials.branch_key_version
        self.version_bytes = materials.version_bytes
        self.id_bytes = materials.branch_key_id.encode("utf-8")

    def aad(self, context: Mapping[str, str]) -> bytes:
        return (
            _PROVIDER_ID_BYTES + self.id_bytes + self.version_bytes + wrapping.encryption_context_aad(context)
        )

    def wrap(self, key: bytes, context: Mapping[str, str]) -> EncryptedDataKey:
        # One read of the system CSPRNG for both public values.
        random = os.urandom(_SALT_LENGTH + _IV_LENGTH)
        salt, iv = random[:_SALT_LENGTH], random[_SALT_LENGTH:]
        derived = kdf_counter_hmac("sha256", self.key, _PROVIDER_ID_BYTES, salt, _DERIVED_KEY_LENGTH)
        sealed = AesGcm(derived).encrypt(iv, key, self.aad(context))
        return EncryptedDataKey(PROVIDER_ID, self.id_bytes, salt + iv + self.version_bytes + sealed)

    def unwrap(self, ciphertext: bytes, context: Mapping[str, str]) -> bytes:
        salt = ciphertext[:_SALT_LENGTH]
        iv = ciphertext[_SALT_LENGTH : _SALT_LENGTH + _IV_LENGTH]
        derived = kdf_counter_hmac("sha256", self.key, _PROVIDER_ID_BYTES, salt, _DERIVED_KEY_LENGTH)
        return AesGcm(derived).decrypt(
            iv, ciphertext[_SALT_LENGTH + _IV_LENGTH + _VERSION_LENGTH :], self.aad(context)
        )


class _TtlCache:
    """A thread-safe LRU cache of branch keys whose entries expire ``ttl`` seconds after insertion."""

    def __init__(self, ttl: float, capacity: int, clock: Callable[[], float]) -> None:
        self._ttl = ttl
        self._capacity = capacity
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], tuple[float, _BranchKey]] = OrderedDict()

    def get(self, key: tuple[str, str]) -> _BranchKey | None:
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if now - entry[0] >= self._ttl:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: tuple[str, str], value: _BranchKey) -> None:
        now = self._clock()
        with self._lock:
            self._entries[key] = (now, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


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
        if (branch_key_id is None) == (branch_key_id_supplier is None):
            raise ConfigurationError("give exactly one of branch_key_id and branch_key_id_supplier")
        if branch_key_id is not None and (not isinstance(branch_key_id, str) or not branch_key_id):
            raise ConfigurationError("branch_key_id must be a non-empty string")
        if branch_key_id_supplier is not None and not callable(branch_key_id_supplier):
            raise ConfigurationError("branch_key_id_supplier must be callable")
        if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, (int, float)) or not ttl_seconds > 0:
            raise ConfigurationError("ttl_seconds must be a positive number")
        if isinstance(cache_capacity, bool) or not isinstance(cache_capacity, int) or cache_capacity < 1:
            raise ConfigurationError("cache_capacity must be a positive integer")
        self._store = key_store
        self._branch_key_id = branch_key_id
        self._supplier = branch_key_id_supplier
        self._cache = _TtlCache(float(ttl_seconds), cache_capacity, clock)

    @property
    def cache_size(self) -> int:
        """How many branch key versions are cached right now."""
        return len(self._cache)

    def clear_cache(self) -> None:
        """Forget every cached branch key (e.g. right after a rotation)."""
        self._cache.clear()

    @property
    def key_store(self) -> BranchKeyStore:
        """The branch key store this keyring reads (beacons take their beacon key from it too)."""
        return self._store

    @property
    def branch_key_id(self) -> str | None:
        """The fixed branch key id, or ``None`` when a supplier picks it per message."""
        return self._branch_key_id

    def on_encrypt(self, materials: EncryptionMaterials) -> EncryptionMaterials:
        """Add an EDK wrapped under the active branch key version, generating the data key if needed."""
        branch_key_id = self._resolve_id(materials.encryption_context)
        cache_key = (branch_key_id, _ACTIVE)
        branch = self._cache.get(cache_key)
        fresh = branch is None
        if branch is None:
            branch = _BranchKey(
                _checked(self._store.get_active_branch_key(branch_key_id), branch_key_id, None)
            )
        result = wrapping.on_encrypt(materials, branch.wrap)
        if fresh:
            self._cache.put(cache_key, branch)
        return result

    def on_decrypt(
        self, materials: DecryptionMaterials, edks: Sequence[EncryptedDataKey]
    ) -> DecryptionMaterials:
        """Recover the data key from the first EDK of this keyring's branch key that unwraps."""
        if materials.plaintext_data_key is not None:
            raise PolicyError("decryption materials already hold a data key")
        branch_key_id = self._resolve_id(materials.encryption_context)
        id_bytes = branch_key_id.encode("utf-8")
        failures: list[EdkFailure] = []
        for edk in edks:
            if edk.provider_id != PROVIDER_ID:
                continue
            if edk.provider_info != id_bytes:
                failures.append(EdkFailure(edk.provider_id, _describe_info(edk), "different branch key id"))
                continue
            used: list[tuple[tuple[str, str], _BranchKey]] = []
            try:
                result = wrapping.unwrap_edk(materials, edk, self._unwrapper(branch_key_id, used))
            except KmsEnvelopeError as exc:
                failures.append(EdkFailure(edk.provider_id, _describe_info(edk), _reason(exc)))
                continue
            for cache_key, branch in used:
                self._cache.put(cache_key, branch)
            return result
        raise NoUsableKeyError(
            "no aws-kms-hierarchy EDK could be decrypted with this keyring's branch key", failures
        )

    def _unwrapper(
        self, branch_key_id: str, used: list[tuple[tuple[str, str], _BranchKey]]
    ) -> wrapping.Unwrap:
        def unwrap(edk: EncryptedDataKey, context: Mapping[str, str]) -> bytes:
            ciphertext = edk.ciphertext
            if len(ciphertext) <= _OVERHEAD:
                raise MalformedInputError("hierarchical EDK ciphertext is too short")
            start = _SALT_LENGTH + _IV_LENGTH
            version = _version_string(bytes(ciphertext[start : start + _VERSION_LENGTH]))
            cache_key = (branch_key_id, version)
            branch = self._cache.get(cache_key)
            if branch is None:
                fetched = self._store.get_branch_key_version(branch_key_id, version)
                branch = _BranchKey(_checked(fetched, branch_key_id, version))
                used.append((cache_key, branch))
            return branch.unwrap(ciphertext, context)

        return unwrap

    def _resolve_id(self, context: Mapping[str, str]) -> str:
        if self._branch_key_id is not None:
            return self._branch_key_id
        assert self._supplier is not None
        branch_key_id = self._supplier(context)
        if not isinstance(branch_key_id, str) or not branch_key_id:
            raise KeyStoreError("the branch key id supplier did not return a non-empty string")
        return branch_key_id

    def __repr__(self) -> str:
        source = (
            f"branch_key_id={self._branch_key_id!r}" if self._branch_key_id else "branch_key_id_supplier=..."
        )
        return f"HierarchicalKeyring({self._store!r}, {source})"


@functools.lru_cache(maxsize=1024)
def _version_string(raw: bytes) -> str:
    """The UUID text of a branch key version; cached because building a UUID costs microseconds on
    every decrypt and a keyring sees few distinct versions. Keys and values are public, immutable."""
    return str(uuid.UUID(bytes=raw))


def _checked(materials: BranchKeyMaterials, branch_key_id: str, version: str | None) -> BranchKeyMaterials:
    """Refuse key store answers for another branch key or version than the one asked for."""
    if not isinstance(materials, BranchKeyMaterials):
        raise KeyStoreError("the key store returned something other than BranchKeyMaterials")
    if materials.branch_key_id != branch_key_id:
        raise KeyStoreError("the key store returned a different branch key id than requested")
    if version is not None and materials.branch_key_version != version:
        raise KeyStoreError("the key store returned a different branch key version than requested")
    return materials


def _describe_info(edk: EncryptedDataKey) -> str:
    return edk.describe().partition(" ")[2]


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"
