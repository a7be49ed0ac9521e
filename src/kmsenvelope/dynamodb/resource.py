"""``EncryptedResource``: a boto3 DynamoDB service resource whose batch operations and ``Table``
objects encrypt the configured tables.

::

    resource = EncryptedResource(boto3.resource("dynamodb"), {"orders": config})
    resource.batch_write_item(RequestItems={"orders": [{"PutRequest": {"Item": {...}}}]})
    resource.Table("orders").get_item(Key={"order_id": "o-1"})["Item"]  # an EncryptedTable
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigurationError
from .config import TableConfig
from .operations import table_name
from .projection import Projection
from .table import EncryptedTable

__all__ = ["EncryptedResource"]


class EncryptedResource:
    """Wraps ``boto3.resource("dynamodb")``; ``tables`` maps table names to their :class:`TableConfig`."""

    def __init__(self, resource: Any, tables: Mapping[str, TableConfig]) -> None:
        if not isinstance(tables, Mapping):
            raise ConfigurationError("tables must map DynamoDB table names to TableConfig objects")
        self._resource = resource
        self._tables = {name: EncryptedTable(resource.Table(name), config) for name, config in tables.items()}

    @property
    def resource(self) -> Any:
        """The wrapped boto3 service resource."""
        return self._resource

    def Table(self, name: str) -> Any:
        """An :class:`EncryptedTable` for configured tables, the plain ``Table`` otherwise."""
        configured = self._tables.get(table_name(name) or "")
        return configured if configured is not None else self._resource.Table(name)

    def batch_write_item(self, **params: Any) -> dict[str, Any]:
        """BatchWriteItem with puts to configured tables encrypted; unprocessed puts returned in plaintext."""
        originals: dict[tuple[str, tuple[str, ...]], Any] = {}
        request_items: dict[str, Any] = {}
        for name, requests in (params.get("RequestItems") or {}).items():
            table = self._tables.get(table_name(name) or "")
            if table is None:
                request_items[name] = requests
                continue
            out = []
            for entry in requests:
                if "PutRequest" in entry:
                    item = entry["PutRequest"]["Item"]
                    originals[(name, self._key(table, item))] = entry
                    entry = {**entry, "PutRequest": {**entry["PutRequest"], "Item": table.encrypt_item(item)}}
                out.append(entry)
            request_items[name] = out
        response = dict(self._resource.batch_write_item(**{**params, "RequestItems": request_items}))
        for name, requests in (response.get("UnprocessedItems") or {}).items():
            table = self._tables.get(table_name(name) or "")
            if table is not None:
                response["UnprocessedItems"][name] = [
                    originals.get((name, self._key(table, e["PutRequest"]["Item"])), e)
                    if "PutRequest" in e
                    else e
                    for e in requests
                ]
        return response

    def batch_get_item(self, **params: Any) -> dict[str, Any]:
        """BatchGetItem with the items of configured tables decrypted (and projected).

        ``UnprocessedKeys`` of configured tables come back with the caller's own projection.
        """
        request_items: dict[str, Any] = {}
        plans: dict[str, tuple[EncryptedTable, Any, Projection | None]] = {}
        for name, request in (params.get("RequestItems") or {}).items():
            table = self._tables.get(table_name(name) or "")
            if table is None:
                request_items[name] = request
                continue
            request_items[name], projection = table.operations.before_get(request)
            plans[name] = (table, request, projection)
        response = dict(self._resource.batch_get_item(**{**params, "RequestItems": request_items}))
        for name, items in (response.get("Responses") or {}).items():
            if name in plans:
                table, _request, projection = plans[name]
                response["Responses"][name] = [table.read_item(item, projection) for item in items]
        for name, unprocessed in (response.get("UnprocessedKeys") or {}).items():
            if name in plans:
                response["UnprocessedKeys"][name] = {**plans[name][1], "Keys": unprocessed.get("Keys", [])}
        return response

    @staticmethod
    def _key(table: EncryptedTable, item: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(repr(item.get(k)) for k in table.operations.keys)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._resource, name)

    def __repr__(self) -> str:
        return f"EncryptedResource(tables={sorted(self._tables)!r})"
