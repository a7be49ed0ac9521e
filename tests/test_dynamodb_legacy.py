"""Legacy DynamoDB Encryption Client items (written by the real dynamodb-encryption-sdk, stored through
plain boto3 in the local DynamoDB) read through every wrapper and read operation, under each policy."""

from __future__ import annotations

from typing import Any

import pytest
from boto3.dynamodb.conditions import Key

from kmsenvelope.dynamodb import (
    EncryptedClient,
    EncryptedResource,
    EncryptedTable,
    ItemEncryptor,
    ItemFormat,
    LegacyPolicy,
)
from kmsenvelope.dynamodb.legacy import FormatRefusedError
from kmsenvelope.testing import LocalAws

from ._dynamodb_env import create_table, person, unique
from ._legacy_env import (
    LEGACY_SDK_ACTIONS,
    PROVIDERS,
    legacy_config,
    names,
    provider,
    put_legacy,
    table_config,
)

ALLOWING = (
    LegacyPolicy.FORCE_LEGACY_ENCRYPT_ALLOW_LEGACY_DECRYPT,
    LegacyPolicy.FORBID_LEGACY_ENCRYPT_ALLOW_LEGACY_DECRYPT,
)
PEOPLE = ("ana", "ben", "cy")


def _key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "profile"}}


@pytest.fixture
def legacy_table(local_aws: LocalAws, request: Any) -> Any:
    kind = request.param
    name = unique("legacy")
    raw = create_table(local_aws, name)
    materials = provider(kind, local_aws)
    stored = {pk: put_legacy(raw, materials, name, person(pk), kind) for pk in PEOPLE}
    return local_aws, kind, name, raw, materials, stored


@pytest.mark.parametrize("policy", ALLOWING, ids=lambda p: p.name)
@pytest.mark.parametrize("legacy_table", PROVIDERS, indirect=True)
def test_every_client_read_returns_verified_legacy_items(legacy_table: Any, policy: LegacyPolicy) -> None:
    _aws, kind, name, raw, materials, stored = legacy_table
    desc, sig = names(kind)
    assert {desc, sig} <= set(stored["ana"]) and "aws_dbe_head" not in stored["ana"]
    assert stored["ana"]["email"] != person("ana")["email"]  # really encrypted at rest
    client = EncryptedClient(raw, {name: table_config(name, legacy_config(materials, policy, kind))})

    assert client.get_item(TableName=name, Key=_key("ana"))["Item"] == person("ana")
    projected = client.get_item(TableName=name, Key=_key("ana"), ProjectionExpression="email, dept")["Item"]
    assert projected == {"email": person("ana")["email"], "dept": {"S": "eng"}}
    query = client.query(
        TableName=name, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "ben"}}
    )
    assert query["Items"] == [person("ben")]
    scanned = client.scan(TableName=name, ProjectionExpression="pk, ssn", Select="SPECIFIC_ATTRIBUTES")
    assert sorted(i["pk"]["S"] for i in scanned["Items"]) == sorted(PEOPLE)
    assert all(i == {"pk": i["pk"], "ssn": person(i["pk"]["S"])["ssn"]} for i in scanned["Items"])
    pages = list(client.get_paginator("scan").paginate(TableName=name, PaginationConfig={"PageSize": 2}))
    assert sorted(i["pk"]["S"] for p in pages for i in p["Items"]) == sorted(PEOPLE)
    assert all(i == person(i["pk"]["S"]) for p in pages for i in p["Items"])
    full = client.get_paginator("query").paginate(
        TableName=name, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "cy"}}
    )
    assert full.build_full_result()["Items"] == [person("cy")]
    batch = client.batch_get_item(RequestItems={name: {"Keys": [_key(pk) for pk in PEOPLE]}})
    assert sorted(batch["Responses"][name], key=lambda i: i["pk"]["S"]) == [person(pk) for pk in PEOPLE]
    transact = client.transact_get_items(TransactItems=[{"Get": {"TableName": name, "Key": _key("ben")}}])
    assert transact["Responses"][0]["Item"] == person("ben")

    # ReturnValues: the old (legacy) item comes back decrypted and verified.
    updated = client.update_item(
        TableName=name,
        Key=_key("cy"),
        UpdateExpression="SET #c = :one",
        ExpressionAttributeNames={"#c": "counter"},
        ExpressionAttributeValues={":one": {"N": "1"}},
        ReturnValues="ALL_NEW",
    )
    assert updated["Attributes"] == person("cy", counter={"N": "1"})
    old = client.put_item(TableName=name, Item=person("ana", dept={"S": "ops"}), ReturnValues="ALL_OLD")
    assert old["Attributes"] == person("ana")
    deleted = client.delete_item(TableName=name, Key=_key("ben"), ReturnValues="ALL_OLD")
    assert deleted["Attributes"] == person("ben")

    # The overwrite went out in the policy's write format, and reads back either way.
    rewritten = raw.get_item(TableName=name, Key=_key("ana"))["Item"]
    if policy.forces_encrypt:
        assert {desc, sig} <= set(rewritten) and "aws_dbe_head" not in rewritten
    else:
        assert {"aws_dbe_head", "aws_dbe_foot"} <= set(rewritten) and desc not in rewritten
    assert client.get_item(TableName=name, Key=_key("ana"))["Item"] == person("ana", dept={"S": "ops"})


