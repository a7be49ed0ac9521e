"""Virtual fields (``searchable-encryption/virtual.md``): strings built from parts of an item, never stored.

A :class:`VirtualField` concatenates its :class:`VirtualPart` values in order; each part is the string
at a terminal location, passed through its transforms in order. A standard beacon whose location is a
virtual field's name hashes the UTF-8 bytes of that string, so ``NameTag = :v`` can be queried with
the string the customer builds the same way.

Index semantics follow the reference implementation (``Virtual.dfy``): a position ``p`` in a list of
``n`` items is ``min(p, n - 1)`` when ``p >= 0`` and ``max(n + p, 0)`` otherwise. Note that this also
clamps an upper bound past the end to the *last* item: ``GetSubstring(2, 99)`` of ``"abcdef"`` is
``"cde"``. virtual.md says such a bound is "just after the last item"; the reference code, and so
every beacon the other DB-ESDK implementations write, does not, and beacons must match theirs.

Characters are UTF-16 code units, as in the reference implementation (Dafny compiled with
``--unicode-char:false``): a character outside the Basic Multilingual Plane, such as an emoji, counts
as two, so ``GetPrefix(2)`` of ``"😀ab"`` is ``"😀"``. A field whose value ends up holding half of
such a character cannot be encoded as UTF-8 and is refused (:class:`MalformedInputError`), as the
reference refuses it. Split characters must be single UTF-16 code units. Numbers are taken as
written (``{"N": "1.50"}`` gives ``"1.50"``), booleans as ``true``/``false`` and NULL as ``null``.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigurationError, MalformedInputError

__all__ = [
    "GetPrefix",
    "GetSegment",
    "GetSegments",
    "GetSubstring",
    "GetSuffix",
    "Insert",
    "Lower",
    "Transform",
    "Upper",
    "VirtualField",
    "VirtualPart",
    "term_string",
    "terminal_location",
]

_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"virtual transform {what} must be an int")
    return value


def _split_char(value: object) -> str:
    if not isinstance(value, str) or len(value) != 1 or not is_code_unit(value):
        raise ConfigurationError(
            "virtual transform split must be a single character of the Basic Multilingual Plane"
        )
    return value


def is_code_unit(char: str) -> bool:
    """Whether ``char`` is one UTF-16 code unit that is not a surrogate (a Dafny ``char`` on its own)."""
    return ord(char) < 0xD800 or 0xE000 <= ord(char) < 0x10000


def _units(text: str) -> str:
    """``text`` with each character outside the BMP as its two UTF-16 surrogates, so that indexes
    count UTF-16 code units like the reference implementation."""
    if text.isascii():
        return text
    codes = array("H")
    codes.frombytes(text.encode("utf-16-le", "surrogatepass"))
    return "".join(map(chr, codes))


def _joined(text: str) -> str:
    """Surrogate pairs back to characters; a lone surrogate stays (and fails UTF-8 encoding later)."""
    if text.isascii():
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def _position(pos: int, limit: int) -> int:
    """``GetPos``: a clamped zero-based index into a list of ``limit`` items."""
    if limit == 0:
        return 0
    if pos >= 0:
        return min(pos, limit - 1)
    return max(limit + pos, 0)


@dataclass(frozen=True)
class Upper:
    """ASCII lowercase letters to uppercase; other characters unchanged."""

    def apply(self, text: str) -> str:
        return text.translate(_UPPER)


@dataclass(frozen=True)
class Lower:
    """ASCII uppercase letters to lowercase; other characters unchanged."""

    def apply(self, text: str) -> str:
        return text.translate(_LOWER)


@dataclass(frozen=True)
class Insert:
    """Append ``literal`` to the input."""

    literal: str

    def __post_init__(self) -> None:
        if not isinstance(self.literal, str):
            raise ConfigurationError("Insert literal must be a string")

    def apply(self, text: str) -> str:
        return text + self.literal


@dataclass(frozen=True)
class GetPrefix:
    """The first ``length`` characters; a negative length drops the last ``-length`` characters."""

    length: int

    def __post_init__(self) -> None:
        _int(self.length, "length")

    def apply(self, text: str) -> str:
        text = _units(text)
        if self.length >= 0:
            return _joined(text[: min(self.length, len(text))])
        return _joined(text[: len(text) - min(-self.length, len(text))])


@dataclass(frozen=True)
class GetSuffix:
    """The last ``length`` characters; a negative length drops the first ``-length`` characters."""

    length: int

    def __post_init__(self) -> None:
        _int(self.length, "length")

    def apply(self, text: str) -> str:
        text = _units(text)
        if self.length >= 0:
            return _joined(text[len(text) - min(self.length, len(text)) :])
        return _joined(text[min(-self.length, len(text)) :])


@dataclass(frozen=True)
class GetSubstring:
    """Characters from position ``low`` (inclusive) to ``high`` (exclusive); empty unless low < high."""

    low: int
    high: int

    def __post_init__(self) -> None:
        _int(self.low, "low")
        _int(self.high, "high")

    def apply(self, text: str) -> str:
        text = _units(text)
        low, high = _position(self.low, len(text)), _position(self.high, len(text))
        return _joined(text[low:high]) if low < high else ""


@dataclass(frozen=True)
class GetSegment:
    """The segment at position ``index`` after splitting on ``split``; empty when out of range."""

    split: str
    index: int

    def __post_init__(self) -> None:
        _split_char(self.split)
        _int(self.index, "index")

    def apply(self, text: str) -> str:
        pieces = text.split(self.split)
        if self.index >= len(pieces) or -self.index > len(pieces):
            return ""
        return pieces[_position(self.index, len(pieces))]


@dataclass(frozen=True)
class GetSegments:
    """Segments ``low`` (inclusive) to ``high`` (exclusive) after splitting on ``split``, rejoined."""

    split: str
    low: int
    high: int

    def __post_init__(self) -> None:
        _split_char(self.split)
        _int(self.low, "low")
        _int(self.high, "high")

    def apply(self, text: str) -> str:
        pieces = text.split(self.split)
        low, high = _position(self.low, len(pieces)), _position(self.high, len(pieces))
        return self.split.join(pieces[low:high]) if low < high else ""


Transform = Upper | Lower | Insert | GetPrefix | GetSuffix | GetSubstring | GetSegment | GetSegments
_TRANSFORMS = (Upper, Lower, Insert, GetPrefix, GetSuffix, GetSubstring, GetSegment, GetSegments)


@dataclass(frozen=True)
class VirtualPart:
    """The string at ``location`` (a terminal location such as ``"name"`` or ``"a.b[2]"``), transformed."""

    location: str
    transforms: Sequence[Transform] = ()
    _path: tuple[str | int, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "_path", tuple(terminal_location(self.location, "virtual part")))
        if isinstance(self.transforms, str) or not isinstance(self.transforms, Sequence):
            raise ConfigurationError("virtual part transforms must be a sequence")
        if not all(isinstance(t, _TRANSFORMS) for t in self.transforms):
            raise ConfigurationError(
                "virtual part transforms must be Upper, Lower, Insert, GetPrefix, GetSuffix, "
                "GetSubstring, GetSegment or GetSegments objects"
            )
        object.__setattr__(self, "transforms", tuple(self.transforms))

    @property
    def path(self) -> tuple[str | int, ...]:
        """The parsed location: an attribute name, then map keys and list indexes."""
        return self._path

    def evaluate(self, item: Mapping[str, Any]) -> str | None:
        """The part's string, or ``None`` when the item lacks its location (``TermLoc.TermToString``)."""
        from .evaluate import item_path

        text = term_string(item_path(item, self._path))
        if text is None:
            return None
        for transform in self.transforms:
            text = transform.apply(text)
        return text


