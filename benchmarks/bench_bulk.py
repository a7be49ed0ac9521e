"""Bulk migration throughput: ``migrate_table`` on each engine, and the crypto alone, side by side.

Run:  python benchmarks/bench_bulk.py [--items N] [--json]

A table of N items (a third plaintext, a third legacy-format-free new items under an old raw AES key,
a third new items under the old key with another suite, so every item needs work) is migrated to a new
raw AES key on the local AWS (moto's DynamoDB over HTTP, in this process):

* ``engine=None`` (the calling process), ``"processes"`` (every local core), a Dask ``LocalCluster``
  with 1 worker and with 2 workers (1 thread each): items per second, end to end;
* the crypto alone: CPU seconds per item to decrypt under the source and encrypt under the target
  (``time.process_time``, no I/O), the floor of what one core can do.

Raw keys keep KMS out of the measurement (KMS costs are in docs/bulk.md). The local DynamoDB is the
bottleneck here: moto answers every request in this process, so the engine figures show the
overheads and the scaling of the job, not what a real table sustains. Timings are wall clock;
nothing here is asserted by tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import uuid
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from kmsenvelope import RawAesKeyring
from kmsenvelope.bulk import migrate_table
from kmsenvelope.dynamodb import SIGNING_SUITE, Action, ItemEncryptor, PlaintextPolicy, TableConfig

ACTIONS = {"pk": Action.SIGN_ONLY, "email": Action.ENCRYPT_AND_SIGN, "card": Action.ENCRYPT_AND_SIGN,
           "dept": Action.SIGN_ONLY, "counter": Action.DO_NOTHING}  # fmt: skip
OLD = RawAesKeyring("bench", "old", bytes(range(32)))
NEW = RawAesKeyring("bench", "new", bytes(range(100, 132)))


def configs(table: str) -> tuple[TableConfig, TableConfig, TableConfig]:
    policy = PlaintextPolicy.FORBID_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ
    source = TableConfig(
        table, "pk", actions=ACTIONS, keyring=OLD, allowed_unsigned=["counter"], plaintext_policy=policy
    )
    signed = TableConfig(
        table, "pk", actions=ACTIONS, keyring=OLD, allowed_unsigned=["counter"], suite=SIGNING_SUITE
    )
    target = TableConfig(table, "pk", actions=ACTIONS, keyring=NEW, allowed_unsigned=["counter"])
    return source, signed, target


def item(i: int) -> dict[str, Any]:
    return {"pk": {"S": f"item-{i:07d}"}, "email": {"S": f"user{i}@example.com"},
            "card": {"M": {"number": {"S": f"4111-{i:012d}"}, "cvv": {"N": "123"}}},
            "dept": {"S": "eng"}, "counter": {"N": str(i)}}  # fmt: skip


def fill(aws: Any, count: int) -> tuple[Any, str, TableConfig, TableConfig]:
    table = f"bench-{uuid.uuid4().hex[:8]}"
    client = aws.client("dynamodb")
    client.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST")  # fmt: skip
    source, signed, target = configs(table)
    old_new, old_signed = ItemEncryptor(source), ItemEncryptor(signed)
    batch = []
    for i in range(count):
        plain = item(i)
        stored = plain if i % 3 == 0 else (old_new if i % 3 == 1 else old_signed).encrypt_item(plain)
        batch.append({"PutRequest": {"Item": stored}})
        if len(batch) == 25:
            client.batch_write_item(RequestItems={table: batch})
            batch = []
    if batch:
        client.batch_write_item(RequestItems={table: batch})
    return client, table, source, target


def crypto_only(count: int) -> float:
    """CPU seconds per item to decrypt under the source and encrypt under the target."""
    source, _, target = configs("bench")
    reader, writer = ItemEncryptor(source), ItemEncryptor(target)
    stored = [ItemEncryptor(source).encrypt_item(item(i)) for i in range(count)]
    start = time.process_time()
    for value in stored:
        writer.encrypt_item(reader.decrypt_item(value))
    return (time.process_time() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from kmsenvelope.testing import local_aws

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    results: dict[str, Any] = {
        "items": args.items,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    results["crypto_cpu_us_per_item"] = round(crypto_only(min(args.items, 2000)) * 1e6, 1)
    with local_aws() as aws:
        runs: list[tuple[str, Any, int]] = [("engine=None", None, 4), ("processes", "processes", 8)]
        for name, engine, segments in runs:
            client, table, source, target = fill(aws, args.items)
            report = migrate_table(
                client, table, source=source, target=target, segments=segments, engine=engine
            )
            results[name] = round(report.items_per_second, 1)
        import distributed

        for workers in (1, 2):
            cluster = distributed.LocalCluster(n_workers=workers, processes=True, threads_per_worker=1,
                                               dashboard_address=None, silence_logs=40)  # fmt: skip
            try:
                with distributed.Client(cluster) as dask:
                    client, table, source, target = fill(aws, args.items)
                    report = migrate_table(
                        client, table, source=source, target=target, segments=8, engine=dask
                    )
                    results[f"dask {workers} worker{'s' if workers > 1 else ''}"] = round(
                        report.items_per_second, 1
                    )
            finally:
                cluster.close()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{args.items} items, {results['cpus']} CPUs, Python {results['python']}")
    print(f"crypto only (decrypt + encrypt, one core): {results['crypto_cpu_us_per_item']} us CPU per item "
          f"= {1e6 / results['crypto_cpu_us_per_item']:.0f} items/s per core")  # fmt: skip
    for name in ("engine=None", "processes", "dask 1 worker", "dask 2 workers"):
        print(f"{name:>16}: {results[name]:8.1f} items/s (local DynamoDB over HTTP)")
    one, two = results["dask 1 worker"], results["dask 2 workers"]
    print(f"scaling 1 -> 2 Dask workers: {one:.1f} -> {two:.1f} items/s (x{two / one:.2f})")


if __name__ == "__main__":
    main()
