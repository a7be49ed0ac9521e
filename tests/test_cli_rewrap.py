"""``kmsenvelope rewrap``: files, pipes and S3 objects move to new keys; failures leave no output."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from click.testing import Result

from kmsenvelope.cli.exits import ExitCode
from kmsenvelope.testing import LocalAws

from .test_cli import PLAINTEXT, aes_key, assert_fails, encrypt_file, run
from .test_cli_kms import ENV

NONCE = "--allow-header-nonce-reuse"  # every test message but the legacy ones is format version 2


def _failed(result: Result, code: ExitCode) -> Result:
    assert_fails(result, code)
    return result


def _decrypt(key: Path, message: Path, *extra: str) -> bytes:
    result = run("decrypt", "--key", key, message, *extra)
    assert result.exit_code == 0, result.stderr
    return result.stdout_bytes


def test_file_rewrap_then_only_the_new_key_decrypts(tmp_path: Path) -> None:
    old, new = aes_key(tmp_path, "old.key"), aes_key(tmp_path, "new.key")
    message = encrypt_file(tmp_path, old, "-c", "tenant=acme")
    out = tmp_path / "moved.enc"
    result = run("rewrap", "--key", old, "--to", new, NONCE, "-c", "tenant=acme", message, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert _decrypt(new, out) == PLAINTEXT
    assert_fails(run("decrypt", "--key", old, out), ExitCode.NO_USABLE_KEY)

    kept = tmp_path / "kept.enc"
    assert run("rewrap", "--key", old, "--to", new, NONCE, "--keep-old", message, "-o", kept).exit_code == 0
    assert _decrypt(old, kept) == _decrypt(new, kept) == PLAINTEXT


def test_pipe_rewrap_and_signed_suites(tmp_path: Path) -> None:
    old, new = aes_key(tmp_path, "old.key"), aes_key(tmp_path, "new.key")
    signed = encrypt_file(tmp_path, old, "--suite", "0x0578")
    assert_fails(
        run("rewrap", "--key", old, "--to", new, NONCE, "-", input=signed.read_bytes()), ExitCode.POLICY
    )
    result = run("rewrap", "--key", old, "--to", new, NONCE, "--resign", "-", input=signed.read_bytes())
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
    rewrap = ("rewrap", "--key", old, "--to", new, NONCE)
    assert_fails(run(*rewrap, tampered, "-o", out), ExitCode.INVALID_INPUT)
    assert not out.exists() and list(tmp_path.glob(".out.enc.*")) == []
    wrong = _failed(
        run("rewrap", "--key", other, "--to", new, NONCE, message, "-o", out), ExitCode.NO_USABLE_KEY
    )
    assert "'old'" in wrong.stderr and "you gave 'x'" in wrong.stderr  # as decrypt explains it
    assert_fails(run(*rewrap, "-c", "tenant=x", message, "-o", out), ExitCode.CONTEXT)
    assert_fails(run(*rewrap, tmp_path / "missing", "-o", out), ExitCode.FILE)
    assert_fails(run(*rewrap, message, "-o", message), ExitCode.FILE)
    assert_fails(run(*rewrap, "-", "-o", out, input=b"not a message"), ExitCode.INVALID_INPUT)
    (tmp_path / "legacy").mkdir()
    legacy = encrypt_file(
        tmp_path / "legacy", old, "--suite", "0x0178", "--commitment-policy", "forbid-encrypt-allow-decrypt"
    )
    assert_fails(run("rewrap", "--key", old, "--to", new, legacy, "-o", out), ExitCode.POLICY)
    # Version 1 messages carry a fresh header IV: no nonce flag needed.
    assert run("rewrap", "--key", old, "--to", new, "--allow-uncommitted", legacy, "-o", out).exit_code == 0
    assert (tmp_path / "out.enc").read_bytes() != legacy.read_bytes()
    policy = ("--commitment-policy", "require-encrypt-allow-decrypt")
    assert_fails(run("rewrap", "--key", old, "--to", new, *policy, legacy, "-o", out), ExitCode.FILE)
    assert run("rewrap", "--key", old, "--to", new, *policy, "--force", legacy, "-o", out).exit_code == 0
    assert _decrypt(new, out, "--allow-uncommitted") == PLAINTEXT
    strict = ("--commitment-policy", "require-encrypt-require-decrypt", "--allow-uncommitted")
    assert_fails(run("rewrap", "--key", old, "--to", new, *strict, legacy, "-o", out), ExitCode.USAGE)


def test_version_2_needs_the_nonce_reuse_flag(tmp_path: Path) -> None:
    old, new = aes_key(tmp_path, "old.key"), aes_key(tmp_path, "new.key")
    message = encrypt_file(tmp_path, old)
    out = tmp_path / "out.enc"
    for source, stdin in ((message, None), ("-", message.read_bytes())):
        refused = _failed(
            run("rewrap", "--key", old, "--to", new, source, "-o", out, input=stdin), ExitCode.POLICY
        )
        assert NONCE in refused.stderr and "forge" in refused.stderr
        assert not out.exists() and list(tmp_path.glob(".out.enc.*")) == []
    assert NONCE in run("rewrap", "--help").stdout
    assert run("rewrap", "--key", old, "--to", new, NONCE, message, "-o", out).exit_code == 0
    assert _decrypt(new, out) == PLAINTEXT

    # An existing output is kept unless --force (exit 3, as for decrypt).
    out.write_bytes(b"keep me")
    assert_fails(run("rewrap", "--key", old, "--to", new, NONCE, message, "-o", out), ExitCode.FILE)
    assert out.read_bytes() == b"keep me"
    assert run("rewrap", "--key", old, "--to", new, NONCE, "-f", message, "-o", out).exit_code == 0
    assert _decrypt(new, out) == PLAINTEXT


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
    refused = _failed(
        run("rewrap", "--key", old_key, "--to", new_key, url, *kms_args, env=ENV), ExitCode.POLICY
    )
    assert NONCE in refused.stderr
    assert s3.get_object(Bucket=bucket, Key="obj.enc")["Body"].read() == encrypted.stdout_bytes
    result = run("rewrap", "--key", old_key, "--to", new_key, NONCE, url, *kms_args, env=ENV)
    assert result.exit_code == 0, result.stderr
    moved = s3.get_object(Bucket=bucket, Key="obj.enc")["Body"].read()
    decrypted = run("decrypt", "--key", new_key, "-", *kms_args, input=moved, env=ENV)
    assert decrypted.exit_code == 0 and decrypted.stdout_bytes == PLAINTEXT
    assert_fails(
        run("decrypt", "--key", old_key, "-", *kms_args, input=moved, env=ENV), ExitCode.NO_USABLE_KEY
    )

    to_copy = ("rewrap", "--key", new_key, "--to", old_key, NONCE, url, "-o", f"s3://{bucket}/copy.enc")
    copy = run(*to_copy, *kms_args, env=ENV)
    assert copy.exit_code == 0, copy.stderr
    assert "copy.enc" in copy.stderr
    assert_fails(run(*to_copy, *kms_args, env=ENV), ExitCode.FILE)  # exists: needs --force
    assert run(*to_copy, "--force", *kms_args, env=ENV).exit_code == 0
    assert_fails(
        run("rewrap", "--key", new_key, "--to", old_key, "s3://nokey", *kms_args, env=ENV), ExitCode.USAGE
    )


def test_a_regular_input_file_takes_the_file_to_file_copy_and_stdin_does_not(
    tmp_path: Path, monkeypatch: Any
) -> None:
    from kmsenvelope.message import body_copy

    calls: list[int] = []
    real = body_copy.copy_body_between_files

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(body_copy, "copy_body_between_files", spy)
    old, new = aes_key(tmp_path, "old.key"), aes_key(tmp_path, "new.key")
    message = encrypt_file(tmp_path, old)
    out = tmp_path / "out.enc"
    assert run("rewrap", "--key", old, "--to", new, NONCE, message, "-o", out).exit_code == 0
    assert calls == [1] and _decrypt(new, out) == PLAINTEXT
    piped = run("rewrap", "--key", old, "--to", new, NONCE, "-", "-f", "-o", out, input=message.read_bytes())
    assert piped.exit_code == 0, piped.stderr
    assert calls == [1] and _decrypt(new, out) == PLAINTEXT
