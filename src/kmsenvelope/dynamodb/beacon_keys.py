"""Beacon key sources (``searchable-encryption/search-config.md#beacon-key-source``) and their caches.

A :class:`BeaconKeySource` is the specification's *single key store*: every item of the table uses
the beacon key of one branch key id. A :class:`MultiKeyBeaconSource` is the *multi key store*: each
item uses the beacon key of the branch key that encrypted it, and a query names its beacon key id
through ``key_field_name``:

* on write (``#get-beacon-key-after-encrypt``) the beacon key id is the provider info of the item
  header's single encrypted data key, which must come from the hierarchical keyring
  (``#get-beacon-key-id-from-parsed-header``);
* on read (``#get-beacon-key-for-query``) it is the value compared with ``key_field_name``, or with a
  signed part over it in a compound beacon, in ``KeyConditionExpression`` and ``FilterExpression``.
  More than one value is refused; a query with none is refused as soon as a beacon needs a key.

Either way the per-beacon HMAC keys are derived once per beacon key id and kept in an LRU cache
(capacity 1 for a single key store, ``cache_size`` for a multi key store) for ``ttl_seconds``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..aws.key_store import BranchKeyStore
from ..errors import ConfigurationError, KeyStoreError, MalformedInputError
from ..primitives.kdf import Hmac
from ..structured.beacon_hash import beacon_hmac
from ..structured.header import parse_header
from ..structured.model import HEADER_FIELD
from .expressions import Compare, Expression, Function, Logical, Node, Not, Path, Value, path_elements
from .policy import RequestRefusedError

__all__ = ["BeaconKeySource", "BeaconKeys", "KeySource", "MultiKeyBeaconSource", "query_key_id"]

HIERARCHY_PROVIDER_ID = "aws-kms-hierarchy"


def _check_ttl(ttl: object) -> None:
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise ConfigurationError("ttl_seconds must be a number")
    if not ttl > 0:
        raise ConfigurationError("ttl_seconds must be positive")


def _check_store(store: object) -> None:
    if not isinstance(store, BranchKeyStore):
        raise ConfigurationError("key_store must implement the BranchKeyStore protocol")


@dataclass(frozen=True)
class BeaconKeySource:
    """Where beacon keys come from: ``key_store.get_beacon_key(beacon_key_id)``, cached ``ttl_seconds``.

    The specification's single key store (one tenant). Optional when the table's keyring is a
    :class:`~kmsenvelope.HierarchicalKeyring` with a fixed ``branch_key_id``: its key store and branch
    key id are used.
    """

    key_store: BranchKeyStore
    beacon_key_id: str
    ttl_seconds: float = 600.0

    def __post_init__(self) -> None:
        _check_store(self.key_store)
        if not isinstance(self.beacon_key_id, str) or not self.beacon_key_id:
            raise ConfigurationError("beacon_key_id must be a non-empty string")
        _check_ttl(self.ttl_seconds)


@dataclass(frozen=True)
class MultiKeyBeaconSource:
    """The multi key store (multi-tenant): one beacon key per branch key id.

    ``key_field_name`` names the attribute holding the beacon key id (the branch key id the item is
    encrypted under). It must be configured ``SIGN_ONLY`` or ``SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT``
    and every written item must carry it as a string equal to its header's branch key id; queries pin
    the tenant with ``key_field_name = :id``. Up to ``cache_size`` tenants' keys are cached for
    ``ttl_seconds`` each, least recently used evicted first. ``clock`` is for tests.
    """

    key_store: BranchKeyStore
    key_field_name: str
    ttl_seconds: float = 600.0
    cache_size: int = 1000
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_store(self.key_store)
        if not isinstance(self.key_field_name, str) or not self.key_field_name:
            raise ConfigurationError("key_field_name must be a non-empty string")
        _check_ttl(self.ttl_seconds)
        if isinstance(self.cache_size, bool) or not isinstance(self.cache_size, int) or self.cache_size < 1:
            raise ConfigurationError("cache_size must be a positive integer")
        if not callable(self.clock):
            raise ConfigurationError("clock must be callable")


KeySource = BeaconKeySource | MultiKeyBeaconSource


class BeaconKeys:
    """The HMAC keys of a key source's standard beacons, per beacon key id, in an LRU+TTL cache
    (``search-config.md#get-beacon-key-materials``). Thread-safe."""

    def __init__(self, source: KeySource, names: Iterable[str]) -> None:
        self.source = source
        self._names = tuple(names)
        self._ttl = float(source.ttl_seconds)
        multi = source if isinstance(source, MultiKeyBeaconSource) else None
        self._capacity = multi.cache_size if multi is not None else 1
        self._clock: Callable[[], float] = multi.clock if multi is not None else time.monotonic
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, dict[str, Hmac]]] = OrderedDict()

    def get(self, key_id: str) -> dict[str, Hmac]:
        """One keyed HMAC-SHA384 per (unshared) standard beacon name, for beacon key id ``key_id``."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key_id)
            if entry is not None and now < entry[0]:
                self._entries.move_to_end(key_id)
                return entry[1]
        materials = self.source.key_store.get_beacon_key(key_id)
        keys: dict[str, Hmac] = {}
        for name in self._names:
            if materials.beacon_key is not None:
                keys[name] = beacon_hmac(materials.beacon_key, name)
            elif name in materials.hmac_keys:
                keys[name] = Hmac("sha384", materials.hmac_keys[name])
            else:
                raise KeyStoreError("the key store returned no beacon key")
        with self._lock:
            self._entries[key_id] = (now + self._ttl, keys)
            self._entries.move_to_end(key_id)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        return keys

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def key_id_from_header(encrypted: Mapping[str, Any]) -> str:
    """The beacon key id of a freshly encrypted item: the provider info of its header's single,
    hierarchical, encrypted data key (``search-config.md#get-beacon-key-id-from-parsed-header``)."""
    value = encrypted.get(HEADER_FIELD)
    if not isinstance(value, Mapping) or "B" not in value:
        raise MalformedInputError("the encrypted item has no header")
    edks = parse_header(value["B"]).encrypted_data_keys
    if len(edks) != 1:
        raise MalformedInputError(
            "with a MultiKeyBeaconSource the item header must hold exactly one encrypted data key"
        )
    if edks[0].provider_id != HIERARCHY_PROVIDER_ID:
        raise MalformedInputError(
            "with a MultiKeyBeaconSource items must be encrypted by the hierarchical keyring"
        )
    try:
        return bytes(edks[0].provider_info).decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedInputError("the header's branch key id is not UTF-8") from None


def query_key_id(
    key_field: str,
    key_parts: Mapping[str, tuple[str, str]],
    expressions: Iterable[Expression],
    names: Mapping[str, str] | None,
    values: Mapping[str, Any] | None,
) -> str | None:
    """The beacon key id a query names (``search-config.md#get-beacon-key-for-query``), or ``None``.

    Counted: ``key_field = :v`` with an S value, and a compound beacon over a signed part of
    ``key_field`` (``key_parts``: beacon name -> (split, prefix)) compared ``=`` with, or
    ``begins_with`` a string holding one complete piece with that prefix. More than one distinct id
    is refused; so is one that only appears under ``OR`` or ``NOT`` (it would not pin the query).
    """
    found: list[str] = []
    pinned: set[str] = set()
    for expression in expressions:
        for node, top in _comparisons(expression.root, True):
            key_id = _key_id_of(node, key_field, key_parts, names, values or {})
            if key_id is None:
                continue
            if key_id not in found:
                found.append(key_id)
            if top:
                pinned.add(key_id)
    if len(found) > 1:
        raise RequestRefusedError(
            f"the query names {len(found)} different values of beacon key field {key_field!r}: "
            "a query may only search one tenant's beacons"
        )
    if found and found[0] not in pinned:
        raise RequestRefusedError(
            f"beacon key field {key_field!r} is only compared under OR or NOT: the query does not "
            "pin a single beacon key"
        )
    return found[0] if found else None


def _comparisons(node: Node, top: bool) -> Iterable[tuple[Node, bool]]:
    if isinstance(node, Logical):
        for item in node.items:
            yield from _comparisons(item, top and node.op.upper() == "AND")
    elif isinstance(node, Not):
        yield from _comparisons(node.item, False)
    elif isinstance(node, (Compare, Function)):
        yield node, top


def _key_id_of(
    node: Node,
    key_field: str,
    key_parts: Mapping[str, tuple[str, str]],
    names: Mapping[str, str] | None,
    values: Mapping[str, Any],
) -> str | None:
    operands: tuple[Any, Any]
    if isinstance(node, Compare) and node.op == "=":
        operands = (node.left, node.right) if isinstance(node.left, Path) else (node.right, node.left)
        complete = True
    elif isinstance(node, Function) and node.name == "begins_with" and len(node.args) == 2:
        operands, complete = (node.args[0], node.args[1]), False
    else:
        return None
    path, value = operands
    if not isinstance(path, Path) or not isinstance(value, Value):
        return None
    elements = path_elements(path.token.text, names)
    attribute = values.get(value.token.text)
    if len(elements) != 1 or not isinstance(attribute, Mapping) or not isinstance(attribute.get("S"), str):
        return None
    text: str = attribute["S"]
    if elements[0] == key_field:
        return text if complete and text else None
    part = key_parts.get(str(elements[0]))
    if part is None:
        return None
    split, prefix = part
    pieces = text.split(split)
    if not complete:
        pieces = pieces[:-1]  # the last piece of a begins_with value may be cut short
    matching = [p for p in pieces if p.startswith(prefix)]
    if len(matching) != 1 or len(matching[0]) == len(prefix):
        return None
    return matching[0][len(prefix) :]
