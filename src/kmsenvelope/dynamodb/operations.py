"""Per-table request and response transformations shared by the encrypted client, table and resource.

Everything here works on low-level DynamoDB JSON and never talks to the network: the wrappers call
``before`` methods, send the returned request with boto3, then call ``after`` methods on the response.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError
from ..structured.model import FOOTER_FIELD, HEADER_FIELD, Action
from .config import TableConfig
from .encryptor import ItemEncryptor
from .formats import fetch_whole_items, read_needs
from .policy import (
    RequestRefusedError,
    check_condition,
    check_legacy,
    check_update,
    check_writable,
)
from .projection import Projection, plan_projection
from .search import ReadFilter, plan_read

__all__ = ["ReadPlan", "TableOperations", "configured_tables", "table_name"]

_WHOLE_ITEM = ("ALL_OLD", "ALL_NEW")


def table_name(value: object) -> str | None:
    """A request's ``TableName`` as a bare name (table ARNs are accepted by DynamoDB too)."""
    if not isinstance(value, str):
        return None
    if value.startswith("arn:") and ":table/" in value:
        return value.split(":table/", 1)[1].split("/", 1)[0]
    return value


def configured_tables(tables: Mapping[str, TableConfig]) -> dict[str, TableOperations]:
    """Validate a ``{table name: TableConfig}`` mapping and build each table's operations."""
    if not isinstance(tables, Mapping):
        raise ConfigurationError("tables must map DynamoDB table names to TableConfig objects")
    out: dict[str, TableOperations] = {}
    for name, config in tables.items():
        if not isinstance(name, str) or not name:
            raise ConfigurationError("table names must be non-empty strings")
        if not isinstance(config, TableConfig):
            raise ConfigurationError(f"table {name!r}: expected a TableConfig")
        out[name] = TableOperations(name, config)
    return out


@dataclass(frozen=True)
class ReadPlan:
    """What to do with a Query or Scan page after decryption: drop false positives, then project."""

    filter: ReadFilter | None = None
    projection: Projection | None = None


class TableOperations:
    """What encryption changes in each DynamoDB operation on one table."""

    def __init__(self, name: str, config: TableConfig) -> None:
        self.name = name
        self.config = config
        self.encryptor = ItemEncryptor(config)
        info = config._search
        # Compound beacon names may not be written; signed beacons are ordinary signed attributes.
        compound = info.compound if info is not None else {}
        self._reserved = frozenset(name for name, beacon in compound.items() if not beacon.is_signed)
        self.keys = tuple(k for k in (config.partition_key, config.sort_key) if k is not None)
        # What a projected read must fetch for the item to decrypt: header, footer, signed attributes.
        signed = (n for n, a in config.actions.items() if a is not Action.DO_NOTHING)
        self._decrypt_needs = (HEADER_FIELD, FOOTER_FIELD, *signed, *read_needs(config))
        # Legacy items only verify whole: projected reads fetch everything and project afterwards.
        self._whole_items = config.legacy is not None and config.legacy.policy.allows_decrypt

    # -- items -----------------------------------------------------------------------------------

    def encrypt(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """The stored form of a plaintext item (beacons included)."""
        check_writable(self.name, item, self._reserved)
        return self.encryptor.encrypt_item(item)

    def decrypt(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """The plaintext of a stored item; raises unless it authenticates."""
        return self.encryptor.decrypt_item(item)

    def key_of(self, item: Mapping[str, Any]) -> tuple[str, ...]:
        """A hashable form of an item's primary key."""
        return tuple(repr(item.get(k)) for k in self.keys)

    # -- requests --------------------------------------------------------------------------------

    def before_put(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """PutItem (and a transaction's Put): validate the condition, encrypt the item."""
        self.check_write(params)
        if "Item" not in params:
            raise RequestRefusedError("put_item needs an Item")
        out = dict(params)
        out["Item"] = self.encrypt(params["Item"])
        return out

    def check_write(self, params: Mapping[str, Any]) -> None:
        """DeleteItem, ConditionCheck, Put: no legacy parameters, no condition on encrypted data."""
        check_legacy(self.name, params)
        check_condition(
            self.name,
            self.config.actions,
            params.get("ConditionExpression"),
            params.get("ExpressionAttributeNames"),
        )

    def check_update(self, params: Mapping[str, Any]) -> None:
        """UpdateItem (and a transaction's Update): only attributes allowed unsigned may change."""
        self.check_write(params)
        check_update(
            self.name,
            self.config.allowed_unsigned_name,
            params.get("UpdateExpression"),
            params.get("ExpressionAttributeNames"),
            self.keys,
        )

    def before_get(self, params: Mapping[str, Any]) -> tuple[dict[str, Any], Projection | None]:
        """GetItem, BatchGetItem and TransactGetItems entries: a projection widened for decryption."""
        check_legacy(self.name, params)
        request, projection = plan_projection(params, self._decrypt_needs)
        return (fetch_whole_items(request) if self._whole_items else request), projection

    def before_read(self, params: Mapping[str, Any]) -> tuple[dict[str, Any], ReadPlan]:
        """Query and Scan: legacy parameters refused, beacons substituted, projection widened."""
        check_legacy(self.name, params)
        request, flt = plan_read(self.config.actions, self.config._search, params)
        needs = list(self._decrypt_needs)
        if flt is not None:  # the false-positive filter re-reads what the expressions name
            info = self.config._search
            needs += [n for n in flt.attributes() if n in self.config.actions or info.beacon(n) is None]
        request, projection = plan_projection(request, needs)
        if self._whole_items:
            request = fetch_whole_items(request)
        return request, ReadPlan(flt, projection)

    # -- responses -------------------------------------------------------------------------------

    def after_read(self, response: dict[str, Any], plan: ReadPlan) -> dict[str, Any]:
        """Decrypt every item of a Query or Scan page, drop beacon false positives, then project."""
        if "Items" in response:
            response["Items"] = [self.decrypt(item) for item in response["Items"]]
        if plan.filter is not None:
            response = plan.filter.apply(response)
        if plan.projection is not None and "Items" in response:
            response["Items"] = [plan.projection.apply(item) for item in response["Items"]]
        return response

    def read_item(self, item: Mapping[str, Any], projection: Projection | None) -> dict[str, Any]:
        """A fetched item decrypted, then cut down to the caller's projection (if any)."""
        plain = self.decrypt(item)
        return projection.apply(plain) if projection is not None else plain

    def after_write(self, response: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        """Decrypt ``Attributes`` returned as a whole item (``ReturnValues`` ALL_OLD or ALL_NEW)."""
        if "Attributes" in response and params.get("ReturnValues") in _WHOLE_ITEM:
            response["Attributes"] = self.decrypt(response["Attributes"])
        return response

    def after_get(self, response: dict[str, Any], projection: Projection | None = None) -> dict[str, Any]:
        """Decrypt (and project) GetItem's ``Item``."""
        if "Item" in response:
            response["Item"] = self.read_item(response["Item"], projection)
        return response

    def __repr__(self) -> str:
        return f"TableOperations({self.name!r})"
