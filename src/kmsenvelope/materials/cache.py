"""A thread-safe, bounded, TTL-limited materials cache.

Source: ESDK ``framework/local-cryptographic-materials-cache.md``.

Entries carry usage counters so the caching CMM can enforce its message and byte limits exactly:
:meth:`LocalMaterialsCache.use` checks and increments them atomically under the cache lock.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..errors import ConfigurationError

__all__ = ["CacheEntry", "LocalMaterialsCache"]

T = TypeVar("T")


@dataclass
class CacheEntry(Generic[T]):
    """One cached value with its expiry and usage so far."""

    value: T
    expires_at: float
    messages: int = 0
    bytes: int = 0


class LocalMaterialsCache(Generic[T]):
    """Least-recently-used cache of up to ``capacity`` entries, each alive until its expiry time."""

    def __init__(self, capacity: int = 1000, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(capacity, int) or capacity < 1:
            raise ConfigurationError("cache capacity must be a positive int")
        self._capacity = capacity
        self._clock = clock
        self._entries: OrderedDict[bytes, CacheEntry[T]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        return self._capacity

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
                del self._entries[key]
                return None
            entry.messages += messages
            entry.bytes += size
            return entry.value

    def put(self, key: bytes, value: T, ttl: float, messages: int = 0, size: int = 0) -> None:
        """Store ``value`` for ``ttl`` seconds with initial usage counters, evicting the oldest if full."""
        with self._lock:
            self._entries[key] = CacheEntry(value, self._clock() + ttl, messages, size)
            self._entries.move_to_end(key)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)

    def remove(self, key: bytes) -> None:
        """Forget ``key`` if present."""
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()

    def _live(self, key: bytes) -> CacheEntry[T] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def __repr__(self) -> str:
        return f"LocalMaterialsCache(capacity={self._capacity}, entries={len(self)})"
