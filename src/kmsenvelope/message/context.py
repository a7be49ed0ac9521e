"""Encryption context serialization (ESDK ``framework/structures.md#serialization``).

Serialized form: uint16 count, then for each pair sorted by UTF-8 key bytes: uint16 key length, key,
uint16 value length, value. The empty context serializes to no bytes at all.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import MalformedInputError
from ..materials.materials import _FrozenDict, freeze_context, remember
from .codec import u16

__all__ = ["parse_context", "serialize_context"]

_MAX_U16 = 0xFFFF


def serialize_context(context: Mapping[str, str]) -> bytes:
    if not context:
        return b""
    cached = getattr(context, "serialized", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    out = _serialize(context)
    if type(context) is _FrozenDict:
        context.serialized = out
    return out


def _serialize(context: Mapping[str, str]) -> bytes:
    try:
        encoded = sorted((k.encode("utf-8"), v.encode("utf-8")) for k, v in context.items())
    except UnicodeEncodeError:
        raise MalformedInputError("encryption context must be valid Unicode") from None
    if len(encoded) > _MAX_U16:
        raise MalformedInputError("encryption context has too many pairs")
    parts = [u16(len(encoded))]
    for key, value in encoded:
        if len(key) > _MAX_U16 or len(value) > _MAX_U16:
            raise MalformedInputError("encryption context key or value longer than 65535 bytes")
        parts += (len(key).to_bytes(2, "big"), key, len(value).to_bytes(2, "big"), value)
    out = b"".join(parts)
    if len(out) > _MAX_U16:
        raise MalformedInputError("serialized encryption context longer than 65535 bytes")
    return out


def parse_context(data: bytes | memoryview) -> Mapping[str, str]:
    """Parse serialized pairs into a read-only mapping that remembers its serialization.

    ``data`` is the whole serialized context, so running past its end is malformed input.
    Duplicates, bad UTF-8, trailing bytes and a zero count are rejected.
    """
    if len(data) == 0:
        return freeze_context(None)
    buf = bytes(data)
    cached = _PARSED.get(buf)
    if cached is not None:
        return cached
    end = len(buf)
    if end < 2:
        raise MalformedInputError("encryption context too short for its pair count")
    count = int.from_bytes(buf[:2], "big")
    if count == 0:
        raise MalformedInputError("encryption context with zero pairs must be empty")
    pos = 2
    out: dict[str, str] = {}
    try:
        for _ in range(count):
            if pos + 2 > end:
                raise MalformedInputError("encryption context ends inside a key length")
            length = int.from_bytes(buf[pos : pos + 2], "big")
            pos += 2 + length
            if pos + 2 > end:
                raise MalformedInputError("encryption context ends inside a key")
            key = buf[pos - length : pos].decode("utf-8")
            length = int.from_bytes(buf[pos : pos + 2], "big")
            pos += 2 + length
            if pos > end:
                raise MalformedInputError("encryption context ends inside a value")
            if key in out:
                raise MalformedInputError("duplicate key in encryption context")
            out[key] = buf[pos - length : pos].decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedInputError("encryption context is not valid UTF-8") from None
    if pos != end:
        raise MalformedInputError("trailing bytes after encryption context")
    frozen = _FrozenDict(out)
    frozen.serialized = buf
    remember(_PARSED, buf, frozen)
    return frozen


_PARSED: dict[bytes, _FrozenDict] = {}
