"""The CLI with AWS KMS keys, against the local KMS of ``kmsenvelope.testing`` (``local_aws`` fixture)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import Result

from kmsenvelope.cli.exits import ExitCode

from .test_cli import assert_fails, run

if TYPE_CHECKING:
    from kmsenvelope.testing import LocalAws

PLAINTEXT = b"secret payload " * 1000
ACCOUNT = "123456789012"

# Dummy credentials, and no shared config, profile or region leaking in from the machine.
ENV: dict[str, str | None] = {
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


def kms(aws: LocalAws, *args: str, input: bytes | None = None) -> Result:
    return run(*args, "--endpoint-url", aws.endpoint_url, input=input, env=ENV)


@pytest.fixture
def key_arn(local_aws: LocalAws) -> str:
    return local_aws.create_key(description="kmsenvelope CLI test")


def encrypt(aws: LocalAws, *args: str) -> bytes:
    result = kms(aws, "encrypt", *args, input=PLAINTEXT)
    assert result.exit_code == 0, result.stderr
    return result.stdout_bytes


def test_round_trip_with_key_arn(local_aws: LocalAws, key_arn: str) -> None:
    message = encrypt(local_aws, "--key", key_arn, "-c", "tenant=acme")
    assert len(local_aws.requests("GenerateDataKey")) == 1
    result = kms(local_aws, "decrypt", "--key", key_arn, "-c", "tenant=acme", input=message)
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == PLAINTEXT
    assert len(local_aws.requests("Decrypt")) == 1
    [edk] = json.loads(run("inspect", "--json", "-", input=message).stdout)["encrypted_data_keys"]
    assert (edk["provider_id"], edk["kind"], edk["key_arn"]) == ("aws-kms", "aws-kms", key_arn)


def test_alias_needs_a_region_to_encrypt_and_an_arn_to_decrypt(local_aws: LocalAws, key_arn: str) -> None:
    local_aws.client("kms").create_alias(AliasName="alias/kmsenvelope-cli", TargetKeyId=key_arn)
    assert_fails(kms(local_aws, "encrypt", "--key", "alias/kmsenvelope-cli", input=b"x"), ExitCode.USAGE)
    message = encrypt(local_aws, "--key", "alias/kmsenvelope-cli", "--region", "us-east-1")
    [edk] = json.loads(run("inspect", "--json", "-", input=message).stdout)["encrypted_data_keys"]
    assert edk["key_arn"] == key_arn
    assert_fails(
        kms(local_aws, "decrypt", "--key", "alias/kmsenvelope-cli", "--region", "us-east-1", input=message),
        ExitCode.KEY_CONFIG,
    )
    assert kms(local_aws, "decrypt", "--key", key_arn, input=message).stdout_bytes == PLAINTEXT


def test_discovery_with_account_filter(local_aws: LocalAws, key_arn: str) -> None:
    message = encrypt(local_aws, "--key", key_arn)
    region = ["--region", "us-east-1"]
    result = kms(local_aws, "decrypt", "--discovery", *region, "--discovery-account", ACCOUNT, input=message)
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == PLAINTEXT
    assert_fails(
        kms(
            local_aws, "decrypt", "--discovery", *region, "--discovery-account", "111122223333", input=message
        ),
        ExitCode.NO_USABLE_KEY,
    )
    assert_fails(kms(local_aws, "decrypt", "--discovery", input=message), ExitCode.USAGE)
    assert_fails(
        kms(local_aws, "decrypt", "--discovery-account", ACCOUNT, *region, input=message), ExitCode.USAGE
    )


def test_kms_failures_map_to_exit_codes(local_aws: LocalAws, key_arn: str) -> None:
    message = encrypt(local_aws, "--key", key_arn)
    other = local_aws.create_key()
    assert_fails(kms(local_aws, "decrypt", "--key", other, input=message), ExitCode.NO_USABLE_KEY)
    assert_fails(
        kms(local_aws, "encrypt", "--key", key_arn, "--profile", "no-such-profile", input=b"x"), ExitCode.AWS
    )
    local_aws.disable_key(key_arn)
    try:
        result = kms(local_aws, "decrypt", "--key", key_arn, input=message)
        assert_fails(result, ExitCode.NO_USABLE_KEY)
        assert "DisabledException" in result.stderr
    finally:
        local_aws.enable_key(key_arn)


def test_kms_and_local_key_together(local_aws: LocalAws, key_arn: str, tmp_path: Path) -> None:
    local_key = tmp_path / "local.key"
    assert run("keygen", "aes", local_key).exit_code == 0
    message = encrypt(local_aws, "--key", key_arn, "--key", str(local_key))
    assert run("decrypt", "--key", str(local_key), input=message).stdout_bytes == PLAINTEXT
    assert kms(local_aws, "decrypt", "--key", key_arn, input=message).stdout_bytes == PLAINTEXT
