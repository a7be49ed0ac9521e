"""DynamoDB item encryption side by side: kmsenvelope (DB-ESDK format) and the legacy dynamodb-encryption-sdk.

Run:  python benchmarks/bench_dynamodb.py [--quick] [--kms-items 1000] [--json]

The item is ~1 KiB: 5 ENCRYPT_AND_SIGN attributes (~180-byte strings) and 5 SIGN_ONLY ones (pk, sk and
three small values). One "round trip" encrypts an item and decrypts the result; every subject cycles
through the same 1,024 distinct items (different partition keys).

* kmsenvelope, HMAC suite 0x6700 (our default) and ECDSA suite 0x6701 (the DB-ESDK's default), with a
  ``HierarchicalKeyring`` over a ``StaticBranchKeyStore`` (branch key cached, so no key fetch per item);
* dynamodb-encryption-sdk (the legacy "DynamoDB Encryption Client", ``encrypt_dynamodb_item`` /
  ``decrypt_dynamodb_item``) with wrapped materials (per-item AES key wrapped under AES, HMAC-SHA512
  signature) and with static materials (one AES key, HMAC-SHA512 signature).

Then reading stored legacy items (decrypt only, 256 distinct items): the legacy library's own
``decrypt_dynamodb_item`` next to kmsenvelope's ``ItemEncryptor.decrypt_item`` on a table with a
``LegacyConfig``, which detects the format and hands the item to that same library.

Then KMS calls per 10,000 items (encrypt and decrypt each) on the local KMS (moto), counted both by
``kmsenvelope.stats()`` and by the server: ``KmsKeyring``; ``CachingMaterials(KmsKeyring)``; and a
``HierarchicalKeyring`` whose branch key store keeps the branch key wrapped under KMS and unwraps it
on every fetch (as the DynamoDB-backed key store does). Rows that would take 20,000 round trips to the
local server are measured on ``--kms-items`` items and scaled, as the table says. Timings are medians
over interleaved rounds (each round times one ~0.1 s batch of every subject in turn, so a slow spell
on the machine hits all subjects alike); nothing here is asserted by tests.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

Op = Callable[[], object]
PER = 10_000


def make_item(i: int = 0) -> dict[str, Any]:
    """The ~1 KiB benchmark item, in DynamoDB JSON."""
    item: dict[str, Any] = {
        "pk": {"S": f"customer#{i:08d}"},
        "sk": {"S": "profile"},
        "tier": {"S": "gold"},
        "version": {"N": "7"},
        "active": {"BOOL": True},
    }
    for n in range(5):
        item[f"secret{n}"] = {"S": (f"{n}-sensitive-value-" * 10)[:180]}
    return item


SIGN_ONLY = ("pk", "sk", "tier", "version", "active")
ENCRYPTED = tuple(f"secret{n}" for n in range(5))


def actions() -> dict[str, Any]:
    """The benchmark item's attribute actions."""
    from kmsenvelope.dynamodb import Action

    return {**dict.fromkeys(SIGN_ONLY, Action.SIGN_ONLY), **dict.fromkeys(ENCRYPTED, Action.ENCRYPT_AND_SIGN)}


def item_size(item: dict[str, Any]) -> int:
    return sum(len(k) + len(str(next(iter(v.values())))) for k, v in item.items())


def rates(ops: dict[str, Op], rounds: int) -> dict[str, float]:
    """Operations per second of each op: medians over interleaved rounds (the CLI's bench engine)."""
    from kmsenvelope.cli.bench import measure_interleaved

    return measure_interleaved(ops, batch_time=0.1, rounds=rounds)


ITEMS = 1024
"""Distinct items (partition keys) each subject cycles through: every round trip sees a new key value,
as a real table would, so no per-content cache can make a repeated item look faster than a real one."""


def item_source() -> Callable[[], dict[str, Any]]:
    """A fresh cycle over the benchmark's distinct items."""
    return itertools.cycle([make_item(i) for i in range(ITEMS)]).__next__


