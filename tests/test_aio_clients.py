"""AsyncClientSupplier and LocalAws.inject_latency, against the local AWS."""

from __future__ import annotations

import asyncio
import time

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
