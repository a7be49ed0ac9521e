"""AsyncEnvelope's memory follows the bytes that arrive, not the lengths a message claims (issue 12,
defect 3, for the asyncio API).

The hostile messages are those of ``test_memory_bounds``: a real, authentic header, then a body length
that is never delivered. Peaks are measured with ``tracemalloc`` around one ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import textwrap
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from kmsenvelope.aio import AsyncEnvelope
from kmsenvelope.errors import MalformedInputError, PolicyError
from kmsenvelope.message.codec import TruncatedInputError
from kmsenvelope.message.header import MAX_FRAME_LENGTH, DecryptLimits
from kmsenvelope.suites import Suite

from .fuzz._common import non_framed_message
from .test_memory_bounds import (
    FRAME_LENGTHS,
    KEYRING,
    MIB,
    PEAK_LIMIT,
    _final_frame_claiming,
    _regular_frame_started,
)


def _peak(call: Callable[[], Awaitable[object]]) -> tuple[object, int]:
    """What the coroutine ``call()`` returned or raised, and the peak of traced memory while it ran."""

    async def run() -> object:
        try:
            return await call()
        except Exception as exc:  # returned for the caller to check
            return exc

    tracemalloc.start()
    try:
        result = asyncio.run(run())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


class _Source:
    """An async reader over ``data`` handing out at most ``chunk`` bytes per read (a view: no copies)."""

    def __init__(self, data: bytes, chunk: int = 1 << 20) -> None:
        self._data = memoryview(data)
        self._chunk = chunk
        self.consumed = 0

    async def read(self, n: int = -1) -> bytes | memoryview:
        n = self._chunk if n < 0 else min(n, self._chunk)
        out = self._data[self.consumed : self.consumed + n]
        self.consumed += len(out)
        return out


class _Endless:
    """``prefix``, then zero bytes for ever; counts what was read."""

    def __init__(self, prefix: bytes) -> None:
        self._prefix = prefix
        self.consumed = 0

    async def read(self, n: int = -1) -> bytes:
        n = 1 << 16 if n < 0 else n
        take = self._prefix[:n]
        self._prefix = self._prefix[len(take) :]
        self.consumed += n
        return take + bytes(n - len(take))


class _Sink:
    """Keeps a hash and a count of what is written, not the bytes (so they do not count in the peak)."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.count = 0

    async def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.count += len(data)
        return len(data)


def _envelope(frame_length: int, **options: object) -> AsyncEnvelope:
    return AsyncEnvelope(KEYRING, frame_length=frame_length, **options)  # type: ignore[arg-type]


async def _stream(envelope: AsyncEnvelope, message: bytes) -> int:
    sink = _Sink()
    await envelope.decrypt_stream(_Source(message), sink)
    return sink.count


@pytest.mark.parametrize("frame_length", FRAME_LENGTHS)
def test_a_final_frame_claiming_the_frame_length_that_never_arrives(frame_length: int) -> None:
    envelope = _envelope(frame_length)
    warm = asyncio.run(envelope.encrypt(b"warm up lazy imports"))
    assert asyncio.run(_stream(envelope, warm)) == 20
    for tail in (b"", b"0123456789" * 3):
        hostile = _final_frame_claiming(frame_length, tail)
        assert len(hostile) < 256
        result, peak = _peak(lambda hostile=hostile: _stream(envelope, hostile))  # type: ignore[misc]
        assert type(result) is TruncatedInputError, result
        assert peak < PEAK_LIMIT, f"a {len(hostile)}-byte stream drove a peak of {peak / MIB:.1f} MiB"


@pytest.mark.parametrize("frame_length", FRAME_LENGTHS)
def test_a_regular_frame_that_never_arrives(frame_length: int) -> None:
    envelope = _envelope(frame_length)
    hostile = _regular_frame_started(frame_length)
    result, peak = _peak(lambda: _stream(envelope, hostile))
    assert type(result) is TruncatedInputError, result
    assert peak < PEAK_LIMIT, f"a {len(hostile)}-byte stream drove a peak of {peak / MIB:.1f} MiB"