def kmsenvelope_round_trips() -> dict[str, Op]:
    from kmsenvelope import HierarchicalKeyring, StaticBranchKeyStore
    from kmsenvelope.dynamodb import DEFAULT_SUITE, SIGNING_SUITE, ItemEncryptor, TableConfig

    store = StaticBranchKeyStore("bench", str(uuid.uuid4()), os.urandom(32), os.urandom(32))
    keyring = HierarchicalKeyring(store, branch_key_id="bench")
    ops: dict[str, Op] = {}
    for label, suite in (("HMAC 0x6700", DEFAULT_SUITE), ("ECDSA 0x6701", SIGNING_SUITE)):
        encryptor = ItemEncryptor(
            TableConfig("bench", "pk", sort_key="sk", actions=actions(), keyring=keyring, suite=suite)
        )
        item = make_item()
        assert encryptor.decrypt_item(encryptor.encrypt_item(item)) == item

        items = item_source()

        def round_trip(encryptor: Any = encryptor, next_item: Any = items) -> object:
            item = next_item()
            return encryptor.decrypt_item(encryptor.encrypt_item(item))

        ops[f"kmsenvelope {label}, hierarchical (cached)"] = round_trip
    return ops


def legacy_round_trips() -> tuple[dict[str, Op], str]:
    try:
        import dynamodb_encryption_sdk
        from dynamodb_encryption_sdk.delegated_keys.jce import JceNameLocalDelegatedKey
        from dynamodb_encryption_sdk.encrypted import CryptoConfig
        from dynamodb_encryption_sdk.encrypted.item import decrypt_dynamodb_item, encrypt_dynamodb_item
        from dynamodb_encryption_sdk.identifiers import CryptoAction, EncryptionKeyType, KeyEncodingType
        from dynamodb_encryption_sdk.material_providers.static import StaticCryptographicMaterialsProvider
        from dynamodb_encryption_sdk.material_providers.wrapped import WrappedCryptographicMaterialsProvider
        from dynamodb_encryption_sdk.materials.raw import RawDecryptionMaterials, RawEncryptionMaterials
        from dynamodb_encryption_sdk.structures import AttributeActions, EncryptionContext
    except ImportError as exc:
        return {}, f"dynamodb-encryption-sdk not installed ({exc}); pip install 'kmsenvelope[bench]'"

    def key(algorithm: str) -> Any:
        return JceNameLocalDelegatedKey(
            key=os.urandom(32),
            algorithm=algorithm,
            key_type=EncryptionKeyType.SYMMETRIC,
            key_encoding=KeyEncodingType.RAW,
        )

    aes, hmac_key = key("AES"), key("HmacSHA512")
    providers = {
        "wrapped materials": WrappedCryptographicMaterialsProvider(
            signing_key=hmac_key, wrapping_key=aes, unwrapping_key=aes
        ),
        "static materials": StaticCryptographicMaterialsProvider(
            encryption_materials=RawEncryptionMaterials(signing_key=hmac_key, encryption_key=aes),
            decryption_materials=RawDecryptionMaterials(verification_key=hmac_key, decryption_key=aes),
        ),
    }
    actions = AttributeActions(
        default_action=CryptoAction.ENCRYPT_AND_SIGN,
        attribute_actions=dict.fromkeys(SIGN_ONLY, CryptoAction.SIGN_ONLY),
    )
    item = make_item()
    ops: dict[str, Op] = {}
    for label, provider in providers.items():
        config = CryptoConfig(
            materials_provider=provider,
            encryption_context=EncryptionContext(
                table_name="bench", partition_key_name="pk", sort_key_name="sk", attributes=item
            ),
            attribute_actions=actions,
        )
        decrypted = decrypt_dynamodb_item(encrypt_dynamodb_item(item, config), config)
        assert decrypted == item, "legacy SDK round trip changed the item"

        items = item_source()

        def round_trip(config: Any = config, next_item: Any = items) -> object:
            # The legacy SDK binds each item's key values through its crypto config; its own
            # EncryptedClient/EncryptedTable call with_item for every item the same way.
            item_config = config.with_item(next_item())
            return decrypt_dynamodb_item(
                encrypt_dynamodb_item(item_config.encryption_context.attributes, item_config), item_config
            )

        ops[f"dynamodb-encryption-sdk {dynamodb_encryption_sdk.__version__}, {label}"] = round_trip
    return ops, ""


