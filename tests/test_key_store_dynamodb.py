"""kmsenvelope.KeyStore: the DynamoDB branch key store, against the local DynamoDB and KMS over HTTP.

Checks the table and item layout of ``branch-key-store.md`` (hierarchy version 1), the AWS KMS requests
and their encryption contexts, create/version/get round trips, and that every bad item, missing key or
foreign KMS key is a clear KeyStoreError.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from kmsenvelope.aws import accounting
from kmsenvelope.aws.branch_key_store import KeyStore, KeyStoreInfo
from kmsenvelope.aws.key_store import BeaconKeyMaterials, BranchKeyMaterials, BranchKeyStore
from kmsenvelope.errors import ConfigurationError, KeyStoreError
from kmsenvelope.testing import LocalAws

from ._branch_keys import get_item, new_store, new_table_name, put_item, update_item

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
COMMON = {"branch-key-id", "type", "enc", "create-time", "kms-arn", "hierarchy-version"}


def _scan(local_aws: LocalAws, table: str) -> dict[str, dict[str, Any]]:
    items = local_aws.client("dynamodb", "us-east-1").scan(TableName=table, ConsistentRead=True)["Items"]
    return {item["type"]["S"]: item for item in items}


def _kms_requests(local_aws: LocalAws) -> list[tuple[str, dict[str, Any]]]:
    return [(r.operation, dict(r.params)) for r in local_aws.requests()]


# -- table ----------------------------------------------------------------------------------------


def test_create_table_uses_the_spec_key_schema_and_is_idempotent(local_aws: LocalAws) -> None:
    store = new_store(local_aws, create_table=False)
    arn = store.create_table()
    assert arn == f"arn:aws:dynamodb:us-east-1:123456789012:table/{store.table_name}"
    table = local_aws.client("dynamodb", "us-east-1").describe_table(TableName=store.table_name)["Table"]
    assert {(e["AttributeName"], e["KeyType"]) for e in table["KeySchema"]} == {
        ("branch-key-id", "HASH"),
        ("type", "RANGE"),
    }
    assert {(d["AttributeName"], d["AttributeType"]) for d in table["AttributeDefinitions"]} == {
        ("branch-key-id", "S"),
        ("type", "S"),
    }
    assert not table.get("GlobalSecondaryIndexes")  # the spec defines none
    (create,) = local_aws.requests("CreateTable", service="dynamodb")
    assert create.params["BillingMode"] == "PAY_PER_REQUEST"
    assert "GlobalSecondaryIndexes" not in create.params
    # Second call: DescribeTable only, same ARN.
    local_aws.reset()
    assert store.create_table() == arn
    assert [r.operation for r in local_aws.requests(service="dynamodb")] == ["DescribeTable"]


def test_create_table_refuses_a_table_with_another_key_schema(local_aws: LocalAws) -> None:
    name = new_table_name()
    local_aws.client("dynamodb", "us-east-1").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    store = new_store(local_aws, table_name=name, create_table=False)
    with pytest.raises(KeyStoreError, match="not a branch key store"):
        store.create_table()


def test_missing_table_is_a_clear_error(local_aws: LocalAws) -> None:
    store = new_store(local_aws, create_table=False)
    with pytest.raises(KeyStoreError, match=r"does not exist \(create it with KeyStore.create_table\(\)\)"):
        store.get_active_branch_key("anything")
    with pytest.raises(KeyStoreError, match="does not exist"):
        store.create_key()


# -- create_key -------------------------------------------------------------------------------------


def test_create_key_writes_the_three_spec_items(local_aws: LocalAws) -> None:
    store = new_store(local_aws, logical_name="logical-orders")
    local_aws.reset()
    branch_key_id = store.create_key()
    assert str(uuid.UUID(branch_key_id)) == branch_key_id

    items = _scan(local_aws, store.table_name)
    assert len(items) == 3
    active = items.pop("branch:ACTIVE")
    beacon = items.pop("beacon:ACTIVE")
    ((version_type, version_item),) = items.items()
    version = version_type.removeprefix("branch:version:")
    assert str(uuid.UUID(version)) == version and uuid.UUID(version).version == 4

    assert set(version_item) == COMMON and set(beacon) == COMMON
    assert set(active) == COMMON | {"version"}
    assert active["version"] == {"S": version_type}
    for item in (version_item, active, beacon):
        assert item["branch-key-id"] == {"S": branch_key_id}
        assert item["kms-arn"] == {"S": store.kms_key_arn}
        assert item["hierarchy-version"] == {"N": "1"}
        assert TIMESTAMP.match(item["create-time"]["S"])
        assert item["create-time"] == version_item["create-time"]
        assert isinstance(item["enc"]["B"], bytes) and item["enc"]["B"]
    assert len({bytes(i["enc"]["B"]) for i in (version_item, active, beacon)}) == 3

    # KMS: GenerateDataKeyWithoutPlaintext (version), ReEncrypt (-> ACTIVE), GenerateDataKeyWithoutPlaintext
    # (beacon), each under the item's attributes minus enc plus tablename = the logical name.
    def context(item: dict[str, Any]) -> dict[str, str]:
        out = {k: v.get("S", v.get("N")) for k, v in item.items() if k != "enc"}
        return {**out, "tablename": "logical-orders"}

    requests = _kms_requests(local_aws)
    assert [op for op, _ in requests] == [
        "GenerateDataKeyWithoutPlaintext",
        "ReEncrypt",
        "GenerateDataKeyWithoutPlaintext",
    ]
    (_, gen_version), (_, reencrypt), (_, gen_beacon) = requests
    assert gen_version["KeyId"] == gen_beacon["KeyId"] == store.kms_key_arn
    assert gen_version["NumberOfBytes"] == gen_beacon["NumberOfBytes"] == 32
    assert gen_version["EncryptionContext"] == context(version_item)
    assert gen_beacon["EncryptionContext"] == context(beacon)
    assert reencrypt["SourceKeyId"] == reencrypt["DestinationKeyId"] == store.kms_key_arn
    assert reencrypt["SourceEncryptionContext"] == context(version_item)
    assert reencrypt["DestinationEncryptionContext"] == context(active)
    # One conditional transaction writes all three items.
    (write,) = local_aws.requests("TransactWriteItems", service="dynamodb")
    puts = [entry["Put"] for entry in write.params["TransactItems"]]
    assert len(puts) == 3
    for put in puts:
        assert put["ConditionExpression"] == "attribute_not_exists(#BranchKeyIdentifierField)"
        assert put["ExpressionAttributeNames"] == {"#BranchKeyIdentifierField": "branch-key-id"}


def test_round_trip_active_version_and_beacon(local_aws: LocalAws) -> None:
    store = new_store(local_aws)
    branch_key_id = store.create_key()
    active = store.get_active_branch_key(branch_key_id)
    assert isinstance(active, BranchKeyMaterials)
    assert active.branch_key_id == branch_key_id and len(active.branch_key) == 32
    assert dict(active.encryption_context) == {}
    version_type = "branch:version:" + active.branch_key_version
    assert version_type in _scan(local_aws, store.table_name)

    same = store.get_branch_key_version(branch_key_id, active.branch_key_version)
    assert same == active  # same key bytes, id, version, context
    beacon = store.get_beacon_key(branch_key_id)
    assert isinstance(beacon, BeaconKeyMaterials)
    assert beacon.beacon_key_id == branch_key_id
    assert beacon.beacon_key is not None and len(beacon.beacon_key) == 32
    assert beacon.beacon_key != active.branch_key


def test_each_get_is_one_get_item_and_one_decrypt(local_aws: LocalAws) -> None:
    store = new_store(local_aws)
    branch_key_id = store.create_key()
    local_aws.reset()
    accounting.reset()
    active = store.get_active_branch_key(branch_key_id)
    store.get_branch_key_version(branch_key_id, active.branch_key_version)
    store.get_beacon_key(branch_key_id)
    assert dict(accounting.stats().by_operation) == {"Decrypt": 3}
    assert [r.operation for r in local_aws.requests(service="dynamodb")] == ["GetItem"] * 3
    decrypts = local_aws.requests("Decrypt")
    assert [r.key_id for r in decrypts] == [store.kms_key_arn] * 3
    assert [r.params["EncryptionContext"]["type"] for r in decrypts] == [
        "branch:ACTIVE",
        "branch:version:" + active.branch_key_version,
        "beacon:ACTIVE",
    ]
    assert {r.params["EncryptionContext"]["tablename"] for r in decrypts} == {store.logical_name}


def test_custom_encryption_context_and_caller_chosen_id(local_aws: LocalAws) -> None:
    store = new_store(local_aws)
    context = {"tenant": "acme", "department": "admin"}
    assert store.create_key("tenant-acme", context) == "tenant-acme"
    for item in _scan(local_aws, store.table_name).values():
        assert item["aws-crypto-ec:tenant"] == {"S": "acme"}
        assert item["aws-crypto-ec:department"] == {"S": "admin"}
    active = store.get_active_branch_key("tenant-acme")
    assert dict(active.encryption_context) == context
    assert dict(store.get_beacon_key("tenant-acme").encryption_context) == context
    # The custom context carries over to new versions.
    new_version = store.version_key("tenant-acme")
    rotated = store.get_branch_key_version("tenant-acme", new_version)
    assert dict(rotated.encryption_context) == context

    with pytest.raises(KeyStoreError, match="requires a non-empty encryption context"):
        store.create_key("tenant-other")
    with pytest.raises(KeyStoreError, match="already exists"):
        store.create_key("tenant-acme", {"tenant": "impostor"})
    # The failed create changed nothing.
    assert store.get_active_branch_key("tenant-acme").branch_key_version == new_version
    with pytest.raises(KeyStoreError, match="encryption context"):
        store.create_key("x", {"k": 1})  # type: ignore[dict-item]
    with pytest.raises(KeyStoreError, match="non-empty"):
        store.create_key("", {"k": "v"})


# -- version_key ------------------------------------------------------------------------------------


def test_version_key_rotates_and_keeps_old_versions(local_aws: LocalAws) -> None:
    store = new_store(local_aws)
    branch_key_id = store.create_key()
    first = store.get_active_branch_key(branch_key_id)
    beacon_before = store.get_beacon_key(branch_key_id)
    local_aws.reset()

    second_version = store.version_key(branch_key_id)
    assert second_version != first.branch_key_version
    # Authenticate the ACTIVE item (ReEncrypt to itself), then generate and copy the new version.
    ops = [op for op, _ in _kms_requests(local_aws)]
    assert ops == ["ReEncrypt", "GenerateDataKeyWithoutPlaintext", "ReEncrypt"]
    (_, auth), (_, generate), _ = _kms_requests(local_aws)
    assert auth["SourceEncryptionContext"] == auth["DestinationEncryptionContext"]
    assert auth["SourceEncryptionContext"]["version"] == "branch:version:" + first.branch_key_version
    assert generate["EncryptionContext"]["type"] == "branch:version:" + second_version
    assert "version" not in generate["EncryptionContext"]
    (write,) = local_aws.requests("TransactWriteItems", service="dynamodb")
    version_put, active_put = (entry["Put"] for entry in write.params["TransactItems"])
    assert version_put["ConditionExpression"] == "attribute_not_exists(#BranchKeyIdentifierField)"
    assert (
        active_put["ConditionExpression"] == "attribute_exists(#BranchKeyIdentifierField) AND #Enc = :encOld"
    )

    second = store.get_active_branch_key(branch_key_id)
    assert second.branch_key_version == second_version
    assert second.branch_key != first.branch_key
    assert store.get_branch_key_version(branch_key_id, first.branch_key_version) == first
    assert store.get_branch_key_version(branch_key_id, second_version) == second
    # Rotation leaves the beacon key alone.
    assert store.get_beacon_key(branch_key_id) == beacon_before
    items = _scan(local_aws, store.table_name)
    assert set(items) == {
        "branch:ACTIVE",
        "beacon:ACTIVE",
        "branch:version:" + first.branch_key_version,
        "branch:version:" + second_version,
    }
    assert items["branch:ACTIVE"]["create-time"] == items["branch:version:" + second_version]["create-time"]


def test_version_key_of_a_missing_branch_key(local_aws: LocalAws) -> None:
    store = new_store(local_aws)
    accounting.reset()
    with pytest.raises(KeyStoreError, match="does not exist"):
        store.version_key("no-such-branch-key")
    assert accounting.stats().calls == 0


class _RacingDynamoDb:
    """A real DynamoDB client that lets another writer rotate the key just before this writer commits."""

    def __init__(self, client: Any, before_commit: Callable[[], None]) -> None:
        self._client = client
        self._before_commit: Callable[[], None] | None = before_commit

    def transact_write_items(self, **kwargs: Any) -> Any:
        hook, self._before_commit = self._before_commit, None
        if hook is not None:
            hook()
        return self._client.transact_write_items(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_concurrent_version_key_cannot_overwrite_a_newer_active_item(local_aws: LocalAws) -> None:
    winner = new_store(local_aws)
    branch_key_id = winner.create_key()
    winner_versions: list[str] = []
    loser = KeyStore(
        winner.table_name,
        winner.kms_key_arn,
        ddb_client=_RacingDynamoDb(
            local_aws.client("dynamodb", "us-east-1"),
            lambda: winner_versions.append(winner.version_key(branch_key_id)),
        ),
        client_supplier=local_aws.client_supplier(),
    )
    with pytest.raises(KeyStoreError, match="changed while it was being versioned"):
        loser.version_key(branch_key_id)
    (winner_version,) = winner_versions
    assert winner.get_active_branch_key(branch_key_id).branch_key_version == winner_version
    # The transaction wrote nothing: two versions (original + winner's), one ACTIVE, one beacon.
    assert len(_scan(local_aws, winner.table_name)) == 4


def test_two_threads_rotating_at_once_leave_a_consistent_store(local_aws: LocalAws) -> None:
    store = new_store(local_aws)
    branch_key_id = store.create_key()
    results: list[str | Exception] = []
    lock = threading.Lock()

    def rotate() -> None:
        try:
            outcome: str | Exception = store.version_key(branch_key_id)
        except KeyStoreError as exc:
            outcome = exc
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=rotate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    versions = [r for r in results if isinstance(r, str)]
    assert versions and all(isinstance(r, str) or "changed while" in str(r) for r in results)
    # The ACTIVE item is one of the versions that were really written, and every version item decrypts.
    items = _scan(local_aws, store.table_name)
    assert len(items) == 3 + len(versions)
    assert store.get_active_branch_key(branch_key_id).branch_key_version in versions
    for version in versions:
        assert store.get_branch_key_version(branch_key_id, version).branch_key_version == version


# -- bad input ------------------------------------------------------------------------------------


def test_missing_branch_key_version_and_beacon(local_aws: LocalAws) -> None:
    store = new_store(local_aws)
    branch_key_id = store.create_key()
    accounting.reset()
    with pytest.raises(KeyStoreError, match=r"no item for branch key 'nope'.*does not exist"):
        store.get_active_branch_key("nope")
    with pytest.raises(KeyStoreError, match="does not exist"):
        store.get_branch_key_version(branch_key_id, str(uuid.uuid4()))
    with pytest.raises(KeyStoreError, match="does not exist"):
        store.get_beacon_key("nope")
    assert accounting.stats().calls == 0  # nothing to decrypt, so no KMS call


@pytest.mark.parametrize("version", ["not-a-uuid", str(uuid.uuid4()).upper(), ""])
def test_bad_version_strings_are_refused_before_any_call(local_aws: LocalAws, version: str) -> None:
    store = new_store(local_aws)
    local_aws.reset()
    with pytest.raises(KeyStoreError, match="UUID"):
        store.get_branch_key_version("some-id", version)
    with pytest.raises(KeyStoreError, match="non-empty"):
        store.get_active_branch_key("")
    assert local_aws.requests(service=None) == ()


def test_a_kms_key_that_is_not_the_stores(local_aws: LocalAws) -> None:
    owner = new_store(local_aws)
    branch_key_id = owner.create_key()
    other_key = local_aws.create_key("us-east-1")
    stranger = new_store(local_aws, table_name=owner.table_name, kms_key_arn=other_key, create_table=False)
    accounting.reset()
    for call in (
        lambda: stranger.get_active_branch_key(branch_key_id),
        lambda: stranger.get_beacon_key(branch_key_id),
        lambda: stranger.version_key(branch_key_id),
    ):
        with pytest.raises(KeyStoreError) as info:
            call()
        message = str(info.value)
        assert (
            f"is protected by KMS key {owner.kms_key_arn}, not by this key store's KMS key {other_key}"
            in message
        )
    assert accounting.stats().calls == 0  # refused before asking KMS


def test_a_disabled_kms_key(local_aws: LocalAws) -> None:
    store = new_store(local_aws)
    branch_key_id = store.create_key()
    local_aws.disable_key(store.kms_key_arn)
    try:
        with pytest.raises(KeyStoreError, match=r"AWS KMS Decrypt failed .*disabled \(DisabledException\)"):
            store.get_active_branch_key(branch_key_id)
        with pytest.raises(KeyStoreError, match=r"GenerateDataKeyWithoutPlaintext failed.*disabled"):
            store.create_key()
    finally:
        local_aws.enable_key(store.kms_key_arn)
    assert store.get_active_branch_key(branch_key_id).branch_key_id == branch_key_id


def test_another_logical_name_cannot_read_the_keys(local_aws: LocalAws) -> None:
    store = new_store(local_aws, logical_name="orders-prod")
    branch_key_id = store.create_key()
    restored = new_store(
        local_aws, table_name=store.table_name, kms_key_arn=store.kms_key_arn, logical_name="orders-test"
    )
    with pytest.raises(KeyStoreError, match="another logical name than 'orders-test'"):
        restored.get_active_branch_key(branch_key_id)
    # The same logical name on a differently named table reads them (restoring a backup elsewhere).
    copy = new_store(local_aws, kms_key_arn=store.kms_key_arn, logical_name="orders-prod")
    for item in _scan(local_aws, store.table_name).values():
        put_item(local_aws, copy.table_name, item)
    assert copy.get_active_branch_key(branch_key_id) == store.get_active_branch_key(branch_key_id)


def _flip(value: dict[str, Any]) -> dict[str, Any]:
    blob = bytearray(value["B"])
    blob[-1] ^= 1
    return {"B": bytes(blob)}


# (attribute, new value or None to delete, expected message); each edit of the ACTIVE item.
TAMPERING: list[tuple[str, Callable[[dict[str, Any]], dict[str, Any] | None], str]] = [
    ("create-time", lambda v: {"S": "2020-01-01T00:00:00.000000Z"}, "the item was modified"),
    ("aws-crypto-ec:tenant", lambda v: {"S": "evil"}, "the item was modified"),
    ("aws-crypto-ec:added", lambda v: {"S": "x"}, "the item was modified"),
    ("extra-attribute", lambda v: {"S": "x"}, "the item was modified"),
    ("version", lambda v: {"S": "branch:version:" + str(uuid.uuid4())}, "the item was modified"),
    ("enc", _flip, "the item was modified"),
    ("enc", lambda v: {"S": "not binary"}, "malformed .*'enc' must be a binary KMS ciphertext"),
    ("hierarchy-version", lambda v: {"N": "2"}, "malformed .*hierarchy-version '2' is not supported"),
    ("hierarchy-version", lambda v: {"S": "1"}, "malformed .*'hierarchy-version' must be a number"),
    ("create-time", lambda v: None, "malformed .*'create-time' is missing"),
    ("version", lambda v: None, "malformed .*needs version = 'branch:version:<uuid>'"),
    ("version", lambda v: {"S": "branch:version:xyz"}, "malformed .*its version: .*UUID"),
    ("tablename", lambda v: {"S": "x"}, "malformed .*'tablename' is not stored in items"),
    ("extra-attribute", lambda v: {"N": "5"}, "malformed .*'extra-attribute' must be a string"),
    ("kms-arn", lambda v: {"S": "arn:aws:kms:us-east-1:123456789012:alias/x"}, "malformed .*kms-arn"),
]


@pytest.mark.parametrize(("attribute", "edit", "expected"), TAMPERING)
def test_a_tampered_active_item_is_refused(
    local_aws: LocalAws,
    attribute: str,
    edit: Callable[[dict[str, Any]], dict[str, Any] | None],
    expected: str,
) -> None:
    store = new_store(local_aws)
    branch_key_id = store.create_key("tenant-acme", {"tenant": "acme"})
    original = get_item(local_aws, store.table_name, branch_key_id, "branch:ACTIVE")
    tampered = dict(original)
    new_value = edit(original.get(attribute, {}))
    if new_value is None:
        del tampered[attribute]
    else:
        tampered[attribute] = new_value
    put_item(local_aws, store.table_name, tampered)

    with pytest.raises(KeyStoreError, match=expected):
        store.get_active_branch_key(branch_key_id)
    with pytest.raises(KeyStoreError):
        store.version_key(branch_key_id)
    # Put the item back: it reads again (nothing remembered the failure).
    put_item(local_aws, store.table_name, original)
    assert store.get_active_branch_key(branch_key_id).encryption_context == {"tenant": "acme"}


def test_tampered_version_and_beacon_items_are_refused(local_aws: LocalAws) -> None:
    store = new_store(local_aws)
    branch_key_id = store.create_key()
    version = store.get_active_branch_key(branch_key_id).branch_key_version
    for item_type in ("branch:version:" + version, "beacon:ACTIVE"):
        update_item(local_aws, store.table_name, branch_key_id, item_type, "create-time", {"S": "x"})
    with pytest.raises(KeyStoreError, match="the item was modified"):
        store.get_branch_key_version(branch_key_id, version)
    with pytest.raises(KeyStoreError, match="the item was modified"):
        store.get_beacon_key(branch_key_id)
    # A version item with an ACTIVE-only attribute, or a beacon item posing as another type.
    update_item(
        local_aws, store.table_name, branch_key_id, "beacon:ACTIVE", "version", {"S": "branch:version:x"}
    )
    with pytest.raises(KeyStoreError, match="only the ACTIVE item has a 'version' attribute"):
        store.get_beacon_key(branch_key_id)


def test_an_item_moved_to_another_branch_key_id_is_refused(local_aws: LocalAws) -> None:
    store = new_store(local_aws)
    first, second = store.create_key(), store.create_key()
    # Copy first's ACTIVE item under second's key: branch-key-id is part of the encryption context.
    item = get_item(local_aws, store.table_name, first, "branch:ACTIVE")
    put_item(local_aws, store.table_name, {**item, "branch-key-id": {"S": second}})
    with pytest.raises(KeyStoreError, match="the item was modified"):
        store.get_active_branch_key(second)


# -- configuration, protocol, secrets, imports ------------------------------------------------------


def test_constructor_validation() -> None:
    arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    with pytest.raises(ConfigurationError, match="not an alias"):
        KeyStore("table", "arn:aws:kms:us-east-1:123456789012:alias/my-key")
    with pytest.raises(ConfigurationError, match="ARN"):
        KeyStore("table", "1234abcd-12ab-34cd-56ef-1234567890ab")
    with pytest.raises(ConfigurationError, match="table_name"):
        KeyStore("ab", arn)
    with pytest.raises(ConfigurationError, match="logical_name"):
        KeyStore("table", arn, logical_name="")
    with pytest.raises(ConfigurationError, match="client_supplier"):
        KeyStore("table", arn, client_supplier="nope")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="grant tokens"):
        KeyStore("table", arn, grant_tokens=[""])


def test_protocol_info_and_repr(local_aws: LocalAws) -> None:
    store = new_store(local_aws, grant_tokens=["token-1"], key_store_id="ks-1")
    assert isinstance(store, BranchKeyStore)
    assert store.get_key_store_info() == KeyStoreInfo(
        "ks-1", store.table_name, store.table_name, store.kms_key_arn, ("token-1",)
    )
    branch_key_id = store.create_key()
    local_aws.reset()
    materials = store.get_active_branch_key(branch_key_id)
    (decrypt,) = local_aws.requests("Decrypt")
    assert decrypt.params["GrantTokens"] == ["token-1"]
    for text in (repr(store), repr(materials), repr(store.get_beacon_key(branch_key_id))):
        assert materials.branch_key.hex() not in text and "branch_key=" not in text
    assert repr(store) == (
        f"KeyStore(table_name={store.table_name!r}, logical_name={store.table_name!r}, "
        f"kms_key_arn={store.kms_key_arn!r})"
    )


def test_import_kmsenvelope_aws_does_not_import_boto3() -> None:
    code = (
        "import sys, kmsenvelope.aws, kmsenvelope as a; assert 'boto3' not in sys.modules; "
        "K = a.KeyStore; assert K.__module__ == 'kmsenvelope.aws.branch_key_store'; "
        "K('table', 'arn:aws:kms:us-east-1:111122223333:key/k'); "
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules; print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
