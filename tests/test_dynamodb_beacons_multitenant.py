"""Multi-tenant beacon keys (``search-config.md`` multi key store): each item's beacons use the beacon key
of the branch key that encrypted it, queries name their tenant through the beacon key field, and the
per-tenant keys are cached (LRU, TTL)."""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kmsenvelope.aws.key_store import BeaconKeyMaterials, BranchKeyMaterials, StaticBranchKeyStore
from kmsenvelope.dynamodb import (
    Action,
    BeaconKeySource,
    BeaconVersion,
    CompoundBeacon,
    EncryptedClient,
    ItemEncryptor,
    MultiKeyBeaconSource,
    RequestRefusedError,
    SearchConfig,
    StandardBeacon,
    TableConfig,
    VirtualField,
    VirtualPart,
)
from kmsenvelope.errors import ConfigurationError, KmsEnvelopeError, MalformedInputError
from kmsenvelope.keyrings.hierarchical import HierarchicalKeyring
from kmsenvelope.testing import LocalAws

from ._dynamodb_env import create_table, dynamodb_requests, unique

TENANTS = ("acme", "globex")
BEACON_KEYS = {tenant: os.urandom(32) for tenant in TENANTS}
EMAIL_BITS = 2  # four beacon values for eight emails per tenant: collisions are certain
ACTIONS = {
    "pk": Action.SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT,
    "sk": Action.SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT,
    "tenant": Action.SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT,
    "email": Action.ENCRYPT_AND_SIGN,
    "ssn": Action.ENCRYPT_AND_SIGN,
    "dept": Action.SIGN_ONLY,
    "note": Action.DO_NOTHING,
}


class TenantStore:
    """A branch key store holding one branch key per tenant; counts ``get_beacon_key`` calls."""

    def __init__(self) -> None:
        self._stores = {
            t: StaticBranchKeyStore(t, str(uuid.uuid4()), os.urandom(32), BEACON_KEYS[t]) for t in TENANTS
        }
        self.beacon_calls: Counter[str] = Counter()

    def get_active_branch_key(self, branch_key_id: str) -> BranchKeyMaterials:
        return self._stores[branch_key_id].get_active_branch_key(branch_key_id)

    def get_branch_key_version(self, branch_key_id: str, version: str) -> BranchKeyMaterials:
        return self._stores[branch_key_id].get_branch_key_version(branch_key_id, version)

    def get_beacon_key(self, branch_key_id: str) -> BeaconKeyMaterials:
        self.beacon_calls[branch_key_id] += 1
        return self._stores[branch_key_id].get_beacon_key(branch_key_id)


def tenant_of(context: Mapping[str, str]) -> str:
    """The branch key id supplier: the item's tenant attribute, from the encryption context."""
    return context["aws-crypto-attr.tenant"]


def make_config(
    store: TenantStore,
    *entries: Any,
    keyring: HierarchicalKeyring | None = None,
    actions: Mapping[str, Action] = ACTIONS,
    **source: Any,
) -> TableConfig:
    """The test table; ``entries`` replace the default beacons, ``source`` configures the key source."""
    keyring = keyring or HierarchicalKeyring(store, branch_key_id_supplier=tenant_of)
    if not entries:
        entries = (
            StandardBeacon("email", EMAIL_BITS),
            StandardBeacon("ssn_b", 63, location="ssn"),
            CompoundBeacon(
                "tenant_email", "|", encrypted_parts=[("email", "E-")], signed_parts=[("tenant", "T-")]
            ),
            MultiKeyBeaconSource(store, source.pop("key_field_name", "tenant"), **source),
        )
    return TableConfig(
        "people",
        "pk",
        sort_key="sk",
        actions=actions,
        keyring=keyring,
        allowed_unsigned=("note",),
        beacons=list(entries),
    )


def person(tenant: str, i: int) -> dict[str, Any]:
    return {
        "pk": {"S": f"{tenant}#{i:02d}"},
        "sk": {"S": "profile"},
        "tenant": {"S": tenant},
        "email": {"S": f"user{i}@example.com"},  # the same emails in every tenant
        "ssn": {"S": f"ssn-{i}"},
        "dept": {"S": "eng"},
    }


