"""``kmsenvelope rewrap s3://bucket/prefix/``: a bulk rewrap of every message under a prefix."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from kmsenvelope.cli.exits import ExitCode
from kmsenvelope.testing import LocalAws

from .test_cli import PLAINTEXT, aes_key, assert_fails, run
from .test_cli_kms import ENV

NONCE = "--allow-header-nonce-reuse"


def _decrypts(key: Path, body: bytes) -> bool:
    result = run("decrypt", "--key", key, "-", input=body)
    return result.exit_code == 0 and result.stdout_bytes == PLAINTEXT


def test_rewrap_a_prefix(local_aws: LocalAws, tmp_path: Path) -> None:
    old, new = aes_key(tmp_path, "old.key"), aes_key(tmp_path, "new.key")
    s3 = local_aws.client("s3", "us-east-1")
    bucket, dest = f"cli-{uuid.uuid4().hex[:12]}", f"cli-dest-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.create_bucket(Bucket=dest)
    messages = {}
    for i in range(4):
        encrypted = run("encrypt", "--key", old, "-", input=PLAINTEXT)
        assert encrypted.exit_code == 0, encrypted.stderr
        messages[f"in/{i}.enc"] = encrypted.stdout_bytes
        s3.put_object(Bucket=bucket, Key=f"in/{i}.enc", Body=encrypted.stdout_bytes)
    s3.put_object(Bucket=bucket, Key="in/readme.txt", Body=b"not a message")
    s3.put_object(Bucket=bucket, Key="in/empty", Body=b"")
    s3.put_object(Bucket=bucket, Key="out/x.enc", Body=messages["in/0.enc"])
    args = ("rewrap", "--key", old, "--to", new, f"s3://{bucket}/in/",
            "--region", "us-east-1", "--endpoint-url", local_aws.endpoint_url)  # fmt: skip

    # Version 2 messages without the opt-in: each one a failure, the exit code a policy refusal.
    refused = run(*args, "--json", env=ENV)
    assert_fails(refused, ExitCode.POLICY)
    report = json.loads(refused.stdout)
    assert (report["items_read"], report["items_failed"], report["items_written"]) == (6, 4, 0)
    assert report["formats"] == {"message": 4, "not-a-message": 2}
    assert all("allow_header_nonce_reuse" in failure["reason"] for failure in report["failures"])
    assert s3.get_object(Bucket=bucket, Key="in/1.enc")["Body"].read() == messages["in/1.enc"]

    # A key that opens none of them: the wrong-key exit code of decrypt, nothing written.
    other = aes_key(tmp_path, "other.key")
    wrong = run("rewrap", "--key", other, *args[3:], NONCE, "--json", env=ENV)
    assert_fails(wrong, ExitCode.NO_USABLE_KEY)
    assert (json.loads(wrong.stdout)["items_failed"], json.loads(wrong.stdout)["items_written"]) == (4, 0)

    dry = run(*args, NONCE, "--dry-run", env=ENV)
    assert dry.exit_code == 0, dry.stderr
    assert "4 would be rewrapped" in dry.stdout and "0 written" in dry.stdout

    # Into another bucket, on a local process pool: the same keys, only the new key opens them.
    copied = run(*args, NONCE, "-o", f"s3://{dest}/", "--processes", "--json", env=ENV)
    assert copied.exit_code == 0, copied.stderr
    report = json.loads(copied.stdout)
    assert (report["engine"], report["items_rewrapped"], report["items_failed"]) == ("processes", 4, 0)
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=dest).get("Contents", []))
    assert listed == sorted(messages)
    for key in messages:
        body = s3.get_object(Bucket=dest, Key=key)["Body"].read()
        assert _decrypts(new, body) and not _decrypts(old, body)

    # In place, with a checkpoint; a second run finds everything done.
    checkpoint = tmp_path / "prefix.ckpt"
    done = run(*args, NONCE, "--checkpoint", checkpoint, "--json", env=ENV)
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["items_written"] == 4 and checkpoint.exists()
    assert _decrypts(new, s3.get_object(Bucket=bucket, Key="in/3.enc")["Body"].read())
    assert s3.get_object(Bucket=bucket, Key="out/x.enc")["Body"].read() == messages["in/0.enc"]
    again = run(*args, NONCE, "--json", env=ENV)
    assert json.loads(again.stdout)["items_skipped"] == 6 and again.exit_code == 0


def test_prefix_usage_errors(tmp_path: Path) -> None:
    old, new = aes_key(tmp_path, "old.key"), aes_key(tmp_path, "new.key")
    base = ("rewrap", "--key", old, "--to", new)
    assert_fails(run(*base, "s3://b/one.enc", "--dry-run"), ExitCode.USAGE)  # bulk flag, one object
    assert_fails(run(*base, "s3://b/p/", "-o", "s3://d/key"), ExitCode.USAGE)  # a key in the destination
    assert_fails(run(*base, "s3://b/p/", "-o", "local.enc"), ExitCode.USAGE)
    assert_fails(run(*base, "s3://b/p/", "--processes", "--dask", "tcp://x:1"), ExitCode.USAGE)
