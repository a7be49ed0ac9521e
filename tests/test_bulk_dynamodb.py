"""kmsenvelope.bulk.migrate_table on the local AWS: mixed tables, dry runs, resume, throttling."""

from __future__ import annotations

import pytest

from kmsenvelope import MultiKeyring
from kmsenvelope.bulk import FileCheckpoint, migrate_table
from kmsenvelope.dynamodb import EncryptedClient
from kmsenvelope.testing import LocalAws

from ._bulk_env import Crash, CrashAfter, ProxyClient, check_migrated, mixed_table, scan_all
from ._dynamodb_env import config

COUNT = 600


def _migrate_mixed(aws: LocalAws, count: int) -> None:
    table = mixed_table(aws, count)
    report = migrate_table(table.raw, table.name, source=table.sources, target=table.target, segments=4)
    plaintext, legacy, new = (len(range(start, count, 3)) for start in range(3))  # see mixed_table
    assert report.items_failed == 0, report.failures[:3]
    assert report.items_read == count
    assert report.items_written == count
    assert report.items_rewrapped == new  # new-format items: only the key changes
    assert report.items_reencrypted == plaintext + legacy
    assert dict(report.formats) == {"legacy": legacy, "new": new, "plaintext": plaintext}
    assert report.kms_calls == 0  # raw keys
    check_migrated(table, aws)
    again = migrate_table(table.raw, table.name, source=table.sources, target=table.target, segments=2)
    assert (again.items_read, again.items_skipped, again.items_written) == (count, count, 0)


def test_mixed_table_migrates_to_the_new_key(local_aws: LocalAws) -> None:
    _migrate_mixed(local_aws, COUNT)


@pytest.mark.slow
def test_mixed_table_5000_items(local_aws: LocalAws) -> None:
    _migrate_mixed(local_aws, 5000)


def test_kms_calls_are_counted_exactly(local_aws: LocalAws) -> None:
    table = mixed_table(local_aws, 60, kms=True)
    local_aws.reset()  # forget the setup's requests
    report = migrate_table(table.raw, table.name, source=table.sources, target=table.target, segments=3)
    assert (report.items_rewrapped, report.items_reencrypted, report.items_failed) == (20, 40, 0)
    # rewrap: Decrypt (old) + GenerateDataKey (new); re-encrypt: GenerateDataKey; the target probe: one
    assert report.kms_calls == 20 * 2 + 40 + 1
    assert len(local_aws.requests("Decrypt")) == 20
    assert len(local_aws.requests("GenerateDataKey")) == 61
    check_migrated(table, local_aws)


def test_dry_run_classifies_and_writes_nothing(local_aws: LocalAws) -> None:
    table = mixed_table(local_aws, 90, kms=True)
    before = scan_all(table.raw, table.name)
    report = migrate_table(table.raw, table.name, source=table.sources, target=table.target, dry_run=True)
    assert scan_all(table.raw, table.name) == before
    assert (report.items_written, report.items_rewrapped, report.items_reencrypted) == (0, 30, 60)
    # rewrap: one Decrypt + one GenerateDataKey; legacy (static provider) and plaintext: one wrap
    assert report.estimated_kms_calls == 30 * 2 + 60
    assert report.estimated_kms_cost_usd == pytest.approx(120 * 0.03 / 10_000)
    assert report.kms_calls <= 1  # the target probe only
    assert local_aws.requests("UpdateItem", service="dynamodb") == ()


def test_verify_reads_back_every_write(local_aws: LocalAws) -> None:
    table = mixed_table(local_aws, 30)
    done: list = []
    report = migrate_table(
        table.raw, table.name, source=table.sources, target=table.target, verify=True, segments=3,
        on_task_done=done.append,
    )  # fmt: skip
    assert report.verified == 30 and report.items_failed == 0
    assert len(done) == 3 and sum(tally.read for tally in done) == 30  # progress, one call per segment


def test_killed_job_resumes_from_its_checkpoint(local_aws: LocalAws, tmp_path) -> None:
    table = mixed_table(local_aws, COUNT)
    checkpoint = tmp_path / "job.ckpt"
    first = CrashAfter(table.raw, limit=250)
    with pytest.raises(Crash):
        migrate_table(
            first,
            table.name,
            source=table.sources,
            target=table.target,
            segments=3,
            checkpoint=checkpoint,
            page_size=40,
        )
    assert len(first.writes) == 250
    saved = FileCheckpoint(checkpoint).load(f"migrate_table/{table.name}")
    assert saved and not all(state["done"] for state in saved.values())
    second = CrashAfter(table.raw, limit=None)
    report = migrate_table(
        second,
        table.name,
        source=table.sources,
        target=table.target,
        checkpoint=str(checkpoint),
        page_size=40,
    )
    writes = first.writes + second.writes
    assert len(writes) == len(set(writes)) == COUNT  # every item written once, none twice
    assert report.items_written == COUNT - 250
    assert report.items_read < COUNT  # finished pages were not read again
    check_migrated(table, local_aws)


