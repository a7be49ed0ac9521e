"""AsyncEnvelope with local keyrings: same bytes, limits, policies and exceptions as Envelope; streams,
cancellation, import isolation, and the event loop's health while a 256 MiB message is processed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kmsenvelope import (
    CachingMaterials,
    CommitmentPolicy,
    Envelope,
    MultiKeyring,
    RawAesKeyring,
    RawRsaKeyring,
    RequiredContextMaterials,
    Suite,
)
from kmsenvelope.aio import INLINE_LIMIT, AsyncEnvelope
from kmsenvelope.aio.envelope import PIECE_SIZE
from kmsenvelope.errors import ConfigurationError, KmsEnvelopeError
from kmsenvelope.message.header import DecryptLimits

from ._esdk import generate_rsa_pem

KEY = bytes(range(32))
CONTEXT = {"tenant": "acme", "purpose": "aio"}
REQUIRE_ALLOW = CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT
LARGE = INLINE_LIMIT * 3 + 12345  # processed in pieces, with a partial final frame


@pytest.fixture(scope="module")
def rsa_pem() -> tuple[bytes, bytes]:
    return generate_rsa_pem(2048)


def _aes() -> RawAesKeyring:
    return RawAesKeyring("aio", "aes", KEY)


def _policy(suite: Suite) -> CommitmentPolicy:
    return (
        CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
        if suite.committing
        else CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT
    )


class Reader:
    """An async reader that hands out at most ``chunk`` bytes per read, optionally slowly."""

    def __init__(self, data: bytes, chunk: int = 10_000, delay: float = 0.0) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._chunk = chunk
        self._delay = delay

    async def read(self, n: int = -1) -> bytes:
        if self._delay:
            await asyncio.sleep(self._delay)
        else:
            await asyncio.sleep(0)
        n = len(self._data) if n < 0 else min(n, self._chunk)
        out = bytes(self._data[self._pos : self._pos + n])
        self._pos += len(out)
        return out


class Writer:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    async def write(self, data: bytes) -> int:
        await asyncio.sleep(0)
        self.parts.append(bytes(data))
        return len(data)

    @property
    def data(self) -> bytes:
        return b"".join(self.parts)


def test_import_kmsenvelope_imports_neither_aio_nor_aiobotocore() -> None:
    code = (
        "import sys, kmsenvelope, kmsenvelope.dynamodb, kmsenvelope.testing\n"
        "assert 'kmsenvelope.aio' not in sys.modules, 'kmsenvelope.aio'\n"
        "assert 'aiobotocore' not in sys.modules, 'aiobotocore'\n"
        "import kmsenvelope.aio\n"
        "assert 'aiobotocore' not in sys.modules, 'aiobotocore imported by kmsenvelope.aio'\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("suite", list(Suite), ids=lambda s: s.name)
@pytest.mark.parametrize("size", [0, 1, 4096, LARGE])
def test_round_trips_with_the_sync_api(suite: Suite, size: int) -> None:
    plaintext = os.urandom(size)
    options: dict[str, Any] = {"suite": suite, "commitment_policy": _policy(suite), "frame_length": 4096}
    sync = Envelope(_aes(), **options)
    aio = AsyncEnvelope(_aes(), **options)

    async def run() -> tuple[bytes, bytes, Any]:
        ours = await aio.encrypt(plaintext, CONTEXT)
        theirs = await aio.decrypt(sync.encrypt(plaintext, CONTEXT), CONTEXT)
        with_header = await aio.decrypt_with_header(ours, CONTEXT)
        return ours, theirs, with_header

    ours, theirs, with_header = asyncio.run(run())
    assert sync.decrypt(ours, CONTEXT) == plaintext
    assert theirs == plaintext
    sync_result = sync.decrypt_with_header(ours, CONTEXT)
    assert with_header.plaintext == plaintext
    assert with_header.header == sync_result.header
    assert dict(with_header.encryption_context) == dict(sync_result.encryption_context)


def test_rsa_and_multi_keyrings_and_sync_materials_managers_work_unchanged(
    rsa_pem: tuple[bytes, bytes],
) -> None:
    private, public = rsa_pem
    rsa = RawRsaKeyring("aio", "rsa", private_key=private, public_key=public)
    sources: list[Any] = [
        rsa,
        MultiKeyring(generator=_aes(), children=[rsa]),
        CachingMaterials(_aes(), max_age=60),
        RequiredContextMaterials(_aes(), ["tenant"]),
    ]
    for source in sources:

        async def run(source: Any = source) -> tuple[bytes, bytes]:
            envelope = AsyncEnvelope(source)
            message = await envelope.encrypt(b"payload", CONTEXT)
            return message, await envelope.decrypt(message, CONTEXT)

        message, plaintext = asyncio.run(run())
        assert plaintext == b"payload"
        assert Envelope(source).decrypt(message, CONTEXT) == b"payload"


def _tamper(message: bytes, index: int) -> bytes:
    changed = bytearray(message)
    changed[index] ^= 1
    return bytes(changed)


def _failures(size: int, suite: Suite) -> list[tuple[str, Callable[[Any], Any]]]:
    sync = Envelope(_aes(), suite=suite)
    message = sync.encrypt(os.urandom(size), CONTEXT)
    legacy = Envelope(
        _aes(),
        suite=Suite.AES_256_GCM_IV12_TAG16_HKDF_SHA256,
        commitment_policy=CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT,
    ).encrypt(b"x")
    return [
        ("header", lambda e: e.decrypt(_tamper(message, 30), CONTEXT)),
        ("body", lambda e: e.decrypt(_tamper(message, len(message) // 2), CONTEXT)),
        ("end", lambda e: e.decrypt(_tamper(message, len(message) - 5), CONTEXT)),
        ("truncated", lambda e: e.decrypt(message[:-7], CONTEXT)),
        ("trailing", lambda e: e.decrypt(message + b"\x00", CONTEXT)),
        ("context", lambda e: e.decrypt(message, {"tenant": "other"})),
        ("legacy", lambda e: e.decrypt(legacy)),
        ("reserved", lambda e: e.encrypt(b"x", {"aws-crypto-x": "y"})),
    ]


@pytest.mark.parametrize(
    "suite",
    [Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY, Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384],
    ids=lambda s: s.name,
)
@pytest.mark.parametrize("size", [100, LARGE])
def test_failures_raise_the_sync_exceptions(suite: Suite, size: int) -> None:
    sync = Envelope(_aes(), suite=suite)
    aio = AsyncEnvelope(_aes(), suite=suite)
    for name, call in _failures(size, suite):
        with pytest.raises(KmsEnvelopeError) as expected:
            call(sync)

        async def run(call: Callable[[Any], Any] = call) -> None:
            await call(aio)

        with pytest.raises(KmsEnvelopeError) as got:
            asyncio.run(run())
        assert type(got.value) is type(expected.value), name
        assert str(got.value) == str(expected.value), name


def test_limits_and_options_are_the_sync_ones() -> None:
    message = Envelope(_aes()).encrypt(os.urandom(LARGE))
    limits = DecryptLimits(max_message_size=len(message) - 1)
    with pytest.raises(KmsEnvelopeError) as expected:
        Envelope(_aes(), limits=limits).decrypt(message)
    with pytest.raises(KmsEnvelopeError) as got:
        asyncio.run(AsyncEnvelope(_aes(), limits=limits).decrypt(message))
    assert (type(got.value), str(got.value)) == (type(expected.value), str(expected.value))
    for bad in (
        {"frame_length": 0},
        {"suite": "x"},
        {"max_encrypted_data_keys": 0},
        {"commitment_policy": "x"},
    ):
        with pytest.raises(ConfigurationError):
            AsyncEnvelope(_aes(), **bad)
    with pytest.raises(ConfigurationError):
        AsyncEnvelope(object())  # type: ignore[arg-type]
    envelope = AsyncEnvelope(_aes(), frame_length=1024)
    assert (envelope.frame_length, envelope.suite) == (1024, Envelope(_aes()).suite)


def test_the_sync_envelope_refuses_an_async_keyring() -> None:
    from kmsenvelope.aio import AsyncKmsKeyring

    class Supplier:
        async def __call__(self, region: str) -> Any:
            raise AssertionError("never called")

    keyring = AsyncKmsKeyring(
        "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        client_supplier=Supplier(),
    )
    with pytest.raises(ConfigurationError, match="AsyncEnvelope"):
        Envelope(keyring)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="async keyring"):
        MultiKeyring(generator=_aes(), children=[keyring])  # type: ignore[list-item]


@pytest.mark.parametrize(
    "suite",
    [Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY, Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384],
    ids=lambda s: s.name,
)
def test_streams_round_trip_with_the_sync_api(suite: Suite, tmp_path: Path) -> None:
    plaintext = os.urandom(300_000)
    sync = Envelope(_aes(), suite=suite, frame_length=4096)
    aio = AsyncEnvelope(_aes(), suite=suite, frame_length=4096)

    async def run() -> tuple[bytes, bytes]:
        encrypted = Writer()
        header = await aio.encrypt_stream(Reader(plaintext), encrypted, CONTEXT)
        assert header.suite is suite
        decrypted = Writer()
        await aio.decrypt_stream(Reader(sync.encrypt(plaintext, CONTEXT)), decrypted, CONTEXT)
        await aio.decrypt_stream(Reader(encrypted.data), tmp_path / "out.bin", CONTEXT)
        return encrypted.data, decrypted.data

    message, decrypted = asyncio.run(run())
    assert sync.decrypt(message, CONTEXT) == plaintext
    assert decrypted == plaintext
    assert (tmp_path / "out.bin").read_bytes() == plaintext
    assert os.stat(tmp_path / "out.bin").st_mode & 0o077 == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def _cancel_midway(coro_factory: Callable[[], Any], after: float) -> None:
    async def run() -> None:
        task = asyncio.ensure_future(coro_factory())
        await asyncio.sleep(after)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())


def test_cancelled_signed_decrypt_releases_nothing(tmp_path: Path) -> None:
    suite = Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384
    plaintext = os.urandom(200_000)
    message = Envelope(_aes(), suite=suite, frame_length=4096).encrypt(plaintext, CONTEXT)
    aio = AsyncEnvelope(_aes(), suite=suite)
    writer = Writer()
    # The reader hands out 4 KiB every 2 ms: about 100 ms for the message; cancelled after 40 ms.
    _cancel_midway(lambda: aio.decrypt_stream(Reader(message, 4096, 0.002), writer, CONTEXT), 0.04)
    assert writer.parts == []
    _cancel_midway(
        lambda: aio.decrypt_stream(Reader(message, 4096, 0.002), tmp_path / "x.bin", CONTEXT), 0.04
    )
    assert list(tmp_path.iterdir()) == []


def test_cancelled_unsigned_decrypt_released_only_verified_frames(tmp_path: Path) -> None:
    plaintext = os.urandom(200_000)
    message = Envelope(_aes(), frame_length=4096).encrypt(plaintext, CONTEXT)
    aio = AsyncEnvelope(_aes())
    writer = Writer()
    _cancel_midway(lambda: aio.decrypt_stream(Reader(message, 4096, 0.002), writer, CONTEXT), 0.04)
    released = writer.data
    assert 0 < len(released) < len(plaintext)
    assert all(len(part) == 4096 for part in writer.parts)  # whole frames only
    assert released == plaintext[: len(released)]
    # A path destination gets nothing at all, not even verified frames, unless the whole message is good.
    _cancel_midway(
        lambda: aio.decrypt_stream(Reader(message, 4096, 0.002), tmp_path / "x.bin", CONTEXT), 0.04
    )
    with pytest.raises(KmsEnvelopeError):
        asyncio.run(
            aio.decrypt_stream(Reader(_tamper(message, len(message) - 3)), tmp_path / "x.bin", CONTEXT)
        )
    assert list(tmp_path.iterdir()) == []


def test_loop_stays_responsive_while_256_mib_are_encrypted_and_decrypted() -> None:
    plaintext = os.urandom(1 << 20) * 256
    envelope = AsyncEnvelope(_aes())

    async def run() -> tuple[list[float], bool]:
        gaps: list[float] = []
        stop = False

        async def ticker() -> None:
            last = time.perf_counter()
            while not stop:
                await asyncio.sleep(0)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        task = asyncio.ensure_future(ticker())
        await asyncio.sleep(0.01)
        gaps.clear()
        message = await envelope.encrypt(plaintext, CONTEXT)
        decrypted = await envelope.decrypt(message, CONTEXT)
        stop = True
        await task
        return gaps, decrypted == plaintext

    gaps, same = asyncio.run(run())
    assert same
    ticks = len(gaps)
    gaps.sort()
    print(
        f"\n256 MiB encrypt + decrypt: {ticks} event loop turns, largest gap {gaps[-1] * 1000:.1f} ms, "
        f"99th percentile {gaps[int(ticks * 0.99)] * 1000:.1f} ms, median {gaps[ticks // 2] * 1000:.2f} ms"
    )
    # Structural: the loop got a turn between pieces (a single blocking call would give it none).
    assert ticks >= 2 * (256 << 20) // PIECE_SIZE