LEGACY_READ_ITEMS = 256


def legacy_reads() -> tuple[dict[str, Op], str]:
    """Reading stored legacy items: the legacy library's own ``decrypt_dynamodb_item`` (with ``with_item``,
    as its EncryptedClient does) against kmsenvelope's ``ItemEncryptor.decrypt_item`` on a table with a
    ``LegacyConfig`` (which detects the format and hands the item to that same library)."""
    try:
        import dynamodb_encryption_sdk
        from dynamodb_encryption_sdk.delegated_keys.jce import JceNameLocalDelegatedKey
        from dynamodb_encryption_sdk.encrypted import CryptoConfig
        from dynamodb_encryption_sdk.encrypted.item import decrypt_dynamodb_item, encrypt_dynamodb_item
        from dynamodb_encryption_sdk.identifiers import CryptoAction, EncryptionKeyType, KeyEncodingType
        from dynamodb_encryption_sdk.material_providers.static import StaticCryptographicMaterialsProvider
        from dynamodb_encryption_sdk.material_providers.wrapped import WrappedCryptographicMaterialsProvider
        from dynamodb_encryption_sdk.materials.raw import RawDecryptionMaterials, RawEncryptionMaterials
        from dynamodb_encryption_sdk.structures import AttributeActions, EncryptionContext
    except ImportError as exc:
        return {}, f"dynamodb-encryption-sdk not installed ({exc}); pip install 'kmsenvelope[legacy]'"
    from kmsenvelope import HierarchicalKeyring, StaticBranchKeyStore
    from kmsenvelope.dynamodb import Action, ItemEncryptor, LegacyConfig, LegacyPolicy, TableConfig

    def key(algorithm: str) -> Any:
        return JceNameLocalDelegatedKey(
            key=os.urandom(32),
            algorithm=algorithm,
            key_type=EncryptionKeyType.SYMMETRIC,
            key_encoding=KeyEncodingType.RAW,
        )

    aes, hmac_key = key("AES"), key("HmacSHA512")
    providers = {
        "wrapped materials": WrappedCryptographicMaterialsProvider(
            signing_key=hmac_key, wrapping_key=aes, unwrapping_key=aes
        ),
        "static materials": StaticCryptographicMaterialsProvider(
            encryption_materials=RawEncryptionMaterials(signing_key=hmac_key, encryption_key=aes),
            decryption_materials=RawDecryptionMaterials(verification_key=hmac_key, decryption_key=aes),
        ),
    }
    legacy_actions = AttributeActions(
        default_action=CryptoAction.ENCRYPT_AND_SIGN,
        attribute_actions=dict.fromkeys(SIGN_ONLY, CryptoAction.SIGN_ONLY),
    )
    store = StaticBranchKeyStore("bench", str(uuid.uuid4()), os.urandom(32), os.urandom(32))
    keyring = HierarchicalKeyring(store, branch_key_id="bench")
    ops: dict[str, Op] = {}
    for label, provider in providers.items():
        base = CryptoConfig(
            materials_provider=provider,
            encryption_context=EncryptionContext(
                table_name="bench", partition_key_name="pk", sort_key_name="sk"
            ),
            attribute_actions=legacy_actions,
        )
        stored = []
        for i in range(LEGACY_READ_ITEMS):
            item = make_item(i)
            stored.append(encrypt_dynamodb_item(item, base.with_item(item)))
        encryptor = ItemEncryptor(
            TableConfig(
                "bench",
                "pk",
                sort_key="sk",
                actions=actions(),
                keyring=keyring,
                legacy=LegacyConfig(
                    provider,
                    {name: Action.SIGN_ONLY for name in SIGN_ONLY},
                    LegacyPolicy.FORBID_LEGACY_ENCRYPT_ALLOW_LEGACY_DECRYPT,
                ),
            )
        )
        assert encryptor.decrypt_item(stored[0]) == make_item(0), "kmsenvelope legacy read changed the item"
        theirs_source = itertools.cycle(stored).__next__
        ours_source = itertools.cycle(stored).__next__

        def theirs(base: Any = base, next_item: Any = theirs_source) -> object:
            item = dict(next_item())  # the library pops its attributes off the item it is given
            return decrypt_dynamodb_item(item, base.with_item(item))

        def ours(encryptor: Any = encryptor, next_item: Any = ours_source) -> object:
            return encryptor.decrypt_item(next_item())

        version = dynamodb_encryption_sdk.__version__
        short = label.split()[0]
        ops[f"legacy read: dynamodb-encryption-sdk {version}, {short}"] = theirs
        ops[f"legacy read: kmsenvelope LegacyConfig, {short}"] = ours
    return ops, ""


