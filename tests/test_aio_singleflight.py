"""SingleFlight and AsyncCachingMaterials: a failed or cancelled flight leaves no entry behind, and one
caller's cancellation never fails another caller."""

from __future__ import annotations

import asyncio

import pytest

from kmsenvelope import Envelope, RawAesKeyring
from kmsenvelope.aio import AsyncCachingMaterials, AsyncEnvelope, SingleFlight
from kmsenvelope.errors import KmsEnvelopeError
from kmsenvelope.materials.materials import DecryptionMaterials, EncryptedDataKey


def test_a_failed_flight_fails_every_waiter_with_its_error_and_is_forgotten() -> None:
    flights: SingleFlight[int] = SingleFlight()
    calls = 0

    async def fetch() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise KmsEnvelopeError("boom")

    async def run() -> list[BaseException | int]:
        results = await asyncio.gather(*(flights.run("k", fetch) for _ in range(50)), return_exceptions=True)
        assert len(flights) == 0
        return results

    results = asyncio.run(run())
    assert calls == 1
    assert all(isinstance(r, KmsEnvelopeError) for r in results)
    assert len({id(r) for r in results}) == 1  # the same error, not 50 retries


def test_cancelling_every_waiter_lets_the_flight_finish_and_leaves_no_entry() -> None:
    flights: SingleFlight[int] = SingleFlight()
    finished: list[int] = []

    async def fetch() -> int:
        await asyncio.sleep(0.02)
        finished.append(1)
        return 7

    async def run() -> None:
        waiters = [asyncio.ensure_future(flights.run("k", fetch)) for _ in range(5)]
        await asyncio.sleep(0)
        assert len(flights) == 1
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        await asyncio.sleep(0.05)
        assert finished == [1]
        assert len(flights) == 0
        assert await flights.run("k", fetch) == 7  # a new flight, not a stale one
        assert len(flights) == 0

    asyncio.run(run())


def test_a_flight_cancelled_from_inside_leaves_no_entry() -> None:
    flights: SingleFlight[int] = SingleFlight()

    async def fetch() -> int:
        await asyncio.sleep(0)
        raise asyncio.CancelledError

    async def run() -> None:
        with pytest.raises(asyncio.CancelledError):
            await flights.run("k", fetch)
        assert len(flights) == 0

    asyncio.run(run())


class _Failing:
    """A sync keyring that fails ``failures`` times, then unwraps with the real raw AES keyring."""

    def __init__(self, keyring: RawAesKeyring, failures: int) -> None:
        self._keyring = keyring
        self.failures = failures
        self.calls = 0

    def on_encrypt(self, materials: object) -> object:
        return self._keyring.on_encrypt(materials)  # type: ignore[arg-type]

    def on_decrypt(self, materials: DecryptionMaterials, edks: list[EncryptedDataKey]) -> DecryptionMaterials:
        self.calls += 1
        if self.calls <= self.failures:
            raise KmsEnvelopeError("unavailable")
        return self._keyring.on_decrypt(materials, edks)


def test_a_failed_decrypt_flight_caches_nothing() -> None:
    keyring = RawAesKeyring("ns", "k", bytes(32))
    message = Envelope(keyring).encrypt(b"data", {"a": "b"})
    failing = _Failing(keyring, failures=1)
    cmm = AsyncCachingMaterials(failing, max_age=60)
    envelope = AsyncEnvelope(cmm)

    async def run() -> None:
        results = await asyncio.gather(
            *(envelope.decrypt(message) for _ in range(20)), return_exceptions=True
        )
        assert all(isinstance(r, KmsEnvelopeError) for r in results), results
        assert len(cmm.cache) == 0
        assert await envelope.decrypt(message) == b"data"
        assert await envelope.decrypt(message) == b"data"

    asyncio.run(run())
    assert failing.calls == 2  # one failed flight for 20 callers, then one fetch, then a cache hit
    assert len(cmm.cache) == 1
