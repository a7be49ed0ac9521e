"""A DynamoDB table mixing plaintext, legacy-client and new-format items under an old KMS key, for the
bulk migration tests, and client wrappers that inject failures and concurrent writers."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kmsenvelope import KmsKeyring, RawAesKeyring
from kmsenvelope.dynamodb import ItemEncryptor, LegacyPolicy, PlaintextPolicy, TableConfig
from kmsenvelope.structured.header import parse_header
from kmsenvelope.testing import LocalAws

from ._dynamodb_env import config, create_table, person, unique
from ._legacy_env import legacy_config, legacy_encrypt, static_provider

KINDS = ("plaintext", "legacy", "new")


@dataclass
class MixedTable:
    """A table and what each item held before the migration, by (pk, sk)."""

    name: str
    raw: Any
    old_arn: str
    new_arn: str
    old_keyring: Any
    new_keyring: Any
    sources: tuple[TableConfig, TableConfig]
    target: TableConfig
    expected: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


def keyring(aws: LocalAws, arn: str) -> KmsKeyring:
    return KmsKeyring(arn, client_supplier=aws.client_supplier())


def mixed_table(aws: LocalAws, count: int, *, kms: bool = False, provider: Any = None) -> MixedTable:
    """``count`` items: one third plaintext, one third legacy, one third new format under the old key.

    ``kms``: the old and new keys are KMS keys of the local AWS, else raw AES keys (named ``old`` and
    ``new``), which keeps the many-item tests' request count down.
    """
    name = unique("bulk")
    raw = create_table(aws, name)
    if kms:
        old_arn, new_arn = aws.create_key(), aws.create_key()
        old, new = keyring(aws, old_arn), keyring(aws, new_arn)
    else:
        old_arn, new_arn = "old", "new"
        old, new = RawAesKeyring("bulk", "old", os.urandom(32)), RawAesKeyring("bulk", "new", os.urandom(32))
    provider = provider if provider is not None else static_provider()
    legacy_source = config(
        name,
        keyring=old,
        legacy=legacy_config(provider, LegacyPolicy.FORBID_LEGACY_ENCRYPT_ALLOW_LEGACY_DECRYPT),
    )
    plaintext_source = config(
        name, keyring=old, plaintext_policy=PlaintextPolicy.FORBID_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ
    )
    table = MixedTable(
        name, raw, old_arn, new_arn, old, new, (legacy_source, plaintext_source), config(name, keyring=new)
    )
    encryptor = ItemEncryptor(config(name, keyring=old))
    batch: list[dict[str, Any]] = []
    for i in range(count):
        kind = KINDS[i % 3]
        item = person(f"p{i:05d}", kind, counter={"N": str(i)}, note={"B": bytes([i % 256]) * 5})
        table.expected[(f"p{i:05d}", kind)] = item
        if kind == "legacy":
            stored = legacy_encrypt(provider, name, item)
        elif kind == "new":
            stored = encryptor.encrypt_item(item)
        else:
            stored = dict(item)
        batch.append({"PutRequest": {"Item": stored}})
        if len(batch) == 25:
            raw.batch_write_item(RequestItems={name: batch})
            batch = []
    if batch:
        raw.batch_write_item(RequestItems={name: batch})
    return table


def scan_all(raw: Any, name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in raw.get_paginator("scan").paginate(TableName=name, ConsistentRead=True):
        items.extend(page["Items"])
    return items


def check_migrated(
    table: MixedTable, aws: LocalAws, expected: dict[tuple[str, str], dict[str, Any]] | None = None
) -> None:
    """Every item new-format, wrapped only under the new key, decrypting to what it held."""
    expected = table.expected if expected is None else expected
    encryptor = ItemEncryptor(table.target)
    stored = scan_all(table.raw, table.name)
    assert len(stored) == len(expected)
    for item in stored:
        header = parse_header(item["aws_dbe_head"]["B"])
        assert [wrapped_by(edk) for edk in header.encrypted_data_keys] == [table.new_arn]
        assert "*amzn-ddb-map-sig*" not in item and "*amzn-ddb-map-desc*" not in item
        plain = encryptor.decrypt_item(item)
        assert plain == expected[(plain["pk"]["S"], plain["sk"]["S"])]


def wrapped_by(edk: Any) -> str:
    """The KMS key ARN, or the raw AES key name, of an EDK."""
    if edk.provider_id == "aws-kms":
        return str(edk.provider_info.decode())
    assert edk.provider_id == "bulk"
    return str(edk.provider_info[:-20].decode())


class ProxyClient:
    """A boto3 DynamoDB client with a hook before each ``update_item``."""

    def __init__(self, client: Any, before_update: Callable[[dict[str, Any]], None]) -> None:
        self._client = client
        self._before_update = before_update

    def update_item(self, **params: Any) -> Any:
        self._before_update(params)
        return self._client.update_item(**params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class Crash(RuntimeError):
    """Injected: the job dies here."""


class CrashAfter:
    """A zero-argument client source whose clients die after ``limit`` writes; records every write."""

    def __init__(self, client: Any, limit: int | None) -> None:
        self.client = client
        self.limit = limit
        self.writes: list[tuple[str, str]] = []

    def __call__(self) -> ProxyClient:
        return ProxyClient(self.client, self._before)

    def _before(self, params: dict[str, Any]) -> None:
        if self.limit is not None and len(self.writes) >= self.limit:
            raise Crash(f"killed after {self.limit} writes")
        self.writes.append((params["Key"]["pk"]["S"], params["Key"]["sk"]["S"]))


def start_dask() -> Any:
    """A Dask LocalCluster of 2 worker processes (1 thread each) and its client; close both after.

    Workers build AWS clients from their own credential chain: the environment, set here for them.
    """
    import distributed

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None, silence_logs=40
    )
    return cluster, distributed.Client(cluster)
