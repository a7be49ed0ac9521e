"""Column values as bytes: one tag byte naming the Python type, then the value's payload.

The tag is encrypted with the value, so a reader learns the type only after authenticating it, and a
value written as one type is never silently read back as another. Tags (documented in ``docs/sql.md``):

====  ==========================  ==========================================================
tag   Python type                 payload
====  ==========================  ==========================================================
0x00  ``None`` (``encrypt_null``)  empty
0x01  ``str``                     UTF-8
0x02  ``bytes``                   the bytes
0x03  ``int``                     signed big-endian two's complement, shortest form
0x04  ``float``                   IEEE 754 binary64, big-endian (keeps -0.0, inf, nan)
0x05  ``decimal.Decimal``         ASCII ``str(value)`` (keeps exponent and sign)
0x06  ``bool``                    0x00 or 0x01
0x07  ``datetime.date``           ASCII ISO 8601 ``YYYY-MM-DD``
0x08  naive ``datetime``          ASCII ``isoformat()``
0x09  aware ``datetime``          ASCII ``isoformat()`` with its UTC offset
0x0A  ``datetime`` in a ZoneInfo  ASCII ``isoformat()`` with offset, then ``[zone key]``
0x0B  ``uuid.UUID``               the 16 bytes
0x0C  JSON (dict, list, ...)      UTF-8 JSON, compact, NaN and infinities refused
====  ==========================  ==========================================================

This module does not import SQLAlchemy.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import struct
import uuid
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import MalformedInputError

__all__ = ["Kind", "ValueTypeError", "decode", "encode", "kind_of", "payload"]


class ValueTypeError(MalformedInputError, TypeError):
    """A value does not have the Python type its encrypted column was declared with."""


class Kind(enum.Enum):
    """The value types an encrypted column can hold, with the tag they are written under."""

    STR = 0x01
    BYTES = 0x02
    INT = 0x03
    FLOAT = 0x04
    DECIMAL = 0x05
    BOOL = 0x06
    DATE = 0x07
    DATETIME = 0x08  # also 0x09 and 0x0A, by time zone
    UUID = 0x0B
    JSON = 0x0C  # any JSON value
    JSON_OBJECT = 0x10  # written as 0x0C, must decode to a dict
    JSON_ARRAY = 0x11  # written as 0x0C, must decode to a list

    @property
    def label(self) -> str:
        return _LABELS[self]


NULL_TAG = 0x00
_TAG_AWARE = 0x09
_TAG_ZONED = 0x0A
_TAG_JSON = 0x0C
_FLOAT = struct.Struct(">d")

_LABELS = {
    Kind.STR: "str", Kind.BYTES: "bytes", Kind.INT: "int", Kind.FLOAT: "float", Kind.DECIMAL: "Decimal",
    Kind.BOOL: "bool", Kind.DATE: "date", Kind.DATETIME: "datetime", Kind.UUID: "uuid.UUID",
    Kind.JSON: "JSON", Kind.JSON_OBJECT: "dict (JSON)", Kind.JSON_ARRAY: "list (JSON)",
}
_BY_TYPE: dict[object, Kind] = {
    str: Kind.STR, bytes: Kind.BYTES, int: Kind.INT, float: Kind.FLOAT, decimal.Decimal: Kind.DECIMAL,
    bool: Kind.BOOL, dt.date: Kind.DATE, dt.datetime: Kind.DATETIME, uuid.UUID: Kind.UUID,
    "json": Kind.JSON, dict: Kind.JSON_OBJECT, list: Kind.JSON_ARRAY,
}


def kind_of(value_type: object) -> Kind:
    """The :class:`Kind` for a column's declared ``value_type``; ``TypeError`` if it is unsupported."""
    try:
        kind = _BY_TYPE.get(value_type)
    except TypeError:  # unhashable
        kind = None
    if kind is None:
        supported = "str, bytes, int, float, Decimal, bool, date, datetime, uuid.UUID, 'json', dict, list"
        raise TypeError(f"unsupported value_type {value_type!r}; use one of {supported}")
    return kind


def _wrong(kind: Kind, value: object) -> ValueTypeError:
    # Name the type only: the value itself may be a secret.
    return ValueTypeError(f"expected a {kind.label} value, got {type(value).__name__}")