def independent_beacon(tenant: str, name: str, data: bytes, bits: int) -> str:
    """The spec's formula under the tenant's beacon key, computed without kmsenvelope."""
    key = HKDF(hashes.SHA512(), 64, None, b"AWS_DBE_SCAN_BEACON" + name.encode()).derive(BEACON_KEYS[tenant])
    value = int.from_bytes(hmac.new(key, data, hashlib.sha384).digest()[:8], "big") % (1 << bits)
    return format(value, "x").rjust((bits + 3) // 4, "0")


def _serialized_string(text: str) -> bytes:
    return text.encode()  # a standard beacon hashes the serialized value: for an S, its UTF-8


@pytest.fixture
def env(local_aws: LocalAws) -> tuple[LocalAws, str, Any, EncryptedClient, TenantStore]:
    name = unique("multitenant")
    raw = create_table(local_aws, name, indexes=[("by-tenant-email", "tenant", "aws_dbe_b_email")])
    store = TenantStore()
    client = EncryptedClient(raw, {name: make_config(store)})
    items = [person(tenant, i) for tenant in TENANTS for i in range(8)]
    client.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": item}} for item in items]})
    local_aws.reset()
    return local_aws, name, raw, client, store


def _pks(items: list[dict[str, Any]]) -> list[str]:
    return sorted(item["pk"]["S"] for item in items)


def test_each_tenant_beacons_under_its_own_key(env: Any) -> None:
    _aws, name, raw, _client, _store = env
    stored = {
        t: raw.get_item(TableName=name, Key={"pk": {"S": f"{t}#03"}, "sk": {"S": "profile"}})["Item"]
        for t in TENANTS
    }
    for tenant in TENANTS:
        item = stored[tenant]
        email = _serialized_string("user3@example.com")
        assert item["aws_dbe_b_email"] == {"S": independent_beacon(tenant, "email", email, EMAIL_BITS)}
        assert item["aws_dbe_b_ssn_b"] == {
            "S": independent_beacon(tenant, "ssn_b", _serialized_string("ssn-3"), 63)
        }
        # Compound beacon: the signed tenant part in plaintext, the email part hashed with the tenant's key.
        email_hash = independent_beacon(tenant, "email", b"user3@example.com", EMAIL_BITS)
        assert item["aws_dbe_b_tenant_email"] == {"S": f"T-{tenant}|E-{email_hash}"}
    # The same plaintext, two tenants: two different beacons (63 bits: a coincidence is negligible).
    assert stored["acme"]["aws_dbe_b_ssn_b"] != stored["globex"]["aws_dbe_b_ssn_b"]


def test_query_pinned_to_a_tenant_returns_exactly_its_matches(env: Any) -> None:
    aws, name, raw, client, _store = env
    server_counts = []
    for tenant in TENANTS:
        for i in range(8):
            values = {":t": {"S": tenant}, ":e": {"S": f"user{i}@example.com"}}
            result = client.query(
                TableName=name,
                IndexName="by-tenant-email",
                KeyConditionExpression="tenant = :t AND email = :e",
                ExpressionAttributeValues=values,
            )
            assert _pks(result["Items"]) == [f"{tenant}#{i:02d}"]
            assert result["Count"] == 1
            # What the server matched: every item of the tenant sharing the truncated beacon.
            beacon = raw.get_item(
                TableName=name, Key={"pk": {"S": f"{tenant}#{i:02d}"}, "sk": {"S": "profile"}}
            )
            server = raw.query(
                TableName=name,
                IndexName="by-tenant-email",
                KeyConditionExpression="tenant = :t AND aws_dbe_b_email = :b",
                ExpressionAttributeValues={":t": values[":t"], ":b": beacon["Item"]["aws_dbe_b_email"]},
            )
            server_counts.append(server["Count"])
    # Eight emails over four beacon values per tenant: some queries above met false positives.
    assert min(server_counts) >= 1 and max(server_counts) > 1
    aws.reset()
    result = client.scan(
        TableName=name,
        FilterExpression="email = :e AND tenant = :t",
        ExpressionAttributeValues={":t": {"S": "globex"}, ":e": {"S": "user5@example.com"}},
    )
    assert _pks(result["Items"]) == ["globex#05"]
    sent = aws.requests(service="dynamodb")[0].params["ExpressionAttributeValues"]
    assert {"S": "globex"} in sent.values() and {"S": "user5@example.com"} not in sent.values()


def test_compound_beacon_signed_part_pins_the_tenant(env: Any) -> None:
    _aws, name, _raw, client, _store = env
    result = client.scan(
        TableName=name,
        FilterExpression="tenant_email = :v",
        ExpressionAttributeValues={":v": {"S": "T-acme|E-user6@example.com"}},
    )
    assert _pks(result["Items"]) == ["acme#06"]


REFUSED = {
    "no tenant": ("email = :e", {":e": {"S": "user1@example.com"}}),
    "two tenants": (
        "email = :e AND tenant = :a AND tenant = :b",
        {":e": {"S": "user1@example.com"}, ":a": {"S": "acme"}, ":b": {"S": "globex"}},
    ),
    "tenant and another tenant in a compound value": (
        "tenant = :a AND tenant_email = :v",
        {":a": {"S": "acme"}, ":v": {"S": "T-globex|E-user1@example.com"}},
    ),
    "tenant only under OR": (
        "email = :e AND (tenant = :a OR dept = :d)",
        {":e": {"S": "user1@example.com"}, ":a": {"S": "acme"}, ":d": {"S": "eng"}},
    ),
    "tenant only under NOT": ("email = :e AND NOT tenant = :a", {":e": {"S": "x"}, ":a": {"S": "acme"}}),
    "tenant by inequality": ("email = :e AND tenant <> :a", {":e": {"S": "x"}, ":a": {"S": "acme"}}),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_queries_that_do_not_pin_one_tenant_are_refused_before_any_request(env: Any, case: str) -> None:
    aws, name, _raw, client, _store = env
    expression, values = REFUSED[case]
    with pytest.raises(RequestRefusedError):
        client.scan(TableName=name, FilterExpression=expression, ExpressionAttributeValues=values)
    assert dynamodb_requests(aws) == []


def test_queries_needing_no_beacon_key_need_no_tenant(env: Any) -> None:
    _aws, name, _raw, client, store = env
    store.beacon_calls.clear()
    plain = client.scan(
        TableName=name, FilterExpression="dept = :d", ExpressionAttributeValues={":d": {"S": "eng"}}
    )
    assert len(plain["Items"]) == 16
    assert not store.beacon_calls


def test_writes_without_the_right_tenant_are_refused_before_any_request(env: Any) -> None:
    aws, name, _raw, client, _store = env
    missing = person("acme", 20)
    del missing["tenant"]
    # The supplier cannot find the tenant either; either refusal happens before the request.
    with pytest.raises(KmsEnvelopeError):
        client.put_item(TableName=name, Item=missing)
    not_a_string = {**person("acme", 21), "tenant": {"N": "1"}}
    with pytest.raises(MalformedInputError):
        client.put_item(TableName=name, Item=not_a_string)
    assert dynamodb_requests(aws) == []


def test_missing_key_field_is_refused_by_the_beacons_themselves() -> None:
    store = TenantStore()
    config = make_config(
        store,
        StandardBeacon("email", 8),
        MultiKeyBeaconSource(store, "tenant"),
        keyring=HierarchicalKeyring(store, branch_key_id="acme"),  # encrypting does not need the tenant
        actions={**ACTIONS, "tenant": Action.SIGN_ONLY},
    )
    item = person("acme", 1)
    assert "aws_dbe_b_email" in ItemEncryptor(config).encrypt_item(item)
    del item["tenant"]
    with pytest.raises(MalformedInputError, match="tenant"):
        ItemEncryptor(config).encrypt_item(item)
    # A tenant that is not the branch key id the item was encrypted under would make it unsearchable.
    with pytest.raises(MalformedInputError, match="branch key id"):
        ItemEncryptor(config).encrypt_item({**item, "tenant": {"S": "globex"}})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_beacon_keys_are_fetched_once_per_tenant_per_ttl() -> None:
    store, clock = TenantStore(), Clock()
    encryptor = ItemEncryptor(make_config(store, ttl_seconds=60, clock=clock))
    for i in range(5):
        for tenant in TENANTS:
            encryptor.encrypt_item(person(tenant, i))
    assert store.beacon_calls == Counter({"acme": 1, "globex": 1})
    clock.now += 59
    encryptor.encrypt_item(person("acme", 9))
    assert store.beacon_calls["acme"] == 1
    clock.now += 2  # past the TTL of the first fetch
    encryptor.encrypt_item(person("acme", 9))
    encryptor.encrypt_item(person("globex", 9))
    assert store.beacon_calls == Counter({"acme": 2, "globex": 2})


def test_the_cache_holds_at_most_cache_size_tenants() -> None:
    store = TenantStore()
    encryptor = ItemEncryptor(make_config(store, cache_size=1))
    for tenant in ("acme", "acme", "globex", "acme", "acme"):
        encryptor.encrypt_item(person(tenant, 1))
    assert store.beacon_calls == Counter({"acme": 2, "globex": 1})  # globex evicted acme once
    store = TenantStore()
    encryptor = ItemEncryptor(make_config(store, cache_size=2))
    for tenant in ("acme", "globex", "acme", "globex"):
        encryptor.encrypt_item(person(tenant, 1))
    assert store.beacon_calls == Counter({"acme": 1, "globex": 1})


def test_search_config_shape_and_single_source_still_work() -> None:
    store = TenantStore()
    version = BeaconVersion([StandardBeacon("email", 8)], key_source=MultiKeyBeaconSource(store, "tenant"))
    encryptor = ItemEncryptor(make_config(store, SearchConfig([version])))
    assert "aws_dbe_b_email" in encryptor.encrypt_item(person("globex", 1))
    assert store.beacon_calls == Counter({"globex": 1})
    single = make_config(store, StandardBeacon("email", 8), BeaconKeySource(store, "acme"))
    # A single key store ignores the item's tenant: every item uses the acme beacon key.
    stored = ItemEncryptor(single).encrypt_item(person("globex", 1))
    expected = independent_beacon("acme", "email", _serialized_string("user1@example.com"), 8)
    assert stored["aws_dbe_b_email"] == {"S": expected}


def test_configuration_is_validated() -> None:
    store = TenantStore()
    bad: list[tuple[dict[str, Any], str]] = [
        ({"key_field_name": ""}, "key_field_name"),
        ({"ttl_seconds": 0}, "ttl_seconds"),
        ({"ttl_seconds": True}, "ttl_seconds"),
        ({"cache_size": 0}, "cache_size"),
        ({"cache_size": 1.5}, "cache_size"),
    ]
    for args, message in bad:
        with pytest.raises(ConfigurationError, match=message):
            MultiKeyBeaconSource(store, **{"key_field_name": "tenant", **args})
    with pytest.raises(ConfigurationError, match="BranchKeyStore"):
        MultiKeyBeaconSource(object(), "tenant")  # type: ignore[arg-type]
    for field, message in [
        ("ssn", "ENCRYPT_AND_SIGN"),
        ("note", "SIGN_ONLY"),  # DO_NOTHING
        ("unknown", "SIGN_ONLY"),  # not configured: never stored, so `unknown = :v` could match nothing
    ]:
        with pytest.raises(ConfigurationError, match=message):
            make_config(store, key_field_name=field)
    email = StandardBeacon("email", 8)
    named_like_field = [
        (StandardBeacon("tenant", 8, location="email"),),
        (CompoundBeacon("tenant", "|", encrypted_parts=[("email", "E-")]),),
        (VirtualField("tenant", [VirtualPart("email")]), StandardBeacon("vt", 8, location="tenant")),
    ]
    for extra in named_like_field:
        with pytest.raises(ConfigurationError, match="tenant"):
            make_config(store, email, *extra, MultiKeyBeaconSource(store, "tenant"))
    with pytest.raises(ConfigurationError, match="at most one"):
        make_config(store, email, MultiKeyBeaconSource(store, "tenant"), BeaconKeySource(store, "acme"))
    with pytest.raises(ConfigurationError, match="key_source"):
        BeaconVersion([email], key_source=store)  # type: ignore[arg-type]
    assert "BEACON" not in repr(MultiKeyBeaconSource(store, "tenant"))
