"""The AWS KMS hierarchical keyring's rules, without I/O: EDK format, branch key cache, what to fetch.

Source: awslabs/aws-encryption-sdk-specification ``framework/aws-kms/aws-kms-hierarchical-keyring.md``;
bytes as the MPL's ``AwsKmsHierarchicalKeyring.dfy``.

Each EDK (provider id ``aws-kms-hierarchy``, provider info = branch key id) holds::

    salt (16) || IV (12) || branch key version (16 UUID bytes) || AES-256-GCM ciphertext || tag (16)

The AES key is ``KDF-CTR-HMAC-SHA256(branch key, label "aws-kms-hierarchy", context salt)`` and the AAD is
``"aws-kms-hierarchy" || branch key id || version bytes || serialized encryption context``. Under DB-ESDK
suites this is the keyring-wrapped part of an intermediate-wrapped EDK (see :mod:`.wrapping`).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..aws.key_store import BranchKeyMaterials
from ..aws.requests import Steps
from ..errors import (
    AuthenticationError,
    ConfigurationError,
    EdkFailure,
    KeyStoreError,
    KmsEnvelopeError,
    MalformedInputError,
    NoUsableKeyError,
    PolicyError,
)
from ..materials.materials import AnySuite, DecryptionMaterials, EncryptedDataKey, EncryptionMaterials
from ..primitives.kdf import CounterKdf
from . import wrapping

__all__ = [
    "PROVIDER_ID",
    "BranchKeyIdSupplier",
    "BranchKeyRequest",
    "HierarchicalRules",
]

PROVIDER_ID = "aws-kms-hierarchy"
_PROVIDER_ID_BYTES = PROVIDER_ID.encode("ascii")
_SALT_LENGTH = 16
_IV_LENGTH = 12
_VERSION_LENGTH = 16
_TAG_LENGTH = 16
_RANDOM_LENGTH = _SALT_LENGTH + _IV_LENGTH
_OVERHEAD = _SALT_LENGTH + _IV_LENGTH + _VERSION_LENGTH + _TAG_LENGTH
_DERIVED_KEY_LENGTH = 32

BranchKeyIdSupplier = Callable[[Mapping[str, str]], str]
"""``supplier(encryption_context) -> branch key id``, for one keyring serving many tenants."""

_T = TypeVar("_T")
_ACTIVE = ""  # cache-key marker for "the active version"; real versions are 36-character UUIDs


class _BranchKey:
    """A branch key version ready for use: materials plus the values derived once from them."""

    __slots__ = ("aad_prefix", "id_bytes", "kdf", "version", "version_bytes")

    def __init__(self, materials: BranchKeyMaterials) -> None:
        # Keyed once: every wrap and unwrap derives a fresh key from this branch key.
        self.kdf = CounterKdf("sha256", materials.branch_key, _PROVIDER_ID_BYTES, _DERIVED_KEY_LENGTH)
        self.version = materials.branch_key_version
        self.version_bytes = materials.version_bytes
        self.id_bytes = materials.branch_key_id.encode("utf-8")
        self.aad_prefix = _PROVIDER_ID_BYTES + self.id_bytes + self.version_bytes

    def seal(self, key: bytes, context_aad: bytes, random: bytes) -> bytes:
        """The EDK ciphertext holding ``key``; ``random`` is the 16-byte salt then the 12-byte IV."""
        salt, iv = random[:_SALT_LENGTH], random[_SALT_LENGTH:_RANDOM_LENGTH]
        sealed = AESGCM(self.kdf.derive(salt)).encrypt(iv, key, self.aad_prefix + context_aad)
        return random[:_RANDOM_LENGTH] + self.version_bytes + sealed

    def open(self, ciphertext: bytes, context_aad: bytes) -> bytes:
        """The key an EDK ciphertext of this branch key version holds (length checked by the caller)."""
        derived = self.kdf.derive(ciphertext[:_SALT_LENGTH])
        try:
            return AESGCM(derived).decrypt(
                ciphertext[_SALT_LENGTH:_RANDOM_LENGTH],
                ciphertext[_RANDOM_LENGTH + _VERSION_LENGTH :],
                self.aad_prefix + context_aad,
            )
        except InvalidTag:
            raise AuthenticationError("authentication tag did not verify") from None

    def wrap(self, key: bytes, context: Mapping[str, str]) -> EncryptedDataKey:
        ciphertext = self.seal(key, wrapping.encryption_context_aad(context), os.urandom(_RANDOM_LENGTH))
        return EncryptedDataKey(PROVIDER_ID, self.id_bytes, ciphertext)


class _TtlCache:
    """A thread-safe LRU cache of branch keys whose entries expire ``ttl`` seconds after insertion."""

    def __init__(self, ttl: float, capacity: int, clock: Callable[[], float]) -> None:
        self._ttl = ttl
        self._capacity = capacity
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], tuple[float, _BranchKey]] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        # Pickled (a keyring sent to a worker) it keeps its settings and forgets its branch keys:
        # no key material travels, and the worker fetches what it needs from its own key store.
        return {"ttl": self._ttl, "capacity": self._capacity, "clock": self._clock}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._ttl = state["ttl"]
        self._capacity = state["capacity"]
        self._clock = state["clock"]
        self._lock = threading.Lock()
        self._entries = OrderedDict()

    def get(self, key: tuple[str, str]) -> _BranchKey | None:
        now = self._clock()
        entries = self._entries
        # A hit, the path of nearly every message, takes no lock: a dict read is atomic, and a
        # concurrent eviction can at worst make move_to_end miss, which only ages the entry.
        entry = entries.get(key)
        if entry is not None and now - entry[0] < self._ttl:
            try:  # noqa: SIM105 - contextlib.suppress would cost a context manager on every hit
                entries.move_to_end(key)
            except KeyError:
                pass
            return entry[1]
        if entry is not None:
            with self._lock:
                if entries.get(key) is entry:
                    del entries[key]
        return None

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


@dataclass(frozen=True)
class BranchKeyRequest:
    """Sans-IO request for a branch key version (``version=None``: the active one) from the key store."""

    branch_key_id: str
    version: str | None


class HierarchicalRules:
    """The hierarchical keyring without I/O: EDK format, branch key cache, and what to fetch when.

    Its steps yield :class:`BranchKeyRequest` and receive :class:`BranchKeyMaterials`; the sync
    :class:`HierarchicalKeyring` answers from a blocking key store, the async one from an async key
    store with single flight.
    """

    def __init__(
        self,
        branch_key_id: str | None,
        branch_key_id_supplier: BranchKeyIdSupplier | None,
        ttl_seconds: float,
        cache_capacity: int,
        clock: Callable[[], float],
    ) -> None:
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
        self.branch_key_id = branch_key_id
        self._supplier = branch_key_id_supplier
        self.cache = _TtlCache(float(ttl_seconds), cache_capacity, clock)

    def encrypt_steps(self, materials: EncryptionMaterials) -> Steps[EncryptionMaterials]:
        """Add an EDK wrapped under the active branch key version, generating the data key if needed."""
        suite = materials.suite
        if materials.plaintext_data_key is None and suite.symmetric_signature:
            data_key, edk, signing_key = yield from self.fresh_record_key_steps(
                suite, materials.encryption_context
            )
            return materials.with_data_key(data_key, edk, symmetric_signing_key=signing_key)
        branch, fresh = yield from self._active_branch(materials.encryption_context)
        result = wrapping.on_encrypt(materials, branch.wrap)
        if fresh is not None:
            self.cache.put(fresh, branch)
        return result

    def fresh_record_key_steps(
        self, suite: AnySuite, context: Mapping[str, str]
    ) -> Steps[tuple[bytes, EncryptedDataKey, bytes]]:
        """(data key, EDK, symmetric signing key) for a DB-ESDK record (intermediate key wrapping)."""
        branch, fresh = yield from self._active_branch(context)
        aad = wrapping.encryption_context_aad(context)
        info = suite.info
        key_length = info.key_length
        # One read of the system CSPRNG: salt, IV, intermediate key, data key.
        random = os.urandom(_RANDOM_LENGTH + key_length + info.data_key_length)
        intermediate = random[_RANDOM_LENGTH : _RANDOM_LENGTH + key_length]
        data_key = random[_RANDOM_LENGTH + key_length :]
        inner = branch.seal(intermediate, aad, random)
        sealed, signing_key = wrapping.intermediate_seal(suite, intermediate, data_key, aad)
        if fresh is not None:
            self.cache.put(fresh, branch)
        return data_key, EncryptedDataKey(PROVIDER_ID, branch.id_bytes, sealed + inner), signing_key

    def decrypt_steps(
        self, materials: DecryptionMaterials, edks: Sequence[EncryptedDataKey]
    ) -> Steps[DecryptionMaterials]:
        """Recover the data key from the first EDK of this keyring's branch key that unwraps."""
        if materials.plaintext_data_key is not None:
            raise PolicyError("decryption materials already hold a data key")
        suite = materials.suite
        if suite.symmetric_signature:
            data_key, signing_key = yield from self.open_record_key_steps(
                suite, materials.encryption_context, edks
            )
            return materials.with_data_key(data_key, symmetric_signing_key=signing_key)

        def recover(edk: EncryptedDataKey, open_inner: _OpenInner, _: bytes) -> Steps[DecryptionMaterials]:
            def unwrap(inner: EncryptedDataKey, _: Mapping[str, str]) -> Steps[bytes]:
                return open_inner(inner.ciphertext)

            return (yield from wrapping.unwrap_edk_steps(materials, edk, unwrap))

        return (yield from self._first_edk(materials.encryption_context, edks, recover))

    def open_record_key_steps(
        self, suite: AnySuite, context: Mapping[str, str], edks: Sequence[EncryptedDataKey]
    ) -> Steps[tuple[bytes, bytes]]:
        """(data key, symmetric signing key) of a DB-ESDK record, from the first of its EDKs that opens."""
        sealed_length = wrapping.sealed_length(suite)

        def recover(edk: EncryptedDataKey, open_inner: _OpenInner, aad: bytes) -> Steps[tuple[bytes, bytes]]:
            ciphertext = edk.ciphertext
            if len(ciphertext) <= sealed_length:
                raise MalformedInputError("intermediate-wrapped EDK ciphertext is too short")
            intermediate = yield from open_inner(ciphertext[sealed_length:])
            return wrapping.intermediate_open(suite, intermediate, ciphertext[:sealed_length], aad)

        return (yield from self._first_edk(context, edks, recover))

    def _first_edk(
        self,
        context: Mapping[str, str],
        edks: Sequence[EncryptedDataKey],
        recover: Callable[[EncryptedDataKey, _OpenInner, bytes], Steps[_T]],
    ) -> Steps[_T]:
        """``recover(edk, open_inner, aad)`` for the first of our EDKs where it succeeds.

        ``open_inner`` opens the branch-key-wrapped part of an EDK ciphertext and ``aad`` is the serialized
        context. Branch keys fetched for it are cached only once an EDK has opened.
        """
        branch_key_id = self.resolve_id(context)
        id_bytes = branch_key_id.encode("utf-8")
        aad = wrapping.encryption_context_aad(context)
        failures: list[EdkFailure] = []
        for edk in edks:
            if edk.provider_id != PROVIDER_ID:
                continue
            if edk.provider_info != id_bytes:
                failures.append(EdkFailure(edk.provider_id, _describe_info(edk), "different branch key id"))
                continue
            used: list[tuple[tuple[str, str], _BranchKey]] = []

            def open_inner(
                ciphertext: bytes, used: list[tuple[tuple[str, str], _BranchKey]] = used
            ) -> Steps[bytes]:
                branch = yield from self._branch_for(branch_key_id, ciphertext, used)
                return branch.open(ciphertext, aad)

            try:
                result = yield from recover(edk, open_inner, aad)
            except KmsEnvelopeError as exc:
                failures.append(EdkFailure(edk.provider_id, _describe_info(edk), _reason(exc)))
                continue
            for cache_key, branch in used:
                self.cache.put(cache_key, branch)
            return result
        raise NoUsableKeyError(
            "no aws-kms-hierarchy EDK could be decrypted with this keyring's branch key", failures
        )

    def _active_branch(self, context: Mapping[str, str]) -> Steps[tuple[_BranchKey, tuple[str, str] | None]]:
        """The active branch key, and the cache key to store it under once used (``None`` if cached)."""
        branch_key_id = self.resolve_id(context)
        cache_key = (branch_key_id, _ACTIVE)
        branch = self.cache.get(cache_key)
        if branch is not None:
            return branch, None
        fetched = yield BranchKeyRequest(branch_key_id, None)
        return _BranchKey(_checked(fetched, branch_key_id, None)), cache_key

    def _branch_for(
        self, branch_key_id: str, ciphertext: bytes, used: list[tuple[tuple[str, str], _BranchKey]]
    ) -> Steps[_BranchKey]:
        """The branch key version an EDK ciphertext names (from the cache or the store)."""
        if len(ciphertext) <= _OVERHEAD:
            raise MalformedInputError("hierarchical EDK ciphertext is too short")
        version = _version_string(bytes(ciphertext[_RANDOM_LENGTH : _RANDOM_LENGTH + _VERSION_LENGTH]))
        cache_key = (branch_key_id, version)
        branch = self.cache.get(cache_key)
        if branch is None:
            fetched = yield BranchKeyRequest(branch_key_id, version)
            branch = _BranchKey(_checked(fetched, branch_key_id, version))
            used.append((cache_key, branch))
        return branch

    def resolve_id(self, context: Mapping[str, str]) -> str:
        """The branch key id for a message with this encryption context."""
        if self.branch_key_id is not None:
            return self.branch_key_id
        if self._supplier is None:
            raise ConfigurationError("HierarchicalKeyring needs branch_key_id or branch_key_id_supplier")
        branch_key_id = self._supplier(context)
        if not isinstance(branch_key_id, str) or not branch_key_id:
            raise KeyStoreError("the branch key id supplier did not return a non-empty string")
        return branch_key_id


_OpenInner = Callable[[bytes], "Steps[bytes]"]


def _version_string(raw: bytes) -> str:
    """The UUID text of a branch key version (what ``str(uuid.UUID(bytes=raw))`` gives).

    Written out rather than cached: the bytes come from an EDK that has not been authenticated yet.
    """
    if len(raw) != _VERSION_LENGTH:
        raise MalformedInputError("hierarchical EDK names a branch key version of the wrong length")
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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
