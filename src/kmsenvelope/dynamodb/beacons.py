"""Searchable encryption: standard and compound beacons (``searchable-encryption/beacons.md``).

A standard beacon is the truncated HMAC-SHA384 of an encrypted attribute's serialized value, keyed
with a per-beacon key ``HKDF-SHA512(beacon key, salt=None, info="AWS_DBE_SCAN_BEACON" || name, 64)``
where the beacon key comes from a branch key store's ``get_beacon_key``. The value kept is the
rightmost ``length`` bits of the first 8 HMAC bytes, as ``ceil(length / 4)`` lowercase hex digits.
A compound beacon joins prefixed parts with a split character: signed parts in plaintext, encrypted
parts as ``prefix || hash(UTF-8 of the part's string value)`` under their standard beacon's key.

Beacons are written next to the encrypted item as ``aws_dbe_b_<name>`` (plus the version tag
``aws_dbe_v_1``); these attributes are outside the signature. :class:`SearchInfo` is what a
:class:`~kmsenvelope.dynamodb.TableConfig` with beacons compiles to. Rewriting queries lives in
:mod:`.search`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..aws.key_store import BranchKeyStore
from ..errors import ConfigurationError, KeyStoreError, MalformedInputError
from ..primitives.kdf import Hmac
from ..structured.beacon_hash import basic_hash, beacon_hmac
from ..structured.model import RESERVED_PREFIX, Action
from . import _parts
from ._parts import Constructor, ConstructorPart, EncryptedPart, Part, SignedPart
from .attributes import serialize
from .evaluate import item_path
from .expressions import path_elements

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
    "SearchInfo",
    "SignedPart",
    "StandardBeacon",
    "basic_hash",
]

BEACON_PREFIX = "aws_dbe_b_"
VERSION_TAG = "aws_dbe_v_1"
"""Written with every beaconized item; its value is a single space (beacon version 1)."""
AttributeValue = Mapping[str, Any]


@dataclass(frozen=True)
class StandardBeacon:
    """A beacon over one encrypted attribute: ``length`` bits (1-63) of a keyed hash of its value.

    ``location`` is the terminal location (default: ``name``), e.g. ``"address.zip"``.
    """

    name: str
    length: int
    location: str | None = None

    def __post_init__(self) -> None:
        _check_beacon_name(self.name)
        if isinstance(self.length, bool) or not isinstance(self.length, int) or not 1 <= self.length <= 63:
            raise ConfigurationError(f"beacon {self.name!r}: length must be an int from 1 to 63 bits")
        _location(self.location if self.location is not None else self.name, self.name)


@dataclass(frozen=True)
class CompoundBeacon:
    """A searchable string assembled from prefixed parts joined by ``split``.

    ``encrypted_parts``: :class:`EncryptedPart` (or ``(standard beacon name, prefix)`` pairs, or a
    ``{name: prefix}`` mapping); ``signed_parts``: :class:`SignedPart` (or ``(name, prefix)`` pairs or a
    mapping) over SIGN_ONLY attributes; ``constructors``: which parts make a value, in order (default:
    every signed part then every encrypted part, all required).
    """

    name: str
    split: str
    encrypted_parts: Sequence[EncryptedPart | tuple[str, str]] | Mapping[str, str] = ()
    signed_parts: Sequence[SignedPart | tuple[str, str]] | Mapping[str, str] = ()
    constructors: Sequence[Constructor | Sequence[Any]] | None = None

    def __post_init__(self) -> None:
        _check_beacon_name(self.name)
        if not isinstance(self.split, str) or len(self.split) != 1:
            raise ConfigurationError(f"compound beacon {self.name!r}: split must be a single character")
        encrypted = _parts.coerce_parts(self.encrypted_parts, EncryptedPart, self.name)
        signed = _parts.coerce_parts(self.signed_parts, SignedPart, self.name)
        object.__setattr__(self, "encrypted_parts", encrypted)
        object.__setattr__(self, "signed_parts", signed)
        parts: tuple[Part, ...] = (*signed, *encrypted)
        if not encrypted:
            raise ConfigurationError(
                f"compound beacon {self.name!r} has no encrypted part: signed-only beacons are not supported"
            )
        _parts.check_prefixes(parts, self.name)
        object.__setattr__(
            self, "constructors", _parts.coerce_constructors(self.constructors, parts, self.name)
        )


@dataclass(frozen=True)
class BeaconKeySource:
    """Where beacon keys come from: ``key_store.get_beacon_key(beacon_key_id)``, cached ``ttl_seconds``.

    Optional when the table's keyring is a :class:`~kmsenvelope.HierarchicalKeyring` with a fixed
    ``branch_key_id``: its key store and branch key id are used.
    """

    key_store: BranchKeyStore
    beacon_key_id: str
    ttl_seconds: float = 600.0

    def __post_init__(self) -> None:
        if not isinstance(self.key_store, BranchKeyStore):
            raise ConfigurationError("key_store must implement the BranchKeyStore protocol")
        if not isinstance(self.beacon_key_id, str) or not self.beacon_key_id:
            raise ConfigurationError("beacon_key_id must be a non-empty string")
        if isinstance(self.ttl_seconds, bool) or not isinstance(self.ttl_seconds, (int, float)):
            raise ConfigurationError("ttl_seconds must be a number")
        if not self.ttl_seconds > 0:
            raise ConfigurationError("ttl_seconds must be positive")


Beacon = StandardBeacon | CompoundBeacon


class SearchInfo:
    """The beacons of one table, validated against its attribute actions, with their keys."""

    def __init__(self, config: TableConfig, beacons: Sequence[Any]) -> None:
        self.actions: Mapping[str, Action] = config.actions
        sources = [b for b in beacons if isinstance(b, BeaconKeySource)]
        unknown = [b for b in beacons if not isinstance(b, (StandardBeacon, CompoundBeacon, BeaconKeySource))]
        if unknown:
            raise ConfigurationError(
                "beacons must be StandardBeacon, CompoundBeacon or BeaconKeySource objects"
            )
        if len(sources) > 1:
            raise ConfigurationError("give at most one BeaconKeySource")
        self.standard: dict[str, StandardBeacon] = {}
        self.compound: dict[str, CompoundBeacon] = {}
        self._locations: dict[str, list[str | int]] = {}
        for beacon in beacons:
            if isinstance(beacon, StandardBeacon):
                self._add_standard(config, beacon)
        for beacon in beacons:
            if isinstance(beacon, CompoundBeacon):
                self._add_compound(config, beacon)
        if not self.standard:
            raise ConfigurationError("searchable encryption needs at least one StandardBeacon")
        self.source = sources[0] if sources else _source_from_keyring(config.keyring)
        self._lock = threading.Lock()
        self._keys: dict[str, Hmac] | None = None
        self._expires = 0.0

    # -- configuration -----------------------------------------------------------------------------

    def _add_standard(self, config: TableConfig, beacon: StandardBeacon) -> None:
        if beacon.name in self.standard:
            raise ConfigurationError(f"two standard beacons are named {beacon.name!r}")
        if _configured(config, beacon.name) and self.actions.get(beacon.name) is not Action.ENCRYPT_AND_SIGN:
            raise ConfigurationError(f"beacon {beacon.name!r} has the name of an unencrypted attribute")
        location = _location(beacon.location or beacon.name, beacon.name)
        if self.actions.get(str(location[0])) is not Action.ENCRYPT_AND_SIGN:
            raise ConfigurationError(
                f"standard beacon {beacon.name!r} must be over an ENCRYPT_AND_SIGN attribute"
            )
        if location in self._locations.values():
            raise ConfigurationError(f"two standard beacons share the location of {beacon.name!r}")
        self.standard[beacon.name] = beacon
        self._locations[beacon.name] = location

    def _add_compound(self, config: TableConfig, beacon: CompoundBeacon) -> None:
        name = beacon.name
        if name in self.compound or name in self.standard:
            raise ConfigurationError(f"two beacons are named {name!r}")
        if _configured(config, name):
            raise ConfigurationError(f"compound beacon {name!r} has the name of a configured attribute")
        for part in beacon.encrypted_parts:
            assert isinstance(part, EncryptedPart)
            if part.name not in self.standard:
                raise ConfigurationError(
                    f"compound beacon {name!r}: encrypted part {part.name!r} is not a standard beacon"
                )
        for signed in beacon.signed_parts:
            assert isinstance(signed, SignedPart)
            location = _location(signed.location or signed.name, name)
            if self.actions.get(str(location[0])) not in (
                Action.SIGN_ONLY,
                Action.SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT,
            ):
                raise ConfigurationError(
                    f"compound beacon {name!r}: signed part {signed.name!r} must be over a signed, "
                    "unencrypted attribute"
                )
            self._locations.setdefault(f"\x00{name}\x00{signed.name}", location)
        self.compound[name] = beacon

    # -- keys ------------------------------------------------------------------------------------

    def hmac_keys(self) -> dict[str, Hmac]:
        """One keyed HMAC-SHA384 per standard beacon, from the key store, cached for the TTL."""
        now = time.monotonic()
        with self._lock:
            if self._keys is not None and now < self._expires:
                return self._keys
        materials = self.source.key_store.get_beacon_key(self.source.beacon_key_id)
        keys: dict[str, Hmac] = {}
        for name in self.standard:
            if materials.beacon_key is not None:
                keys[name] = beacon_hmac(materials.beacon_key, name)
            elif name in materials.hmac_keys:
                keys[name] = Hmac("sha384", materials.hmac_keys[name])
            else:
                raise KeyStoreError("the key store returned no beacon key")
        with self._lock:
            self._keys, self._expires = keys, now + float(self.source.ttl_seconds)
        return keys

    # -- values ----------------------------------------------------------------------------------

    def beacon(self, name: str) -> Beacon | None:
        """The beacon called ``name``, if any."""
        return self.standard.get(name) or self.compound.get(name)

    def standard_value(self, name: str, value: AttributeValue, keys: Mapping[str, Hmac]) -> str:
        """The standard beacon of an attribute value (its serialized bytes, hashed)."""
        return basic_hash(keys[name], serialize(value).value, self.standard[name].length)

    def string_hash(self, name: str, text: str, keys: Mapping[str, Hmac]) -> str:
        """The standard beacon ``name`` of a string (compound beacons' encrypted parts)."""
        return basic_hash(keys[name], text.encode("utf-8"), self.standard[name].length)

    def part_string(
        self, beacon: CompoundBeacon, part: Part, item: Mapping[str, AttributeValue]
    ) -> str | None:
        """The plaintext string a part takes from ``item``, or ``None`` when the item lacks it."""
        if isinstance(part, EncryptedPart):
            location = self._locations[part.name]
        else:
            location = self._locations[f"\x00{beacon.name}\x00{part.name}"]
        return _parts.value_string(item_path(item, location), part.name)

    def virtual_value(self, name: str, item: Mapping[str, AttributeValue]) -> AttributeValue | None:
        """What a query's beacon name means on a plaintext item (for filtering false positives)."""
        if name in self.standard:
            return item_path(item, self._locations[name])
        text = _parts.construct(self, self.compound[name], item, None)
        return None if text is None else {"S": text}

    def item_beacons(self, item: Mapping[str, AttributeValue]) -> dict[str, AttributeValue]:
        """Every beacon attribute of a plaintext item, plus the version tag."""
        keys = self.hmac_keys()
        out: dict[str, AttributeValue] = {}
        for name in self.standard:
            value = item_path(item, self._locations[name])
            if value is not None:
                out[BEACON_PREFIX + name] = {"S": self.standard_value(name, value, keys)}
        for name, beacon in self.compound.items():
            text = _parts.construct(self, beacon, item, keys)
            if text is not None:
                out[BEACON_PREFIX + name] = {"S": text}
        out[VERSION_TAG] = {"S": " "}
        return out

    # -- ItemEncryptor hooks -----------------------------------------------------------------------

    def add_beacons(self, item: Mapping[str, AttributeValue], out: dict[str, Any]) -> None:
        """After encryption: refuse reserved names in the plaintext, then add the beacons to ``out``."""
        reserved = sorted(name for name in item if name.startswith(RESERVED_PREFIX))
        if reserved:
            raise MalformedInputError(f"attribute names starting with {RESERVED_PREFIX!r} are reserved")
        out.update(self.item_beacons(item))

    @staticmethod
    def strip(item: Mapping[str, Any]) -> dict[str, Any]:
        """After decryption: drop the beacon attributes (everything starting with ``aws_dbe_``)."""
        return {name: value for name, value in item.items() if not name.startswith(RESERVED_PREFIX)}

    def __repr__(self) -> str:
        return f"SearchInfo(standard={sorted(self.standard)!r}, compound={sorted(self.compound)!r})"


def _check_beacon_name(name: object) -> None:
    if not isinstance(name, str) or not name:
        raise ConfigurationError("beacon names must be non-empty strings")
    if name.startswith(RESERVED_PREFIX):
        raise ConfigurationError(f"beacon names may not start with {RESERVED_PREFIX!r}")


def _location(text: str, owner: str) -> list[str | int]:
    if not isinstance(text, str) or not text or "#" in text:
        raise ConfigurationError(f"beacon {owner!r}: invalid terminal location")
    try:
        elements = path_elements(text, None)
    except MalformedInputError:
        raise ConfigurationError(f"beacon {owner!r}: invalid terminal location") from None
    rebuilt = "".join(f"[{e}]" if isinstance(e, int) else f".{e}" for e in elements)[1:]
    if not elements or not isinstance(elements[0], str) or rebuilt != text.replace(" ", ""):
        raise ConfigurationError(f"beacon {owner!r}: invalid terminal location {text!r}")
    return elements


def _configured(config: TableConfig, name: str) -> bool:
    return name in config.actions or config.allowed_unsigned_name(name)


def _source_from_keyring(keyring: object) -> BeaconKeySource:
    from ..keyrings.hierarchical import HierarchicalKeyring

    if isinstance(keyring, HierarchicalKeyring) and keyring.branch_key_id is not None:
        # The keyring's own store and branch key: the DB-ESDK's single-key-store setup.
        return BeaconKeySource(keyring.key_store, keyring.branch_key_id)
    raise ConfigurationError(
        "beacons need a beacon key: add BeaconKeySource(key_store, beacon_key_id) to beacons, or use "
        "a HierarchicalKeyring with a fixed branch_key_id"
    )