def test_a_different_segment_count_cannot_resume(local_aws: LocalAws, tmp_path) -> None:
    from kmsenvelope.errors import ConfigurationError

    table = mixed_table(local_aws, 30)
    with pytest.raises(Crash):
        migrate_table(
            CrashAfter(table.raw, 10),
            table.name,
            source=table.sources,
            target=table.target,
            segments=2,
            checkpoint=tmp_path / "c",
            page_size=4,
        )
    with pytest.raises(ConfigurationError, match="segments=2"):
        migrate_table(
            table.raw,
            table.name,
            source=table.sources,
            target=table.target,
            segments=3,
            checkpoint=tmp_path / "c",
        )


def test_concurrent_updates_survive(local_aws: LocalAws) -> None:
    count = 300
    table = mixed_table(local_aws, count)
    # The application, mid-migration, reads every format and writes under the new key (old kept readable).
    both = MultiKeyring(table.new_keyring, [table.old_keyring])
    app = EncryptedClient(table.raw, {table.name: config(table.name, keyring=both)})
    targets = sorted(table.expected)[:200]
    expected = dict(table.expected)
    pending = set(targets)

    def writer(params: dict) -> None:
        key = (params["Key"]["pk"]["S"], params["Key"]["sk"]["S"])
        if key in pending:  # between the job's read and its write, the application updates the item
            pending.discard(key)
            updated = {
                **expected[key],
                "email": {"S": f"changed-{key[0]}@example.com"},
                "version": {"N": "2"},
            }
            app.put_item(TableName=table.name, Item=updated)
            expected[key] = updated

    report = migrate_table(
        lambda: ProxyClient(table.raw, writer), table.name, source=table.sources, target=table.target
    )
    assert not pending
    assert report.conflicts == 200 and report.items_failed == 0
    assert sum(report.formats.values()) == report.items_read == count
    assert report.items_written == count - 200  # the application's writes already use the new key
    # The application's items carry the new key (and none other than it and the old one).
    encryptor = EncryptedClient(table.raw, {table.name: config(table.name, keyring=both)})
    for key in targets:
        got = encryptor.get_item(TableName=table.name, Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}})["Item"]
        assert got == expected[key]


def test_throttling_is_retried_and_counted(local_aws: LocalAws) -> None:
    table = mixed_table(local_aws, 60, kms=True)
    # botocore retries DynamoDB throttling itself (with growing delays); KMS gives up after 3 attempts
    # and the job backs off and tries again.
    local_aws.inject_fault(
        "UpdateItem", "ProvisionedThroughputExceededException", count=4, service="dynamodb"
    )
    local_aws.inject_fault("Scan", "ProvisionedThroughputExceededException", count=2, service="dynamodb")
    local_aws.inject_fault("GenerateDataKey", "ThrottlingException", count=6, service="kms")
    local_aws.inject_fault("Decrypt", "ThrottlingException", count=3, service="kms")
    report = migrate_table(table.raw, table.name, source=table.sources, target=table.target)
    assert local_aws.pending_faults() == 0
    assert report.items_failed == 0 and report.items_written == 60
    # every DynamoDB throttle (seen by the client hook), and the KMS ones that reached the job
    assert report.throttling_events >= 6 + 3
    assert report.retries == 6 + 6 + 3  # each throttled request was retried, by botocore or by the job
    check_migrated(table, local_aws)


def test_a_writer_thread_alongside_the_job(local_aws: LocalAws) -> None:
    import threading

    from kmsenvelope.dynamodb import ItemEncryptor

    table = mixed_table(local_aws, 300)
    both = MultiKeyring(table.new_keyring, [table.old_keyring])
    app = EncryptedClient(table.raw, {table.name: config(table.name, keyring=both)})
    expected = dict(table.expected)
    chosen = sorted(expected)[::-1][:200]  # the scan order is by hash: these are anywhere in it
    started = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            started.wait(60)
            for key in chosen:
                updated = {**expected[key], "email": {"S": f"thread-{key[0]}@example.com"}}
                app.put_item(TableName=table.name, Item=updated)
                expected[key] = updated
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    report = migrate_table(
        lambda: ProxyClient(table.raw, lambda params: started.set()), table.name,
        source=table.sources, target=table.target,
    )  # fmt: skip
    thread.join()
    assert not errors and report.items_failed == 0
    # Whatever the interleaving: every update of the writer survives, and every item reads under the new key.
    target = ItemEncryptor(table.target)
    for item in scan_all(table.raw, table.name):
        plain = target.decrypt_item(item)
        assert plain == expected[(plain["pk"]["S"], plain["sk"]["S"])]
