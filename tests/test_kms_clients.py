"""ClientSupplier: per-region caching, retry configuration, sessions and endpoints; lazy boto3."""

from __future__ import annotations

import subprocess
import sys
import threading

import boto3.session
import pytest
from botocore.config import Config

from kmsenvelope.aws import ClientSupplier, KmsClientSupplier
from kmsenvelope.errors import ConfigurationError
from kmsenvelope.testing import LocalAws


def test_one_cached_client_per_region_across_threads(local_aws: LocalAws) -> None:
    supplier = local_aws.client_supplier()
    assert isinstance(supplier, KmsClientSupplier)
    seen: list[object] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        seen.append(supplier("eu-central-1"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in seen}) == 1
    assert supplier("eu-central-1").meta.region_name == "eu-central-1"
    assert supplier("eu-north-1") is not supplier("eu-central-1")
    assert supplier.regions == ("eu-central-1", "eu-north-1")


def test_default_config_uses_standard_retries(local_aws: LocalAws) -> None:
    config = local_aws.client_supplier()("us-east-1").meta.config
    assert config.retries["mode"] == "standard"
    assert "kmsenvelope/" in config.user_agent_extra


def test_user_config_is_merged_and_keeps_standard_mode(local_aws: LocalAws) -> None:
    client = local_aws.client_supplier(Config(read_timeout=7, retries={"max_attempts": 5}))("us-east-1")
    assert client.meta.config.read_timeout == 7
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 6}
    legacy = local_aws.client_supplier(Config(retries={"mode": "legacy", "max_attempts": 1}))("us-east-1")
    assert legacy.meta.config.retries["mode"] == "legacy"  # an explicit choice is respected


def test_user_session_and_endpoint_are_honoured(local_aws: LocalAws) -> None:
    session = boto3.session.Session(
        aws_access_key_id="AKIDCUSTOMSESSION", aws_secret_access_key="secret", region_name="eu-north-1"
    )
    supplier = ClientSupplier(session=session, endpoint_url=local_aws.endpoint_url)
    assert supplier.default_region == "eu-north-1"
    client = supplier("eu-west-3")
    assert client.meta.endpoint_url == local_aws.endpoint_url
    client.list_keys()
    (request,) = local_aws.requests("ListKeys")
    assert (request.access_key_id, request.region) == ("AKIDCUSTOMSESSION", "eu-west-3")


def test_bad_arguments() -> None:
    with pytest.raises(ConfigurationError):
        ClientSupplier(endpoint_url="")
    with pytest.raises(ConfigurationError):
        ClientSupplier()("")


def test_repr_has_no_credentials() -> None:
    session = boto3.session.Session(aws_access_key_id="AKIDX", aws_secret_access_key="very-secret")
    assert "very-secret" not in repr(ClientSupplier(session=session))


def test_import_and_construction_do_not_import_boto3() -> None:
    code = (
        "import sys, kmsenvelope\n"
        "from kmsenvelope import KmsKeyring, KmsDiscoveryKeyring, KmsRsaKeyring, DiscoveryFilter\n"
        "import kmsenvelope.aws, kmsenvelope.testing, kmsenvelope.testing.pytest_plugin\n"
        "KmsKeyring('arn:aws:kms:us-east-1:1:key/k', additional_key_ids=['arn:aws:kms:eu-west-1:1:key/x'])\n"
        "KmsDiscoveryKeyring('us-east-1', discovery_filter=DiscoveryFilter('aws', ['111122223333']))\n"
        "KmsRsaKeyring('arn:aws:kms:us-east-1:111122223333:key/k')\n"
        "kmsenvelope.stats()\n"
        "loaded = sorted(m for m in ('boto3', 'botocore', 'moto') if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
