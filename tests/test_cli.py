"""The ``kmsenvelope`` command line: keygen, encrypt/decrypt round trips, and every exit code."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from click.testing import CliRunner, Result

from kmsenvelope import Envelope, RawAesKeyring
from kmsenvelope.cli import cli
from kmsenvelope.cli.exits import ExitCode

PLAINTEXT = os.urandom(10_000) + b"the end"


def run(
    *args: str | os.PathLike[str], input: bytes | None = None, env: Mapping[str, str | None] | None = None
) -> Result:
    """Invoke the CLI in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(cli, [os.fspath(a) for a in args], input=input, env=env, catch_exceptions=False)


def assert_fails(result: Result, code: ExitCode) -> None:
    """A failure with this exit code, one line on stderr, no traceback."""
    assert result.exit_code == int(code), (result.exit_code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kmsenvelope: error: ")
    assert "Traceback" not in result.stderr


def aes_key(tmp_path: Path, name: str = "k.key", *extra: str) -> Path:
    path = tmp_path / name
    result = run("keygen", "aes", path, *extra)
    assert result.exit_code == 0, result.stderr
    return path


def encrypt_file(tmp_path: Path, key: Path, *extra: str, data: bytes = PLAINTEXT) -> Path:
    src, dst = tmp_path / "plain.bin", tmp_path / "msg.enc"
    src.write_bytes(data)
    result = run("encrypt", "--key", key, src, "-o", dst, *extra)
    assert result.exit_code == 0, result.stderr
    return dst


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- keygen ----------------------------------------------------------------------------------------


def test_keygen_aes_writes_a_0600_self_describing_key_file(tmp_path: Path) -> None:
    path = aes_key(tmp_path, "backup.key", "--namespace", "ops", "--bits", "192")
    assert mode(path) == 0o600
    doc = json.loads(path.read_text())
    assert doc["format"] == "kmsenvelope-key/1"
    assert (doc["type"], doc["namespace"], doc["name"], doc["bits"]) == ("raw-aes", "ops", "backup", 192)
    assert len(base64.b64decode(doc["material"])) == 24
    # the material is never echoed
    assert doc["material"] not in run("keygen", "aes", tmp_path / "other.key").stdout


def test_keygen_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = aes_key(tmp_path)
    before = path.read_bytes()
    assert_fails(run("keygen", "aes", path), ExitCode.FILE)
    assert path.read_bytes() == before
    path.chmod(0o644)
    assert run("keygen", "aes", path, "--force").exit_code == 0
    assert path.read_bytes() != before
    assert mode(path) == 0o600


def test_keygen_rsa_pair_encrypts_with_public_and_decrypts_with_private(tmp_path: Path) -> None:
    key = tmp_path / "r.key"
    assert run("keygen", "rsa", key, "--bits", "2048").exit_code == 0
    public = tmp_path / "r.key.pub"
    assert mode(key) == 0o600 and mode(public) == 0o600
    assert json.loads(public.read_text())["type"] == "raw-rsa-public"
    assert "PRIVATE" not in public.read_text()
    assert_fails(run("keygen", "rsa", key, "--bits", "2048"), ExitCode.FILE)

    message = encrypt_file(tmp_path, public)
    assert run("decrypt", "--key", key, message).stdout_bytes == PLAINTEXT
    assert_fails(run("decrypt", "--key", public, message), ExitCode.KEY_CONFIG)


# -- round trips -----------------------------------------------------------------------------------


def test_round_trip_files_with_context(tmp_path: Path) -> None:
    key = aes_key(tmp_path)
    message = encrypt_file(tmp_path, key, "--context", "tenant=acme", "-c", "purpose=test")
    assert PLAINTEXT not in message.read_bytes()
    out = tmp_path / "out.bin"
    result = run("decrypt", "--key", key, "--require-context", "tenant=acme", message, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes() == PLAINTEXT
    assert mode(out) == 0o600


def test_round_trip_stdin_stdout_base64(tmp_path: Path) -> None:
    key = aes_key(tmp_path)
    encrypted = run("encrypt", "--key", key, "--base64", input=PLAINTEXT)
    assert encrypted.exit_code == 0
    text = encrypted.stdout_bytes
    assert text.endswith(b"\n") and base64.b64decode(text)[:1] == b"\x02"
    wrapped = b"\n".join(text[i : i + 76] for i in range(0, len(text), 76))  # line breaks are ignored
    decrypted = run("decrypt", "--key", key, "--base64", "-", input=wrapped)
    assert decrypted.exit_code == 0, decrypted.stderr
    assert decrypted.stdout_bytes == PLAINTEXT


def test_empty_input_round_trips(tmp_path: Path) -> None:
    key = aes_key(tmp_path)
    encrypted = run("encrypt", "--key", key, input=b"")
    assert run("decrypt", "--key", key, input=encrypted.stdout_bytes).stdout_bytes == b""


def test_suite_and_frame_length_options(tmp_path: Path) -> None:
    key = aes_key(tmp_path)
    message = encrypt_file(tmp_path, key, "--suite", "0x0578", "--frame-length", "1000")
    header = json.loads(run("inspect", "--json", message).stdout)
    assert (header["suite_id"], header["frame_length"], header["signed"]) == ("0x0578", 1000, True)
    assert run("decrypt", "--key", key, message).stdout_bytes == PLAINTEXT


def test_legacy_suite_needs_allow_uncommitted(tmp_path: Path) -> None:
    key = aes_key(tmp_path)
    assert_fails(
        run("encrypt", "--key", key, "--suite", "0x0178", input=b"x"), ExitCode.POLICY
    )  # legacy suites are written only under a policy that allows them
    message = encrypt_file(
        tmp_path,
        key,
        "--suite",
        "AES_256_GCM_IV12_TAG16_HKDF_SHA256",
        "--commitment-policy",
        "forbid-encrypt-allow-decrypt",
    )
    result = run("decrypt", "--key", key, message)
    assert_fails(result, ExitCode.POLICY)
    assert "--commitment-policy require-encrypt-allow-decrypt" in result.stderr
    assert "CommitmentPolicy." not in result.stderr
    policy = ("--commitment-policy", "require-encrypt-allow-decrypt")
    assert run("decrypt", "--key", key, *policy, message).stdout_bytes == PLAINTEXT
    assert run("decrypt", "--key", key, "--allow-uncommitted", message).stdout_bytes == PLAINTEXT


def test_several_keys_each_decrypt(tmp_path: Path) -> None:
    first, second = aes_key(tmp_path, "a.key"), aes_key(tmp_path, "b.key")
    message = encrypt_file(tmp_path, first, "--key", str(second))
    assert len(json.loads(run("inspect", "--json", message).stdout)["encrypted_data_keys"]) == 2
    for key in (first, second):
        assert run("decrypt", "--key", key, message).stdout_bytes == PLAINTEXT


def test_messages_are_esdk_messages(tmp_path: Path) -> None:
    """The key file's namespace, name and material make the library keyring that reads CLI output."""
    key = aes_key(tmp_path, "shared.key")
    doc = json.loads(key.read_text())
    envelope = Envelope(RawAesKeyring(doc["namespace"], doc["name"], base64.b64decode(doc["material"])))
    message = encrypt_file(tmp_path, key, "-c", "a=b")
    assert envelope.decrypt(message.read_bytes(), {"a": "b"}) == PLAINTEXT
    made_by_library = envelope.encrypt(b"from the library", {"x": "y"})
    assert (
        run("decrypt", "--key", key, "-c", "x=y", input=made_by_library).stdout_bytes == b"from the library"
    )


# -- failures: exit codes, one line, no partial output ---------------------------------------------


def test_wrong_key(tmp_path: Path) -> None:
    message = encrypt_file(tmp_path, aes_key(tmp_path, "right.key"))
    out = tmp_path / "out.bin"
    assert_fails(
        run("decrypt", "--key", aes_key(tmp_path, "wrong.key"), message, "-o", out), ExitCode.NO_USABLE_KEY
    )
    assert not out.exists()


def test_tampered_input_leaves_no_partial_plaintext(tmp_path: Path) -> None:
    """Unsigned suite, many frames, last frame tampered: earlier frames verify, yet nothing is kept."""
    key = aes_key(tmp_path)
    message = encrypt_file(tmp_path, key, "--frame-length", "512")
    data = bytearray(message.read_bytes())
    data[-3] ^= 0x01
    message.write_bytes(bytes(data))
    out = tmp_path / "out.bin"
    assert_fails(run("decrypt", "--key", key, message, "-o", out), ExitCode.INVALID_INPUT)
    assert not out.exists()
    out.write_bytes(b"previous content")
    assert_fails(run("decrypt", "--key", key, message, "-o", out, "--force"), ExitCode.INVALID_INPUT)
    assert out.read_bytes() == b"previous content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.key", "msg.enc", "out.bin", "plain.bin"]


def test_tampered_signed_message_writes_nothing_to_stdout(tmp_path: Path) -> None:
    key = aes_key(tmp_path)
    data = bytearray(encrypt_file(tmp_path, key, "--suite", "0x0578", "--frame-length", "512").read_bytes())
    data[-5] ^= 0x01  # inside the signature
    result = run("decrypt", "--key", key, input=bytes(data))
    assert_fails(result, ExitCode.INVALID_INPUT)
    assert result.stdout_bytes == b""


def test_truncated_and_garbage_input(tmp_path: Path) -> None:
    key = aes_key(tmp_path)
    data = encrypt_file(tmp_path, key).read_bytes()
    assert_fails(run("decrypt", "--key", key, input=data[:-10]), ExitCode.INVALID_INPUT)
    assert_fails(run("decrypt", "--key", key, input=b"\x02not a message at all"), ExitCode.INVALID_INPUT)
    assert_fails(run("decrypt", "--key", key, "--base64", input=b"@@@@"), ExitCode.INVALID_INPUT)


def test_missing_files(tmp_path: Path) -> None:
    key = aes_key(tmp_path)
    assert_fails(run("decrypt", "--key", key, tmp_path / "nope.enc"), ExitCode.FILE)
    assert_fails(run("encrypt", "--key", key, tmp_path / "nope.txt"), ExitCode.FILE)
    assert_fails(run("encrypt", "--key", tmp_path / "nope.key", input=b"x"), ExitCode.FILE)
    assert_fails(run("encrypt", "--key", key, "-o", tmp_path / "no-dir" / "x.enc", input=b"x"), ExitCode.FILE)
    assert_fails(run("keygen", "aes", tmp_path / "no-dir" / "k.key"), ExitCode.FILE)


def test_bad_context(tmp_path: Path) -> None:
    key = aes_key(tmp_path)
    message = encrypt_file(tmp_path, key, "-c", "tenant=acme")
    assert_fails(run("decrypt", "--key", key, "--require-context", "tenant=other", message), ExitCode.CONTEXT)
    assert_fails(run("decrypt", "--key", key, "--require-context", "region=eu", message), ExitCode.CONTEXT)
    assert_fails(
        run("decrypt", "--key", key, "--require-context", "no-equals-sign", message), ExitCode.CONTEXT
    )
    assert_fails(run("encrypt", "--key", key, "-c", "=value", input=b"x"), ExitCode.CONTEXT)
    assert_fails(run("encrypt", "--key", key, "-c", "aws-crypto-x=1", input=b"x"), ExitCode.CONTEXT)


def test_invalid_key_file_and_usage_errors(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.key"
    bogus.write_text('{"format": "something-else"}')
    assert_fails(run("encrypt", "--key", bogus, input=b"x"), ExitCode.KEY_CONFIG)
    bogus.write_text("not json")
    assert_fails(run("encrypt", "--key", bogus, input=b"x"), ExitCode.KEY_CONFIG)
    key = aes_key(tmp_path)
    assert_fails(run("encrypt", "--key", key, "--suite", "0x9999", input=b"x"), ExitCode.USAGE)
    assert run("encrypt", input=b"x").exit_code == int(ExitCode.USAGE)  # --key is required
    assert_fails(run("decrypt", input=b"x"), ExitCode.USAGE)  # neither --key nor --discovery


def test_exit_codes_are_distinct_and_documented_in_help() -> None:
    codes = [int(code) for code in ExitCode]
    assert len(codes) == len(set(codes))
    help_text = run("--help").stdout
    decrypt_help = run("decrypt", "--help").stdout
    for code in ExitCode:
        assert f"{int(code):>3}  " in help_text
        assert f"{int(code):>3}  " in decrypt_help
