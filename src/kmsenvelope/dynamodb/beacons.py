"""Searchable encryption: standard and compound beacons (``searchable-encryption/beacons.md``).

A standard beacon is the truncated HMAC-SHA384 of an encrypted attribute's serialized value (or of the
UTF-8 of a :mod:`virtual field <.virtual>`), keyed with a per-beacon key
``HKDF-SHA512(beacon key, salt=None, info="AWS_DBE_SCAN_BEACON" || name, 64)`` where the beacon key
comes from a branch key store's ``get_beacon_key``. The value kept is the rightmost ``length`` bits of
the first 8 HMAC bytes, as ``ceil(length / 4)`` lowercase hex digits. A :mod:`style <.styles>` may
make it part-only, key it like another beacon, or make it a set. A compound beacon joins prefixed
parts with a split character: signed parts in plaintext, encrypted parts as
``prefix || hash(UTF-8 of the part's string value)`` under their standard beacon's key. With
:mod:`partitions <.partitions>`, the hashed bytes of a beacon in partition ``p % n`` end with that
one byte (none for 0).

Beacons are written next to the encrypted item as ``aws_dbe_b_<name>`` (plus the version tag
``aws_dbe_v_1``); these attributes are outside the signature. A compound beacon with only signed
parts (a *signed beacon*) is instead written before encryption under its own name, as a SIGN_ONLY
attribute. :class:`SearchInfo` is what a :class:`~kmsenvelope.dynamodb.TableConfig` with beacons
compiles to (validation in :mod:`.search_config`); rewriting queries lives in :mod:`.search`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, MalformedInputError
from ..primitives.kdf import Hmac
from ..structured.beacon_hash import basic_hash
from ..structured.model import RESERVED_PREFIX, Action
from . import _parts
from ._parts import Constructor, ConstructorPart, EncryptedPart, Part, SignedPart
from .attributes import serialize
from .beacon_keys import BeaconKeys, BeaconKeySource, KeySource, MultiKeyBeaconSource, key_id_from_header
from .evaluate import item_path
from .partitions import PartitionKeys, check_count
from .styles import BeaconStyle, PartOnly, check_style, is_set, shared_with
from .virtual import VirtualField, is_code_unit, terminal_location

if TYPE_CHECKING:
    from .config import TableConfig

__all__ = [
    "BEACON_PREFIX",
    "VERSION_TAG",
    "BeaconKeySource",
    "CompoundBeacon",
    "Constructor",
    "ConstructorPart",
    "EncryptedPart",
    "MultiKeyBeaconSource",
    "SearchInfo",
    "SignedPart",
    "StandardBeacon",
    "basic_hash",
]

BEACON_PREFIX = "aws_dbe_b_"
VERSION_TAG = "aws_dbe_v_1"
"""Written with every beaconized item; its value is a single space (beacon version 1)."""
AttributeValue = Mapping[str, Any]
_SET_MEMBER = {"SS": "S", "NS": "N", "BS": "B"}


@dataclass(frozen=True)
class StandardBeacon:
    """A beacon over one encrypted attribute: ``length`` bits (1-63) of a keyed hash of its value.

    ``location`` is the terminal location (default: ``name``), e.g. ``"address.zip"``, or the name of
    a :class:`~kmsenvelope.dynamodb.VirtualField`; ``style`` is one of
    :class:`~kmsenvelope.dynamodb.PartOnly`, ``Shared(other)``, ``AsSet()`` or ``SharedSet(other)``;
    ``number_of_partitions`` constrains it to fewer partitions than the beacon version's maximum.
    """

    name: str
    length: int
    location: str | None = None
    style: BeaconStyle | None = None
    number_of_partitions: int | None = None

    def __post_init__(self) -> None:
        _check_beacon_name(self.name)
        if isinstance(self.length, bool) or not isinstance(self.length, int) or not 1 <= self.length <= 63:
            raise ConfigurationError(f"beacon {self.name!r}: length must be an int from 1 to 63 bits")
        terminal_location(self.location if self.location is not None else self.name, self.name)
        check_style(self.style, self.name)
        if self.number_of_partitions is not None:
            check_count(self.number_of_partitions, f"beacon {self.name!r}: number_of_partitions")


@dataclass(frozen=True)
class CompoundBeacon:
    """A searchable string assembled from prefixed parts joined by ``split``.

    ``encrypted_parts``: :class:`EncryptedPart` (or ``(standard beacon name, prefix)`` pairs, or a
    ``{name: prefix}`` mapping); ``signed_parts``: :class:`SignedPart` (or ``(name, prefix)`` pairs or a
    mapping) over SIGN_ONLY attributes; ``constructors``: which parts make a value, in order (default:
    every signed part then every encrypted part, all required). Constructors may also name parts of
    a :class:`~kmsenvelope.dynamodb.BeaconVersion`'s global parts lists. Without encrypted parts the
    beacon is a signed beacon, stored in plaintext under ``name``.
    """

    name: str
    split: str
    encrypted_parts: Sequence[EncryptedPart | tuple[str, str]] | Mapping[str, str] = ()
    signed_parts: Sequence[SignedPart | tuple[str, str]] | Mapping[str, str] = ()
    constructors: Sequence[Constructor | Sequence[Any]] | None = None

    def __post_init__(self) -> None:
        _check_beacon_name(self.name)
        if not isinstance(self.split, str) or len(self.split) != 1 or not is_code_unit(self.split):
            raise ConfigurationError(
                f"compound beacon {self.name!r}: split must be a single character of the Basic "
                "Multilingual Plane (one UTF-16 code unit, as the DB-ESDK requires)"
            )
        where = f"compound beacon {self.name!r}"
        encrypted = _parts.coerce_parts(self.encrypted_parts, EncryptedPart, where)
        signed = _parts.coerce_parts(self.signed_parts, SignedPart, where)
        object.__setattr__(self, "encrypted_parts", encrypted)
        object.__setattr__(self, "signed_parts", signed)
        parts: tuple[Part, ...] = (*signed, *encrypted)
        if not parts and self.constructors is None:
            raise ConfigurationError(
                f"compound beacon {self.name!r} has no parts and no constructors "
                "(beacons.md#default-construction)"
            )
        _parts.check_prefixes(parts, where)
        object.__setattr__(
            self, "constructors", _parts.coerce_constructors(self.constructors, parts, self.name)
        )

    @property
    def is_signed(self) -> bool:
        """No encrypted parts: stored in plaintext under its own name (``beacons.md#signed-beacons``)."""
        return not self.encrypted_parts


Beacon = StandardBeacon | CompoundBeacon


class SearchInfo:
    """The beacons of one table, validated against its attribute actions, with their keys."""

    def __init__(self, config: TableConfig, beacons: Sequence[Any]) -> None:
        from .search_config import resolve  # validation (ConfigToInfo); it imports this module

        resolved = resolve(config, beacons)
        self.actions: Mapping[str, Action] = config.actions
        self.standard: dict[str, StandardBeacon] = resolved.standard
        self.compound: dict[str, CompoundBeacon] = resolved.compound
        self.virtual: dict[str, VirtualField] = resolved.virtual
        self._locations = resolved.locations
        self._signed_locations = resolved.signed_locations
        self.source: KeySource = resolved.key_source or _source_from_keyring(config.keyring)
        multi = self.source if isinstance(self.source, MultiKeyBeaconSource) else None
        self.key_field: str | None = multi.key_field_name if multi is not None else None
        """The multi key store's beacon key field (``search-config.md#beacon-key-field-name``)."""
        self.key_parts: dict[str, tuple[str, str]] = resolved.key_parts
        self.partitions = resolved.partitions
        self._table = config.logical_table_name
        """Compound beacon name -> (split, prefix) of its signed part over the beacon key field."""
        self.signed_actions: dict[str, Action] = {
            name: Action.SIGN_ONLY for name, beacon in self.compound.items() if beacon.is_signed
        }
        """Signed beacons are SIGN_ONLY attributes of their own name (``beacons.md#signed-beacons``)."""
        # A Shared beacon uses the other beacon's key, so only unshared names need one.
        unshared = dict.fromkeys(shared_with(b.style) or n for n, b in self.standard.items())
        self._keys = BeaconKeys(self.source, unshared)

    # -- keys ------------------------------------------------------------------------------------

    def hmac_keys(self, key_id: str | None = None) -> dict[str, Hmac]:
        """One keyed HMAC-SHA384 per standard beacon name, from the key store, cached for the TTL.

        ``key_id`` is the beacon key id of a multi key store (refused for a single key store)."""
        if isinstance(self.source, BeaconKeySource):
            if key_id is not None:
                raise ConfigurationError("a beacon key id is only given with a MultiKeyBeaconSource")
            return self._keys.get(self.source.beacon_key_id)
        if key_id is None:
            raise ConfigurationError("a MultiKeyBeaconSource needs the beacon key id")
        return self._keys.get(key_id)

    def _key(self, name: str, keys: Mapping[str, Hmac]) -> Hmac:
        """A Shared beacon is computed as if it were the other one (``beacons.md#shared-initialization``)."""
        return keys[shared_with(self.standard[name].style) or name]

    def _suffix(self, name: str, keys: Mapping[str, Hmac]) -> bytes:
        """The partition byte (``beacons.md#partition-beacon-encoding``); none outside a partition."""
        if not isinstance(keys, PartitionKeys):
            return b""
        keys.used.add(name)
        return self.partitions.suffix(name, keys.partition)

    # -- names -----------------------------------------------------------------------------------

    def beacon(self, name: str) -> Beacon | None:
        """The beacon called ``name``, if any."""
        return self.standard.get(name) or self.compound.get(name)

    @staticmethod
    def attribute_name(beacon: Beacon) -> str:
        """Where a beacon is stored: ``aws_dbe_b_<name>``, or ``<name>`` for a signed beacon."""
        if isinstance(beacon, CompoundBeacon) and beacon.is_signed:
            return beacon.name
        return BEACON_PREFIX + beacon.name

    # -- values ----------------------------------------------------------------------------------

    def source_value(self, location: Sequence[str | int], item: Mapping[str, AttributeValue]) -> Any:
        """The value at a terminal location; a virtual field's name gives its string as an S value."""
        field = self.virtual.get(str(location[0])) if len(location) == 1 else None
        if field is None:
            return item_path(item, location)
        text = field.evaluate(item)
        return None if text is None else {"S": text}

    def standard_value(self, name: str, value: AttributeValue, keys: Mapping[str, Hmac]) -> str:
        """The standard beacon of an attribute value (its serialized bytes, hashed)."""
        data = serialize(value).value + self._suffix(name, keys)
        return basic_hash(self._key(name, keys), data, self.standard[name].length)

    def query_value(
        self, name: str, value: AttributeValue, keys: Mapping[str, Hmac], for_contains: bool
    ) -> AttributeValue:
        """What a query value compared with standard beacon ``name`` becomes (``GetBeaconValue``): for
        a set beacon, a set of member beacons unless the value is an S, N or B (a member); in
        ``contains``, a set for a set value; else one beacon."""
        tag = next(iter(value), None) if isinstance(value, Mapping) else None
        if is_set(self.standard[name].style) and tag not in ("S", "N", "B"):
            return self._set_value(name, value, keys)  # refuses anything but SS, NS and BS
        if for_contains and tag in _SET_MEMBER:
            return self._set_value(name, value, keys)
        return {"S": self.standard_value(name, value, keys)}

    def _set_value(self, name: str, value: AttributeValue, keys: Mapping[str, Hmac]) -> AttributeValue:
        tag = next(iter(value), None)
        member = _SET_MEMBER.get(str(tag))
        if member is None:
            raise MalformedInputError(f"beacon {name!r} has style AsSet, but the attribute is of type {tag}")
        hashes: dict[str, None] = {}  # ordered, no duplicates
        for entry in value[str(tag)]:
            hashes[self.standard_value(name, {member: entry}, keys)] = None
        return {"SS": list(hashes)}

    def string_hash(self, name: str, text: str, keys: Mapping[str, Hmac]) -> str:
        """The standard beacon ``name`` of a string (compound beacons' encrypted parts)."""
        data = text.encode("utf-8") + self._suffix(name, keys)
        return basic_hash(self._key(name, keys), data, self.standard[name].length)

    def part_string(
        self, beacon: CompoundBeacon, part: Part, item: Mapping[str, AttributeValue]
    ) -> str | None:
        """The plaintext string a part takes from ``item``, or ``None`` when the item lacks it."""
        if isinstance(part, EncryptedPart):
            value = self.source_value(self._locations[part.name], item)
        else:
            value = item_path(item, self._signed_locations[beacon.name, part.name])
        return _parts.value_string(value, part.name)

    def virtual_value(self, name: str, item: Mapping[str, AttributeValue]) -> AttributeValue | None:
        """What a query's beacon name means on a plaintext item (for filtering false positives)."""
        if name in self.standard:
            return self.source_value(self._locations[name], item)  # type: ignore[no-any-return]
        text = _parts.construct(self, self.compound[name], item, None)
        return None if text is None else {"S": text}

    def item_beacons(
        self, item: Mapping[str, AttributeValue], key_id: str | None = None, partition: int = 0
    ) -> dict[str, AttributeValue]:
        """The encrypted beacons of a plaintext item (``ddb-support.md#getencryptedbeacons``), plus the
        version tag. PartOnly beacons are not stored; signed beacons were added before encryption.
        ``key_id``: the beacon key id, with a multi key store; ``partition``: the item's partition."""
        keys = PartitionKeys(self.hmac_keys(key_id), partition)
        out: dict[str, AttributeValue] = {}
        for name, beacon in self.standard.items():
            if isinstance(beacon.style, PartOnly):
                continue
            value = self.source_value(self._locations[name], item)
            if value is None:
                continue
            if is_set(beacon.style):
                out[BEACON_PREFIX + name] = self._set_value(name, value, keys)
            else:
                out[BEACON_PREFIX + name] = {"S": self.standard_value(name, value, keys)}
        for name, compound in self.compound.items():
            if compound.is_signed:
                continue
            text = _parts.construct(self, compound, item, keys)
            if text is not None:
                out[BEACON_PREFIX + name] = {"S": text}
        out[VERSION_TAG] = {"S": " "}
        return out

    # -- ItemEncryptor hooks -----------------------------------------------------------------------

    def add_signed_beacons(self, item: Mapping[str, AttributeValue]) -> Mapping[str, AttributeValue]:
        """Before encryption (``ddb-support.md#addsignedbeacons``): refuse reserved names, then add each
        signed beacon the item can build; a value the item already has must equal the built one."""
        _refuse_reserved(item)
        if self.key_field is not None:
            value = item.get(self.key_field)
            if not isinstance(value, Mapping) or not isinstance(value.get("S"), str) or not value["S"]:
                raise MalformedInputError(
                    f"the item has no string {self.key_field!r}: with a MultiKeyBeaconSource every item "
                    "must name its beacon key id (its branch key id) in that attribute"
                )
        if not self.signed_actions:
            return item
        out = dict(item)
        for name in self.signed_actions:
            text = _parts.construct(self, self.compound[name], item, None)
            if text is None:
                continue
            if name in item and item[name] != {"S": text}:
                raise MalformedInputError(
                    f"the item's {name!r} differs from the value of signed beacon {name!r} built from it"
                )
            out[name] = {"S": text}
        return out

    def add_beacons(self, item: Mapping[str, AttributeValue], out: dict[str, Any]) -> None:
        """After encryption: refuse reserved names in the plaintext, then add the beacons to ``out``."""
        _refuse_reserved(item)
        key_id = None
        if self.key_field is not None:
            # search-config.md#get-beacon-key-after-encrypt: the header's branch key id.
            key_id = key_id_from_header(out)
            if item.get(self.key_field) != {"S": key_id}:
                raise MalformedInputError(
                    f"the item's {self.key_field!r} is not the branch key id it was encrypted under: "
                    "queries naming it would not find its beacons"
                )
        partition = self.partitions.select(item, self._table)  # search-config.md#partition-selector
        out.update(self.item_beacons(item, key_id, partition))

    @staticmethod
    def strip(item: Mapping[str, Any]) -> dict[str, Any]:
        """After decryption: drop the beacon attributes (everything starting with ``aws_dbe_``)."""
        return {name: value for name, value in item.items() if not name.startswith(RESERVED_PREFIX)}

    def __repr__(self) -> str:
        return f"SearchInfo(standard={sorted(self.standard)!r}, compound={sorted(self.compound)!r})"


def _refuse_reserved(item: Mapping[str, Any]) -> None:
    if any(name.startswith(RESERVED_PREFIX) for name in item):
        raise MalformedInputError(f"attribute names starting with {RESERVED_PREFIX!r} are reserved")


def _check_beacon_name(name: object) -> None:
    if not isinstance(name, str) or not name:
        raise ConfigurationError("beacon names must be non-empty strings")
    if name.startswith(RESERVED_PREFIX):
        raise ConfigurationError(f"beacon names may not start with {RESERVED_PREFIX!r}")


def configured(config: TableConfig, name: str) -> bool:
    """A configured field (``search-config.md#configured-field``): has an action, or is unsigned."""
    return name in config.actions or config.allowed_unsigned_name(name)


def _source_from_keyring(keyring: object) -> BeaconKeySource:
    from ..keyrings.hierarchical import HierarchicalKeyring

    if isinstance(keyring, HierarchicalKeyring) and keyring.branch_key_id is not None:
        # The keyring's own store and branch key: the DB-ESDK's single-key-store setup.
        return BeaconKeySource(keyring.key_store, keyring.branch_key_id)
    if type(keyring).__name__ == "AsyncHierarchicalKeyring":
        from ..aio.dynamodb import async_beacon_source

        return async_beacon_source(keyring)
    raise ConfigurationError(
        "beacons need a beacon key: add BeaconKeySource(key_store, beacon_key_id) to beacons, or use "
        "a HierarchicalKeyring with a fixed branch_key_id"
    )
