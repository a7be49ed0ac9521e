"""Shared setup for the encrypted DynamoDB client tests: tables on the local moto server, configs."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from typing import Any

from kmsenvelope.aws.key_store import StaticBranchKeyStore
from kmsenvelope.dynamodb import Action, TableConfig
from kmsenvelope.keyrings.hierarchical import HierarchicalKeyring
from kmsenvelope.testing import LocalAws

BRANCH_KEY = os.urandom(32)
BEACON_KEY = os.urandom(32)
STORE = StaticBranchKeyStore("bk", str(uuid.uuid4()), BRANCH_KEY, BEACON_KEY)
KEYRING = HierarchicalKeyring(STORE, branch_key_id="bk")

ACTIONS = {
    "pk": Action.SIGN_ONLY,
    "sk": Action.SIGN_ONLY,
    "email": Action.ENCRYPT_AND_SIGN,
    "ssn": Action.ENCRYPT_AND_SIGN,
    "card": Action.ENCRYPT_AND_SIGN,
    "dept": Action.SIGN_ONLY,
    "version": Action.SIGN_ONLY,
    "counter": Action.DO_NOTHING,
    "note": Action.DO_NOTHING,
}
UNSIGNED = ("counter", "note")
SECRETS = ("email", "ssn", "card")


def unique(prefix: str) -> str:
    """A table name no other test uses (the moto server lives for the whole session)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def config(logical_name: str, **overrides: Any) -> TableConfig:
    """The test table's encryption: pk/sk signed, email/ssn/card encrypted, counter/note unsigned."""
    args: dict[str, Any] = {
        "sort_key": "sk",
        "actions": ACTIONS,
        "keyring": KEYRING,
        "allowed_unsigned": UNSIGNED,
    }
    args.update(overrides)
    return TableConfig(logical_name, "pk", **args)


def create_table(
    aws: LocalAws,
    name: str,
    *,
    region: str = "us-east-1",
    indexes: Sequence[tuple[str, str, str | None]] = (),
) -> Any:
    """A pk/sk table; ``indexes`` are GSIs as (index name, hash attribute, range attribute)."""
    client = aws.client("dynamodb", region)
    attributes = {"pk", "sk"}
    gsis = []
    for index, hash_key, range_key in indexes:
        schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
        attributes.add(hash_key)
        if range_key is not None:
            schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
            attributes.add(range_key)
        gsis.append({"IndexName": index, "KeySchema": schema, "Projection": {"ProjectionType": "ALL"}})
    params: dict[str, Any] = {
        "TableName": name,
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in sorted(attributes)],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if gsis:
        params["GlobalSecondaryIndexes"] = gsis
    client.create_table(**params)
    return client


def person(pk: str, sk: str = "profile", **extra: Any) -> dict[str, Any]:
    """A plaintext item in DynamoDB JSON."""
    item: dict[str, Any] = {
        "pk": {"S": pk},
        "sk": {"S": sk},
        "email": {"S": f"{pk}@example.com"},
        "ssn": {"S": f"ssn-of-{pk}"},
        "card": {"M": {"number": {"S": f"4111-{pk}"}, "cvv": {"N": "123"}}},
        "dept": {"S": "eng"},
        "version": {"N": "1"},
        "counter": {"N": "0"},
    }
    item.update(extra)
    return item


def dynamodb_requests(aws: LocalAws) -> list[str]:
    """The DynamoDB operations that reached the local server since the last reset."""
    return [r.operation for r in aws.requests(service="dynamodb")]
