"""``EncryptedTable``: a boto3 resource ``Table`` that encrypts and decrypts, with Python values.

::

    table = EncryptedTable(boto3.resource("dynamodb").Table("orders"), config)
    table.put_item(Item={"order_id": "o-1", "card": "4111...", "total": Decimal("9.50")})
    table.query(IndexName="by-card", KeyConditionExpression=Key("card").eq("4111..."))["Items"]

Requests are converted to low-level DynamoDB JSON (``boto3.dynamodb.conditions`` objects built into
expression strings, as boto3 itself does), transformed exactly as :class:`EncryptedClient` does, and
converted back for the resource. ``batch_writer()`` encrypts each put.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .config import TableConfig
from .operations import TableOperations
from .projection import Projection

__all__ = ["EncryptedBatchWriter", "EncryptedTable", "ResourceCodec"]

_ITEM_FIELDS = ("Item", "Key", "ExclusiveStartKey", "Attributes", "LastEvaluatedKey")
_CONDITIONS = (("ConditionExpression", False), ("FilterExpression", False), ("KeyConditionExpression", True))


class ResourceCodec:
    """Converts requests and responses between boto3 resource values and DynamoDB JSON."""

    def __init__(self) -> None:
        from boto3.dynamodb.conditions import ConditionBase, ConditionExpressionBuilder
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        self._condition_type = ConditionBase
        self._builder_type = ConditionExpressionBuilder
        self._serializer = TypeSerializer()
        self._deserializer = TypeDeserializer()

    def item_to_client(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """Resource values to DynamoDB JSON."""
        return {name: self._serializer.serialize(value) for name, value in item.items()}

    def item_to_resource(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """DynamoDB JSON to resource values."""
        return {name: self._deserializer.deserialize(value) for name, value in item.items()}

    def to_client(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A resource request as a client request: conditions built, values serialized."""
        out = dict(params)
        builder = self._builder_type()  # one per request: placeholders count from #n0 / :v0, thread-safe
        names = dict(out.get("ExpressionAttributeNames") or {})
        values = dict(out.get("ExpressionAttributeValues") or {})
        for field, is_key in _CONDITIONS:
            condition = out.get(field)
            if isinstance(condition, self._condition_type):
                built = builder.build_expression(condition, is_key_condition=is_key)
                out[field] = built.condition_expression
                names.update(built.attribute_name_placeholders)
                values.update(built.attribute_value_placeholders)
        if names:
            out["ExpressionAttributeNames"] = names
        if values:
            out["ExpressionAttributeValues"] = self.item_to_client(values)
        return self._convert(out, self.item_to_client)

    def to_resource(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A client request or response back in resource values."""
        out = self._convert(params, self.item_to_resource)
        if "ExpressionAttributeValues" in out:
            out["ExpressionAttributeValues"] = self.item_to_resource(out["ExpressionAttributeValues"])
        return out

    def response_to_client(self, response: Mapping[str, Any]) -> dict[str, Any]:
        """A resource response in DynamoDB JSON."""
        return self._convert(response, self.item_to_client)

    @staticmethod
    def _convert(params: Mapping[str, Any], convert: Any) -> dict[str, Any]:
        out = dict(params)
        for field in _ITEM_FIELDS:
            if isinstance(out.get(field), Mapping):
                out[field] = convert(out[field])
        if isinstance(out.get("Items"), list):
            out["Items"] = [convert(item) for item in out["Items"]]
        return out


class EncryptedTable:
    """Wraps a boto3 ``dynamodb.Table`` resource with the encryption of ``config``."""

    def __init__(self, table: Any, config: TableConfig) -> None:
        self._table = table
        self._ops = TableOperations(str(table.name), config)
        self._codec = ResourceCodec()

    @property
    def table(self) -> Any:
        """The wrapped boto3 ``Table``."""
        return self._table

    @property
    def name(self) -> str:
        return self._ops.name

    @property
    def operations(self) -> TableOperations:
        """The encryption applied to this table's requests."""
        return self._ops

    def encrypt_item(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """The stored form of a plaintext resource-style item."""
        codec = self._codec
        return codec.item_to_resource(self._ops.encrypt(codec.item_to_client(item)))

    def decrypt_item(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """The plaintext of a stored resource-style item."""
        codec = self._codec
        return codec.item_to_resource(self._ops.decrypt(codec.item_to_client(item)))

    def read_item(self, item: Mapping[str, Any], projection: Projection | None) -> dict[str, Any]:
        """A fetched resource-style item decrypted and cut down to ``projection`` (if any)."""
        codec = self._codec
        return codec.item_to_resource(self._ops.read_item(codec.item_to_client(item), projection))

    def put_item(self, **params: Any) -> dict[str, Any]:
        """PutItem with the item encrypted."""
        request = self._ops.before_put(self._codec.to_client(params))
        return self._finish_write(self._table.put_item(**self._codec.to_resource(request)), request)

    def get_item(self, **params: Any) -> dict[str, Any]:
        """GetItem with the item decrypted (and cut down to ``ProjectionExpression``)."""
        request, projection = self._ops.before_get(self._codec.to_client(params))
        response = self._codec.response_to_client(self._table.get_item(**self._codec.to_resource(request)))
        return self._codec.to_resource(self._ops.after_get(response, projection))

    def delete_item(self, **params: Any) -> dict[str, Any]:
        """DeleteItem; whole-item ``Attributes`` decrypted."""
        request = self._codec.to_client(params)
        self._ops.check_write(request)
        return self._finish_write(self._table.delete_item(**self._codec.to_resource(request)), request)

    def update_item(self, **params: Any) -> dict[str, Any]:
        """UpdateItem of attributes allowed unsigned only."""
        request = self._codec.to_client(params)
        self._ops.check_update(request)
        return self._finish_write(self._table.update_item(**self._codec.to_resource(request)), request)

    def query(self, **params: Any) -> dict[str, Any]:
        """Query with beacons, decrypted items and false positives dropped (beacon conditions cannot
        match legacy or plaintext items: they carry no beacons)."""
        return self._read(self._table.query, params)

    def scan(self, **params: Any) -> dict[str, Any]:
        """Scan with beacons, decrypted items and false positives dropped."""
        return self._read(self._table.scan, params)

    def batch_writer(self, overwrite_by_pkeys: list[str] | None = None) -> EncryptedBatchWriter:
        """A context manager like ``Table.batch_writer()`` that encrypts every ``put_item``."""
        return EncryptedBatchWriter(self, self._table.batch_writer(overwrite_by_pkeys=overwrite_by_pkeys))

    def _read(self, method: Any, params: Mapping[str, Any]) -> dict[str, Any]:
        request, plan = self._ops.before_read(self._codec.to_client(params))
        response = self._codec.response_to_client(method(**self._codec.to_resource(request)))
        return self._codec.to_resource(self._ops.after_read(response, plan))

    def _finish_write(self, response: Any, request: Mapping[str, Any]) -> dict[str, Any]:
        response = self._codec.response_to_client(response)
        return self._codec.to_resource(self._ops.after_write(response, request))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def __repr__(self) -> str:
        return f"EncryptedTable({self.name!r})"


class EncryptedBatchWriter:
    """Buffers writes like boto3's ``BatchWriter`` (which it wraps), encrypting each item first."""

    def __init__(self, table: EncryptedTable, writer: Any) -> None:
        self._table = table
        self._writer = writer

    def put_item(self, Item: Mapping[str, Any]) -> None:
        """Queue an encrypted put (sent when the buffer fills or the block exits)."""
        self._writer.put_item(Item=self._table.encrypt_item(Item))

    def delete_item(self, Key: Mapping[str, Any]) -> None:
        """Queue a delete."""
        self._writer.delete_item(Key=Key)

    def __enter__(self) -> EncryptedBatchWriter:
        self._writer.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.__exit__(*exc)
