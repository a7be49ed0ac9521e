"""Compound beacon parts and constructors (``beacons.md#compound-beacon``): configuration, writing a
compound value from an item, and turning a query string into the stored form."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, MalformedInputError
from ..primitives.kdf import Hmac
from .virtual import term_string

if TYPE_CHECKING:
    from .beacons import CompoundBeacon, SearchInfo

__all__ = ["Constructor", "ConstructorPart", "EncryptedPart", "Part", "SignedPart"]


@dataclass(frozen=True)
class EncryptedPart:
    """A part holding a standard beacon (``name``) after a literal ``prefix``."""

    name: str
    prefix: str


@dataclass(frozen=True)
class SignedPart:
    """A part holding the plaintext of a SIGN_ONLY attribute (at ``location``, default ``name``)."""

    name: str
    prefix: str
    location: str | None = None


Part = EncryptedPart | SignedPart


@dataclass(frozen=True)
class ConstructorPart:
    """One part of a constructor, by part name; optional parts may be missing from the item."""

    name: str
    required: bool = True


@dataclass(frozen=True)
class Constructor:
    """An ordered list of parts from which a compound beacon value is made."""

    parts: tuple[ConstructorPart, ...]


def coerce_parts(raw: Any, kind: type[Part], where: str) -> tuple[Part, ...]:
    """Parts as ``kind`` objects (from objects, ``(name, prefix[, location])`` pairs or a mapping);
    ``where`` says whose parts they are in messages, e.g. ``"compound beacon 'c'"``."""
    if isinstance(raw, Mapping):
        raw = list(raw.items())
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise ConfigurationError(f"{where}: parts must be a sequence")
    out: list[Part] = []
    for entry in raw:
        part = entry if isinstance(entry, kind) else None
        if part is None and isinstance(entry, (tuple, list)) and 2 <= len(entry) <= 3:
            part = kind(*entry)
        if part is None:
            raise ConfigurationError(f"{where}: parts must be {kind.__name__} objects")
        if not isinstance(part.name, str) or not part.name:
            raise ConfigurationError(f"{where}: part names must be non-empty strings")
        if not isinstance(part.prefix, str) or not part.prefix:
            raise ConfigurationError(f"{where}: part prefixes must be non-empty strings")
        out.append(part)
    return tuple(out)


def check_prefixes(parts: Sequence[Part], where: str) -> None:
    """Refuse repeated part names, and prefixes that start another (beacons.md#initialization-failure)."""
    names = [part.name for part in parts]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"{where}: two parts have the same name")
    for i, a in enumerate(parts):
        for b in parts[i + 1 :]:
            if a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix):
                raise ConfigurationError(
                    f"{where}: prefix {a.prefix!r} of {a.name!r} and prefix "
                    f"{b.prefix!r} of {b.name!r} overlap (no prefix may start another)"
                )


def coerce_constructors(
    raw: Any, parts: Sequence[Part], owner: str, known: set[str] | None = None
) -> tuple[Constructor, ...]:
    """Constructors as :class:`Constructor` objects (default: every part, in order, all required).
    Part names are checked against ``known`` when given (the beacon's parts plus the global lists)."""
    if raw is None:
        return (Constructor(tuple(ConstructorPart(part.name) for part in parts)),)
    if isinstance(raw, str) or not isinstance(raw, Sequence) or not raw:
        raise ConfigurationError(f"compound beacon {owner!r}: constructors must be a non-empty sequence")
    out: list[Constructor] = []
    seen: set[frozenset[str]] = set()
    for entry in raw:
        entries = entry.parts if isinstance(entry, Constructor) else entry
        if isinstance(entries, str) or not isinstance(entries, Sequence) or not entries:
            raise ConfigurationError(f"compound beacon {owner!r}: a constructor needs parts")
        cparts: list[ConstructorPart] = []
        for item in entries:
            if isinstance(item, str):
                item = ConstructorPart(item)
            elif isinstance(item, (tuple, list)):
                item = ConstructorPart(*item)
            if not isinstance(item, ConstructorPart) or not isinstance(item.name, str):
                raise ConfigurationError(f"compound beacon {owner!r}: constructor parts must be part names")
            if known is not None and item.name not in known:
                raise ConfigurationError(
                    f"compound beacon {owner!r}: constructor names part {item.name!r}, which is neither "
                    "one of its parts nor in the global parts list"
                )
            cparts.append(item)
        required = frozenset(p.name for p in cparts if p.required)
        if not required:
            raise ConfigurationError(f"compound beacon {owner!r}: every constructor needs a required part")
        if required in seen:
            raise ConfigurationError(
                f"compound beacon {owner!r}: two constructors have the same required parts"
            )
        seen.add(required)
        out.append(Constructor(tuple(cparts)))
    return tuple(out)


