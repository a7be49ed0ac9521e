"""The same migration in the calling process, on a local process pool and on a Dask LocalCluster."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from kmsenvelope.bulk import DynamoDbCheckpoint, migrate_table
from kmsenvelope.testing import LocalAws

from ._bulk_env import check_migrated, mixed_table

distributed = pytest.importorskip("distributed", reason="Dask distributed is in the test extra")

COUNTS = ("items_read", "items_written", "items_skipped", "items_rewrapped", "items_reencrypted",
          "items_failed", "kms_calls", "conflicts", "tasks")  # fmt: skip


@pytest.fixture(scope="module")
def worker_environment() -> Iterator[None]:
    # Workers build their own clients from their own credential chain: here, the environment.
    saved = {
        name: os.environ.get(name)
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    }
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
def dask_client(worker_environment: None) -> Iterator[Any]:
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None, silence_logs=40
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _counts(report: Any) -> dict[str, Any]:
    return {name: getattr(report, name) for name in COUNTS} | {"formats": dict(report.formats)}


def test_local_cluster_matches_the_calling_process(local_aws: LocalAws, dask_client: Any) -> None:
    here = mixed_table(local_aws, 150, kms=True)
    there = mixed_table(local_aws, 150, kms=True)
    local = migrate_table(here.raw, here.name, source=here.sources, target=here.target, segments=4)
    with distributed.get_task_stream(client=dask_client) as stream:
        remote = migrate_table(
            there.raw, there.name, source=there.sources, target=there.target, segments=4, engine=dask_client
        )
    assert remote.engine == "dask" and local.engine == "local"
    assert _counts(remote) == _counts(local)
    assert remote.items_written == 150 and remote.items_failed == 0
    check_migrated(here, local_aws)
    check_migrated(there, local_aws)
    # One Dask task per segment, spread over both workers.
    assert len(stream.data) == 4 and len({task["worker"] for task in stream.data}) == 2


def test_local_cluster_resumes_with_a_dynamodb_checkpoint(local_aws: LocalAws, dask_client: Any) -> None:
    table = mixed_table(local_aws, 60)
    checkpoint = DynamoDbCheckpoint("bulk-checkpoints-" + table.name, client=table.raw)
    checkpoint.create_table()
    first = migrate_table(
        table.raw, table.name, source=table.sources, target=table.target, segments=3, engine=dask_client,
        checkpoint=checkpoint,
    )  # fmt: skip
    assert first.items_written == 60
    saved = checkpoint.load(f"migrate_table/{table.name}")
    assert sorted(saved) == [0, 1, 2] and all(state["done"] for state in saved.values())
    check_migrated(table, local_aws)


def test_s3_prefix_on_the_local_cluster(local_aws: LocalAws, dask_client: Any) -> None:
    from .test_bulk_s3 import rewrap_prefix

    rewrap_prefix(local_aws, 30, engine=dask_client)


def test_process_pool(local_aws: LocalAws, worker_environment: None) -> None:
    table = mixed_table(local_aws, 60)
    report = migrate_table(
        table.raw, table.name, source=table.sources, target=table.target, engine="processes"
    )
    assert report.engine == "processes" and report.items_written == 60 and report.items_failed == 0
    check_migrated(table, local_aws)


def test_unpicklable_configs_are_refused_before_any_work(local_aws: LocalAws) -> None:
    from kmsenvelope import KmsKeyring
    from kmsenvelope.errors import ConfigurationError

    from ._dynamodb_env import config

    table = mixed_table(local_aws, 3)
    supplier = lambda region: local_aws.client("kms", region)  # noqa: E731 - a lambda does not pickle
    target = config(table.name, keyring=KmsKeyring(local_aws.create_key(), client_supplier=supplier))
    with pytest.raises(ConfigurationError, match="must pickle"):
        migrate_table(table.raw, table.name, source=table.sources, target=target, engine="processes")