@pytest.mark.parametrize("policy", ALLOWING, ids=lambda p: p.name)
@pytest.mark.parametrize("legacy_table", ["static", "kms", "wrapped-custom-names"], indirect=True)
def test_table_and_resource_reads_of_legacy_items(legacy_table: Any, policy: LegacyPolicy) -> None:
    aws, kind, name, _raw, materials, _stored = legacy_table
    config = table_config(name, legacy_config(materials, policy, kind))
    boto = aws.session.resource("dynamodb", region_name="us-east-1", endpoint_url=aws.endpoint_url)
    table = EncryptedTable(boto.Table(name), config)
    ana = table.get_item(Key={"pk": "ana", "sk": "profile"})["Item"]
    assert ana["email"] == "ana@example.com" and ana["card"]["number"] == "4111-ana"
    assert table.query(KeyConditionExpression=Key("pk").eq("ben"))["Items"][0]["ssn"] == "ssn-of-ben"
    assert sorted(i["pk"] for i in table.scan()["Items"]) == sorted(PEOPLE)
    old = table.delete_item(Key={"pk": "cy", "sk": "profile"}, ReturnValues="ALL_OLD")["Attributes"]
    assert old["email"] == "cy@example.com"
    new = table.update_item(
        Key={"pk": "ben", "sk": "profile"},
        UpdateExpression="SET #c = :n",
        ExpressionAttributeNames={"#c": "counter"},
        ExpressionAttributeValues={":n": 7},
        ReturnValues="ALL_NEW",
    )["Attributes"]
    assert new["counter"] == 7 and new["ssn"] == "ssn-of-ben"
    replaced = table.put_item(Item={"pk": "ana", "sk": "profile", "email": "a@new"}, ReturnValues="ALL_OLD")
    assert replaced["Attributes"]["card"]["number"] == "4111-ana"

    resource = EncryptedResource(boto, {name: config})
    batch = resource.batch_get_item(
        RequestItems={name: {"Keys": [{"pk": pk, "sk": "profile"} for pk in ("ana", "ben")]}}
    )
    assert sorted(i["email"] for i in batch["Responses"][name]) == ["a@new", "ben@example.com"]
    got = resource.Table(name).get_item(Key={"pk": "ben", "sk": "profile"}, ProjectionExpression="ssn")
    assert got["Item"] == {"ssn": "ssn-of-ben"}


