"""Canonical paths, the header's encryption context encoding, and the version 2 encryption context.

Sources: ``structured-encryption/header.md`` (canonical path, encryption context),
``structured-encryption/encrypt-path-structure.md`` (create new encryption context) and
``dynamodb-encryption-client/encrypt-item.md`` (base context value version 2).
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping

from ..errors import MalformedInputError
from ..values import serialize_context as canonical_context
from .model import Terminal

__all__ = [
    "ATTR_PREFIX",
    "LEGEND_KEY",
    "canonical_path",
    "encode_terminal",
    "serialize_context",
    "v2_context",
]

ATTR_PREFIX = "aws-crypto-attr."
LEGEND_KEY = "aws-crypto-legend"

_NULL = b"\x00\x00"
_STRING = b"\x00\x01"
_NUMBER = b"\x00\x02"
_BOOLEAN = b"\x00\x04"


def canonical_path(table_name: str, attribute: str) -> bytes:
    """The canonical path of a top-level attribute: table, depth 1, then ``$`` + key length + key.

    Lengths are 8-byte big-endian. The key length counts UTF-16 code units, as the reference
    (Dafny/Java) implementation's string length does; for ASCII names it is the byte length.
    Not cached here: names come from stored records before they authenticate. The layouts built from
    paths are cached instead, bounded in bytes, and only once a record authenticated.
    """
    try:
        name = attribute.encode("utf-8")
        units = len(attribute.encode("utf-16-le")) // 2
        table = table_name.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedInputError("table and attribute names must be valid Unicode") from None
    return table + b"\x00\x00\x00\x00\x00\x00\x00\x01$" + units.to_bytes(8, "big") + name


def serialize_context(context: Mapping[str, str]) -> bytes:
    """Header encoding of an encryption context: uint16 count (0 allowed), pairs sorted by UTF-8 key.

    Only the empty context differs from the keyrings' canonical AAD (two zero bytes instead of none),
    so the serialization an :class:`~kmsenvelope.values.EncryptionContext` carries is reused.
    """
    if not context:
        return b"\x00\x00"
    return canonical_context(context)


def encode_terminal(terminal: Terminal) -> str:
    """Base64 of type id + value: how a terminal is written into an encryption context value."""
    # binascii directly: the same bytes as base64.b64encode, without its wrapper (runs per key attribute).
    return binascii.b2a_base64(terminal.type_id + terminal.value, newline=False).decode("ascii")


def v2_context(fields: Mapping[str, Terminal]) -> dict[str, str]:
    """The pairs a version 2 record adds to the encryption context, plus ``aws-crypto-legend``.

    Strings and numbers go in as their text, null as ``null``, booleans as ``true``/``false`` and
    anything else base64-encoded; the legend records each value's type in key order.
    """
    try:
        entries = sorted(((ATTR_PREFIX + name).encode("utf-8"), ATTR_PREFIX + name, name) for name in fields)
    except UnicodeEncodeError:
        raise MalformedInputError("attribute names must be valid Unicode") from None
    out: dict[str, str] = {}
    legend = []
    for _, key, name in entries:
        terminal = fields[name]
        type_id, value = terminal
        if type_id == _NULL:
            legend.append("L")
            text = "null"
        elif type_id in (_STRING, _NUMBER):
            legend.append("S" if type_id == _STRING else "N")
            try:
                text = value.decode("utf-8")
            except UnicodeDecodeError:
                raise MalformedInputError("string or number value is not valid UTF-8") from None
        elif type_id == _BOOLEAN:
            if len(value) != 1:
                raise MalformedInputError("boolean value must be one byte")
            legend.append("L")
            text = "false" if value[0] == 0 else "true"
        else:
            legend.append("B")
            text = encode_terminal(terminal)
        out[key] = text
    out[LEGEND_KEY] = "".join(legend)
    return out
