"""Searchable encryption: beacon values per the spec, queries by standard and compound beacons on the
local DynamoDB, false positives from truncated beacons dropped, and the queries that are refused."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kmsenvelope.aws.key_store import BeaconKeyMaterials, BranchKeyMaterials
from kmsenvelope.dynamodb import (
    CompoundBeacon,
    EncryptedClient,
    EncryptedPart,
    ItemEncryptor,
    SignedPart,
    StandardBeacon,
)
from kmsenvelope.errors import KmsEnvelopeError
from kmsenvelope.primitives.kdf import Hmac
from kmsenvelope.structured.beacon_hash import basic_hash
from kmsenvelope.testing import LocalAws

from ._dynamodb_env import BEACON_KEY, config, create_table, dynamodb_requests, person, unique

EMAIL_BITS = 2  # four beacon values for sixteen emails: collisions are certain
BEACONS = (
    StandardBeacon("email", EMAIL_BITS),
    StandardBeacon("ssn_b", 12, location="ssn"),
    CompoundBeacon(
        "dept_email",
        "|",
        encrypted_parts=[EncryptedPart("email", "E-")],
        signed_parts=[SignedPart("dept", "D-")],
    ),
)
PEOPLE = [person(f"p{i:02d}", dept={"S": "eng" if i % 2 else "ops"}) for i in range(16)]


def independent_beacon(name: str, data: bytes, bits: int) -> str:
    """The spec's formula computed with other libraries than kmsenvelope's."""
    key = HKDF(hashes.SHA512(), 64, None, b"AWS_DBE_SCAN_BEACON" + name.encode()).derive(BEACON_KEY)
    first8 = hmac.new(key, data, hashlib.sha384).digest()[:8]
    value = int.from_bytes(first8, "big") % (1 << bits)
    return format(value, "x").rjust((bits + 3) // 4, "0")


@pytest.fixture
def env(local_aws: LocalAws) -> tuple[LocalAws, str, Any, EncryptedClient]:
    name = unique("beacons")
    raw = create_table(
        local_aws,
        name,
        indexes=[("by-email", "aws_dbe_b_email", None), ("by-dept-email", "dept", "aws_dbe_b_dept_email")],
    )
    client = EncryptedClient(raw, {name: config("beacons", beacons=BEACONS)})
    client.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": item}} for item in PEOPLE]})
    local_aws.reset()
    return local_aws, name, raw, client


def _pks(items: list[dict[str, Any]]) -> list[str]:
    return sorted(item["pk"]["S"] for item in items)


def test_basic_hash_matches_the_reference_vectors() -> None:
    # Beacon.dfy TestBeacon: HMAC-SHA384 keyed with [1, 2].
    key = Hmac("sha384", bytes([1, 2]))
    assert key.digest(bytes([1, 2, 3]))[:8] == bytes([0x27, 0x93, 0x93, 0x8B, 0x26, 0xE9, 0x52, 0x7E])
    assert basic_hash(key, bytes([1, 2, 3]), 8) == "7e"
    assert basic_hash(key, b"", 8) == "80"
    assert basic_hash(key, b"123", 8)[-2:] == "61"

    class Fixed:
        def digest(self, data: bytes) -> bytes:
            return bytes([1, 2, 3, 4, 5, 6, 7, 0xB7]) + bytes(40)

    # Beacon.dfy CheckBytesToHex: the rightmost bits of the first 8 bytes, ceil(bits / 4) digits.
    expected = ["1", "3", "7", "7", "17", "37", "37", "b7", "1b7", "3b7"]
    assert [basic_hash(Fixed(), b"", bits) for bits in range(1, 11)] == expected  # type: ignore[arg-type]
    assert len(basic_hash(key, b"x", 63)) == 16


def test_stored_beacons_follow_the_spec(env: Any) -> None:
    _aws, name, raw, client = env
    stored = raw.get_item(TableName=name, Key={"pk": {"S": "p03"}, "sk": {"S": "profile"}})["Item"]
    email = b"p03@example.com"
    assert stored["aws_dbe_b_email"] == {"S": independent_beacon("email", email, EMAIL_BITS)}
    assert stored["aws_dbe_b_ssn_b"] == {"S": independent_beacon("ssn_b", b"ssn-of-p03", 12)}
    assert stored["aws_dbe_b_dept_email"] == {
        "S": "D-eng|E-" + independent_beacon("email", email, EMAIL_BITS)
    }
    assert stored["aws_dbe_v_1"] == {"S": " "}
    decrypted = client.get_item(TableName=name, Key={"pk": {"S": "p03"}, "sk": {"S": "profile"}})["Item"]
    assert decrypted == PEOPLE[3]


def test_query_by_standard_beacon_returns_exactly_the_matches(env: Any) -> None:
    aws, name, raw, client = env
    server_matches = 0
    for target in PEOPLE:
        email = target["email"]
        result = client.query(
            TableName=name,
            IndexName="by-email",
            KeyConditionExpression="#e = :e",
            ExpressionAttributeNames={"#e": "email"},
            ExpressionAttributeValues={":e": email},
        )
        assert result["Items"] == [target] and result["Count"] == 1
        # What the server matched: every item sharing the truncated beacon.
        beacon = raw.get_item(TableName=name, Key={"pk": target["pk"], "sk": target["sk"]})["Item"][
            "aws_dbe_b_email"
        ]
        server = raw.query(
            TableName=name,
            IndexName="by-email",
            KeyConditionExpression="aws_dbe_b_email = :b",
            ExpressionAttributeValues={":b": beacon},
        )
        server_matches += server["Count"]
    assert server_matches > len(PEOPLE)  # collisions happened, and were dropped
    sent = aws.requests("Query", service="dynamodb")
    assert "aws_dbe_b_email" in sent[0].params["ExpressionAttributeNames"].values()
    assert "p00@example.com" not in str(sent[0].params)


def test_scan_with_beacon_filters_and_in(env: Any) -> None:
    _aws, name, _raw, client = env
    wanted = [PEOPLE[1], PEOPLE[6]]
    result = client.scan(
        TableName=name,
        FilterExpression="email IN (:a, :b) AND attribute_exists(pk)",
        ExpressionAttributeValues={":a": wanted[0]["email"], ":b": wanted[1]["email"]},
    )
    assert _pks(result["Items"]) == _pks(wanted) and result["Count"] == 2 and result["ScannedCount"] == 16
    by_location = client.scan(
        TableName=name, FilterExpression="ssn_b = :s", ExpressionAttributeValues={":s": {"S": "ssn-of-p09"}}
    )
    assert _pks(by_location["Items"]) == ["p09"]
    # A plaintext value used both with a beacon and a signed attribute keeps its meaning for each.
    mixed = client.scan(
        TableName=name,
        FilterExpression="email = :v OR dept = :v",
        ExpressionAttributeValues={":v": {"S": "ops"}},
    )
    assert _pks(mixed["Items"]) == _pks([p for p in PEOPLE if p["dept"]["S"] == "ops"])
    pages = client.get_paginator("scan").paginate(
        TableName=name,
        FilterExpression="email = :e",
        ExpressionAttributeValues={":e": PEOPLE[5]["email"]},
        PaginationConfig={"PageSize": 3},
    )
    assert [item for page in pages for item in page["Items"]] == [PEOPLE[5]]


def test_compound_beacon_queries(env: Any) -> None:
    _aws, name, _raw, client = env
    eng = [p for p in PEOPLE if p["dept"]["S"] == "eng"]
    prefix = client.query(
        TableName=name,
        IndexName="by-dept-email",
        KeyConditionExpression="dept = :d AND begins_with(dept_email, :p)",
        ExpressionAttributeValues={":d": {"S": "eng"}, ":p": {"S": "D-eng|E-"}},
    )
    assert _pks(prefix["Items"]) == _pks(eng)
    for target in eng[:4]:
        exact = client.query(
            TableName=name,
            IndexName="by-dept-email",
            KeyConditionExpression="dept = :d AND dept_email = :v",
            ExpressionAttributeValues={
                ":d": {"S": "eng"},
                ":v": {"S": f"D-eng|E-{target['email']['S']}"},
            },
        )
        assert exact["Items"] == [target]
    scanned = client.scan(
        TableName=name,
        FilterExpression="dept_email = :v",
        ExpressionAttributeValues={":v": {"S": f"D-ops|E-{PEOPLE[0]['email']['S']}"}},
    )
    assert scanned["Items"] == [PEOPLE[0]]
    # A signed-only prefix needs no key and is compared in plaintext.
    by_dept = client.scan(
        TableName=name,
        FilterExpression="begins_with(dept_email, :p)",
        ExpressionAttributeValues={":p": {"S": "D-ops"}},
    )
    assert len(by_dept["Items"]) == 8


REFUSED_QUERIES = {
    "unbeaconed encrypted attribute": ("ssn = :v", {":v": {"S": "ssn-of-p01"}}),
    "nested encrypted attribute": ("card.cvv = :v", {":v": {"N": "123"}}),
    "inequality on standard beacon": ("email <> :v", {":v": {"S": "x"}}),
    "ordering on standard beacon": ("email < :v", {":v": {"S": "x"}}),
    "begins_with on standard beacon": ("begins_with(email, :v)", {":v": {"S": "x"}}),
    "beacon against attribute": ("email = dept", None),
    "compound not LessThanComparable": ("dept_email < :v", {":v": {"S": "D-eng|E-x@example.com"}}),
    "compound BETWEEN not comparable": (
        "dept_email BETWEEN :a AND :b",
        {":a": {"S": "D-eng|E-a"}, ":b": {"S": "D-ops|E-b"}},
    ),
    "compound unknown prefix": ("dept_email = :v", {":v": {"S": "X-1"}}),
    "compound with number": ("dept_email = :v", {":v": {"N": "1"}}),
    "count with beacon": ("email = :v", {":v": {"S": "p01@example.com"}}),
}


@pytest.mark.parametrize("case", sorted(REFUSED_QUERIES))
def test_refused_beacon_queries_send_nothing(env: Any, case: str) -> None:
    aws, name, _raw, client = env
    expression, values = REFUSED_QUERIES[case]
    params: dict[str, Any] = {"TableName": name, "FilterExpression": expression}
    if values:
        params["ExpressionAttributeValues"] = values
    if case == "count with beacon":
        params["Select"] = "COUNT"
    with pytest.raises(KmsEnvelopeError):
        client.scan(**params)
    assert dynamodb_requests(aws) == []


def test_comparable_compound_bounds_are_allowed(env: Any) -> None:
    _aws, name, _raw, client = env
    result = client.scan(
        TableName=name,
        FilterExpression="dept_email BETWEEN :a AND :b",
        ExpressionAttributeValues={":a": {"S": "D-eng"}, ":b": {"S": "D-ops"}},
    )
    assert len(result["Items"]) == 8


def test_item_encryptor_writes_and_strips_beacons() -> None:
    encryptor = ItemEncryptor(config("beacons", beacons=BEACONS))
    stored = encryptor.encrypt_item(PEOPLE[2])
    assert {"aws_dbe_b_email", "aws_dbe_b_ssn_b", "aws_dbe_b_dept_email", "aws_dbe_v_1"} <= set(stored)
    assert encryptor.decrypt_item(stored) == PEOPLE[2]
    with pytest.raises(KmsEnvelopeError):
        encryptor.encrypt_item({**PEOPLE[2], "aws_dbe_b_email": {"S": "0"}})
    with pytest.raises(KmsEnvelopeError, match="split character"):
        encryptor.encrypt_item({**PEOPLE[2], "dept": {"S": "a|b"}})
    # Tampered beacons cannot change what decrypts: they are not returned and not trusted.
    assert encryptor.decrypt_item({**stored, "aws_dbe_b_email": {"S": "f"}}) == PEOPLE[2]


class _CountingStore:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.beacon_calls = 0

    def get_active_branch_key(self, branch_key_id: str) -> BranchKeyMaterials:
        return self.inner.get_active_branch_key(branch_key_id)  # type: ignore[no-any-return]

    def get_branch_key_version(self, branch_key_id: str, version: str) -> BranchKeyMaterials:
        return self.inner.get_branch_key_version(branch_key_id, version)  # type: ignore[no-any-return]

    def get_beacon_key(self, branch_key_id: str) -> BeaconKeyMaterials:
        self.beacon_calls += 1
        return self.inner.get_beacon_key(branch_key_id)  # type: ignore[no-any-return]


def test_beacon_key_comes_from_the_key_store_and_is_cached(local_aws: LocalAws) -> None:
    from kmsenvelope import KmsKeyring
    from kmsenvelope.dynamodb import BeaconKeySource

    from ._dynamodb_env import STORE

    store = _CountingStore(STORE)
    keyring = KmsKeyring(local_aws.create_key(), client_supplier=local_aws.client_supplier())
    beacons = (StandardBeacon("email", 8), BeaconKeySource(store, "bk", ttl_seconds=300))
    name = unique("keysource")
    raw = create_table(local_aws, name)
    client = EncryptedClient(raw, {name: config("keysource", keyring=keyring, beacons=beacons)})
    for item in PEOPLE[:3]:
        client.put_item(TableName=name, Item=item)
    found = client.scan(
        TableName=name, FilterExpression="email = :e", ExpressionAttributeValues={":e": PEOPLE[1]["email"]}
    )
    assert found["Items"] == [PEOPLE[1]]
    assert store.beacon_calls == 1
    stored = raw.get_item(TableName=name, Key={"pk": PEOPLE[1]["pk"], "sk": PEOPLE[1]["sk"]})["Item"]
    assert stored["aws_dbe_b_email"] == {"S": independent_beacon("email", b"p01@example.com", 8)}


BAD_BEACONS: dict[str, Any] = {
    "beacon over a signed attribute": lambda: [StandardBeacon("dept", 8)],
    "beacon named like a signed attribute": lambda: [StandardBeacon("dept", 8, location="email")],
    "length zero": lambda: [StandardBeacon("email", 0)],
    "length 64": lambda: [StandardBeacon("email", 64)],
    "reserved name": lambda: [StandardBeacon("aws_dbe_x", 8, location="email")],
    "two beacons on one location": lambda: [
        StandardBeacon("email", 8),
        StandardBeacon("e2", 8, location="email"),
    ],
    "compound without standard beacons": lambda: [
        CompoundBeacon("c", "|", encrypted_parts=[("email", "E-")], signed_parts=[("dept", "D-")])
    ],
    "overlapping prefixes": lambda: [
        StandardBeacon("email", 8),
        CompoundBeacon("c", "|", encrypted_parts=[("email", "D-")], signed_parts=[("dept", "D")]),
    ],
    "signed part over encrypted attribute": lambda: [
        StandardBeacon("email", 8),
        CompoundBeacon("c", "|", encrypted_parts=[("email", "E-")], signed_parts=[("ssn", "S-")]),
    ],
    "signed beacon named like an attribute": lambda: [
        StandardBeacon("email", 8),
        CompoundBeacon("version", "|", signed_parts=[("dept", "D-")]),
    ],
    "compound named like an attribute": lambda: [
        StandardBeacon("email", 8),
        CompoundBeacon("dept", "|", encrypted_parts=[("email", "E-")]),
    ],
    "constructor without required part": lambda: [
        StandardBeacon("email", 8),
        CompoundBeacon("c", "|", encrypted_parts=[("email", "E-")], constructors=[[("email", False)]]),
    ],
    "split of two characters": lambda: [
        StandardBeacon("email", 8),
        CompoundBeacon("c", "||", encrypted_parts=[("email", "E-")]),
    ],
    "not a beacon": lambda: ["email"],
}


@pytest.mark.parametrize("case", sorted(BAD_BEACONS))
def test_invalid_beacon_configurations(case: str) -> None:
    from kmsenvelope.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        config("bad", beacons=BAD_BEACONS[case]())


def test_beacons_need_a_key_source(local_aws: LocalAws) -> None:
    from kmsenvelope import KmsKeyring
    from kmsenvelope.errors import ConfigurationError

    keyring = KmsKeyring(local_aws.create_key(), client_supplier=local_aws.client_supplier())
    with pytest.raises(ConfigurationError, match="BeaconKeySource"):
        config("bad", keyring=keyring, beacons=[StandardBeacon("email", 8)])