class KmsWrappedBranchKeyStore:
    """One branch key, kept wrapped under a KMS key and unwrapped (kms:Decrypt) on every fetch."""

    def __init__(self, aws: Any, key_arn: str) -> None:
        from kmsenvelope.aws.key_store import BeaconKeyMaterials, BranchKeyMaterials

        self._materials = (BranchKeyMaterials, BeaconKeyMaterials)
        self._client = aws.client("kms", key_arn.split(":")[3])
        self._key = key_arn
        self.version = str(uuid.uuid4())
        self._context = {"branch-key-id": "bench", "version": self.version}
        self._wrapped = self._client.encrypt(
            KeyId=key_arn, Plaintext=os.urandom(32), EncryptionContext=self._context
        )["CiphertextBlob"]

    def _unwrap(self) -> bytes:
        from kmsenvelope.aws.accounting import call_kms

        response = call_kms(
            self._client,
            "Decrypt",
            region=self._client.meta.region_name,
            key_id=self._key,
            KeyId=self._key,
            CiphertextBlob=self._wrapped,
            EncryptionContext=self._context,
        )
        return bytes(response["Plaintext"])

    def get_active_branch_key(self, branch_key_id: str) -> Any:
        return self._materials[0](branch_key_id, self.version, self._unwrap())

    def get_branch_key_version(self, branch_key_id: str, version: str) -> Any:
        return self._materials[0](branch_key_id, version, self._unwrap())

    def get_beacon_key(self, branch_key_id: str) -> Any:
        return self._materials[1](branch_key_id, self._unwrap())


def kms_calls(kms_items: int, quick: bool) -> list[dict[str, Any]]:
    """KMS calls per 10,000 items for each keyring set-up, counted by the library and by the server."""
    import kmsenvelope
    from kmsenvelope import CachingMaterials, HierarchicalKeyring, KmsKeyring
    from kmsenvelope.aws import accounting
    from kmsenvelope.dynamodb import ItemEncryptor, TableConfig
    from kmsenvelope.testing import local_aws

    rows = []
    with local_aws() as aws:
        key = aws.create_key("us-east-1")
        supplier = aws.client_supplier()
        setups: list[tuple[str, Callable[[], Any], int]] = [
            ("KmsKeyring", lambda: KmsKeyring(key, client_supplier=supplier), kms_items),
            (
                "CachingMaterials(KmsKeyring, max_age=300)",
                lambda: CachingMaterials(KmsKeyring(key, client_supplier=supplier), max_age=300),
                kms_items,
            ),
            (
                "HierarchicalKeyring, KMS-wrapped branch key, TTL 600 s",
                lambda: HierarchicalKeyring(
                    KmsWrappedBranchKeyStore(aws, key), branch_key_id="bench", ttl_seconds=600
                ),
                PER // 10 if quick else PER,
            ),
        ]
        for label, build, count in setups:
            source = build()
            config = TableConfig("bench", "pk", sort_key="sk", actions=actions(), keyring=source)
            encryptor = ItemEncryptor(config)
            accounting.reset()
            aws.reset()
            start = time.perf_counter()
            for i in range(count):
                item = make_item(i)
                if encryptor.decrypt_item(encryptor.encrypt_item(item)) != item:
                    raise AssertionError("round trip changed the item")
            elapsed = time.perf_counter() - start
            library = kmsenvelope.stats().calls
            server = len(aws.requests(service="kms"))
            scale = PER / count
            rows.append(
                {
                    "setup": label,
                    "items measured": count,
                    "KMS calls measured (library/server)": f"{library}/{server}",
                    "KMS calls per 10,000 items": round(library * scale),
                    "by operation": dict(kmsenvelope.stats().by_operation),
                    "items/s incl. local KMS": round(count / elapsed),
                }
            )
    return rows


