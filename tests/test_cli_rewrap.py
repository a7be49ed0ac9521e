"""``kmsenvelope rewrap``: files, pipes and S3 objects move to new keys; failures leave no output."""

from __future__ import annotations

import uuid
from pathlib import Path

from kmsenvelope.cli.exits import ExitCode
from kmsenvelope.testing import LocalAws

from .test_cli import PLAINTEXT, aes_key, assert_fails, encrypt_file, run
from .test_cli_kms import ENV


def _decrypt(key: Path, message: Path) -> bytes:
    result = run("decrypt", "--key", key, message)
    assert result.exit_code == 0, result.stderr
    return result.stdout_bytes


def test_file_rewrap_then_only_the_new_key_decrypts(tmp_path: Path) -> None:
    old, new = aes_key(tmp_path, "old.key"), aes_key(tmp_path, "new.key")
    message = encrypt_file(tmp_path, old, "-c", "tenant=acme")
    out = tmp_path / "moved.enc"
    result = run("rewrap", "--key", old, "--to", new, "-c", "tenant=acme", message, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert _decrypt(new, out) == PLAINTEXT
    assert_fails(run("decrypt", "--key", old, out), ExitCode.NO_USABLE_KEY)

    kept = tmp_path / "kept.enc"
    assert run("rewrap", "--key", old, "--to", new, "--keep-old", message, "-o", kept).exit_code == 0
    assert _decrypt(old, kept) == _decrypt(new, kept) == PLAINTEXT


def test_pipe_rewrap_and_signed_suites(tmp_path: Path) -> None:
    old, new = aes_key(tmp_path, "old.key"), aes_key(tmp_path, "new.key")
    signed = encrypt_file(tmp_path, old, "--suite", "0x0578")
    assert_fails(run("rewrap", "--key", old, "--to", new, "-", input=signed.read_bytes()), ExitCode.POLICY)
    result = run("rewrap", "--key", old, "--to", new, "--resign", "-", input=signed.read_bytes())
    assert result.exit_code == 0, result.stderr
    piped = tmp_path / "piped.enc"
    piped.write_bytes(result.stdout_bytes)
    assert _decrypt(new, piped) == PLAINTEXT


def test_failures_leave_no_output_and_use_decrypts_exit_codes(tmp_path: Path) -> None:
    old, new, other = aes_key(tmp_path, "old.key"), aes_key(tmp_path, "new.key"), aes_key(tmp_path, "x.key")
    message = encrypt_file(tmp_path, old)
    out = tmp_path / "out.enc"
    tampered = tmp_path / "tampered.enc"
    data = bytearray(message.read_bytes())
    data[-5] ^= 1  # in the last frame: the body is copied, so the truncation check must catch the end
    tampered.write_bytes(bytes(data[:-1]))
    assert_fails(run("rewrap", "--key", old, "--to", new, tampered, "-o", out), ExitCode.INVALID_INPUT)
    assert not out.exists() and list(tmp_path.glob(".out.enc.*")) == []
    assert_fails(run("rewrap", "--key", other, "--to", new, message, "-o", out), ExitCode.NO_USABLE_KEY)
    assert_fails(
        run("rewrap", "--key", old, "--to", new, "-c", "tenant=x", message, "-o", out), ExitCode.CONTEXT
    )
    assert_fails(run("rewrap", "--key", old, "--to", new, tmp_path / "missing", "-o", out), ExitCode.FILE)
    assert_fails(run("rewrap", "--key", old, "--to", new, message, "-o", message), ExitCode.FILE)
    legacy = encrypt_file(tmp_path, old, "--suite", "0x0178")
    assert_fails(run("rewrap", "--key", old, "--to", new, legacy, "-o", out), ExitCode.POLICY)
    assert run("rewrap", "--key", old, "--to", new, "--allow-uncommitted", legacy, "-o", out).exit_code == 0
    assert (tmp_path / "out.enc").read_bytes() != legacy.read_bytes()


def test_s3_object_in_place_with_kms_keys(local_aws: LocalAws) -> None:
    old_key, new_key = local_aws.create_key("us-east-1"), local_aws.create_key("us-east-1")
    bucket = f"cli-{uuid.uuid4().hex[:12]}"
    s3 = local_aws.client("s3", "us-east-1")
    s3.create_bucket(Bucket=bucket)
    kms_args = ("--endpoint-url", local_aws.endpoint_url, "--region", "us-east-1")
    encrypted = run("encrypt", "--key", old_key, "-", *kms_args, input=PLAINTEXT, env=ENV)
    assert encrypted.exit_code == 0, encrypted.stderr
    s3.put_object(Bucket=bucket, Key="obj.enc", Body=encrypted.stdout_bytes)

    url = f"s3://{bucket}/obj.enc"
    result = run("rewrap", "--key", old_key, "--to", new_key, url, *kms_args, env=ENV)
    assert result.exit_code == 0, result.stderr
    moved = s3.get_object(Bucket=bucket, Key="obj.enc")["Body"].read()
    decrypted = run("decrypt", "--key", new_key, "-", *kms_args, input=moved, env=ENV)
    assert decrypted.exit_code == 0 and decrypted.stdout_bytes == PLAINTEXT
    assert_fails(
        run("decrypt", "--key", old_key, "-", *kms_args, input=moved, env=ENV), ExitCode.NO_USABLE_KEY
    )

    copy = run(
        "rewrap", "--key", new_key, "--to", old_key, url, "-o", f"s3://{bucket}/copy.enc", *kms_args, env=ENV
    )
    assert copy.exit_code == 0, copy.stderr
    assert "copy.enc" in copy.stderr
    assert_fails(
        run("rewrap", "--key", new_key, "--to", old_key, "s3://nokey", *kms_args, env=ENV), ExitCode.USAGE
    )
