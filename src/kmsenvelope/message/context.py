"""Encryption context serialization (ESDK ``framework/structures.md#serialization``).

Serialized form: uint16 count, then for each pair sorted by UTF-8 key bytes: uint16 key length, key,
uint16 value length, value. The empty context serializes to no bytes at all.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import MalformedInputError
from ..materials.materials import _FrozenDict
from .codec import Reader, u16

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
        parts += (u16(len(key)), key, u16(len(value)), value)
    out = b"".join(parts)
    if len(out) > _MAX_U16:
        raise MalformedInputError("serialized encryption context longer than 65535 bytes")
    return out


def parse_context(data: bytes | memoryview) -> dict[str, str]:
    """Parse serialized pairs; duplicates, bad UTF-8, trailing bytes and a zero count are rejected."""
    if len(data) == 0:
        return {}
    reader = Reader(data)
    count = reader.u16("context pair count")
    if count == 0:
        raise MalformedInputError("encryption context with zero pairs must be empty")
    out: dict[str, str] = {}
    for _ in range(count):
        key_bytes = reader.short_bytes("context key")
        value_bytes = reader.short_bytes("context value")
        try:
            key = key_bytes.decode("utf-8")
            value = value_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedInputError("encryption context is not valid UTF-8") from None
        if key in out:
            raise MalformedInputError("duplicate key in encryption context")
        out[key] = value
    if reader.remaining:
        raise MalformedInputError("trailing bytes after encryption context")
    return out
