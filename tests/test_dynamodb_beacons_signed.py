"""Signed beacons (beacons.md#signed-beacons) and the search config shape (search-config.md): version 1
only, global parts lists, and the conformance manifests' search configs."""

from __future__ import annotations

from typing import Any

import pytest

from kmsenvelope.dynamodb import (
    Action,
    BeaconKeySource,
    BeaconVersion,
    CompoundBeacon,
    EncryptedClient,
    ItemEncryptor,
    SearchConfig,
    StandardBeacon,
    TableConfig,
)
from kmsenvelope.errors import ConfigurationError, KmsEnvelopeError
from kmsenvelope.testing import LocalAws

from ._dbesdk import load_json
from ._dynamodb_env import ACTIONS, KEYRING, STORE, config, create_table, person, unique
from .conftest import vectors_dir
from .test_dynamodb_beacons import independent_beacon

SIGNED = CompoundBeacon("dept_version", ".", signed_parts=[("dept", "D-"), ("version", "V-")])
BEACONS = [StandardBeacon("email", 8), SIGNED]
PEOPLE = [
    person(f"g{i:02d}", dept={"S": "eng" if i % 2 else "ops"}, version={"N": str(i % 3)}) for i in range(12)
]


def _pks(items: list[dict[str, Any]]) -> list[str]:
    return sorted(item["pk"]["S"] for item in items)


def _with_beacon(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "dept_version": {"S": f"D-{item['dept']['S']}.V-{item['version']['N']}"}}


@pytest.fixture
def env(local_aws: LocalAws) -> tuple[LocalAws, str, Any, EncryptedClient]:
    name = unique("signed")
    raw = create_table(local_aws, name, indexes=[("by-dv", "dept_version", "pk")])
    client = EncryptedClient(raw, {name: config("signed", beacons=BEACONS)})
    for item in PEOPLE:
        client.put_item(TableName=name, Item=item)
    local_aws.reset()
    return local_aws, name, raw, client


def test_signed_beacon_is_a_signed_plaintext_attribute(env: Any) -> None:
    _aws, name, raw, client = env
    key = {"pk": PEOPLE[5]["pk"], "sk": PEOPLE[5]["sk"]}
    stored = raw.get_item(TableName=name, Key=key)["Item"]
    assert stored["dept_version"] == {"S": "D-eng.V-2"}
    assert "aws_dbe_b_dept_version" not in stored
    # Not stripped from results: it is a real attribute of the item.
    assert client.get_item(TableName=name, Key=key)["Item"] == _with_beacon(PEOPLE[5])
    # And it is signed: changing it on the server breaks the item.
    raw.put_item(TableName=name, Item={**stored, "dept_version": {"S": "D-ops.V-2"}})
    with pytest.raises(KmsEnvelopeError):
        client.get_item(TableName=name, Key=key)


def test_query_by_signed_beacon_sends_it_as_is(env: Any) -> None:
    aws, name, _raw, client = env
    for dept, version in (("eng", "1"), ("ops", "0"), ("ops", "2")):
        expected = [p for p in PEOPLE if p["dept"]["S"] == dept and p["version"]["N"] == version]
        found = client.query(
            TableName=name,
            IndexName="by-dv",
            KeyConditionExpression="dept_version = :v",
            ExpressionAttributeValues={":v": {"S": f"D-{dept}.V-{version}"}},
        )
        assert _pks(found["Items"]) == _pks(expected)
        assert all(item in [_with_beacon(p) for p in expected] for item in found["Items"])
    sent = aws.requests("Query", service="dynamodb")[-1].params
    assert sent["KeyConditionExpression"] == "dept_version = :v"
    assert sent["ExpressionAttributeValues"] == {":v": {"S": "D-ops.V-2"}}
    prefix = client.scan(
        TableName=name,
        FilterExpression="begins_with(dept_version, :p)",
        ExpressionAttributeValues={":p": {"S": "D-ops"}},
    )
    assert _pks(prefix["Items"]) == _pks([p for p in PEOPLE if p["dept"]["S"] == "ops"])
    # No truncated hash, no false positives: Select=COUNT stays available.
    counted = client.scan(
        TableName=name,
        Select="COUNT",
        FilterExpression="dept_version = :v",
        ExpressionAttributeValues={":v": {"S": "D-eng.V-1"}},
    )
    assert counted["Count"] == 2
    with pytest.raises(KmsEnvelopeError):  # values must still parse as the beacon's parts
        client.scan(
            TableName=name, FilterExpression="dept_version = :v", ExpressionAttributeValues={":v": {"S": "X"}}
        )


