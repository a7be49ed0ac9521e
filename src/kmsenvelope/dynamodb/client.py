"""``EncryptedClient``: a boto3 DynamoDB client that encrypts and decrypts items of configured tables
(``ddb-sdk-integration.md``).

::

    client = EncryptedClient(boto3.client("dynamodb"), {"orders": config})
    client.put_item(TableName="orders", Item={"order_id": {"S": "o-1"}, "card": {"S": "4111..."}})
    client.get_item(TableName="orders", Key={"order_id": {"S": "o-1"}})["Item"]  # plaintext

Writes (``put_item``, ``batch_write_item``, ``transact_write_items``) encrypt; reads (``get_item``,
``query``, ``scan``, their paginators, ``batch_get_item``, ``transact_get_items``, and ``Attributes``
returned whole by ``delete_item``/``put_item``/``update_item``) decrypt. Requests that cannot be
served safely on an encrypted table raise :class:`~kmsenvelope.dynamodb.policy.RequestRefusedError`
before anything is sent (see :mod:`.policy`). Tables with a legacy config or plaintext policy read
(and write) legacy and plaintext items as it says (:mod:`.formats`). Unconfigured tables pass through
untouched, and every other client method is the wrapped client's own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .config import TableConfig
from .operations import ReadPlan, TableOperations, configured_tables, table_name
from .policy import RequestRefusedError, partiql_tables
from .projection import Projection

__all__ = ["EncryptedClient", "EncryptedPageIterator", "EncryptedPaginator"]


class EncryptedClient:
    """Wraps a boto3 DynamoDB client; ``tables`` maps table names to their :class:`TableConfig`."""

    def __init__(self, client: Any, tables: Mapping[str, TableConfig]) -> None:
        self._client = client
        self._tables = configured_tables(tables)

    @property
    def client(self) -> Any:
        """The wrapped boto3 client."""
        return self._client

    def operations(self, table: object) -> TableOperations | None:
        """The encryption of ``table`` (a name or ARN), or ``None`` when it is not configured."""
        name = table_name(table)
        return self._tables.get(name) if name is not None else None

    # -- single items ------------------------------------------------------------------------------

    def put_item(self, **params: Any) -> dict[str, Any]:
        """PutItem with the item encrypted; ``Attributes`` (ReturnValues=ALL_OLD) decrypted."""
        ops = self.operations(params.get("TableName"))
        if ops is None:
            return dict(self._client.put_item(**params))
        response = dict(self._client.put_item(**ops.before_put(params)))
        return ops.after_write(response, params)

    def get_item(self, **params: Any) -> dict[str, Any]:
        """GetItem with the item decrypted (and cut down to ``ProjectionExpression``)."""
        ops = self.operations(params.get("TableName"))
        if ops is None:
            return dict(self._client.get_item(**params))
        request, projection = ops.before_get(params)
        return ops.after_get(dict(self._client.get_item(**request)), projection)

    def delete_item(self, **params: Any) -> dict[str, Any]:
        """DeleteItem; ``Attributes`` (ReturnValues=ALL_OLD) decrypted."""
        ops = self.operations(params.get("TableName"))
        if ops is None:
            return dict(self._client.delete_item(**params))
        ops.check_write(params)
        return ops.after_write(dict(self._client.delete_item(**params)), params)

    def update_item(self, **params: Any) -> dict[str, Any]:
        """UpdateItem of attributes allowed unsigned only; whole-item ``Attributes`` decrypted."""
        ops = self.operations(params.get("TableName"))
        if ops is None:
            return dict(self._client.update_item(**params))
        ops.check_update(params)
        return ops.after_write(dict(self._client.update_item(**params)), params)

    # -- queries ---------------------------------------------------------------------------------

    def query(self, **params: Any) -> dict[str, Any]:
        """Query with beacons substituted, items decrypted and beacon false positives dropped.

        On a table whose legacy config or plaintext policy allows legacy or plaintext items, a condition
        on a beacon cannot match those items (they carry no beacons) until they are re-encrypted.
        """
        return self._read("query", params)

    def scan(self, **params: Any) -> dict[str, Any]:
        """Scan with beacons substituted, items decrypted and beacon false positives dropped.

        Legacy and plaintext items are returned as the table's policy allows, but never matched by a
        beacon condition (they carry no beacons).
        """
        return self._read("scan", params)

    def _read(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        method = getattr(self._client, operation)
        ops = self.operations(params.get("TableName"))
        if ops is None:
            return dict(method(**params))
        request, plan = ops.before_read(params)
        return ops.after_read(dict(method(**request)), plan)

    def get_paginator(self, operation_name: str) -> Any:
        """Paginators; ``query`` and ``scan`` ones decrypt (and filter) every page."""
        paginator = self._client.get_paginator(operation_name)
        if operation_name in ("query", "scan"):
            return EncryptedPaginator(self, paginator)
        return paginator

    # -- batches and transactions ------------------------------------------------------------------

    def batch_write_item(self, **params: Any) -> dict[str, Any]:
        """BatchWriteItem with every PutRequest of a configured table encrypted.

        ``UnprocessedItems`` come back as the caller's plaintext items, ready to be retried.
        """
        request_items = params.get("RequestItems") or {}
        originals: dict[tuple[str, tuple[str, ...]], Any] = {}
        encrypted: dict[str, Any] = {}
        for table, requests in request_items.items():
            ops = self.operations(table)
            if ops is None:
                encrypted[table] = requests
                continue
            out = []
            for entry in requests:
                if "PutRequest" in entry:
                    item = entry["PutRequest"]["Item"]
                    originals[(table, ops.key_of(item))] = entry
                    entry = {**entry, "PutRequest": {**entry["PutRequest"], "Item": ops.encrypt(item)}}
                out.append(entry)
            encrypted[table] = out
        response = dict(self._client.batch_write_item(**{**params, "RequestItems": encrypted}))
        for table, requests in (response.get("UnprocessedItems") or {}).items():
            ops = self.operations(table)
            if ops is not None:
                response["UnprocessedItems"][table] = [
                    originals.get((table, ops.key_of(e["PutRequest"]["Item"])), e) if "PutRequest" in e else e
                    for e in requests
                ]
        return response

    def batch_get_item(self, **params: Any) -> dict[str, Any]:
        """BatchGetItem with the items of configured tables decrypted (and projected).

        ``UnprocessedKeys`` of configured tables come back with the caller's own projection.
        """
        request_items: dict[str, Any] = {}
        plans: dict[str, tuple[TableOperations, Any, Projection | None]] = {}
        for table, request in (params.get("RequestItems") or {}).items():
            ops = self.operations(table)
            if ops is None:
                request_items[table] = request
                continue
            request_items[table], projection = ops.before_get(request)
            plans[table] = (ops, request, projection)
        response = dict(self._client.batch_get_item(**{**params, "RequestItems": request_items}))
        for table, items in (response.get("Responses") or {}).items():
            if table in plans:
                ops, _request, projection = plans[table]
                response["Responses"][table] = [ops.read_item(item, projection) for item in items]
        for table, unprocessed in (response.get("UnprocessedKeys") or {}).items():
            if table in plans:
                response["UnprocessedKeys"][table] = {**plans[table][1], "Keys": unprocessed.get("Keys", [])}
        return response

    def transact_write_items(self, **params: Any) -> dict[str, Any]:
        """TransactWriteItems: Puts encrypted, Updates limited to unsigned attributes, conditions checked."""
        out = []
        for entry in params.get("TransactItems") or []:
            entry = dict(entry)
            for kind, action in list(entry.items()):
                ops = self.operations(action.get("TableName")) if isinstance(action, Mapping) else None
                if ops is None:
                    continue
                if kind == "Put":
                    entry[kind] = ops.before_put(action)
                elif kind == "Update":
                    ops.check_update(action)
                else:
                    ops.check_write(action)
            out.append(entry)
        return dict(self._client.transact_write_items(**{**params, "TransactItems": out}))

    def transact_get_items(self, **params: Any) -> dict[str, Any]:
        """TransactGetItems with the items of configured tables decrypted (and projected)."""
        tables: list[tuple[TableOperations, Projection | None] | None] = []
        entries = []
        for entry in params.get("TransactItems") or []:
            get = entry.get("Get") or {}
            ops = self.operations(get.get("TableName"))
            if ops is None:
                tables.append(None)
                entries.append(entry)
                continue
            request, projection = ops.before_get(get)
            tables.append((ops, projection))
            entries.append({**entry, "Get": request})
        response = dict(self._client.transact_get_items(**{**params, "TransactItems": entries}))
        for plan, result in zip(tables, response.get("Responses") or [], strict=False):
            if plan is not None and "Item" in result:
                result["Item"] = plan[0].read_item(result["Item"], plan[1])
        return response

    # -- PartiQL ---------------------------------------------------------------------------------

    def execute_statement(self, **params: Any) -> dict[str, Any]:
        """PartiQL: refused on encrypted tables, passed through otherwise."""
        self._refuse_partiql([params.get("Statement")])
        return dict(self._client.execute_statement(**params))

    def batch_execute_statement(self, **params: Any) -> dict[str, Any]:
        """PartiQL batch: refused if any statement names an encrypted table."""
        self._refuse_partiql([s.get("Statement") for s in params.get("Statements") or []])
        return dict(self._client.batch_execute_statement(**params))

    def execute_transaction(self, **params: Any) -> dict[str, Any]:
        """PartiQL transaction: refused if any statement names an encrypted table."""
        self._refuse_partiql([s.get("Statement") for s in params.get("TransactStatements") or []])
        return dict(self._client.execute_transaction(**params))

    def _refuse_partiql(self, statements: list[Any]) -> None:
        for statement in statements:
            names = partiql_tables(statement, self._tables)
            if names:
                raise RequestRefusedError(
                    f"table {names[0]!r} is encrypted: PartiQL cannot be used on it (items would be "
                    "read or written without encryption)"
                )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def __repr__(self) -> str:
        return f"EncryptedClient(tables={sorted(self._tables)!r})"


class EncryptedPaginator:
    """A ``query`` or ``scan`` paginator whose pages are decrypted and filtered."""

    def __init__(self, client: EncryptedClient, paginator: Any) -> None:
        self._client = client
        self._paginator = paginator

    def paginate(self, **params: Any) -> EncryptedPageIterator:
        """Like botocore's ``paginate``; the request is validated (and beaconized) right away."""
        ops = self._client.operations(params.get("TableName"))
        if ops is None:
            return EncryptedPageIterator(self._paginator.paginate(**params), None, ReadPlan())
        request, plan = ops.before_read(params)
        return EncryptedPageIterator(self._paginator.paginate(**request), ops, plan)


class EncryptedPageIterator:
    """Iterates decrypted pages; ``build_full_result()`` and ``search()`` work as in botocore."""

    def __init__(self, pages: Any, ops: TableOperations | None, plan: ReadPlan) -> None:
        self._pages = pages
        self._ops = ops
        self._plan = plan

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for page in self._pages:
            page = dict(page)
            yield self._ops.after_read(page, self._plan) if self._ops is not None else page

    def build_full_result(self) -> dict[str, Any]:
        """Every page's items in one response (``Items``, ``Count``, ``ScannedCount``)."""
        result: dict[str, Any] = {"Items": [], "Count": 0, "ScannedCount": 0}
        for page in self:
            result["Items"].extend(page.get("Items", []))
            result["Count"] += page.get("Count", 0)
            result["ScannedCount"] += page.get("ScannedCount", 0)
        return result

    def search(self, expression: str) -> Iterator[Any]:
        """JMESPath over the decrypted pages, flattened like botocore's ``PageIterator.search``."""
        import jmespath  # type: ignore[import-untyped]

        compiled = jmespath.compile(expression)
        for page in self:
            results = compiled.search(page)
            if isinstance(results, list):
                yield from results
            else:
                yield results