@pytest.mark.parametrize("legacy_table", ["wrapped"], indirect=True)
def test_forbidden_legacy_reads_name_the_key_and_the_policy(legacy_table: Any) -> None:
    aws, _kind, name, raw, materials, _stored = legacy_table
    policy = LegacyPolicy.FORBID_LEGACY_ENCRYPT_FORBID_LEGACY_DECRYPT
    config = table_config(name, legacy_config(materials, policy))
    client = EncryptedClient(raw, {name: config})
    calls = [
        lambda: client.get_item(TableName=name, Key=_key("ana")),
        lambda: client.get_item(TableName=name, Key=_key("ana"), ProjectionExpression="dept"),
        lambda: client.query(
            TableName=name, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "ana"}}
        ),
        lambda: client.scan(TableName=name),
        lambda: list(client.get_paginator("scan").paginate(TableName=name)),
        lambda: client.batch_get_item(RequestItems={name: {"Keys": [_key("ana")]}}),
        lambda: client.transact_get_items(TransactItems=[{"Get": {"TableName": name, "Key": _key("ana")}}]),
        lambda: client.delete_item(TableName=name, Key=_key("ana"), ReturnValues="ALL_OLD"),
    ]
    for call in calls:
        with pytest.raises(FormatRefusedError) as info:
            call()
        assert policy.name in str(info.value) and "'ana'" in str(info.value) and name in str(info.value)
    boto = aws.session.resource("dynamodb", region_name="us-east-1", endpoint_url=aws.endpoint_url)
    with pytest.raises(FormatRefusedError, match=policy.name):
        EncryptedTable(boto.Table(name), config).get_item(Key={"pk": "ben", "sk": "profile"})
    resource = EncryptedResource(boto, {name: config})
    with pytest.raises(FormatRefusedError, match=policy.name):
        resource.batch_get_item(RequestItems={name: {"Keys": [{"pk": "cy", "sk": "profile"}]}})
    with pytest.raises(FormatRefusedError, match="pk='"):
        resource.Table(name).scan()
    # New-format writes and reads keep working on that table.
    client.put_item(TableName=name, Item=person("dee"))
    assert client.get_item(TableName=name, Key=_key("dee"))["Item"] == person("dee")


@pytest.mark.parametrize("legacy_table", ["kms"], indirect=True)
def test_one_scan_over_legacy_and_new_items(legacy_table: Any) -> None:
    _aws, _kind, name, raw, materials, _stored = legacy_table
    config = table_config(
        name, legacy_config(materials, LegacyPolicy.FORBID_LEGACY_ENCRYPT_ALLOW_LEGACY_DECRYPT)
    )
    client = EncryptedClient(raw, {name: config})
    client.put_item(TableName=name, Item=person("new-1"))
    client.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": person("new-2")}}]})
    items = client.scan(TableName=name)["Items"]
    assert sorted(i["pk"]["S"] for i in items) == sorted([*PEOPLE, "new-1", "new-2"])
    assert all(i == person(i["pk"]["S"]) for i in items)
    # The item encryptor tells a migration job which items are still legacy.
    encryptor = ItemEncryptor(config)
    formats = {
        i["pk"]["S"]: encryptor.decrypt_item_with_format(i)[1] for i in raw.scan(TableName=name)["Items"]
    }
    assert formats == {
        **dict.fromkeys(PEOPLE, ItemFormat.LEGACY),
        "new-1": ItemFormat.NEW,
        "new-2": ItemFormat.NEW,
    }