def value_string(value: Mapping[str, Any] | None, part_name: str) -> str | None:
    """The string form of a part's source value, as the reference's ``TermToString`` gives it: S as
    is, N as written (``"1.50"`` stays ``"1.50"``: the DB-ESDK builds compound beacons from the item
    as supplied), BOOL as ``true``/``false``, NULL as ``null``; other types are refused."""
    return term_string(value, f"the value of beacon part {part_name!r}")


def construct(
    info: SearchInfo, beacon: CompoundBeacon, item: Mapping[str, Any], keys: Mapping[str, Hmac] | None
) -> str | None:
    """The compound value of ``item`` from its first constructor that succeeds; ``keys=None`` gives the
    plaintext ("naked") value used to filter query results."""
    by_name = {part.name: part for part in parts_of(beacon)}
    for constructor in beacon.constructors or ():
        if not isinstance(constructor, Constructor):
            raise ConfigurationError(f"{constructor!r} is not a Constructor")
        pieces: list[str] = []
        for cpart in constructor.parts:
            part = by_name[cpart.name]
            text = info.part_string(beacon, part, item)
            if text is None:
                if cpart.required:
                    break
                continue
            if beacon.split in text:
                raise MalformedInputError(
                    f"the value of part {part.name!r} of beacon {beacon.name!r} contains the split character"
                )
            if keys is not None and isinstance(part, EncryptedPart):
                text = info.string_hash(part.name, text, keys)
            pieces.append(part.prefix + text)
        else:
            if pieces:
                return beacon.split.join(pieces)
    return None


def parts_of(beacon: CompoundBeacon) -> tuple[Part, ...]:
    """A compound beacon's parts: signed first, then encrypted."""
    return tuple(
        p
        for p in (*beacon.signed_parts, *beacon.encrypted_parts)
        if isinstance(p, (EncryptedPart, SignedPart))
    )


def _part_for(beacon: CompoundBeacon, piece: str) -> Part:
    for part in parts_of(beacon):
        if piece.startswith(part.prefix):
            return part
    raise MalformedInputError(f"a value for beacon {beacon.name!r} has a piece that matches no part's prefix")


def _can_construct(con: Sequence[ConstructorPart], parts: Sequence[Part]) -> bool:
    i = j = 0
    matched = False
    while j < len(parts):
        if i == len(con):
            return False
        if con[i].name == parts[j].name:
            matched = True
            j += 1
        elif con[i].required and matched:
            return False
        i += 1
    return True


def less_than_comparable(beacon: CompoundBeacon, pieces: Sequence[str]) -> bool:
    """Signed pieces, then at most one encrypted part's bare prefix (``beacons.md#lessthancomparable``)."""
    rest = list(pieces)
    while rest and isinstance(_part_for(beacon, rest[0]), SignedPart):
        rest.pop(0)
    return not rest or (len(rest) == 1 and rest[0] == _part_for(beacon, rest[0]).prefix)


def between_comparable(beacon: CompoundBeacon, low: str, high: str) -> bool:
    """Less-than comparable after dropping the leading pieces both bounds share."""
    a, b = low.split(beacon.split), high.split(beacon.split)
    while a and b and a[0] == b[0]:
        a, b = a[1:], b[1:]
    return less_than_comparable(beacon, a) and less_than_comparable(beacon, b)


def query_value(
    info: SearchInfo, beacon: CompoundBeacon, text: str, keys: Mapping[str, Hmac], for_equality: bool
) -> str:
    """The stored form of a compound value written by a query (``GetBeaconValue``)."""
    pieces = text.split(beacon.split)
    parts = [_part_for(beacon, piece) for piece in pieces]
    constructors = [c for c in beacon.constructors or () if isinstance(c, Constructor)]
    if not any(_can_construct(c.parts, parts) for c in constructors):
        raise MalformedInputError(
            f"no constructor of beacon {beacon.name!r} makes the queried parts in that order"
        )
    out = []
    for piece, part in zip(pieces, parts, strict=True):
        data = piece[len(part.prefix) :]
        if isinstance(part, EncryptedPart):
            out.append(part.prefix + info.string_hash(part.name, data, keys))
        else:
            out.append(piece)
    if not for_equality and pieces[-1] == parts[-1].prefix:
        out[-1] = pieces[-1]
    return beacon.split.join(out)
