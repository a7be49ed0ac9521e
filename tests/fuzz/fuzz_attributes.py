"""Fuzz target ``attributes``: the DynamoDB attribute value deserializer (``dynamodb/attributes.py``).

Input: a two-byte type id, then the serialized value. :func:`deserialize` must either raise a
:class:`~kmsenvelope.errors.KmsEnvelopeError` or return DynamoDB JSON that :func:`serialize` handles:
serializing it either fails with a ``KmsEnvelopeError`` (the deserializer is lenient about number
text, as the reference implementation is) or gives a canonical terminal that deserializes and
serializes back to itself.

Seeds: every attribute value of the DB-ESDK vectors' plaintext and encrypted items, plus values that
reach each type and the nesting limit.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``tests.fuzz`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kmsenvelope.dynamodb.attributes import MAX_DEPTH, deserialize, serialize
from kmsenvelope.errors import KmsEnvelopeError
from kmsenvelope.structured.model import Terminal
from tests import _dbesdk
from tests.fuzz import _common

TARGET = "attributes"


def _values() -> Iterator[Any]:
    _common.require_vectors("dbesdk")
    for _, test in _dbesdk.manifest_tests():
        yield from _dbesdk.notation_item(test["plaintext"]).values()
        yield from _dbesdk.ddb_item(test["encrypted"]).values()
    yield {"NULL": True}
    yield {"BOOL": True}
    yield {"N": "-0.000123e+10"}
    yield {"SS": ["\U0001f600", "\uffff", "a"]}
    yield {"NS": ["1", "10", "-1.5"]}
    yield {"BS": [b"", b"\x00\xff"]}
    yield {"M": {"a": {"L": [{"S": "x"}, {"M": {"b": {"NULL": True}}}]}, "": {"B": b""}}}
    nested: dict[str, Any] = {"S": "deep"}
    for _ in range(MAX_DEPTH - 1):
        nested = {"L": [nested]}
    yield nested


def seeds() -> list[bytes]:
    out = []
    for value in _values():
        terminal = serialize(value)
        out.append(terminal.type_id + terminal.value)
    return out


def TestOneInput(data: bytes) -> None:  # the name atheris and libFuzzer expect
    if len(data) < 2:
        return
    try:
        value = deserialize(Terminal(data[:2], data[2:]))
    except KmsEnvelopeError:
        return
    assert isinstance(value, dict) and len(value) == 1
    try:
        canonical = serialize(value)
    except KmsEnvelopeError:
        return
    again = serialize(deserialize(canonical))
    assert again == canonical, "serialize(deserialize(x)) is not a fixed point"


if __name__ == "__main__":
    from tests.fuzz import run

    sys.exit(run.main(["--target", TARGET, *sys.argv[1:]]))