def payload(kind: Kind, value: Any) -> bytes:
    """The payload bytes of a non-null value (no tag). Also the input of beacons."""
    if kind is Kind.STR:
        if not isinstance(value, str):
            raise _wrong(kind, value)
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueTypeError("str value is not valid Unicode (lone surrogate)") from None
    if kind is Kind.BYTES:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise _wrong(kind, value)
        return bytes(value)
    if kind is Kind.INT:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _wrong(kind, value)
        return value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True)
    if kind is Kind.FLOAT:
        if not isinstance(value, float):
            raise _wrong(kind, value)
        return _FLOAT.pack(value)
    if kind is Kind.DECIMAL:
        if not isinstance(value, decimal.Decimal):
            raise _wrong(kind, value)
        return str(value).encode("ascii")
    if kind is Kind.BOOL:
        if not isinstance(value, bool):
            raise _wrong(kind, value)
        return b"\x01" if value else b"\x00"
    if kind is Kind.DATE:
        # datetime is a subclass of date; storing it here would silently drop the time.
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise _wrong(kind, value)
        return value.isoformat().encode("ascii")
    if kind is Kind.DATETIME:
        if not isinstance(value, dt.datetime):
            raise _wrong(kind, value)
        return _datetime_payload(value)[1]
    if kind is Kind.UUID:
        if not isinstance(value, uuid.UUID):
            raise _wrong(kind, value)
        return value.bytes
    if kind is Kind.JSON_OBJECT and not isinstance(value, dict):
        raise _wrong(kind, value)
    if kind is Kind.JSON_ARRAY and not isinstance(value, list):
        raise _wrong(kind, value)
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return text.encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValueTypeError(f"value is not JSON-serializable: {type(exc).__name__}") from None


def _datetime_payload(value: dt.datetime) -> tuple[int, bytes]:
    offset = value.utcoffset()
    if offset is None:
        return Kind.DATETIME.value, value.isoformat().encode("ascii")
    text = value.isoformat()
    if isinstance(value.tzinfo, ZoneInfo) and value.tzinfo.key:
        # The offset pins the instant (and the fold); the key restores the zone's rules.
        return _TAG_ZONED, f"{text}[{value.tzinfo.key}]".encode("ascii")
    return _TAG_AWARE, text.encode("ascii")


def encode(kind: Kind, value: Any) -> bytes:
    """Tag and payload of ``value`` (``None`` becomes the null tag)."""
    if value is None:
        return bytes([NULL_TAG])
    if kind is Kind.DATETIME and isinstance(value, dt.datetime):
        tag, data = _datetime_payload(value)
        return bytes([tag]) + data
    tag = _TAG_JSON if kind in (Kind.JSON, Kind.JSON_OBJECT, Kind.JSON_ARRAY) else kind.value
    return bytes([tag]) + payload(kind, value)


def decode(kind: Kind, data: bytes) -> Any:
    """The value of a tagged plaintext; :class:`MalformedInputError` if it is not a ``kind`` value."""
    if not data:
        raise MalformedInputError("encrypted column value is empty")
    tag, body = data[0], data[1:]
    if tag == NULL_TAG:
        if body:
            raise MalformedInputError("null column value has a payload")
        return None
    try:
        return _decode(kind, tag, body)
    except MalformedInputError:
        raise
    except (ValueError, UnicodeDecodeError, decimal.InvalidOperation, ZoneInfoNotFoundError):
        raise MalformedInputError(f"malformed {kind.label} column value") from None


def _decode(kind: Kind, tag: int, body: bytes) -> Any:
    expected = {_TAG_JSON} if kind in (Kind.JSON, Kind.JSON_OBJECT, Kind.JSON_ARRAY) else {kind.value}
    if kind is Kind.DATETIME:
        expected = {Kind.DATETIME.value, _TAG_AWARE, _TAG_ZONED}
    if tag not in expected:
        raise MalformedInputError(f"column holds tag 0x{tag:02x}, not a {kind.label} value")
    if kind is Kind.STR:
        return body.decode("utf-8")
    if kind is Kind.BYTES:
        return body
    if kind is Kind.INT:
        if not body:
            raise ValueError("empty int")
        return int.from_bytes(body, "big", signed=True)
    if kind is Kind.FLOAT:
        return _FLOAT.unpack(body)[0]
    if kind is Kind.DECIMAL:
        return decimal.Decimal(body.decode("ascii"))
    if kind is Kind.BOOL:
        if body not in (b"\x00", b"\x01"):
            raise ValueError("bad bool")
        return body == b"\x01"
    if kind is Kind.DATE:
        return dt.date.fromisoformat(body.decode("ascii"))
    if kind is Kind.DATETIME:
        return _decode_datetime(tag, body.decode("ascii"))
    if kind is Kind.UUID:
        return uuid.UUID(bytes=body)
    value = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    if kind is Kind.JSON_OBJECT and not isinstance(value, dict):
        raise MalformedInputError("JSON column value is not an object")
    if kind is Kind.JSON_ARRAY and not isinstance(value, list):
        raise MalformedInputError("JSON column value is not an array")
    return value


def _decode_datetime(tag: int, text: str) -> dt.datetime:
    zone = None
    if tag == _TAG_ZONED:
        text, sep, key = text.partition("[")
        if not sep or not key.endswith("]"):
            raise ValueError("bad zone")
        zone = ZoneInfo(key[:-1])
    value = dt.datetime.fromisoformat(text)
    if (value.utcoffset() is None) != (tag == Kind.DATETIME.value):
        raise ValueError("time zone presence does not match the tag")
    if zone is not None:
        value = value.astimezone(zone)
    return value


def _refuse_constant(name: str) -> float:
    raise ValueError(f"JSON constant {name} is not allowed")