@pytest.mark.parametrize("claimed", [1 << 26, MAX_FRAME_LENGTH - 16])
def test_a_non_framed_body_claiming_a_huge_length(claimed: int) -> None:
    message = non_framed_message(Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY, KEYRING, b"body", {})
    envelope = AsyncEnvelope(KEYRING, limits=DecryptLimits(max_frame_length=MAX_FRAME_LENGTH))
    assert asyncio.run(envelope.decrypt(message)) == b"body"
    assert asyncio.run(_stream(envelope, message)) == 4
    length_at = envelope.parse_header(message).size + 12
    hostile = message[:length_at] + claimed.to_bytes(8, "big") + b"some of the body"
    result, peak = _peak(lambda: _stream(envelope, hostile))
    assert type(result) is TruncatedInputError, result
    assert peak < PEAK_LIMIT, f"a non-framed stream drove a peak of {peak / MIB:.1f} MiB"


def test_a_frame_over_max_message_size_is_refused_before_it_is_read() -> None:
    frame_length = 1 << 26
    envelope = _envelope(
        frame_length, limits=DecryptLimits(max_frame_length=frame_length, max_message_size=MIB)
    )
    source = _Endless(_final_frame_claiming(frame_length))
    result, peak = _peak(lambda: envelope.decrypt_stream(source, _Sink()))
    assert type(result) is PolicyError, result
    assert "max_message_size" in str(result)
    assert source.consumed < 64 * 1024 and peak < MIB


@pytest.mark.parametrize("frame_length", [1 << 26, MAX_FRAME_LENGTH])
def test_one_shot_decrypt_allocates_no_more_than_the_input(frame_length: int) -> None:
    envelope = _envelope(frame_length)
    hostile = _final_frame_claiming(frame_length, b"0123456789")
    for data in (hostile, hostile + bytes(2 * MIB)):  # inline, and over INLINE_LIMIT (in pieces)
        result, peak = _peak(lambda data=data: envelope.decrypt(data))  # type: ignore[misc]
        assert isinstance(result, MalformedInputError), result
        assert peak < 2 * len(data) + MIB


def test_one_shot_non_framed_allocates_no_more_than_the_input() -> None:
    message = non_framed_message(Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY, KEYRING, b"body", {})
    envelope = AsyncEnvelope(KEYRING)
    length_at = envelope.parse_header(message).size + 12
    hostile = message[:length_at] + (1 << 36).to_bytes(8, "big") + b"some of the body"
    result, peak = _peak(lambda: envelope.decrypt(hostile))
    assert isinstance(result, MalformedInputError), result
    assert peak < MIB


def test_a_large_frame_that_really_arrives_still_decrypts() -> None:
    """A 24 MiB frame and a 40 MiB message decrypt through short reads, framed and non-framed."""
    frame_length = 24 * MIB
    envelope = _envelope(frame_length)
    plaintext = os.urandom(40 * MIB)
    message = asyncio.run(envelope.encrypt(plaintext))
    sink = _Sink()
    source = _Source(message, 300_000)
    result, peak = _peak(lambda: envelope.decrypt_stream(source, sink))
    assert not isinstance(result, Exception), result
    assert sink.count == len(plaintext)
    assert sink.hash.digest() == hashlib.sha256(plaintext).digest()
    # One buffer for the sealed frame and the frame's plaintext handed to the writer, plus one growth step.
    assert peak < 2 * frame_length + 4 * MIB, f"peak {peak / MIB:.1f} MiB"

    non_framed = non_framed_message(Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY, KEYRING, plaintext, {})
    reader = AsyncEnvelope(KEYRING, limits=DecryptLimits(max_frame_length=64 * MIB))
    sink = _Sink()
    asyncio.run(reader.decrypt_stream(_Source(non_framed, 300_000), sink))
    assert sink.hash.digest() == hashlib.sha256(plaintext).digest()


