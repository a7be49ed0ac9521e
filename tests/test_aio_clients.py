"""AsyncClientSupplier and LocalAws.inject_latency, against the local AWS."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from botocore.config import Config

from kmsenvelope import Envelope, KmsKeyring
from kmsenvelope.aio import AsyncClientSupplier
from kmsenvelope.aio.clients import DEFAULT_MAX_POOL_CONNECTIONS
from kmsenvelope.errors import ConfigurationError
from kmsenvelope.testing import LATENCY, LocalAws


def test_one_client_per_service_and_region_closed_by_async_with(local_aws: LocalAws) -> None:
    async def run() -> AsyncClientSupplier:
        async with local_aws.async_client_supplier(Config(max_pool_connections=7)) as supplier:
            first = await asyncio.gather(*(supplier("eu-west-1") for _ in range(20)))
            assert len({id(c) for c in first}) == 1  # concurrent first calls share one build
            assert first[0].meta.region_name == "eu-west-1"
            assert first[0].meta.config.max_pool_connections == 7  # the user's config wins
            ddb = await supplier.client("dynamodb", "eu-west-1")
            assert ddb is not first[0]
            assert supplier.regions == ("eu-west-1",)
            assert supplier.default_region == "us-east-1"
            keys = await first[0].list_keys()
            assert "Keys" in keys
        return supplier

    supplier = asyncio.run(run())
    with pytest.raises(ConfigurationError, match="closed"):
        asyncio.run(supplier("eu-west-1"))


def test_defaults_and_argument_checks(local_aws: LocalAws) -> None:
    async def run() -> int:
        async with AsyncClientSupplier(
            local_aws.aio_session(), endpoint_url=local_aws.endpoint_url
        ) as supplier:
            client = await supplier("eu-west-1")
            assert client.meta.config.retries["mode"] == "standard"
            return int(client.meta.config.max_pool_connections)

    assert asyncio.run(run()) == DEFAULT_MAX_POOL_CONNECTIONS
    with pytest.raises(ConfigurationError):
        AsyncClientSupplier(endpoint_url="")
    with pytest.raises(ConfigurationError):
        asyncio.run(AsyncClientSupplier()(""))


def test_inject_latency_delays_without_failing(local_aws: LocalAws) -> None:
    key = local_aws.create_key("eu-west-1")
    envelope = Envelope(KmsKeyring(key, client_supplier=local_aws.client_supplier()))
    message = envelope.encrypt(b"slow", {})
    local_aws.reset()
    local_aws.inject_latency("Decrypt", 0.3, count=1)
    started = time.perf_counter()
    assert envelope.decrypt(message, {}) == b"slow"
    delayed = time.perf_counter() - started
    assert envelope.decrypt(message, {}) == b"slow"
    assert [r.fault for r in local_aws.requests("Decrypt")] == [LATENCY, None]
    assert local_aws.pending_faults() == 0
    assert local_aws.max_concurrent_delays() == 1
    print(f"\nDecrypt with 300 ms injected latency took {delayed * 1000:.0f} ms")
    assert delayed >= 0.3  # the delay happened (a lower bound, not a timing budget)
    with pytest.raises(ValueError):
        local_aws.inject_latency("Decrypt", -1)
    with pytest.raises(ValueError):
        local_aws.inject_latency("Decrypt", 0.1, count=0)


def _isolated_credential_chain(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A default session whose credential lookup really awaits I/O: no credentials in the environment or in
    files (both pointed into ``tmp_path``), instance metadata at a closed local port."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9/")
    monkeypatch.setenv("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_METADATA_SERVICE_TIMEOUT", "1")


def test_a_cancelled_caller_does_not_cancel_the_others_build(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Two requests need the same new client; the one that started building it is cancelled mid-build.
    The other was never cancelled: it gets the client, not a CancelledError, and the build is not repeated."""
    _isolated_credential_chain(monkeypatch, tmp_path)

    async def run() -> None:
        async with AsyncClientSupplier(endpoint_url="http://127.0.0.1:9") as supplier:
            first = asyncio.ensure_future(supplier("eu-west-1"))
            second = asyncio.ensure_future(supplier("eu-west-1"))
            for _ in range(3):
                await asyncio.sleep(0)
            assert not first.done() and not second.done()  # the build is awaiting the credential chain
            first.cancel()
            results = await asyncio.gather(first, second, return_exceptions=True)
            assert isinstance(results[0], asyncio.CancelledError)
            assert not second.cancelled(), results
            assert results[1].meta.region_name == "eu-west-1", results  # the build finished regardless
            assert await supplier("eu-west-1") is results[1]
            assert supplier.regions == ("eu-west-1",)

    asyncio.run(run())
