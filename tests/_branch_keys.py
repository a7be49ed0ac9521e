"""Helpers for the DynamoDB branch key store tests: fresh stores, item edits, EDK versions."""

from __future__ import annotations

import uuid
from typing import Any

from kmsenvelope import Envelope
from kmsenvelope.aws.branch_key_store import KeyStore
from kmsenvelope.keyrings.hierarchical import PROVIDER_ID
from kmsenvelope.testing import LocalAws

__all__ = ["edk_branch_keys", "get_item", "new_store", "new_table_name", "put_item", "update_item"]


def new_table_name() -> str:
    """A table name no other test uses (the local AWS lives for the whole session)."""
    return f"bks-{uuid.uuid4().hex[:16]}"


def new_store(
    local_aws: LocalAws,
    *,
    table_name: str | None = None,
    kms_key_arn: str | None = None,
    create_table: bool = True,
    **kwargs: Any,
) -> KeyStore:
    """A KeyStore on the local DynamoDB and KMS, with a new table and a new KMS key unless given."""
    store = KeyStore(
        table_name or new_table_name(),
        kms_key_arn or local_aws.create_key("us-east-1"),
        ddb_client=local_aws.client("dynamodb", "us-east-1"),
        client_supplier=local_aws.client_supplier(),
        **kwargs,
    )
    if create_table:
        store.create_table()
    return store


def _key(branch_key_id: str, item_type: str) -> dict[str, Any]:
    return {"branch-key-id": {"S": branch_key_id}, "type": {"S": item_type}}


def get_item(local_aws: LocalAws, table: str, branch_key_id: str, item_type: str) -> dict[str, Any]:
    """The raw item, read with a plain DynamoDB client."""
    item = local_aws.client("dynamodb", "us-east-1").get_item(
        TableName=table, Key=_key(branch_key_id, item_type), ConsistentRead=True
    )["Item"]
    assert isinstance(item, dict)
    return item


def put_item(local_aws: LocalAws, table: str, item: dict[str, Any]) -> None:
    """Overwrite an item with a plain DynamoDB client (no condition)."""
    local_aws.client("dynamodb", "us-east-1").put_item(TableName=table, Item=item)


def update_item(
    local_aws: LocalAws, table: str, branch_key_id: str, item_type: str, name: str, value: dict[str, Any]
) -> None:
    """Set one attribute of an item with a plain DynamoDB client."""
    local_aws.client("dynamodb", "us-east-1").update_item(
        TableName=table,
        Key=_key(branch_key_id, item_type),
        UpdateExpression="SET #n = :v",
        ExpressionAttributeNames={"#n": name},
        ExpressionAttributeValues={":v": value},
    )


def edk_branch_keys(envelope: Envelope, ciphertext: bytes) -> list[tuple[str, str]]:
    """(branch key id, branch key version) of each hierarchical EDK in the message header.

    The EDK ciphertext is ``salt (16) || IV (12) || version (16 UUID bytes) || ...``.
    """
    out = []
    for edk in envelope.parse_header(ciphertext).encrypted_data_keys:
        assert edk.provider_id == PROVIDER_ID
        version = uuid.UUID(bytes=bytes(edk.ciphertext[28:44]))
        out.append((edk.provider_info.decode("utf-8"), str(version)))
    return out
