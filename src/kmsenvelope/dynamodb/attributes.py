"""DynamoDB attribute values to and from structured-encryption terminals.

Source: ``dynamodb-encryption-client/ddb-attribute-serialization.md`` and ``ddb-item-conversion.md``.
Attribute values are low-level DynamoDB JSON: ``{"S": str}``, ``{"N": str}``, ``{"B": bytes}``,
``{"SS": [str]}``, ``{"NS": [str]}``, ``{"BS": [bytes]}``, ``{"M": {...}}``, ``{"L": [...]}``,
``{"NULL": True}``, ``{"BOOL": bool}``.

Numbers are normalized, sets sorted (strings in UTF-16 code unit order, binaries bytewise) and checked
for duplicates, map entries sorted by key in UTF-16 order. Nested values carry a 2-byte type id and a
4-byte length; nesting is limited to 32 levels, as in DynamoDB.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import MalformedInputError
from ..structured.model import Terminal
from .numbers import normalize_number

__all__ = ["MAX_DEPTH", "deserialize", "serialize"]

NULL = b"\x00\x00"
STRING = b"\x00\x01"
NUMBER = b"\x00\x02"
BINARY = b"\xff\xff"
BOOLEAN = b"\x00\x04"
STRING_SET = b"\x01\x01"
NUMBER_SET = b"\x01\x02"
BINARY_SET = b"\x01\xff"
MAP = b"\x02\x00"
LIST = b"\x03\x00"

MAX_DEPTH = 32
_MAX_U32 = 0xFFFFFFFF

AttributeValue = Mapping[str, Any]


_new_terminal = tuple.__new__  # Terminal is a NamedTuple; this skips its Python-level __new__ frame


def serialize(value: AttributeValue) -> Terminal:
    """The terminal (type id, serialized value) of a top-level attribute value."""
    # Fast path for the commonest values (plain dict holding an ASCII string, bytes, number or bool):
    # the same bytes as _serialize, without its chain of type tests.
    if type(value) is dict and len(value) == 1:
        for tag, inner in value.items():
            kind = type(inner)
            if kind is str:
                if tag == "S" and inner.isascii():
                    return _new_terminal(Terminal, (STRING, inner.encode("ascii")))
                if tag == "N":
                    return _new_terminal(Terminal, (NUMBER, normalize_number(inner).encode("ascii")))
            elif kind is bytes:
                if tag == "B":
                    return _new_terminal(Terminal, (BINARY, inner))
            elif kind is bool and tag == "BOOL":
                return _new_terminal(Terminal, (BOOLEAN, b"\x01" if inner else b"\x00"))
    type_id, body = _serialize(value, 1)
    return _new_terminal(Terminal, (type_id, body))


def deserialize(terminal: Terminal) -> dict[str, Any]:
    """The attribute value a terminal holds; :class:`MalformedInputError` on any inconsistency."""
    type_id, value = terminal
    if type_id == STRING:
        try:
            return {"S": value.decode("utf-8")}
        except UnicodeDecodeError:
            raise MalformedInputError("serialized string is not valid UTF-8") from None
    if type_id == BINARY:
        return {"B": bytes(value)}
    return _deserialize(type_id, memoryview(value), 1)


def _len32(length: int) -> bytes:
    if length > _MAX_U32:
        raise MalformedInputError("attribute value too large")
    return length.to_bytes(4, "big")


def _utf8(text: object) -> bytes:
    if not isinstance(text, str):
        raise MalformedInputError("string attribute values must be str")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedInputError("string attribute values must be valid Unicode") from None


def _bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise MalformedInputError("binary attribute values must be bytes")


def _utf16_key(text: str) -> bytes:
    return text.encode("utf-16-be", "surrogatepass")


def _sorted_strings(values: Sequence[str]) -> list[str]:
    # Code point order equals UTF-16 order unless supplementary characters meet U+E000..U+FFFF.
    if all(value.isascii() for value in values):
        return sorted(values)
    return sorted(values, key=_utf16_key)


def _entries(value: object, what: str, *, sets: bool) -> list[Any]:
    allowed: tuple[type, ...] = (list, tuple, set, frozenset) if sets else (list, tuple)
    if not isinstance(value, allowed):
        raise MalformedInputError(f"{what} attribute values must be lists")
    entries: list[Any] = list(value)  # type: ignore[call-overload]
    return entries


def _string_set(values: list[str], what: str) -> bytes:
    for entry in values:
        if not isinstance(entry, str):
            raise MalformedInputError(f"{what} entries must be str")
    if len(set(values)) != len(values):
        raise MalformedInputError(f"{what} has duplicate values")
    parts = [_len32(len(values))]
    for entry in _sorted_strings(values):
        encoded = _utf8(entry)
        parts += (_len32(len(encoded)), encoded)
    return b"".join(parts)


def _serialize(value: object, depth: int) -> tuple[bytes, bytes]:
    # type() first: the Mapping ABC check is slow and nearly every value is a plain dict.
    if not (type(value) is dict or isinstance(value, Mapping)) or len(value) != 1:
        raise MalformedInputError("an attribute value must have exactly one type key")
    ((tag, inner),) = value.items()
    if tag == "S":
        return STRING, _utf8(inner)
    if tag == "N":
        return NUMBER, normalize_number(inner).encode("ascii")
    if tag == "B":
        return BINARY, _bytes(inner)
    if tag == "BOOL":
        if not isinstance(inner, bool):
            raise MalformedInputError("BOOL attribute values must be bool")
        return BOOLEAN, b"\x01" if inner else b"\x00"
    if tag == "NULL":
        if inner is not True:
            raise MalformedInputError("NULL attribute values must be True")
        return NULL, b""
    if tag == "SS":
        return STRING_SET, _string_set(_entries(inner, "SS", sets=True), "string set")
    if tag == "NS":
        numbers = [normalize_number(entry) for entry in _entries(inner, "NS", sets=True)]
        return NUMBER_SET, _string_set(numbers, "number set")
    if tag == "BS":
        blobs = [_bytes(entry) for entry in _entries(inner, "BS", sets=True)]
        if len(set(blobs)) != len(blobs):
            raise MalformedInputError("binary set has duplicate values")
        parts = [_len32(len(blobs))]
        for blob in sorted(blobs):
            parts += (_len32(len(blob)), blob)
        return BINARY_SET, b"".join(parts)
    if tag == "M" or tag == "L":
        if depth >= MAX_DEPTH:
            raise MalformedInputError(f"attribute values nest at most {MAX_DEPTH} levels deep")
        if tag == "L":
            entries = _entries(inner, "L", sets=False)
            parts = [_len32(len(entries))]
            for entry in entries:
                type_id, body = _serialize(entry, depth + 1)
                parts += (type_id, _len32(len(body)), body)
            return LIST, b"".join(parts)
        if not isinstance(inner, Mapping):
            raise MalformedInputError("M attribute values must be mappings")
        keys = list(inner)
        for key in keys:
            if not isinstance(key, str):
                raise MalformedInputError("map keys must be str")
        parts = [_len32(len(keys))]
        for key in _sorted_strings(keys):
            encoded = _utf8(key)
            type_id, body = _serialize(inner[key], depth + 1)
            parts += (STRING, _len32(len(encoded)), encoded, type_id, _len32(len(body)), body)
        return MAP, b"".join(parts)
    raise MalformedInputError("unknown attribute value type")


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.pos = 0

    def take(self, length: int) -> memoryview:
        if length > len(self.data) - self.pos:
            raise MalformedInputError("serialized attribute value is truncated")
        chunk = self.data[self.pos : self.pos + length]
        self.pos += length
        return chunk

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def done(self) -> None:
        if self.pos != len(self.data):
            raise MalformedInputError("unexpected bytes after serialized attribute value")


def _text(raw: memoryview) -> str:
    try:
        return str(raw, "utf-8")
    except UnicodeDecodeError:
        raise MalformedInputError("serialized string is not valid UTF-8") from None


def _read_set(data: memoryview, convert: Callable[[memoryview], Any], what: str) -> list[Any]:
    reader = _Reader(data)
    count = reader.u32()
    out = [convert(reader.take(reader.u32())) for _ in range(min(count, len(data)))]
    if len(out) != count:
        raise MalformedInputError("serialized set is truncated")
    reader.done()
    if len(set(out)) != len(out):
        raise MalformedInputError(f"{what} has duplicate values")
    return out


def _deserialize(type_id: bytes, data: memoryview, depth: int) -> dict[str, Any]:
    if type_id == STRING:
        return {"S": _text(data)}
    if type_id == NUMBER:
        return {"N": _text(data)}
    if type_id == BINARY:
        return {"B": bytes(data)}
    if type_id == BOOLEAN:
        if len(data) != 1 or data[0] > 1:
            raise MalformedInputError("serialized boolean must be the byte 0 or 1")
        return {"BOOL": data[0] == 1}
    if type_id == NULL:
        if len(data):
            raise MalformedInputError("serialized null must be empty")
        return {"NULL": True}
    if type_id == STRING_SET:
        return {"SS": _read_set(data, _text, "string set")}
    if type_id == NUMBER_SET:
        return {"NS": _read_set(data, _text, "number set")}
    if type_id == BINARY_SET:
        return {"BS": _read_set(data, bytes, "binary set")}
    if type_id in (MAP, LIST):
        if depth >= MAX_DEPTH:
            raise MalformedInputError(f"attribute values nest at most {MAX_DEPTH} levels deep")
        reader = _Reader(data)
        count = reader.u32()
        if type_id == LIST:
            items = []
            for _ in range(count):
                if reader.pos >= len(data):
                    raise MalformedInputError("serialized list is truncated")
                entry_type = bytes(reader.take(2))
                items.append(_deserialize(entry_type, reader.take(reader.u32()), depth + 1))
            reader.done()
            return {"L": items}
        entries: dict[str, Any] = {}
        for _ in range(count):
            if reader.pos >= len(data):
                raise MalformedInputError("serialized map is truncated")
            if bytes(reader.take(2)) != STRING:
                raise MalformedInputError("map keys must be strings")
            key = _text(reader.take(reader.u32()))
            value_type = bytes(reader.take(2))
            value = _deserialize(value_type, reader.take(reader.u32()), depth + 1)
            if key in entries:
                raise MalformedInputError("serialized map has duplicate keys")
            entries[key] = value
        reader.done()
        return {"M": entries}
    raise MalformedInputError("unknown attribute type id")
