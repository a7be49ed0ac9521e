"""Bounds-checked big-endian reading: every length is checked before anything is sliced."""

from __future__ import annotations

from ..errors import MalformedInputError

__all__ = ["Reader", "TruncatedInputError", "u16", "u32", "u64"]


class TruncatedInputError(MalformedInputError):
    """The input ended before a field did (a streaming reader may fetch more and retry)."""


def u16(value: int) -> bytes:
    return value.to_bytes(2, "big")


def u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def u64(value: int) -> bytes:
    return value.to_bytes(8, "big")


class Reader:
    """Reads fields from a buffer; running past its end raises :class:`MalformedInputError`."""

    __slots__ = ("_data", "_end", "pos")

    def __init__(self, data: bytes | bytearray | memoryview, pos: int = 0, end: int | None = None) -> None:
        self._data = memoryview(data)
        self.pos = pos
        self._end = len(self._data) if end is None else end

    @property
    def remaining(self) -> int:
        return self._end - self.pos

    def _take(self, n: int, what: str) -> memoryview:
        if n < 0 or n > self._end - self.pos:
            if n < 0:
                raise MalformedInputError(f"negative length for {what}")
            raise TruncatedInputError(f"truncated input: {what} needs {n} bytes, {self.remaining} remain")
        start = self.pos
        self.pos = start + n
        return self._data[start : self.pos]

    def peek(self, n: int) -> bytes | None:
        """The next ``n`` bytes without moving, or ``None`` if fewer remain."""
        pos = self.pos
        if n > self._end - pos:
            return None
        return bytes(self._data[pos : pos + n])

    def read(self, n: int, what: str = "field") -> bytes:
        return bytes(self._take(n, what))

    def view(self, n: int, what: str = "field") -> memoryview:
        return self._take(n, what)

    def u8(self, what: str = "byte") -> int:
        return self._take(1, what)[0]

    def u16(self, what: str = "uint16") -> int:
        return int.from_bytes(self._take(2, what), "big")

    def u32(self, what: str = "uint32") -> int:
        return int.from_bytes(self._take(4, what), "big")

    def u64(self, what: str = "uint64") -> int:
        return int.from_bytes(self._take(8, what), "big")

    def short_bytes(self, what: str) -> bytes:
        """A field prefixed by its uint16 length."""
        return self.read(self.u16(what + " length"), what)
