"""Exit codes that match the --help table (one test per code), and messages that say what to do."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from kmsenvelope.cli import cli as cli_group
from kmsenvelope.cli.exits import ExitCode, exit_code_table

from ._cli import cli, environment, key_file, one_error_line

ARN = "arn:aws:kms:us-east-1:123456789012:key/12345678-1234-1234-1234-123456789012"


@pytest.fixture
def key(tmp_path: Path) -> Path:
    return key_file(tmp_path, "backup")[0]


@pytest.fixture
def message(tmp_path: Path, key: Path) -> Path:
    path = tmp_path / "m.enc"
    result = cli("encrypt", "-k", key, "-c", "tenant=acme", "-o", path, input=b"secret " * 200)
    assert result.returncode == 0, result.stderr
    return path


def test_help_table_lists_every_code_once() -> None:
    text = cli("--help").stdout.decode()
    for code, meaning in exit_code_table():
        assert f"{code:>3}  {meaning}" in text
    assert "output exists" in dict(exit_code_table())[int(ExitCode.FILE)]


def test_exit_0_success(message: Path, key: Path) -> None:
    result = cli("decrypt", "-k", key, message)
    assert result.returncode == 0 and result.stdout == b"secret " * 200


def test_exit_1_unexpected_error_is_one_line(monkeypatch: pytest.MonkeyPatch, key: Path) -> None:
    from kmsenvelope.cli import keys

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(keys, "build_keyring", broken)
    result = CliRunner().invoke(cli_group, ["encrypt", "-k", str(key)], input=b"x")
    assert result.exit_code == int(ExitCode.INTERNAL)
    assert result.stderr.strip().splitlines() == [
        "kmsenvelope: error: unexpected RuntimeError: a bug (set KMSENVELOPE_DEBUG=1 for a traceback)"
    ]


def test_exit_2_usage_errors_are_one_line(key: Path) -> None:
    line = one_error_line(cli("encrypt", "--bogus"), int(ExitCode.USAGE))
    assert "--bogus" in line and "kmsenvelope encrypt --help" in line
    one_error_line(cli("--bogus"), int(ExitCode.USAGE))
    one_error_line(cli("decrypt", "--frame-length", "3"), int(ExitCode.USAGE))
    one_error_line(cli("encrypt", "-k", key, "--cache", "max_messages=3", input=b"x"), int(ExitCode.USAGE))
    one_error_line(cli("encrypt", "-k", key, "--force", "--interactive", input=b"x"), int(ExitCode.USAGE))


def test_exit_3_output_exists(tmp_path: Path, message: Path, key: Path) -> None:
    existing = tmp_path / "exists"
    existing.write_bytes(b"mine")
    assert "already exists" in one_error_line(cli("decrypt", "-k", key, message, "-o", existing), 3)
    assert existing.read_bytes() == b"mine"
    assert "not found" in one_error_line(cli("decrypt", "-k", key, tmp_path / "missing"), 3)


def test_exit_4_invalid_key_file(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.key"
    bogus.write_text("{}")
    one_error_line(cli("encrypt", "-k", bogus, input=b"x"), int(ExitCode.KEY_CONFIG))


def test_exit_5_wrong_key_names_both_keys(tmp_path: Path, message: Path) -> None:
    other, _ = key_file(tmp_path, "k2")
    line = one_error_line(cli("decrypt", "-k", other, message), int(ExitCode.NO_USABLE_KEY))
    assert "encrypted for key 'backup' (namespace 'kmsenvelope'); you gave 'k2'" in line
    assert "6261636b7570" not in line  # not the provider info in hex
    (tmp_path / "ops").mkdir()
    elsewhere, _ = key_file(tmp_path / "ops", "backup", namespace="ops")
    line = one_error_line(cli("decrypt", "-k", elsewhere, message), int(ExitCode.NO_USABLE_KEY))
    assert "you gave 'backup' (namespace 'ops')" in line


def test_exit_6_tampered_not_a_message_and_base64(tmp_path: Path, message: Path, key: Path) -> None:
    data = bytearray(message.read_bytes())
    data[-1] ^= 1
    line = one_error_line(cli("decrypt", "-k", key, input=bytes(data)), int(ExitCode.INVALID_INPUT))
    assert "authentication" in line
    text = base64.b64encode(message.read_bytes()) + b"\n"
    line = one_error_line(cli("decrypt", "-k", key, input=text), int(ExitCode.INVALID_INPUT))
    assert line.endswith("this looks like base64: add --base64")
    line = one_error_line(cli("decrypt", "-k", key, input=b"\xc3 plainly not a message"), 6)
    assert "not an AWS Encryption SDK message" in line and "version" in line and "195" not in line
    assert cli("decrypt", "-k", key, "--base64", input=text).returncode == 0


def test_exit_7_context(message: Path, key: Path) -> None:
    one_error_line(cli("decrypt", "-k", key, "-c", "tenant=other", message), int(ExitCode.CONTEXT))


def test_exit_8_policy_names_the_cli_flag(tmp_path: Path, key: Path) -> None:
    line = one_error_line(cli("encrypt", "-k", key, "--suite", "0x0178", input=b"x"), int(ExitCode.POLICY))
    assert "--commitment-policy forbid-encrypt-allow-decrypt" in line
    legacy = cli(
        "encrypt", "-k", key, "--commitment-policy", "forbid-encrypt-allow-decrypt", input=b"legacy"
    )  # fmt: skip
    assert (
        legacy.returncode == 0
        and json.loads(cli("inspect", "--json", input=legacy.stdout).stdout)["suite_id"] == "0x0178"
    )
    line = one_error_line(cli("decrypt", "-k", key, input=legacy.stdout), int(ExitCode.POLICY))
    assert "--commitment-policy require-encrypt-allow-decrypt" in line
    assert "CommitmentPolicy." not in line and "a AES" not in line
    ok = cli(
        "decrypt", "-k", key, "--commitment-policy", "require-encrypt-allow-decrypt", input=legacy.stdout
    )
    assert ok.stdout == b"legacy"
    # a committing suite under forbid-encrypt is refused too
    one_error_line(
        cli("encrypt", "-k", key, "--commitment-policy", "forbid-encrypt-allow-decrypt", "--suite", "0x0478"),
        8,
    )


def test_exit_8_max_encrypted_data_keys_on_encrypt(tmp_path: Path, key: Path) -> None:
    second, _ = key_file(tmp_path, "second")
    line = one_error_line(
        cli("encrypt", "-k", key, "-k", second, "--max-encrypted-data-keys", "1", input=b"x"), 8
    )
    assert "--max-encrypted-data-keys 1" in line
    two = cli("encrypt", "-k", key, "-k", second, "--max-encrypted-data-keys", "2", input=b"x")
    assert two.returncode == 0
    one_error_line(cli("decrypt", "-k", key, "--max-encrypted-data-keys", "1", input=two.stdout), 8)


def test_exit_8_decrypt_unsigned_refuses_signed_messages(tmp_path: Path, key: Path) -> None:
    signed = cli("encrypt", "-k", key, "--suite", "0x0578", input=b"signed").stdout
    out = tmp_path / "out"
    line = one_error_line(cli("decrypt", "-k", key, "--decrypt-unsigned", "-", "-o", out, input=signed), 8)
    assert "signed" in line and not out.exists()
    unsigned = cli("encrypt", "-k", key, input=b"unsigned").stdout
    assert cli("decrypt", "-k", key, "--decrypt-unsigned", input=unsigned).stdout == b"unsigned"


def test_exit_9_no_aws_credentials() -> None:
    env = {
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_SESSION_TOKEN": None,
        "AWS_PROFILE": None,
        "AWS_CONFIG_FILE": "/nonexistent/config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
    }
    line = one_error_line(cli("encrypt", "-k", ARN, input=b"x", env=env), int(ExitCode.AWS))
    assert "credentials" in line


def test_exit_130_interrupted(tmp_path: Path, key: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "kmsenvelope.cli", "encrypt", "-k", str(key), "-o", str(tmp_path / "o")],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment(),
    )
    try:
        assert process.stdin is not None
        process.stdin.write(b"x" * 100_000)  # the command is running once this much is read
        process.stdin.flush()
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == int(ExitCode.INTERRUPTED), err
    assert err.decode().strip().splitlines() == ["kmsenvelope: error: interrupted"]
    assert not (tmp_path / "o").exists()


def test_help_texts_and_inspect_from_stdin(message: Path) -> None:
    encrypt_help = cli("encrypt", "--help").stdout.decode()
    assert "--discovery" not in encrypt_help and "--require-context" not in encrypt_help
    assert "--commitment-policy" in encrypt_help and "--max-encrypted-data-keys" in encrypt_help
    assert "AWS_ENDPOINT_URL" in encrypt_help
    with message.open("rb") as stdin:
        result = subprocess.run(
            [sys.executable, "-m", "kmsenvelope.cli", "inspect"],
            stdin=stdin,
            capture_output=True,
            env=environment(),
            timeout=60,
        )
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    assert "encryption context (1 pair)" in text and "tenant = acme" in text


def test_bare_commands_show_help_not_an_error() -> None:
    for args in ((), ("keygen",)):
        result = cli(*args)
        shown = result.stdout + result.stderr  # click prints this help on stderr
        assert shown.startswith(b"Usage: kmsenvelope") and b"kmsenvelope: error" not in shown
