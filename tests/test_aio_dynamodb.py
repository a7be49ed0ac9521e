"""kmsenvelope.aio.dynamodb.EncryptedClient over aiobotocore against the local DynamoDB and KMS.

Items written by the async client read with the sync client and back; beacons, projections, policy
refusals, batches and transactions behave as in the sync client (they are its transformations); and a
cold branch key cache hit by many concurrent reads makes one key store fetch.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kmsenvelope.aio import AsyncHierarchicalKeyring, AsyncKeyStore
from kmsenvelope.aio.dynamodb import EncryptedClient as AsyncEncryptedClient
from kmsenvelope.dynamodb import EncryptedClient, StandardBeacon
from kmsenvelope.dynamodb.policy import RequestRefusedError
from kmsenvelope.errors import ConfigurationError
from kmsenvelope.keyrings.hierarchical import HierarchicalKeyring
from kmsenvelope.testing import LocalAws

from ._branch_keys import new_store
from ._dynamodb_env import config, create_table, person, unique

PEOPLE = [person(f"p{i:02d}") for i in range(12)]


def _setup(local_aws: LocalAws) -> tuple[Any, str, EncryptedClient, Any]:
    store = new_store(local_aws)
    branch_key_id = store.create_key()
    name = unique("aio-ddb")
    raw = create_table(local_aws, name, indexes=[("by-email", "aws_dbe_b_email", None)])
    beacons = (StandardBeacon("email", 8),)
    sync = EncryptedClient(
        raw,
        {
            name: config(
                "aio", keyring=HierarchicalKeyring(store, branch_key_id=branch_key_id), beacons=beacons
            )
        },
    )
    return store, name, sync, (branch_key_id, beacons)


def _run(local_aws: LocalAws, store: Any, name: str, extra: Any, body: Any) -> Any:
    branch_key_id, beacons = extra

    async def main() -> Any:
        async with local_aws.async_client_supplier() as supplier:
            ddb = await supplier.client("dynamodb", "us-east-1")
            keyring = AsyncHierarchicalKeyring(
                AsyncKeyStore(store.table_name, store.kms_key_arn, client_supplier=supplier),
                branch_key_id=branch_key_id,
            )
            async with AsyncEncryptedClient(
                ddb, {name: config("aio", keyring=keyring, beacons=beacons)}
            ) as client:
                return await body(client, keyring)

    return asyncio.run(main())


def test_async_and_sync_clients_read_each_others_items(local_aws: LocalAws) -> None:
    store, name, sync, extra = _setup(local_aws)
    for item in PEOPLE[:6]:
        sync.put_item(TableName=name, Item=item)

    async def body(client: AsyncEncryptedClient, _: Any) -> list[Any]:
        await asyncio.gather(*(client.put_item(TableName=name, Item=item) for item in PEOPLE[6:]))
        got = await asyncio.gather(
            *(client.get_item(TableName=name, Key={"pk": p["pk"], "sk": p["sk"]}) for p in PEOPLE)
        )
        return [g["Item"] for g in got]

    assert _run(local_aws, store, name, extra, body) == PEOPLE
    for item in PEOPLE[6:]:
        assert sync.get_item(TableName=name, Key={"pk": item["pk"], "sk": item["sk"]})["Item"] == item


def test_beacon_queries_projections_and_refusals_match_the_sync_client(local_aws: LocalAws) -> None:
    store, name, sync, extra = _setup(local_aws)
    for item in PEOPLE:
        sync.put_item(TableName=name, Item=item)
    target = PEOPLE[3]
    query = {
        "TableName": name,
        "IndexName": "by-email",
        "KeyConditionExpression": "#e = :e",
        "ExpressionAttributeNames": {"#e": "email"},
        "ExpressionAttributeValues": {":e": target["email"]},
    }
    projected = {
        "TableName": name,
        "Key": {"pk": target["pk"], "sk": target["sk"]},
        "ProjectionExpression": "email, card.cvv",
    }
    refused = {
        "TableName": name,
        "Key": {"pk": target["pk"], "sk": target["sk"]},
        "UpdateExpression": "SET email = :e",
        "ExpressionAttributeValues": {":e": {"S": "x"}},
    }

    async def body(client: AsyncEncryptedClient, _: Any) -> list[Any]:
        found = await client.query(**query)
        pages = [page async for page in client.paginate("scan", TableName=name, Limit=5)]
        item = await client.get_item(**projected)
        with pytest.raises(RequestRefusedError) as info:
            await client.update_item(**refused)
        return [found, pages, item, str(info.value)]

    found, pages, item, refusal = _run(local_aws, store, name, extra, body)
    assert found["Items"] == sync.query(**query)["Items"] == [target]
    assert sorted(i["pk"]["S"] for p in pages for i in p["Items"]) == sorted(p["pk"]["S"] for p in PEOPLE)
    assert len(pages) > 1
    assert (
        item["Item"]
        == sync.get_item(**projected)["Item"]
        == {"email": target["email"], "card": {"M": {"cvv": {"N": "123"}}}}
    )
    with pytest.raises(RequestRefusedError) as sync_info:
        sync.update_item(**refused)
    assert refusal == str(sync_info.value)


def test_batches_and_transactions(local_aws: LocalAws) -> None:
    store, name, sync, extra = _setup(local_aws)
    keys = [{"pk": p["pk"], "sk": p["sk"]} for p in PEOPLE[:4]]

    async def body(client: AsyncEncryptedClient, _: Any) -> list[Any]:
        await client.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": p}} for p in PEOPLE[:2]]})
        await client.transact_write_items(
            TransactItems=[{"Put": {"TableName": name, "Item": p}} for p in PEOPLE[2:4]]
        )
        batch = await client.batch_get_item(RequestItems={name: {"Keys": keys}})
        transact = await client.transact_get_items(
            TransactItems=[{"Get": {"TableName": name, "Key": k}} for k in keys]
        )
        return [batch, transact]

    batch, transact = _run(local_aws, store, name, extra, body)
    assert sorted(batch["Responses"][name], key=lambda i: i["pk"]["S"]) == PEOPLE[:4]
    assert [r["Item"] for r in transact["Responses"]] == PEOPLE[:4]
    assert [sync.get_item(TableName=name, Key=k)["Item"] for k in keys] == PEOPLE[:4]


def test_cold_cache_concurrent_reads_make_one_branch_key_fetch(local_aws: LocalAws) -> None:
    store, name, sync, extra = _setup(local_aws)
    for item in PEOPLE:
        sync.put_item(TableName=name, Item=item)
    local_aws.reset()

    async def body(client: AsyncEncryptedClient, keyring: AsyncHierarchicalKeyring) -> list[Any]:
        got = await asyncio.gather(
            *(client.get_item(TableName=name, Key={"pk": p["pk"], "sk": p["sk"]}) for p in PEOPLE * 10)
        )
        return [g["Item"] for g in got]

    assert _run(local_aws, store, name, extra, body) == PEOPLE * 10
    key_store_reads = [
        r
        for r in local_aws.requests("GetItem", service="dynamodb")
        if r.params.get("TableName") == store.table_name
    ]
    assert len(key_store_reads) == 1
    assert len(local_aws.requests("Decrypt")) == 1


def test_the_sync_client_refuses_async_keyrings(local_aws: LocalAws) -> None:
    store = new_store(local_aws)

    async def main() -> None:
        async with local_aws.async_client_supplier() as supplier:
            keyring = AsyncHierarchicalKeyring(
                AsyncKeyStore(store.table_name, store.kms_key_arn, client_supplier=supplier),
                branch_key_id="x",
            )
            with pytest.raises(ConfigurationError, match=r"kmsenvelope\.aio"):
                EncryptedClient(local_aws.client("dynamodb"), {"t": config("t", keyring=keyring)})

    asyncio.run(main())
