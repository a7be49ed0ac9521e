"""Virtual field strings as the reference implementation builds them: UTF-16 code units in the
transforms, values at unreachable locations, and the terminal location grammar (``TermLoc.dfy``)."""

from __future__ import annotations

from typing import Any

import pytest

from kmsenvelope.dynamodb import (
    GetPrefix,
    GetSegment,
    GetSegments,
    GetSubstring,
    GetSuffix,
    Lower,
    Upper,
    VirtualField,
    VirtualPart,
)
from kmsenvelope.dynamodb.virtual import Transform, terminal_location
from kmsenvelope.errors import ConfigurationError, MalformedInputError

# Characters are UTF-16 code units, as in the reference (Dafny with --unicode-char:false): an emoji
# counts as two, and a transform may cut it in half.
UNICODE: list[tuple[Transform, str, str]] = [
    (GetPrefix(2), "😀ab", "😀"),
    (GetPrefix(1), "😀ab", "\ud83d"),
    (GetPrefix(-1), "ab😀", "ab\ud83d"),
    (GetSuffix(2), "ab😀", "😀"),
    (GetSuffix(-3), "a😀b", "b"),
    (GetSubstring(1, 3), "a😀b", "😀"),
    (GetSubstring(-3, -1), "a😀b", "😀"),
    (GetSubstring(1, 2), "a😀b", "\ud83d"),
    (GetSegment("-", -1), "é-😀z", "😀z"),
    (GetSegments("-", 0, 2), "😀-é-z", "😀-é"),
    (Upper(), "éß😀z", "éß😀Z"),  # ASCII letters only
    (Lower(), "ÉSS😀", "Éss😀"),
]


@pytest.mark.parametrize(("transform", "text", "expected"), UNICODE)
def test_transforms_count_utf16_code_units(transform: Transform, text: str, expected: str) -> None:
    assert transform.apply(text) == expected


def test_virtual_field_holding_half_a_character_is_refused() -> None:
    half = VirtualField("h", [VirtualPart("first", [GetPrefix(1)])])
    with pytest.raises(MalformedInputError, match="Basic Multilingual Plane"):
        half.evaluate({"first": {"S": "😀x"}})
    assert half.evaluate({"first": {"S": "ñx"}}) == "ñ"
    # Two halves from two parts make the character again, as concatenating UTF-16 strings does.
    whole = VirtualField("w", [VirtualPart("first", [GetPrefix(1)]), VirtualPart("last", [GetSuffix(1)])])
    assert whole.evaluate({"first": {"S": "😀a"}, "last": {"S": "b😀"}}) == "😀"


def test_missing_or_unreachable_locations_give_no_value() -> None:
    field = VirtualField("v", ["first", "addr.zip", "list[1]"])
    present = {
        "first": {"S": "a"},
        "addr": {"M": {"zip": {"N": "007"}}},
        "list": {"L": [{"S": "x"}, {"S": "y"}]},
    }
    assert field.evaluate(present) == "a007y"  # the number as written
    for broken in (
        {**present, "addr": {"S": "not a map"}},
        {**present, "addr": {"M": {}}},
        {**present, "list": {"L": [{"S": "x"}]}},
        {k: v for k, v in present.items() if k != "first"},
    ):
        assert field.evaluate(broken) is None
    with pytest.raises(MalformedInputError, match="not L"):
        VirtualField("l", ["list"]).evaluate(present)


@pytest.mark.parametrize(
    ("text", "elements"),
    [
        ("e-mail", ["e-mail"]),
        ("prénom", ["prénom"]),
        ("a b", ["a b"]),
        ("#x", ["#x"]),
        ("a.b-c[12].d", ["a", "b-c", 12, "d"]),
        ("a[0][3]", ["a", 0, 3]),
    ],
)
def test_terminal_locations_are_parsed_like_the_reference(text: str, elements: list[Any]) -> None:
    assert terminal_location(text, "t") == elements


@pytest.mark.parametrize("text", ["", ".a", "[1]", "a.", "a..b", "a[]", "a[x]", "a[-1]", "a[ 1 ]", "a[1]x"])
def test_invalid_terminal_locations(text: str) -> None:
    with pytest.raises(ConfigurationError, match=r"terminal location|list index"):
        terminal_location(text, "t")