@pytest.mark.parametrize("signed", [False, True])
def test_a_frame_of_several_steps_through_short_reads(signed: bool) -> None:
    """A 3.5 MiB frame grows in four steps, each filled by many short reads; the plaintext is intact."""
    suite = Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384 if signed else None
    envelope = _envelope(7 * MIB // 2, suite=suite)
    plaintext = os.urandom(9 * MIB)
    message = asyncio.run(envelope.encrypt(plaintext))
    sink = _Sink()
    asyncio.run(envelope.decrypt_stream(_Source(message, 100_000), sink))
    assert sink.hash.digest() == hashlib.sha256(plaintext).digest()
    cut = message[: len(message) // 3]  # inside the second frame, after the first grew
    with pytest.raises(TruncatedInputError):
        asyncio.run(envelope.decrypt_stream(_Source(cut, 100_000), _Sink()))


_LIMIT_ADDRESS_SPACE = """
import resource

def limit(extra):
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as statm:
        in_use = int(statm.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (in_use + extra, hard))
"""

_STREAM_OUT_OF_MEMORY = """
import asyncio, sys
from kmsenvelope.aio import AsyncEnvelope
from kmsenvelope.errors import PolicyError
from kmsenvelope.keyrings.raw_aes import RawAesKeyring
from kmsenvelope.message.header import MAX_FRAME_LENGTH

envelope = AsyncEnvelope(RawAesKeyring("ns", "k", bytes(32)), frame_length=MAX_FRAME_LENGTH)
message = asyncio.run(envelope.encrypt(b"x"))
length_at = envelope.parse_header(message).size + 4 + 4 + 12
prefix = message[:length_at] + MAX_FRAME_LENGTH.to_bytes(4, "big")


class Junk:
    # The claimed frame really arrives, junk byte after junk byte, so buffers must grow.
    def __init__(self):
        self.prefix = prefix
    async def read(self, n):
        if self.prefix:
            out, self.prefix = self.prefix[:n], self.prefix[n:]
            return out
        return bytes(min(n, 1 << 20))


class Sink:
    async def write(self, data):
        return len(data)


limit(512 << 20)  # room for the interpreter, not for a 2 GiB frame
try:
    asyncio.run(envelope.decrypt_stream(Junk(), Sink()))
except PolicyError as exc:
    print("PolicyError", exc)
    sys.exit(0)
except BaseException as exc:
    print(type(exc).__name__, exc)
    sys.exit(1)
print("no error")
sys.exit(1)
"""

_ONE_SHOT_OUT_OF_MEMORY = """
import asyncio, sys
from kmsenvelope.aio import AsyncEnvelope
from kmsenvelope.errors import PolicyError
from kmsenvelope.keyrings.raw_aes import RawAesKeyring

envelope = AsyncEnvelope(RawAesKeyring("ns", "k", bytes(32)), frame_length=1 << 20)
message = asyncio.run(envelope.encrypt(bytes(128 << 20)))
limit(48 << 20)  # room for the interpreter, not for a second 128 MiB
try:
    asyncio.run(envelope.decrypt(message))
except PolicyError as exc:
    print("PolicyError", exc)
    sys.exit(0)
except BaseException as exc:
    print(type(exc).__name__, exc)
    sys.exit(1)
print("no error")
sys.exit(1)
"""


def _run(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "oom.py"
    script.write_text(textwrap.dedent(_LIMIT_ADDRESS_SPACE) + textwrap.dedent(source))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env, check=False
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux-only")
@pytest.mark.parametrize(
    "script", [_STREAM_OUT_OF_MEMORY, _ONE_SHOT_OUT_OF_MEMORY], ids=["stream", "one-shot"]
)
def test_running_out_of_memory_is_a_library_error(tmp_path: Path, script: str) -> None:
    """A message that really arrives but whose frame or plaintext cannot fit: PolicyError, not MemoryError."""
    done = _run(tmp_path, script)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not enough memory" in done.stdout