@pytest.mark.parametrize("kind", ["wrapped", "kms"])
def test_forced_legacy_writes_read_back_by_the_legacy_clients_own_encrypted_client(
    local_aws: LocalAws, kind: str
) -> None:
    from dynamodb_encryption_sdk.encrypted.client import EncryptedClient as LegacyClient
    from dynamodb_encryption_sdk.encrypted.table import EncryptedTable as LegacyTable

    name = unique("forced")
    raw = create_table(local_aws, name)
    materials = provider(kind, local_aws)
    policy = LegacyPolicy.FORCE_LEGACY_ENCRYPT_ALLOW_LEGACY_DECRYPT
    config = table_config(name, legacy_config(materials, policy))
    client = EncryptedClient(raw, {name: config})
    client.put_item(TableName=name, Item=person("p1"))
    client.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": person("p2")}}]})
    client.transact_write_items(TransactItems=[{"Put": {"TableName": name, "Item": person("p3")}}])
    boto = local_aws.session.resource(
        "dynamodb", region_name="us-east-1", endpoint_url=local_aws.endpoint_url
    )
    with EncryptedTable(boto.Table(name), config).batch_writer() as writer:
        writer.put_item(Item={"pk": "p4", "sk": "profile", "email": "p4@example.com", "dept": "eng"})

    theirs = LegacyClient(client=raw, materials_provider=materials, attribute_actions=LEGACY_SDK_ACTIONS)
    for pk in ("p1", "p2", "p3"):
        stored = raw.get_item(TableName=name, Key=_key(pk))["Item"]
        assert "aws_dbe_head" not in stored and stored["email"] != person(pk)["email"]
        assert theirs.get_item(TableName=name, Key=_key(pk))["Item"] == person(pk)
    table = LegacyTable(
        table=boto.Table(name), materials_provider=materials, attribute_actions=LEGACY_SDK_ACTIONS
    )
    assert table.get_item(Key={"pk": "p4", "sk": "profile"})["Item"]["email"] == "p4@example.com"
    # And what the legacy client writes, we read.
    theirs.put_item(TableName=name, Item=person("p5"))
    assert client.get_item(TableName=name, Key=_key("p5"))["Item"] == person("p5")


def test_forced_legacy_writes_under_custom_attribute_names(local_aws: LocalAws) -> None:
    name = unique("custom")
    raw = create_table(local_aws, name)
    materials = provider("wrapped", local_aws)
    policy = LegacyPolicy.FORCE_LEGACY_ENCRYPT_ALLOW_LEGACY_DECRYPT
    config = table_config(name, legacy_config(materials, policy, "wrapped-custom-names"))
    client = EncryptedClient(raw, {name: config})
    client.put_item(TableName=name, Item=person("q"))
    stored = raw.get_item(TableName=name, Key=_key("q"))["Item"]
    desc, sig = names("wrapped-custom-names")
    assert {desc, sig} <= set(stored) and not {"*amzn-ddb-map-desc*", "*amzn-ddb-map-sig*"} & set(stored)
    assert client.get_item(TableName=name, Key=_key("q"))["Item"] == person("q")
    assert ItemEncryptor(config).decrypt_item_with_format(stored)[1] is ItemFormat.LEGACY


def test_most_recent_provider_with_its_meta_store(local_aws: LocalAws) -> None:
    from dynamodb_encryption_sdk.material_providers.most_recent import CachingMostRecentProvider
    from dynamodb_encryption_sdk.material_providers.store.meta import MetaStore

    meta_name = unique("meta")
    MetaStore.create_table(local_aws.client("dynamodb", "us-east-1"), meta_name, 1, 1)
    boto = local_aws.session.resource(
        "dynamodb", region_name="us-east-1", endpoint_url=local_aws.endpoint_url
    )
    store = MetaStore(boto.Table(meta_name), provider("wrapped", local_aws))
    materials = CachingMostRecentProvider(provider_store=store, material_name="people", version_ttl=600.0)
    name = unique("recent")
    raw = create_table(local_aws, name)
    put_legacy(raw, materials, name, person("r"))
    policy = LegacyPolicy.FORBID_LEGACY_ENCRYPT_ALLOW_LEGACY_DECRYPT
    client = EncryptedClient(raw, {name: table_config(name, legacy_config(materials, policy))})
    assert client.get_item(TableName=name, Key=_key("r"))["Item"] == person("r")