@dataclass(frozen=True)
class VirtualField:
    """A string field computed from ``parts`` (:class:`VirtualPart` objects or bare locations)."""

    name: str
    parts: Sequence[VirtualPart | str]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigurationError("virtual field names must be non-empty strings")
        if isinstance(self.parts, str) or not isinstance(self.parts, Sequence) or not self.parts:
            raise ConfigurationError(f"virtual field {self.name!r} needs a non-empty sequence of parts")
        if not all(isinstance(p, (VirtualPart, str)) for p in self.parts):
            raise ConfigurationError(
                f"virtual field {self.name!r}: parts must be VirtualPart objects or locations"
            )
        parts = tuple(VirtualPart(p) if isinstance(p, str) else p for p in self.parts)
        object.__setattr__(self, "parts", parts)

    def locations(self) -> frozenset[tuple[str | int, ...]]:
        """The set of terminal locations the field reads."""
        return frozenset(p.path for p in self.parts if isinstance(p, VirtualPart))

    def evaluate(self, item: Mapping[str, Any]) -> str | None:
        """The concatenated parts, or ``None`` when any part's location is missing from the item.

        Raises :class:`MalformedInputError` when a part's value is not a string, number, boolean or
        null, or when the result holds half of a surrogate pair (a transform cut a character outside
        the BMP in two): the reference implementation cannot UTF-8 encode it either."""
        out = []
        for part in self.parts:
            if not isinstance(part, VirtualPart):
                raise ConfigurationError(f"{part!r} is not a VirtualPart")
            text = part.evaluate(item)
            if text is None:
                return None
            out.append(text)
        value = _joined("".join(out))
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise MalformedInputError(
                f"virtual field {self.name!r}: a transform cut a character outside the Basic "
                "Multilingual Plane in half, so the value is not valid Unicode"
            ) from None
        return value


def term_string(value: Mapping[str, Any] | None, what: str = "a virtual field part") -> str | None:
    """The string of a terminal value, as ``TermLoc.TermToString`` gives it: S as is, N as written
    (not normalized), BOOL as ``true``/``false``, NULL as ``null``; other types are refused."""
    if value is None:
        return None
    if "S" in value:
        return str(value["S"])
    if "N" in value:
        return str(value["N"])
    if "BOOL" in value:
        return "true" if value["BOOL"] else "false"
    if "NULL" in value:
        return "null"
    tag = next(iter(value), "?")
    raise MalformedInputError(f"{what} must be a string, number, boolean or null, not {tag}")


_SEGMENT = re.compile(r"(?=[.\[])")


def terminal_location(text: object, owner: str) -> list[str | int]:
    """Parse a terminal location (``virtual.md#terminal-location``) as ``TermLoc.MakeTermLoc`` does:
    an attribute name, then segments ``.key`` or ``[index]``, each starting at a ``.`` or ``[``.
    Names may hold any other character (``e-mail``, ``é``); empty names and indexes are refused."""
    if not isinstance(text, str) or not text:
        raise ConfigurationError(f"{owner!r}: a terminal location must be a non-empty string")
    first, *rest = _SEGMENT.split(text)
    elements: list[str | int] = [first]
    for segment in rest:
        if segment[0] == ".":
            elements.append(segment[1:])
        elif segment[-1] == "]" and segment[1:-1].isascii() and segment[1:-1].isdigit():
            elements.append(int(segment[1:-1]))
        else:
            raise ConfigurationError(
                f"{owner!r}: invalid list index {segment!r} in terminal location {text!r}"
            )
    if any(e == "" for e in elements):
        raise ConfigurationError(f"{owner!r}: terminal location {text!r} has an empty name")
    return elements
