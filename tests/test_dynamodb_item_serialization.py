"""DynamoDB attribute serialization (``ddb-attribute-serialization.md``) and number normalization."""

from __future__ import annotations

import decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kmsenvelope.dynamodb import deserialize, normalize_number, serialize
from kmsenvelope.errors import MalformedInputError
from kmsenvelope.structured import Terminal

from ._dbesdk import load_json, semantic
from .conftest import vectors_dir


def u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


@pytest.mark.parametrize(
    ("value", "type_id", "body"),
    [
        ({"NULL": True}, b"\x00\x00", b""),
        ({"S": "héllo"}, b"\x00\x01", "héllo".encode()),
        ({"N": "0800.000e0"}, b"\x00\x02", b"800"),
        ({"B": b"\x00\xff"}, b"\xff\xff", b"\x00\xff"),
        ({"BOOL": True}, b"\x00\x04", b"\x01"),
        ({"BOOL": False}, b"\x00\x04", b"\x00"),
        ({"SS": ["b", "a"]}, b"\x01\x01", u32(2) + u32(1) + b"a" + u32(1) + b"b"),
        ({"NS": ["10", "9.0"]}, b"\x01\x02", u32(2) + u32(2) + b"10" + u32(1) + b"9"),
        ({"BS": [b"\x02", b"\x01\x00"]}, b"\x01\xff", u32(2) + u32(2) + b"\x01\x00" + u32(1) + b"\x02"),
        ({"SS": []}, b"\x01\x01", u32(0)),
        ({"L": []}, b"\x03\x00", u32(0)),
        ({"M": {}}, b"\x02\x00", u32(0)),
        (
            {"L": [{"S": "a"}, {"N": "1"}]},
            b"\x03\x00",
            u32(2) + b"\x00\x01" + u32(1) + b"a" + b"\x00\x02" + u32(1) + b"1",
        ),
        (
            {"M": {"b": {"NULL": True}, "a": {"BOOL": True}}},
            b"\x02\x00",
            u32(2)
            + b"\x00\x01"
            + u32(1)
            + b"a"
            + b"\x00\x04"
            + u32(1)
            + b"\x01"
            + b"\x00\x01"
            + u32(1)
            + b"b"
            + b"\x00\x00"
            + u32(0),
        ),
    ],
)
def test_known_serializations(value: dict[str, Any], type_id: bytes, body: bytes) -> None:
    assert serialize(value) == Terminal(type_id, body)
    assert semantic(deserialize(Terminal(type_id, body))) == semantic(value)


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("0", "0"),
        ("-0", "0"),
        ("+0.000", "0"),
        ("0e99", "0"),
        ("1", "1"),
        ("+1", "1"),
        ("-1.50", "-1.5"),
        ("00.0011", "0.0011"),
        ("0000", "0"),
        ("2000.000", "2000"),
        ("10.01", "10.01"),
        (".5", "0.5"),
        ("5.", "5"),
        ("123.456e5", "12345600"),
        ("123.456E-5", "0.00123456"),
        ("1e-130", "0." + "0" * 129 + "1"),
        ("9.9999999999999999999999999999999999999E+125", "99999999999999999999999999999999999999" + "0" * 88),
        (".99999999999999999999999999999999999999E+126", "99999999999999999999999999999999999999" + "0" * 88),
        (
            "1234567890123456789012345678901234567800000000000000000000000000000",
            "1234567890123456789012345678901234567800000000000000000000000000000",
        ),
    ],
)
def test_number_normalization(text: str, normal: str) -> None:
    assert normalize_number(text) == normal
    assert decimal.Decimal(normal) == decimal.Decimal(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-",
        "+",
        ".",
        "e5",
        "1e",
        "1e+",
        "1.2.3",
        "0x10",
        "1_000",
        " 1",
        "1 ",
        "NaN",
        "Infinity",
        "\u0661",  # ARABIC-INDIC DIGIT ONE: a Unicode digit, not an ASCII one
        "1e-131",
        "1e126",
        "10e125",
        "1.23456789012345678901234567890123456789",
        "1e9999999999",
    ],
)
def test_invalid_numbers(text: str) -> None:
    with pytest.raises(MalformedInputError):
        normalize_number(text)


def test_string_sets_and_map_keys_sort_in_utf16_order() -> None:
    # U+FE4C sorts after a supplementary character in UTF-16 (surrogates are 0xD800-0xDFFF).
    terminal = serialize({"SS": ["\ufe4c", "\U00010002"]})
    assert terminal.value == u32(2) + u32(4) + "\U00010002".encode() + u32(3) + "\ufe4c".encode()
    mapped = serialize({"M": {"\ufe4c": {"NULL": True}, "\U00010002": {"NULL": True}}})
    assert mapped.value.index("\U00010002".encode()) < mapped.value.index("\ufe4c".encode())
    strings = load_json(vectors_dir("dbesdk") / "data.json")["Strings"]
    assert len(strings) == 14
    ordered = deserialize(serialize({"SS": strings}))["SS"]
    assert ordered == sorted(strings, key=lambda s: s.encode("utf-16-be"))
    assert ordered != sorted(strings)  # the vectors' strings do tell the two orders apart