def test_supplied_signed_beacon_must_match(env: Any) -> None:
    _aws, name, _raw, client = env
    item = person("g90", dept={"S": "ops"})
    client.put_item(TableName=name, Item=_with_beacon(item))  # the same value is fine
    with pytest.raises(KmsEnvelopeError, match="signed beacon"):
        client.put_item(TableName=name, Item={**item, "dept_version": {"S": "D-eng.V-1"}})
    # An item that cannot build the beacon may carry its own value (it is an ordinary SIGN_ONLY attribute).
    partial = {k: v for k, v in person("g91").items() if k != "version"}
    client.put_item(TableName=name, Item={**partial, "dept_version": {"S": "D-x.V-y"}})
    got = client.get_item(TableName=name, Key={"pk": {"S": "g91"}, "sk": {"S": "profile"}})["Item"]
    assert got["dept_version"] == {"S": "D-x.V-y"}


def test_signed_beacon_can_be_the_sort_key(local_aws: LocalAws) -> None:
    name = unique("signedkey")
    raw = create_table(local_aws, name)
    actions = {k: v for k, v in ACTIONS.items() if k != "sk"}
    beacons = [
        StandardBeacon("email", 8),
        CompoundBeacon("sk", "#", signed_parts=[("dept", "D-"), ("version", "V-")]),
    ]
    table = config("signedkey", actions=actions, beacons=beacons)
    assert table.actions["sk"] is Action.SIGN_ONLY
    client = EncryptedClient(raw, {name: table})
    item = {k: v for k, v in person("k1").items() if k != "sk"}
    client.put_item(TableName=name, Item=item)
    got = client.get_item(TableName=name, Key={"pk": {"S": "k1"}, "sk": {"S": "D-eng#V-1"}})["Item"]
    assert got == {**item, "sk": {"S": "D-eng#V-1"}}


def _search_config(**version: Any) -> list[Any]:
    return [SearchConfig([BeaconVersion([StandardBeacon("email", 8)], **version)])]


def test_search_config_and_beacon_version_write_what_the_flat_list_writes() -> None:
    flat = ItemEncryptor(config("sc", beacons=[StandardBeacon("email", 8), SIGNED]))
    shaped = ItemEncryptor(
        config(
            "sc",
            beacons=[SearchConfig([BeaconVersion([StandardBeacon("email", 8)], compound_beacons=[SIGNED])])],
        )
    )
    source = BeaconKeySource(STORE, "bk")
    version = ItemEncryptor(
        config(
            "sc",
            beacons=[
                BeaconVersion([StandardBeacon("email", 8)], compound_beacons=[SIGNED], key_source=source)
            ],
        )
    )
    item = PEOPLE[3]
    beacon_names = ("aws_dbe_b_email", "dept_version", "aws_dbe_v_1")
    expected = {"aws_dbe_b_email": {"S": independent_beacon("email", b"g03@example.com", 8)}}
    for encryptor in (flat, shaped, version):
        stored = encryptor.encrypt_item(item)
        assert {k: stored[k] for k in beacon_names} == {
            **expected,
            "dept_version": {"S": "D-eng.V-0"},
            "aws_dbe_v_1": {"S": " "},
        }


def test_global_parts_list() -> None:
    version = BeaconVersion(
        [StandardBeacon("email", 8), StandardBeacon("ssn", 8)],
        signed_parts=[("dept", "D-")],
        encrypted_parts=[("email", "E-")],
        compound_beacons=[
            CompoundBeacon("c", "|", constructors=[["dept", "email"]]),
            CompoundBeacon(
                "d", "|", encrypted_parts=[("ssn", "S-")], constructors=[["ssn", ("dept", False)]]
            ),
        ],
    )
    stored = ItemEncryptor(config("gp", beacons=[version])).encrypt_item(PEOPLE[1])
    email = independent_beacon("email", b"g01@example.com", 8)
    assert stored["aws_dbe_b_c"] == {"S": f"D-eng|E-{email}"}
    assert stored["aws_dbe_b_d"] == {"S": f"S-{independent_beacon('ssn', b'ssn-of-g01', 8)}|D-eng"}