def _version() -> str:
    try:
        import dynamodb_encryption_sdk
    except ImportError:
        return "?"
    return str(dynamodb_encryption_sdk.__version__)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter timing runs")
    parser.add_argument("--kms-items", type=int, default=1000, help="items measured for uncached KMS rows")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args()
    rounds = 5 if args.quick else 21

    ops = kmsenvelope_round_trips()
    legacy, note = legacy_round_trips()
    ops.update(legacy)
    speeds = rates(ops, rounds)
    reads, reads_note = legacy_reads()
    read_speeds = rates(reads, rounds) if reads else {}
    baseline = next((v for k, v in speeds.items() if "wrapped materials" in k), None)
    static = next((v for k, v in speeds.items() if "static materials" in k), None)
    kms_rows = kms_calls(args.kms_items, args.quick)

    if args.json:
        result = {
            "round_trips_per_s": speeds,
            "legacy_reads_per_s": read_speeds,
            "kms": kms_rows,
            "note": note,
        }
        print(json.dumps(result, indent=2))
        return 0
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores")
    counts = f"{len(ENCRYPTED)} ENCRYPT_AND_SIGN, {len(SIGN_ONLY)} SIGN_ONLY"
    print(f"item: ~{item_size(make_item())} bytes, {counts}")
    print()
    header = f"{'encrypt+decrypt round trips':<62} {'per s':>10} {'vs legacy wrapped':>18}"
    print(f"{header} {'vs legacy static':>17}")
    for label, speed in speeds.items():
        ratio = f"{speed / baseline:.2f}x" if baseline else "n/a"
        ratio_static = f"{speed / static:.2f}x" if static else "n/a"
        print(f"{label:<62} {speed:>10,.0f} {ratio:>18} {ratio_static:>17}")
    if note:
        print(f"({note})")
    print()
    print(f"{'reading stored legacy items (decrypt only)':<62} {'per s':>10} {'vs the library':>18}")
    for label, speed in read_speeds.items():
        own = read_speeds.get(
            label.replace("kmsenvelope LegacyConfig", f"dynamodb-encryption-sdk {_version()} itself")
        )
        ratio = f"{speed / own:.2f}x" if own else "n/a"
        print(f"{label:<62} {speed:>10,.0f} {ratio:>18}")
    if reads_note:
        print(f"({reads_note})")
    print()
    print(f"{'KMS calls (local KMS)':<56} {'measured':>10} {'lib/server':>11} {'per 10k':>9} {'items/s':>8}")
    for row in kms_rows:
        measured = row["KMS calls measured (library/server)"]
        print(
            f"{row['setup']:<56} {row['items measured']:>10,} {measured:>11}"
            f" {row['KMS calls per 10,000 items']:>9,} {row['items/s incl. local KMS']:>8,}"
        )
        print(f"{'':<56} {row['by operation']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
