"""kmsenvelope.testing.local_aws: the context manager, the pytest fixture, fault injection, recording."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlparse

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from kmsenvelope.testing import TIMEOUT, LocalAws, moto_patches
from kmsenvelope.testing import local_aws as local_aws_cm

NO_RETRY = Config(retries={"mode": "standard", "max_attempts": 0})


def test_fixture_comes_from_the_installed_plugin(pytestconfig: pytest.Config) -> None:
    plugin = pytestconfig.pluginmanager.get_plugin("kmsenvelope")
    assert plugin is not None and plugin.__name__ == "kmsenvelope.testing.pytest_plugin"


def test_context_manager_runs_its_own_server_on_a_free_local_port(local_aws: LocalAws) -> None:
    with local_aws_cm() as aws:
        url = urlparse(aws.endpoint_url)
        assert url.hostname == "127.0.0.1" and url.port not in (None, urlparse(local_aws.endpoint_url).port)
        arn = aws.create_key("eu-west-1")
        assert arn.startswith("arn:aws:kms:eu-west-1:123456789012:key/")
        assert aws.session.get_credentials().access_key == "testing"
    # The server is gone, and the session fixture's patches are still installed.
    with pytest.raises(OSError), socket.create_connection((url.hostname, url.port), timeout=1):
        pass
    assert moto_patches.active()
    assert local_aws.client("kms", "eu-west-1").describe_key(KeyId=arn)  # state is shared in-process


def test_other_services_work_too(local_aws: LocalAws) -> None:
    ddb = local_aws.client("dynamodb", "us-east-1")
    ddb.create_table(
        TableName="kmsenvelope-local-aws-test",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert [r.operation for r in local_aws.requests(service="dynamodb")] == ["CreateTable"]


def test_throttle_fault_counts_down(local_aws: LocalAws) -> None:
    kms = local_aws.session.client(
        "kms", region_name="us-east-1", endpoint_url=local_aws.endpoint_url, config=NO_RETRY
    )
    local_aws.inject_fault("ListKeys", "ThrottlingException", count=2)
    for _ in range(2):
        with pytest.raises(ClientError) as info:
            kms.list_keys()
        assert info.value.response["Error"]["Code"] == "ThrottlingException"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    kms.list_keys()
    assert local_aws.pending_faults() == 0
    assert [r.fault for r in local_aws.requests("ListKeys")] == [
        "ThrottlingException",
        "ThrottlingException",
        None,
    ]


def test_fault_can_target_one_region(local_aws: LocalAws) -> None:
    local_aws.inject_fault("ListKeys", "AccessDeniedException", region="eu-west-1")
    local_aws.client("kms", "us-east-1").list_keys()
    with pytest.raises(ClientError) as info:
        local_aws.client("kms", "eu-west-1").list_keys()
    assert info.value.response["Error"]["Code"] == "AccessDeniedException"


def test_timeout_fault_stalls_past_the_read_timeout(local_aws: LocalAws) -> None:
    kms = local_aws.session.client(
        "kms",
        region_name="us-east-1",
        endpoint_url=local_aws.endpoint_url,
        config=Config(read_timeout=0.2, retries={"mode": "standard", "max_attempts": 0}),
    )
    local_aws.inject_fault("ListKeys", TIMEOUT, stall_seconds=5)
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        kms.list_keys()
    assert time.monotonic() - started < 2
    kms.list_keys()  # the next request is served normally


def test_requests_record_what_reached_aws_without_plaintext(local_aws: LocalAws) -> None:
    arn = local_aws.create_key("ap-southeast-2")
    local_aws.client("kms", "ap-southeast-2").encrypt(
        KeyId=arn, Plaintext=b"super-secret-bytes", EncryptionContext={"c": "d"}, GrantTokens=["t"]
    )
    (request,) = local_aws.requests("Encrypt")
    assert (request.service, request.region, request.key_id) == ("kms", "ap-southeast-2", arn)
    assert request.params["EncryptionContext"] == {"c": "d"}
    assert request.params["GrantTokens"] == ["t"]
    assert request.params["Plaintext"] == "<redacted>"
    assert request.access_key_id == "testing"
    assert local_aws.requests("Encrypt", region="us-east-1") == ()


def test_leaves_a_fault_and_recordings_behind(local_aws: LocalAws) -> None:
    local_aws.inject_fault("Decrypt", "ThrottlingException", count=5)
    local_aws.client("kms").list_keys()
    assert local_aws.pending_faults() == 5


def test_fixture_resets_between_tests(local_aws: LocalAws) -> None:
    # Runs after the test above (file order): nothing of it is left.
    assert local_aws.pending_faults() == 0
    assert local_aws.requests() == ()


def test_dead_endpoint_is_really_dead() -> None:
    # The global-scenario tests use such an endpoint for "us-east-1 is down".
    import boto3.session

    client = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x").client(
        "kms", region_name="us-east-1", endpoint_url="http://127.0.0.1:9", config=NO_RETRY
    )
    with pytest.raises(EndpointConnectionError):
        client.list_keys()
