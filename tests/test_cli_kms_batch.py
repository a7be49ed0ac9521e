"""The CLI against the local KMS as a real process: --cache counted in -v output, AWS_ENDPOINT_URL*
honoured, ``kmsenvelope local-aws``, and -v/-vv never showing key material or plaintext."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ._cli import cli, environment, key_file

if TYPE_CHECKING:
    from kmsenvelope.testing import LocalAws

# Dummy credentials, and nothing leaking in from the machine's AWS configuration.
AWS_ENV: dict[str, str | None] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": None,
    "AWS_CONFIG_FILE": "/nonexistent/kmsenvelope-test-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/kmsenvelope-test-credentials",
    "AWS_PROFILE": None,
    "AWS_DEFAULT_PROFILE": None,
    "AWS_REGION": None,
    "AWS_DEFAULT_REGION": None,
    "AWS_ENDPOINT_URL": None,
    "AWS_ENDPOINT_URL_KMS": None,
}


def kms_calls(stderr: bytes) -> list[int]:
    """The per-file KMS call counts that -v reports."""
    return [int(n) for n in re.findall(rb", (\d+) KMS calls?,", stderr)]


def tree(root: Path, count: int) -> None:
    for index in range(count):
        path = root / f"d{index % 2}" / f"f{index}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"file {index} ".encode() * 50)


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS"])
def test_cache_reuses_one_data_key_and_endpoint_variables_are_honoured(
    local_aws: LocalAws, tmp_path: Path, variable: str
) -> None:
    """No --endpoint-url anywhere: the environment variable alone points the CLI at the local KMS."""
    arn = local_aws.create_key()
    env = {**AWS_ENV, variable: local_aws.endpoint_url}
    tree(tmp_path / "plain", 4)
    local_aws.reset()
    result = cli("encrypt", "-r", "-v", "-k", arn, tmp_path / "plain", "-o", tmp_path / "a", env=env)
    assert result.returncode == 0, result.stderr
    assert kms_calls(result.stderr) == [1, 1, 1, 1]
    assert len(local_aws.requests("GenerateDataKey")) == 4

    local_aws.reset()
    cache = "max_age=300,max_messages=3"
    result = cli(
        "encrypt", "-r", "-v", "--cache", cache, "-k", arn, tmp_path / "plain", "-o", tmp_path / "b", env=env
    )
    assert result.returncode == 0, result.stderr
    # one data key for three messages (max_messages=3), then a fresh one
    assert kms_calls(result.stderr) == [1, 0, 0, 1]
    assert len(local_aws.requests("GenerateDataKey")) == 2

    local_aws.reset()
    result = cli(
        "decrypt",
        "-r",
        "-v",
        "--cache",
        "max_age=300",
        "-k",
        arn,
        tmp_path / "b",
        "-o",
        tmp_path / "c",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert (
        sum(kms_calls(result.stderr)) == len(local_aws.requests("Decrypt")) == 2
    )  # one per distinct data key
    for path in (tmp_path / "plain").rglob("*.txt"):
        assert (tmp_path / "c" / path.relative_to(tmp_path / "plain")).read_bytes() == path.read_bytes()


def test_verbose_output_never_holds_key_material_or_plaintext(local_aws: LocalAws, tmp_path: Path) -> None:
    arn = local_aws.create_key()
    key, key_doc = key_file(tmp_path, "logged")
    raw_key = base64.b64decode(key_doc.material)
    plaintext = b"TOP-SECRET-PLAINTEXT " * 40
    env = {**AWS_ENV, "AWS_ENDPOINT_URL": local_aws.endpoint_url}
    encrypted = cli("encrypt", "-vv", "-k", arn, "-k", key, "-c", "who=me", input=plaintext, env=env)
    assert encrypted.returncode == 0, encrypted.stderr
    decrypted = cli("decrypt", "-vv", "-k", key, input=encrypted.stdout, env=env)
    kms_decrypted = cli("decrypt", "-vv", "-k", arn, input=encrypted.stdout, env=env)
    assert decrypted.stdout == kms_decrypted.stdout == plaintext
    logs = encrypted.stderr + decrypted.stderr + kms_decrypted.stderr
    assert b"KMS GenerateDataKey" in encrypted.stderr and b"KMS Decrypt" in kms_decrypted.stderr
    assert b"suite 0x0478, frame length 65536" in logs
    for secret in (raw_key, raw_key.hex().encode(), key_doc.material.encode(), base64.b64encode(raw_key)):
        assert secret not in logs
    assert b"TOP-SECRET" not in logs and plaintext[:16].hex().encode() not in logs
    # -q: nothing at all on success
    quiet = cli("decrypt", "-q", "-k", key, input=encrypted.stdout, env=env)
    assert quiet.returncode == 0 and quiet.stderr == b""


def test_local_aws_command_prints_an_environment_the_cli_can_use(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "kmsenvelope.cli", "local-aws"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment(AWS_ENV),
    )
    try:
        assert process.stdout is not None
        env: dict[str, str | None] = dict(AWS_ENV)
        while "KMSENVELOPE_KEY_ARN" not in env:
            line = process.stdout.readline().decode().strip()
            assert line, process.stderr.read() if process.stderr else "no output"
            name, _, value = line.partition("=")
            env[name] = value
        assert str(env["AWS_ENDPOINT_URL"]).startswith("http://127.0.0.1:")
        arn = str(env["KMSENVELOPE_KEY_ARN"])
        encrypted = cli("encrypt", "-k", arn, input=b"tried locally", env=env)
        assert encrypted.returncode == 0, encrypted.stderr
        assert cli("decrypt", "-k", arn, input=encrypted.stdout, env=env).stdout == b"tried locally"
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert process.returncode == -15  # ended by SIGTERM, after stopping the server