def test_projected_reads_of_legacy_items_fetch_everything_their_signature_covers(local_aws: LocalAws) -> None:
    """``nickname`` is not in the table's own actions, but the legacy item signed it (the legacy default
    action): a projected read must still fetch it for the legacy signature to verify."""
    name = unique("projected")
    raw = create_table(local_aws, name)
    materials = provider("static", local_aws)
    item = person("nick", nickname={"S": "the kid"})
    put_legacy(raw, materials, name, item)
    policy = LegacyPolicy.FORBID_LEGACY_ENCRYPT_ALLOW_LEGACY_DECRYPT
    client = EncryptedClient(raw, {name: table_config(name, legacy_config(materials, policy))})
    got = client.get_item(
        TableName=name, Key=_key("nick"), ProjectionExpression="#d", ExpressionAttributeNames={"#d": "dept"}
    )
    assert got["Item"] == {"dept": {"S": "eng"}}
    scanned = client.scan(TableName=name, ProjectionExpression="nickname")["Items"]
    assert scanned == [{"nickname": {"S": "the kid"}}]
    assert client.get_item(TableName=name, Key=_key("nick"))["Item"] == item


def test_the_migration_plan_of_docs_migration_md(local_aws: LocalAws) -> None:
    """Steps 1-4 of docs/migration.md on a table of legacy items, with the documented get-and-put loop."""
    name = unique("migrate")
    raw = create_table(local_aws, name)
    materials = provider("wrapped", local_aws)
    for pk in PEOPLE:
        put_legacy(raw, materials, name, person(pk))

    def client_for(policy: LegacyPolicy) -> EncryptedClient:
        return EncryptedClient(raw, {name: table_config(name, legacy_config(materials, policy))})

    # Step 1: everything reads, writes stay legacy.
    step1 = client_for(LegacyPolicy.FORCE_LEGACY_ENCRYPT_ALLOW_LEGACY_DECRYPT)
    step1.put_item(TableName=name, Item=person("s1"))
    assert "*amzn-ddb-map-sig*" in raw.get_item(TableName=name, Key=_key("s1"))["Item"]
    # Step 2: writes switch to the new format while a legacy item is overwritten concurrently.
    client = client_for(LegacyPolicy.FORBID_LEGACY_ENCRYPT_ALLOW_LEGACY_DECRYPT)
    client.put_item(TableName=name, Item=person("s2"))
    assert "aws_dbe_head" in raw.get_item(TableName=name, Key=_key("s2"))["Item"]
    # Step 3: the loop of get and put.
    encryptor = client.operations(name).encryptor
    rewritten = []
    for page in raw.get_paginator("scan").paginate(TableName=name, PaginationConfig={"PageSize": 2}):
        for stored in page["Items"]:
            plain, found = encryptor.decrypt_item_with_format(stored)
            if found is not ItemFormat.LEGACY:
                continue
            if plain["pk"]["S"] == "ben":  # a live writer gets there first
                client.put_item(TableName=name, Item=person("ben", dept={"S": "live"}))
            try:
                client.put_item(
                    TableName=name,
                    Item=plain,
                    ConditionExpression="attribute_exists(pk) AND attribute_not_exists(aws_dbe_head)",
                )
                rewritten.append(plain["pk"]["S"])
            except raw.exceptions.ConditionalCheckFailedException:
                pass
    assert sorted(rewritten) == ["ana", "cy", "s1"]
    formats = [encryptor.decrypt_item_with_format(i)[1] for i in raw.scan(TableName=name)["Items"]]
    assert formats == [ItemFormat.NEW] * 5
    # Step 4: legacy reads forbidden; everything still reads, the live write survived.
    final = client_for(LegacyPolicy.FORBID_LEGACY_ENCRYPT_FORBID_LEGACY_DECRYPT)
    items = {i["pk"]["S"]: i for i in final.scan(TableName=name)["Items"]}
    assert items == {
        **{pk: person(pk) for pk in ("ana", "cy", "s1", "s2")},
        "ben": person("ben", dept={"S": "live"}),
    }
    put_legacy(raw, materials, name, person("late"))
    with pytest.raises(FormatRefusedError, match="pk='late'"):
        final.get_item(TableName=name, Key=_key("late"))
