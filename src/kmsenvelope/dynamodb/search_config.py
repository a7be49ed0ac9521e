"""The search config (``searchable-encryption/search-config.md``) and its validation.

``TableConfig(beacons=...)`` takes either the flat list of beacons used so far (standard and compound
beacons, virtual fields, at most one :class:`~kmsenvelope.dynamodb.BeaconKeySource` or
:class:`~kmsenvelope.dynamodb.MultiKeyBeaconSource`), or exactly one
:class:`SearchConfig` / :class:`BeaconVersion`, the shape the specification describes. Versioning is
not yet supported by the specification: the only version number is 1, and a search config holds
exactly one beacon version. Validation follows the reference ``ConfigToInfo``: virtual fields, then
standard beacons, then the global parts lists, then compound beacons, then the beacon styles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, replace
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..structured.model import Action
from . import _parts
from ._parts import Constructor, EncryptedPart, Part, SignedPart
from .beacon_keys import BeaconKeySource, KeySource, MultiKeyBeaconSource
from .beacons import CompoundBeacon, StandardBeacon, configured
from .partitions import Partitions, PartitionSelector, RandomPartitionSelector, check_count
from .styles import PartOnly, is_set, shared_with
from .virtual import VirtualField, terminal_location

if TYPE_CHECKING:
    from .config import TableConfig

__all__ = ["BeaconVersion", "Resolved", "SearchConfig", "resolve"]

Location = list[str | int]
_SIGNED_ONLY = (Action.SIGN_ONLY, Action.SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT)
_SOURCES = (BeaconKeySource, MultiKeyBeaconSource)


def _version_number(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value != 1:
        raise ConfigurationError(
            f"{what} must be 1: search-config.md#version-number allows no other version until "
            "versioning is supported"
        )


def _sequence(value: object, kind: type | tuple[type, ...], what: str) -> tuple[Any, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigurationError(f"{what} must be a sequence")
    if not all(isinstance(entry, kind) for entry in value):
        raise ConfigurationError(f"{what} has an entry of the wrong type")
    return tuple(value)


@dataclass(frozen=True)
class BeaconVersion:
    """One beacon version (``search-config.md#beacon-version-initialization``).

    ``signed_parts`` and ``encrypted_parts`` are the global parts list: compound beacon constructors
    may name them without redefining them. ``key_source`` is a
    :class:`~kmsenvelope.dynamodb.BeaconKeySource` (single key store) or a
    :class:`~kmsenvelope.dynamodb.MultiKeyBeaconSource` (multi key store); it defaults to the table
    keyring's key store and branch key (a :class:`~kmsenvelope.HierarchicalKeyring` with a fixed
    ``branch_key_id``).

    Beacon partitions (``search-config.md#beacon-partitions``): ``maximum_number_of_partitions``
    (default 1: none), ``default_number_of_partitions`` for standard beacons without their own
    ``number_of_partitions`` (default: the maximum; must be below it), and the
    :class:`~kmsenvelope.dynamodb.PartitionSelector` that assigns items (default: random).
    """

    standard_beacons: Sequence[StandardBeacon]
    _: KW_ONLY
    compound_beacons: Sequence[CompoundBeacon] = ()
    virtual_fields: Sequence[VirtualField] = ()
    signed_parts: Sequence[SignedPart | tuple[str, str]] = ()
    encrypted_parts: Sequence[EncryptedPart | tuple[str, str]] = ()
    key_source: KeySource | None = None
    maximum_number_of_partitions: int | None = None
    default_number_of_partitions: int | None = None
    partition_selector: PartitionSelector | None = None
    version: int = 1

    def __post_init__(self) -> None:
        _version_number(self.version, "the beacon version number")
        standard = _sequence(self.standard_beacons, StandardBeacon, "standard_beacons")
        if not standard:
            raise ConfigurationError("searchable encryption needs at least one StandardBeacon")
        object.__setattr__(self, "standard_beacons", standard)
        compound = _sequence(self.compound_beacons, CompoundBeacon, "compound_beacons")
        object.__setattr__(self, "compound_beacons", compound)
        virtual = _sequence(self.virtual_fields, VirtualField, "virtual_fields")
        object.__setattr__(self, "virtual_fields", virtual)
        signed = _parts.coerce_parts(self.signed_parts, SignedPart, "the global parts list")
        encrypted = _parts.coerce_parts(self.encrypted_parts, EncryptedPart, "the global parts list")
        object.__setattr__(self, "signed_parts", signed)
        object.__setattr__(self, "encrypted_parts", encrypted)
        _parts.check_prefixes((*signed, *encrypted), "the global parts list")
        if self.key_source is not None and not isinstance(self.key_source, _SOURCES):
            raise ConfigurationError("key_source must be a BeaconKeySource or a MultiKeyBeaconSource")
        self._check_partitions()

    def _check_partitions(self) -> None:
        maximum = self.maximum_number_of_partitions
        default = self.default_number_of_partitions
        if maximum is not None:
            check_count(maximum, "maximum_number_of_partitions")
        if default is not None:
            check_count(default, "default_number_of_partitions")
            if maximum is None or default >= maximum:
                raise ConfigurationError(
                    "default_number_of_partitions needs a maximum_number_of_partitions above it "
                    "(search-config.md#beacon-version-initialization)"
                )
        for beacon in self.standard_beacons:
            count = beacon.number_of_partitions
            if count is not None and count >= (maximum or 1):
                raise ConfigurationError(
                    f"beacon {beacon.name!r}: number_of_partitions ({count}) must be below "
                    f"maximum_number_of_partitions ({maximum or 1}) (beacons.md#standard-beacon)"
                )
        selector = self.partition_selector
        if selector is not None and not isinstance(selector, PartitionSelector):
            raise ConfigurationError("partition_selector must have a get_partition_number method")

    def partitions(self) -> Partitions:
        """Each standard beacon's partition count, the maximum and the selector."""
        maximum = self.maximum_number_of_partitions or 1
        default = self.default_number_of_partitions or maximum
        counts = {b.name: b.number_of_partitions or default for b in self.standard_beacons}
        return Partitions(maximum, counts, self.partition_selector or RandomPartitionSelector())


@dataclass(frozen=True)
class SearchConfig:
    """The search config (``search-config.md#initialization``): beacon versions and the one to write."""

    versions: Sequence[BeaconVersion]
    write_version: int = 1

    def __post_init__(self) -> None:
        versions = _sequence(self.versions, BeaconVersion, "versions")
        if len(versions) != 1:
            raise ConfigurationError(
                "a search config must have exactly one beacon version (search-config.md#initialization)"
            )
        _version_number(self.write_version, "write_version")
        object.__setattr__(self, "versions", versions)


@dataclass
class Resolved:
    """A validated beacon version: what :class:`~kmsenvelope.dynamodb.beacons.SearchInfo` runs on."""

    standard: dict[str, StandardBeacon]
    compound: dict[str, CompoundBeacon]
    virtual: dict[str, VirtualField]
    locations: dict[str, Location]
    signed_locations: dict[tuple[str, str], Location]
    key_source: KeySource | None
    key_parts: dict[str, tuple[str, str]]
    partitions: Partitions


def beacon_version(beacons: Sequence[Any]) -> BeaconVersion:
    """The beacon version described by ``TableConfig.beacons``."""
    shaped = [b for b in beacons if isinstance(b, (SearchConfig, BeaconVersion))]
    if shaped:
        if len(beacons) != 1:
            raise ConfigurationError("a SearchConfig or BeaconVersion must be the only entry of beacons")
        return shaped[0].versions[0] if isinstance(shaped[0], SearchConfig) else shaped[0]
    kinds = (StandardBeacon, CompoundBeacon, VirtualField, *_SOURCES)
    if not all(isinstance(b, kinds) for b in beacons):
        raise ConfigurationError(
            "beacons must be StandardBeacon, CompoundBeacon, VirtualField, BeaconKeySource or "
            "MultiKeyBeaconSource objects, or one SearchConfig or BeaconVersion"
        )
    sources = [b for b in beacons if isinstance(b, _SOURCES)]
    if len(sources) > 1:
        raise ConfigurationError("give at most one BeaconKeySource or MultiKeyBeaconSource")
    return BeaconVersion(
        [b for b in beacons if isinstance(b, StandardBeacon)],
        compound_beacons=[b for b in beacons if isinstance(b, CompoundBeacon)],
        virtual_fields=[b for b in beacons if isinstance(b, VirtualField)],
        key_source=sources[0] if sources else None,
    )


def resolve(config: TableConfig, beacons: Sequence[Any]) -> Resolved:
    """Validate ``beacons`` against the table's actions."""
    version = beacon_version(beacons)
    out = Resolved({}, {}, {}, {}, {}, version.key_source, {}, version.partitions())
    _Resolver(config, out).run(version)
    if isinstance(version.key_source, MultiKeyBeaconSource):
        _Resolver(config, out).key_field(version.key_source.key_field_name)
    return out


class _Resolver:
    def __init__(self, config: TableConfig, out: Resolved) -> None:
        self.config = config
        self.actions = config.actions
        self.out = out

    def run(self, version: BeaconVersion) -> None:
        for field in version.virtual_fields:
            self.virtual_field(field)
        for beacon in version.standard_beacons:
            self.standard_beacon(beacon)
        globals_: dict[str, Part] = {}
        for part in (*version.signed_parts, *version.encrypted_parts):
            if not isinstance(part, (SignedPart, EncryptedPart)):
                raise ConfigurationError(f"{part!r} is not a SignedPart or EncryptedPart")
            self.part(part, "the global parts list", "")
            globals_[part.name] = part
        for compound in version.compound_beacons:
            self.compound_beacon(compound, globals_)
        self.styles()

    def virtual_field(self, field: VirtualField) -> None:
        name, out = field.name, self.out
        if name in out.virtual:
            raise ConfigurationError(f"two virtual fields are named {name!r}")
        if configured(self.config, name):
            raise ConfigurationError(f"virtual field {name!r} has the name of a configured attribute")
        for location in field.locations():
            if self.actions.get(str(location[0]), Action.DO_NOTHING) is Action.DO_NOTHING:
                raise ConfigurationError(
                    f"virtual field {name!r} must be built from signed attributes; "
                    f"{location[0]!r} is not signed"
                )
        for other in out.virtual.values():
            if other.locations() == field.locations():
                raise ConfigurationError(
                    f"virtual field {name!r} is defined on the same locations as {other.name!r}"
                )
        out.virtual[name] = field

    def standard_beacon(self, beacon: StandardBeacon) -> None:
        name, out = beacon.name, self.out
        if name in out.standard:
            raise ConfigurationError(f"two standard beacons are named {name!r}")
        if name in self.actions and self.actions[name] is not Action.ENCRYPT_AND_SIGN:
            raise ConfigurationError(f"beacon {name!r} has the name of an unencrypted attribute")
        if name not in self.actions and configured(self.config, name):
            raise ConfigurationError(f"beacon {name!r} has the name of an attribute allowed unsigned")
        location = terminal_location(beacon.location or name, name)
        top = str(location[0])
        field = out.virtual.get(top)
        if field is not None:
            if len(location) != 1:
                raise ConfigurationError(f"standard beacon {name!r}: a virtual field has no nested values")
            if all(self.actions.get(str(loc[0])) is not Action.ENCRYPT_AND_SIGN for loc in field.locations()):
                raise ConfigurationError(
                    f"standard beacon {name!r} is over virtual field {top!r}, which has no encrypted part"
                )
            if is_set(beacon.style):
                raise ConfigurationError(f"set beacon {name!r} cannot be over a virtual field (a string)")
        elif self.actions.get(top) is not Action.ENCRYPT_AND_SIGN:
            raise ConfigurationError(f"standard beacon {name!r} must be over an ENCRYPT_AND_SIGN attribute")
        for other, where in out.locations.items():
            if where == location:
                raise ConfigurationError(f"standard beacons {other!r} and {name!r} have the same location")
        for vf in out.virtual.values():
            if vf.locations() == {tuple(location)}:
                raise ConfigurationError(
                    f"standard beacon {name!r} is on the single location of virtual field {vf.name!r}"
                )
        out.standard[name] = beacon
        out.locations[name] = location

    def part(self, part: Part, owner: str, compound: str) -> None:
        """Signed parts must be over signed, unencrypted attributes; encrypted parts must name a
        standard beacon that is not a set."""
        if isinstance(part, SignedPart):
            location = terminal_location(part.location or part.name, owner)
            if self.actions.get(str(location[0])) not in _SIGNED_ONLY:
                raise ConfigurationError(
                    f"{owner}: signed part {part.name!r} must be over a signed, unencrypted attribute"
                )
            if compound:
                self.out.signed_locations[compound, part.name] = location
            return
        beacon = self.out.standard.get(part.name)
        if beacon is None:
            raise ConfigurationError(f"{owner}: encrypted part {part.name!r} is not a standard beacon")
        if is_set(beacon.style):
            raise ConfigurationError(
                f"{owner}: {part.name!r} is a set beacon and cannot be part of a compound beacon"
            )

    def compound_beacon(self, beacon: CompoundBeacon, globals_: dict[str, Part]) -> None:
        name, out = beacon.name, self.out
        owner = f"compound beacon {name!r}"
        if name in out.compound or name in out.standard:
            raise ConfigurationError(f"two beacons are named {name!r}")
        if name in out.virtual:
            raise ConfigurationError(f"{owner} has the name of a virtual field")
        local = [p for p in (*beacon.signed_parts, *beacon.encrypted_parts) if isinstance(p, Part)]
        prefixes = {p.prefix for p in globals_.values()}
        for part in local:
            if part.name in globals_ or part.prefix in prefixes:
                raise ConfigurationError(
                    f"{owner}: part {part.name!r} repeats the name or prefix of a global part"
                )
        cons = [c for c in beacon.constructors or () if isinstance(c, Constructor)]
        used = [part.name for con in cons for part in con.parts]
        _parts.coerce_constructors(beacon.constructors, local, name, {p.name for p in local} | set(globals_))
        extra = [globals_[n] for n in dict.fromkeys(used) if n in globals_]
        signed = (*beacon.signed_parts, *(p for p in extra if isinstance(p, SignedPart)))
        encrypted = (*beacon.encrypted_parts, *(p for p in extra if isinstance(p, EncryptedPart)))
        resolved = replace(beacon, signed_parts=signed, encrypted_parts=encrypted)
        for part in (*signed, *encrypted):
            if not isinstance(part, (SignedPart, EncryptedPart)):
                raise ConfigurationError(f"{part!r} is not a SignedPart or EncryptedPart")
            self.part(part, owner, name)
        if resolved.is_signed and name in self.actions:
            raise ConfigurationError(
                f"signed beacon {name!r} is stored under its own name, so it cannot be a configured "
                "attribute (beacons.md#signed-beacons)"
            )
        if configured(self.config, name):
            raise ConfigurationError(f"{owner} has the name of a configured attribute")
        out.compound[name] = resolved

    def key_field(self, name: str) -> None:
        """The multi key store's beacon key field (``search-config.md#beacon-version-initialization``):
        not a beacon or virtual field, not ENCRYPT_AND_SIGN. Stricter than the reference, it must be
        stored and signed, so that ``name = :id`` in a query can match the items."""
        out = self.out
        if name in out.standard or name in out.compound:
            raise ConfigurationError(f"beacon key field {name!r} has the name of a beacon")
        if name in out.virtual:
            raise ConfigurationError(f"beacon key field {name!r} has the name of a virtual field")
        action = self.actions.get(name)
        if action is Action.ENCRYPT_AND_SIGN:
            raise ConfigurationError(f"beacon key field {name!r} cannot be ENCRYPT_AND_SIGN")
        if action not in _SIGNED_ONLY:
            raise ConfigurationError(
                f"beacon key field {name!r} must be configured SIGN_ONLY or "
                "SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT"
            )
        for compound in out.compound.values():
            parts = [
                p
                for p in compound.signed_parts
                if isinstance(p, SignedPart) and out.signed_locations[compound.name, p.name][0] == name
            ]
            if len(parts) == 1:
                out.key_parts[compound.name] = (compound.split, parts[0].prefix)

    def styles(self) -> None:
        """PartOnly beacons must be used; Shared ones must name an unshared standard beacon of the
        same length (``beacons.md#partonly-initialization``, ``#shared-initialization``)."""
        out = self.out
        compounds = out.compound.values()
        used = {p.name for c in compounds for p in c.encrypted_parts if isinstance(p, EncryptedPart)}
        for name, beacon in out.standard.items():
            if isinstance(beacon.style, PartOnly) and name not in used:
                raise ConfigurationError(f"PartOnly beacon {name!r} is not used by any compound beacon")
            other = shared_with(beacon.style)
            if other is None:
                continue
            target = out.standard.get(other)
            if target is None:
                what = "a compound beacon" if other in out.compound else "not a standard beacon"
                raise ConfigurationError(f"beacon {name!r} is shared with {other!r}, which is {what}")
            if other == name:
                raise ConfigurationError(f"beacon {name!r} is shared with itself")
            if shared_with(target.style) is not None:
                raise ConfigurationError(
                    f"beacon {name!r} is shared with {other!r}, which is itself shared: no share chains"
                )
            if out.partitions.counts[other] != out.partitions.counts[name]:
                raise ConfigurationError(
                    f"beacon {name!r} is shared with {other!r}, which has another number of partitions"
                )
            if target.length != beacon.length:
                raise ConfigurationError(
                    f"beacon {name!r} (length {beacon.length}) is shared with {other!r} "
                    f"(length {target.length}): lengths must be equal"
                )
