"""kmsenvelope.bulk.rewrap_objects on the local S3: a prefix rewrapped to a key in another region."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

from kmsenvelope import Envelope, KmsKeyring, RawAesKeyring
from kmsenvelope.bulk import rewrap_objects
from kmsenvelope.testing import LocalAws

COUNT = 60


def _bucket(aws: LocalAws, region: str) -> tuple[Any, str]:
    client = aws.client("s3", region)
    name = f"bulk-{uuid.uuid4().hex[:10]}"
    if region == "us-east-1":
        client.create_bucket(Bucket=name)
    else:
        client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    return client, name


def rewrap_prefix(aws: LocalAws, count: int, engine: Any = None) -> None:
    old = KmsKeyring(aws.create_key("us-east-1"), client_supplier=aws.client_supplier())
    new_arn = aws.create_key("eu-west-1")
    new = KmsKeyring(new_arn, client_supplier=aws.client_supplier())
    source, bucket = _bucket(aws, "us-east-1")
    dest, dest_bucket = _bucket(aws, "eu-west-1")
    envelope = Envelope(old)
    bodies = {}
    for i in range(count):
        body = os.urandom(100 + i)
        bodies[f"data/{i:04d}.enc"] = body
        source.put_object(Bucket=bucket, Key=f"data/{i:04d}.enc", Body=envelope.encrypt(body, {"n": str(i)}))
    for i in range(5):
        source.put_object(Bucket=bucket, Key=f"data/plain-{i}.txt", Body=b"not a message " * i)
    source.put_object(Bucket=bucket, Key="elsewhere/x.enc", Body=envelope.encrypt(b"outside the prefix"))

    report = rewrap_objects(
        source,
        bucket,
        "data/",
        old=old,
        new=new,
        dest_bucket=dest_bucket,
        dest_client=dest,
        page_size=25,
        engine=engine,
        allow_header_nonce_reuse=True,  # the test deletes nothing, but it is not an attacker
    )
    assert report.items_failed == 0, report.failures[:3]
    assert (report.items_read, report.items_rewrapped, report.items_skipped) == (count + 5, count, 5)
    assert dict(report.formats) == {"message": count, "not-a-message": 5}
    assert report.tasks == -(-(count + 5) // 25)
    listed = dest.list_objects_v2(Bucket=dest_bucket).get("Contents", [])
    assert sorted(entry["Key"] for entry in listed) == sorted(bodies)  # non-messages left alone
    only_new = Envelope(new)
    for key, body in bodies.items():
        message = dest.get_object(Bucket=dest_bucket, Key=key)["Body"].read()
        header = only_new.parse_header(message)
        assert [edk.provider_info.decode() for edk in header.encrypted_data_keys] == [new_arn]
        assert only_new.decrypt(message, {"n": str(int(key[5:9]))}) == body
    # In place, a second pass finds the target key on everything it rewrapped.
    again = rewrap_objects(dest, dest_bucket, "data/", old=old, new=new, allow_header_nonce_reuse=True)
    assert (again.items_skipped, again.items_written) == (count, 0)


def test_prefix_rewrapped_to_another_region(local_aws: LocalAws) -> None:
    rewrap_prefix(local_aws, COUNT)


@pytest.mark.slow
def test_500_objects(local_aws: LocalAws) -> None:
    rewrap_prefix(local_aws, 500)


def test_dry_run_and_resume_from_a_checkpoint(local_aws: LocalAws, tmp_path: Any) -> None:
    from kmsenvelope import RawAesKeyring
    from kmsenvelope.bulk import FileCheckpoint

    old = RawAesKeyring("s3", "old", os.urandom(32))
    new = RawAesKeyring("s3", "new", os.urandom(32))
    s3, bucket = _bucket(local_aws, "us-east-1")
    for i in range(12):
        s3.put_object(Bucket=bucket, Key=f"p/{i:02d}", Body=Envelope(old).encrypt(b"x" * i))
    local_aws.reset()  # forget the setup's uploads
    dry = rewrap_objects(s3, bucket, "p/", old=old, new=new, dry_run=True, page_size=5)
    assert (dry.items_rewrapped, dry.items_written, dry.tasks) == (12, 0, 3)
    requests = local_aws.requests(service="s3")  # recorded by path: object reads carry no body
    assert sum(1 for r in requests if r.operation.startswith(f"/{bucket}/p/")) == 12
    assert all(r.request_bytes == 0 for r in requests)  # nothing was uploaded
    checkpoint = FileCheckpoint(tmp_path / "s3.ckpt")
    job = f"rewrap_objects/{bucket}/p/->{bucket}"
    checkpoint.save(job, 0, {"done": False, "last_key": "p/02"})  # a run that stopped after p/02
    checkpoint.save(job, 1, {"done": True, "last_key": "p/09"})
    report = rewrap_objects(
        s3, bucket, "p/", old=old, new=new, page_size=5, checkpoint=checkpoint, allow_header_nonce_reuse=True
    )
    assert report.items_read == 2 + 2  # p/03, p/04 of page 0 and p/10, p/11 of page 2
    states = checkpoint.load(job)
    assert all(state["done"] for state in states.values()) and len(states) == 3


def test_version_2_messages_are_refused_without_the_opt_in(local_aws: LocalAws) -> None:
    """Committing-suite messages need allow_header_nonce_reuse (docs/rewrap.md): each is a failure."""
    old = RawAesKeyring("bulk", "old", bytes(32))
    new = RawAesKeyring("bulk", "new", bytes(range(32)))
    s3, bucket = _bucket(local_aws, "us-east-1")
    message = Envelope(old).encrypt(b"v2 message")
    s3.put_object(Bucket=bucket, Key="v/1", Body=message)
    report = rewrap_objects(s3, bucket, "v/", old=old, new=new)
    assert (report.items_failed, report.items_written) == (1, 0)
    assert "allow_header_nonce_reuse" in report.failures[0].reason
    assert s3.get_object(Bucket=bucket, Key="v/1")["Body"].read() == message
