"""A thread-safe, bounded, TTL-limited materials cache.

Source: ESDK ``framework/local-cryptographic-materials-cache.md``.

Entries carry usage counters so the caching CMM can enforce its message and byte limits exactly:
:meth:`LocalMaterialsCache.use` checks and increments them atomically under the cache lock.

The cache is bounded in entries and in an estimate of the bytes its entries hold (encryption context
pairs, EDKs, keys): an entry count alone bounds nothing when one context may be ~64 KiB. The caching
managers put decrypt materials in only after they have authenticated a message header.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..errors import ConfigurationError

__all__ = ["DEFAULT_CACHE_BYTES", "CacheEntry", "LocalMaterialsCache", "estimate_size"]

T = TypeVar("T")

DEFAULT_CACHE_BYTES = 64 * 1024 * 1024
"""Default bound on the estimated bytes a :class:`LocalMaterialsCache` holds (64 MiB)."""

# Fixed costs the estimate adds per entry and per object held: the entry, its key and OrderedDict
# slot, the materials object and its dict, and an EC key object (its OpenSSL memory is not visible to
# sys.getsizeof; a few hundred bytes is conservative for P-384).
_ENTRY_OVERHEAD = 1024
_OBJECT_OVERHEAD = 64
_EC_KEY = 512


def _size_of_text(value: object) -> int:
    return sys.getsizeof(value) if isinstance(value, (str, bytes)) else _OBJECT_OVERHEAD


def estimate_size(value: object) -> int:
    """A conservative estimate of the bytes one cached materials object holds.

    Counts the encryption context pairs, every EDK's fields, the data and signing keys and a fixed
    overhead; values other than materials count as ``sys.getsizeof`` plus that overhead.
    """
    total = _ENTRY_OVERHEAD + sys.getsizeof(value)
    context = getattr(value, "encryption_context", None)
    if context is not None:
        total += sys.getsizeof(context)
        for key, item in context.items():
            total += _OBJECT_OVERHEAD + _size_of_text(key) + _size_of_text(item)
    for edk in getattr(value, "encrypted_data_keys", ()):
        total += _OBJECT_OVERHEAD * 2
        for part in (edk.provider_id, edk.provider_info, edk.ciphertext):
            total += _size_of_text(part)
    for name in ("plaintext_data_key", "symmetric_signing_key"):
        total += _size_of_text(getattr(value, name, None))
    for key_bytes in getattr(value, "symmetric_signing_keys", ()):
        total += _size_of_text(key_bytes)
    for name in ("signing_key", "verification_key"):
        if getattr(value, name, None) is not None:
            total += _EC_KEY
    for name in getattr(value, "required_context_keys", ()):
        total += _size_of_text(name)
    return total


@dataclass
class CacheEntry(Generic[T]):
    """One cached value with its expiry and usage so far."""

    value: T
    expires_at: float
    messages: int = 0
    bytes: int = 0
    held: int = 0
    """The estimated bytes the entry holds (what counts against the cache's byte bound)."""


class LocalMaterialsCache(Generic[T]):
    """Least-recently-used cache, each entry alive until its expiry time.

    * ``capacity``: entries kept at most.
    * ``capacity_bytes``: the estimated bytes (see :func:`estimate_size`) all entries hold at most,
      64 MiB by default. The least recently used entries are evicted until both bounds hold; a value
      bigger than a quarter of the byte bound is not cached at all, so one outsized context cannot
      empty the cache.
    """

    def __init__(
        self,
        capacity: int = 1000,
        *,
        capacity_bytes: int = DEFAULT_CACHE_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise ConfigurationError("cache capacity must be a positive int")
        if not isinstance(capacity_bytes, int) or isinstance(capacity_bytes, bool) or capacity_bytes < 1:
            raise ConfigurationError("cache capacity_bytes must be a positive int")
        self._capacity = capacity
        self._capacity_bytes = capacity_bytes
        self._max_entry_bytes = max(1, capacity_bytes // 4)
        self._held = 0
        self._clock = clock
        self._entries: OrderedDict[bytes, CacheEntry[T]] = OrderedDict()
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled (a caching manager sent to a worker) it carries its bounds and clock, never its
        # entries: cached materials hold plaintext data keys, and a worker fills its own cache.
        return (_empty_cache, (self._capacity, self._capacity_bytes, self._clock))

    @property
    def capacity(self) -> int:
        """The most entries kept."""
        return self._capacity

    @property
    def capacity_bytes(self) -> int:
        """The most estimated bytes kept."""
        return self._capacity_bytes

    @property
    def held_bytes(self) -> int:
        """The estimated bytes the live and not yet evicted entries hold now."""
        with self._lock:
            return self._held

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def now(self) -> float:
        """The cache clock's current time."""
        return self._clock()

    def get(self, key: bytes) -> T | None:
        """The live value under ``key``, without touching usage counters."""
        with self._lock:
            entry = self._live(key)
            return None if entry is None else entry.value

    def use(self, key: bytes, messages: int, size: int, max_messages: int, max_bytes: int) -> T | None:
        """Atomically count one more use of the entry if it stays within the limits; else evict it."""
        with self._lock:
            entry = self._live(key)
            if entry is None:
                return None
            if entry.messages + messages > max_messages or entry.bytes + size > max_bytes:
                self._drop(key)
                return None
            entry.messages += messages
            entry.bytes += size
            return entry.value

    def put(self, key: bytes, value: T, ttl: float, messages: int = 0, size: int = 0) -> bool:
        """Store ``value`` for ``ttl`` seconds with initial usage counters, evicting the oldest if full.

        False (nothing stored) when the value alone would take over a quarter of ``capacity_bytes``.
        """
        held = estimate_size(value) + sys.getsizeof(key)
        with self._lock:
            self._drop(key)
            if held > self._max_entry_bytes:
                return False
            self._entries[key] = CacheEntry(value, self._clock() + ttl, messages, size, held)
            self._held += held
            while len(self._entries) > self._capacity or self._held > self._capacity_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._held -= evicted.held
            return True

    def remove(self, key: bytes) -> None:
        """Forget ``key`` if present."""
        with self._lock:
            self._drop(key)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()
            self._held = 0

    def _drop(self, key: bytes) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._held -= entry.held

    def _live(self, key: bytes) -> CacheEntry[T] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def __repr__(self) -> str:
        with self._lock:
            entries, held = len(self._entries), self._held
        return (
            f"LocalMaterialsCache(capacity={self._capacity}, capacity_bytes={self._capacity_bytes}, "
            f"entries={entries}, held_bytes={held})"
        )


def _empty_cache(capacity: int, capacity_bytes: int, clock: Callable[[], float]) -> LocalMaterialsCache[Any]:
    """An empty cache with these bounds: what an unpickled :class:`LocalMaterialsCache` becomes."""
    return LocalMaterialsCache(capacity, capacity_bytes=capacity_bytes, clock=clock)
