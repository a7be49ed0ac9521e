"""A small thread-safe LRU cache bounded by entries and by an estimate of the bytes it holds.

Used for values derived from public data that repeat from call to call (the attribute-name plans of
the DynamoDB item encryptor, the header legends seen with them). An entry count alone bounds nothing
when keys can be long: a few hundred entries of thousands of 64 KiB attribute names are gigabytes. So
every entry is put with a conservative estimate of its size (key and value), and the least recently
used entries are evicted until both bounds hold. An entry bigger than ``max_entry_bytes`` is not kept at
all, so one outsized key cannot empty the cache.

What goes in is the caller's business, but the rule in this code base is: only what has authenticated
(or what the caller itself built from its own input), never what an untrusted input merely claimed.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Generic, TypeVar

from ..errors import ConfigurationError

__all__ = ["BoundedCache", "size_of_strings"]

K = TypeVar("K")
V = TypeVar("V")

_POINTER = 8
_TUPLE = sys.getsizeof(())


def size_of_strings(strings: Iterable[str | bytes]) -> int:
    """Bytes held by a tuple of these strings (or bytes), counting every element as not shared."""
    total = _TUPLE
    for item in strings:
        total += _POINTER + sys.getsizeof(item)
    return total


class BoundedCache(Generic[K, V]):
    """LRU cache of at most ``max_entries`` entries and ``max_bytes`` estimated bytes.

    ``put`` and ``clear`` take a lock (``get`` needs none). Values must be immutable (or never mutated),
    since every caller that gets a key gets the same object.
    """

    __slots__ = ("_bytes", "_data", "_lock", "max_bytes", "max_entries", "max_entry_bytes")

    def __init__(self, max_entries: int, max_bytes: int, max_entry_bytes: int | None = None) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ConfigurationError("a bounded cache needs room for at least one entry and one byte")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_entry_bytes = min(max_bytes, max_bytes // 4 if max_entry_bytes is None else max_entry_bytes)
        self._data: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The value kept for ``key`` (now the most recently used), or None."""
        # No lock: each OrderedDict call is atomic, and a lookup changes neither the keys nor the byte
        # count that ``put`` keeps consistent under the lock. It runs once or twice per item decrypted.
        data = self._data
        entry = data.get(key)
        if entry is None:
            return None
        try:  # noqa: SIM105 (contextlib.suppress costs a context manager on every lookup)
            data.move_to_end(key)
        except KeyError:  # evicted by another thread in between: the value is still good to use
            pass
        return entry[0]

    def put(self, key: K, value: V, size: int) -> bool:
        """Keep ``value`` for ``key``, ``size`` being the estimated bytes of both; False if too big."""
        if size > self.max_entry_bytes:
            return False
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._data[key] = (value, size)
            self._bytes += size
            while len(self._data) > self.max_entries or self._bytes > self.max_bytes:
                _, (_, evicted) = self._data.popitem(last=False)
                self._bytes -= evicted
        return True

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0

    @property
    def held_bytes(self) -> int:
        """The estimated bytes of the entries kept now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return (
            f"BoundedCache(entries={len(self._data)}/{self.max_entries}, "
            f"bytes={self._bytes}/{self.max_bytes})"
        )