BAD: dict[str, Any] = {
    "beacon version 2": lambda: _search_config(version=2),
    "beacon version True": lambda: _search_config(version=True),
    "beacon version 1.0": lambda: _search_config(version=1.0),
    "write version 2": lambda: [SearchConfig([BeaconVersion([StandardBeacon("email", 8)])], write_version=2)],
    "two beacon versions": lambda: [
        SearchConfig(
            [BeaconVersion([StandardBeacon("email", 8)]), BeaconVersion([StandardBeacon("email", 8)])]
        )
    ],
    "no beacon version": lambda: [SearchConfig([])],
    "no standard beacon": lambda: [BeaconVersion([])],
    "search config and other beacons": lambda: [*_search_config(), StandardBeacon("ssn", 8)],
    "key source of the wrong type": lambda: [BeaconVersion([StandardBeacon("email", 8)], key_source="bk")],
    "global part named like a local part": lambda: [
        BeaconVersion(
            [StandardBeacon("email", 8)],
            signed_parts=[("dept", "D-")],
            compound_beacons=[
                CompoundBeacon("c", "|", signed_parts=[("dept", "X-")], encrypted_parts=[("email", "E-")])
            ],
        )
    ],
    "global prefix reused locally": lambda: [
        BeaconVersion(
            [StandardBeacon("email", 8)],
            signed_parts=[("dept", "D-")],
            compound_beacons=[CompoundBeacon("c", "|", encrypted_parts=[("email", "D-")])],
        )
    ],
    "overlapping global prefixes": lambda: [
        BeaconVersion(
            [StandardBeacon("email", 8)], signed_parts=[("dept", "D-")], encrypted_parts=[("email", "D")]
        )
    ],
    "global encrypted part not a beacon": lambda: [
        BeaconVersion([StandardBeacon("email", 8)], encrypted_parts=[("ssn", "S-")])
    ],
    "global signed part over an encrypted attribute": lambda: [
        BeaconVersion([StandardBeacon("email", 8)], signed_parts=[("ssn", "S-")])
    ],
    "constructor names an unknown part": lambda: [
        BeaconVersion(
            [StandardBeacon("email", 8)], compound_beacons=[CompoundBeacon("c", "|", constructors=[["zz"]])]
        )
    ],
    "compound beacon without parts or constructors": lambda: [
        StandardBeacon("email", 8),
        CompoundBeacon("c", "|"),
    ],
    "signed beacon over an encrypted attribute": lambda: [
        StandardBeacon("email", 8),
        CompoundBeacon("c", "|", signed_parts=[("ssn", "S-")]),
    ],
    "signed beacon named like an unsigned attribute": lambda: [
        StandardBeacon("email", 8),
        CompoundBeacon("note", "|", signed_parts=[("dept", "D-")]),
    ],
    "signed beacon named like a standard beacon": lambda: [
        StandardBeacon("email", 8),
        CompoundBeacon("email", "|", signed_parts=[("dept", "D-")]),
    ],
    "compound beacon split outside the BMP": lambda: [
        StandardBeacon("email", 8),
        CompoundBeacon("c", "😀", encrypted_parts=[("email", "E-")]),
    ],
}