@pytest.mark.parametrize(
    "value",
    [
        {"SS": ["a", "a"]},
        {"NS": ["1", "1.0"]},
        {"BS": [b"x", b"x"]},
        {"S": 5},
        {"S": "\ud800"},
        {"N": 5},
        {"B": "text"},
        {"BOOL": 1},
        {"NULL": False},
        {"SS": "ab"},
        {"L": {"a": 1}},
        {"M": [1]},
        {"M": {1: {"S": "x"}}},
        {"X": "x"},
        {"S": "a", "N": "1"},
        {},
        "plain",
    ],
)
def test_invalid_attribute_values(value: Any) -> None:
    with pytest.raises(MalformedInputError):
        serialize(value)


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"S": "leaf"}
    for _ in range(depth - 1):
        value = {"L": [value]}
    return value


def test_nesting_limit() -> None:
    deepest = serialize(_nested(32))
    assert deserialize(deepest) == _nested(32)
    with pytest.raises(MalformedInputError):
        serialize(_nested(33))
    too_deep = Terminal(b"\x03\x00", u32(1) + b"\x03\x00" + u32(len(deepest.value)) + deepest.value)
    with pytest.raises(MalformedInputError):
        deserialize(too_deep)


@pytest.mark.parametrize(
    "terminal",
    [
        Terminal(b"\x00\x04", b""),
        Terminal(b"\x00\x04", b"\x02"),
        Terminal(b"\x00\x04", b"\x01\x00"),
        Terminal(b"\x00\x00", b"\x00"),
        Terminal(b"\x00\x01", b"\xff"),
        Terminal(b"\x00\x07", b""),
        Terminal(b"\x01\x01", u32(2) + u32(1) + b"a"),
        Terminal(b"\x01\x01", u32(1) + u32(1) + b"a" + b"x"),
        Terminal(b"\x01\x01", u32(2) + u32(1) + b"a" + u32(1) + b"a"),
        Terminal(b"\x01\x02", u32(2) + u32(1) + b"1" + u32(1) + b"1"),
        Terminal(b"\x01\xff", u32(2) + u32(1) + b"a" + u32(1) + b"a"),
        Terminal(b"\x01\xff", u32(0xFFFFFFFF)),
        Terminal(b"\x01\x01", b"\x00\x00"),
        Terminal(b"\x03\x00", u32(1)),
        Terminal(b"\x03\x00", u32(1) + b"\x00\x01" + u32(5) + b"ab"),
        Terminal(b"\x03\x00", u32(0) + b"x"),
        Terminal(b"\x02\x00", u32(1) + b"\x00\x02" + u32(1) + b"a" + b"\x00\x00" + u32(0)),
        Terminal(
            b"\x02\x00",
            u32(2) + (b"\x00\x01" + u32(1) + b"a" + b"\x00\x00" + u32(0)) * 2,
        ),
        Terminal(b"\x02\x00", u32(1) + b"\x00\x01" + u32(1) + b"a"),
    ],
)
def test_malformed_serializations(terminal: Terminal) -> None:
    with pytest.raises(MalformedInputError):
        deserialize(terminal)


_names = st.text(min_size=1, max_size=8)
_numbers = st.decimals(allow_nan=False, allow_infinity=False)
_scalars = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=20)),
    st.builds(lambda d: {"N": str(d)}, _numbers),
    st.builds(lambda b: {"B": b}, st.binary(max_size=20)),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda s: {"SS": sorted(s)}, st.sets(st.text(max_size=5), max_size=4)),
    st.builds(lambda s: {"BS": sorted(s)}, st.sets(st.binary(max_size=5), max_size=4)),
    st.builds(lambda s: {"NS": sorted(str(d) for d in s)}, st.sets(st.integers(-(10**6), 10**6), max_size=4)),
)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.builds(lambda items: {"L": items}, st.lists(children, max_size=4)),
        st.builds(lambda entries: {"M": entries}, st.dictionaries(_names, children, max_size=4)),
    ),
    max_leaves=12,
)


def _valid_text(value: Any) -> bool:
    try:
        serialize(value)
    except MalformedInputError:
        return False
    return True


@settings(max_examples=150, deadline=None)
@given(_values.filter(_valid_text))
def test_round_trip_property(value: dict[str, Any]) -> None:
    terminal = serialize(value)
    decoded = deserialize(terminal)
    assert semantic(decoded) == semantic(value)
    # Serialization is canonical: decoding and re-encoding gives the same bytes.
    assert serialize(decoded) == terminal