REASON = {
    "beacon version 2": "beacon version number must be 1",
    "beacon version 1.0": "beacon version number must be 1",
    "beacon version True": "beacon version number must be 1",
    "write version 2": "write_version must be 1",
    "two beacon versions": "exactly one beacon version",
    "no beacon version": "exactly one beacon version",
    "no standard beacon": "at least one StandardBeacon",
    "search config and other beacons": "must be the only entry of beacons",
    "key source of the wrong type": "key_source must be a BeaconKeySource",
    "global part named like a local part": "part 'dept' repeats the name or prefix of a global part",
    "global prefix reused locally": "part 'email' repeats the name or prefix of a global part",
    "overlapping global prefixes": "the global parts list: prefix 'D-' of 'dept' and prefix 'D' of",
    "global encrypted part not a beacon": "encrypted part 'ssn' is not a standard beacon",
    "global signed part over an encrypted attribute": "signed part 'ssn' must be over a signed, unencrypted",
    "constructor names an unknown part": "constructor names part 'zz'",
    "compound beacon without parts or constructors": "has no parts and no constructors",
    "signed beacon over an encrypted attribute": "signed part 'ssn' must be over a signed, unencrypted",
    "signed beacon named like an unsigned attribute": "signed beacon 'note' is stored under its own name",
    "signed beacon named like a standard beacon": "two beacons are named 'email'",
    "compound beacon split outside the BMP": "split must be a single character of the Basic Multilingual",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_invalid_search_configurations(case: str) -> None:
    assert set(REASON) == set(BAD)
    with pytest.raises(ConfigurationError, match=REASON[case]):
        config("bad", beacons=BAD[case]())


def test_part_values_are_taken_as_written() -> None:
    """Compound parts get a value's string as ``TermLoc.TermToString`` gives it: numbers as written
    (not normalized, unlike a standard beacon's serialized bytes), booleans and NULL spelled out."""
    actions = {**ACTIONS, "flag": "SIGN_ONLY", "amount": "ENCRYPT_AND_SIGN"}
    beacons = [
        StandardBeacon("amount", 8),
        CompoundBeacon(
            "c", "|", signed_parts=[("version", "V-"), ("flag", "F-")], encrypted_parts=[("amount", "A-")]
        ),
        CompoundBeacon("s", "|", signed_parts=[("flag", "F-"), ("version", "V-")]),
    ]
    encryptor = ItemEncryptor(config("pv", actions=actions, beacons=beacons))
    item = person("n1", version={"N": "01.50"}, flag={"BOOL": True}, amount={"N": "1.50"})
    stored = encryptor.encrypt_item(item)
    amount = independent_beacon("amount", b"1.50", 8)
    assert stored["aws_dbe_b_c"] == {"S": f"V-01.50|F-true|A-{amount}"}
    assert stored["s"] == {"S": "F-true|V-01.50"}
    assert stored["aws_dbe_b_amount"] == {"S": independent_beacon("amount", b"1.5", 8)}
    assert encryptor.encrypt_item({**item, "flag": {"NULL": True}})["s"] == {"S": "F-null|V-01.50"}
    with pytest.raises(KmsEnvelopeError, match="not B"):
        encryptor.encrypt_item({**item, "flag": {"B": b"x"}})


def test_version_errors_cite_the_spec() -> None:
    with pytest.raises(ConfigurationError, match=r"search-config\.md#version-number"):
        BeaconVersion([StandardBeacon("email", 8)], version=2)
    with pytest.raises(ConfigurationError, match="exactly one beacon version"):
        SearchConfig([])


def _version_from_manifest(search: dict[str, Any]) -> BeaconVersion:
    (raw,) = search["versions"]
    compound = [
        CompoundBeacon(
            c["Name"],
            c["Split"],
            encrypted_parts=[(p["Name"], p["Prefix"]) for p in c.get("Encrypted", [])],
            signed_parts=[(p["Name"], p["Prefix"]) for p in c.get("Signed", [])],
        )
        for c in raw.get("compoundBeacons", [])
    ]
    standard = [StandardBeacon(b["Name"], b["Length"]) for b in raw["standardBeacons"]]
    return BeaconVersion(standard, compound_beacons=compound)


def test_conformance_manifest_search_configs_are_accepted() -> None:
    configs = load_json(vectors_dir("dbesdk") / "configs.json")["tableEncryptionConfigs"]
    searchable = [c for c in configs.values() if "search" in c]
    assert len(searchable) >= 3
    for manifest in searchable:
        table = TableConfig(
            "vectors",
            "RecNum",
            actions=manifest["attributeActionsOnEncrypt"],
            allowed_unsigned=manifest["allowedUnsignedAttributes"],
            keyring=KEYRING,
            beacons=[SearchConfig([_version_from_manifest(manifest["search"])])],
        )
        assert table._search is not None
        encrypted = {n for n, a in manifest["attributeActionsOnEncrypt"].items() if a == "ENCRYPT_AND_SIGN"}
        item = {"RecNum": {"N": "1"}, **{n: {"S": f"value of {n}"} for n in encrypted}}
        item.update(
            {n: {"S": "x"} for n, a in manifest["attributeActionsOnEncrypt"].items() if a == "SIGN_ONLY"}
        )
        item["RecNum"] = {"N": "1"}
        stored = ItemEncryptor(table).encrypt_item(item)
        for beacon in _version_from_manifest(manifest["search"]).standard_beacons:
            want = independent_beacon(beacon.name, f"value of {beacon.name}".encode(), beacon.length)
            assert stored["aws_dbe_b_" + beacon.name] == {"S": want}
