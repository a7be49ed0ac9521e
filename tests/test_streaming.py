"""Streaming encrypt/decrypt: round trips over memory, files and pipes; bounded memory; signed streams.

Memory is measured with ``tracemalloc`` (every Python-level allocation, all threads) while a synthetic
source generates the plaintext on the fly, is encrypted into a pipe by one thread and decrypted from it
by another, so no whole message or plaintext ever exists.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from kmsenvelope import CommitmentPolicy, Envelope, MessageHeader, RawAesKeyring, Suite
from kmsenvelope.errors import AuthenticationError, KmsEnvelopeError, SignatureError
from kmsenvelope.message.stream import SPOOL_MEMORY_LIMIT

from ._esdk import random_bytes

KEY = bytes(range(50, 82))
CONTEXT = {"stream": "yes", "ключ": "значение"}
MiB = 1 << 20
SIGNED = Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384
UNSIGNED = Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY


def _envelope(suite: Suite = UNSIGNED, frame_length: int = 4096) -> Envelope:
    policy = (
        CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
        if suite.committing
        else CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT
    )
    return Envelope(RawAesKeyring("stream", "key", KEY), suite=suite, frame_length=frame_length,
                    commitment_policy=policy)


# -- sources and sinks --------------------------------------------------------------------------------


class Synthetic(io.RawIOBase):
    """``size`` bytes of a position-dependent pattern, generated on demand (never held in full)."""

    BLOCK = 1 << 16

    def __init__(self, size: int, seed: int = 0) -> None:
        self._size = size
        self._pos = 0
        self._pattern = random_bytes(self.BLOCK, seed)
        self._tables = [bytes((i ^ k) & 0xFF for i in range(256)) for k in range(256)]

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self._size - self._pos)
        done = 0
        while done < want:
            block, offset = divmod(self._pos, self.BLOCK)
            n = min(want - done, self.BLOCK - offset)
            chunk = self._pattern[offset : offset + n].translate(self._tables[block & 0xFF])
            buffer[done : done + n] = chunk
            done += n
            self._pos += n
        return done

    @classmethod
    def digest(cls, size: int, seed: int = 0) -> bytes:
        source = cls(size, seed)
        hasher = hashlib.sha256()
        buffer = bytearray(cls.BLOCK)
        while n := source.readinto(memoryview(buffer)):
            hasher.update(memoryview(buffer)[:n])
        return hasher.digest()


def _rss() -> int:
    """Resident set size in bytes (Linux), or 0 where /proc is not available."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class HashSink(io.RawIOBase):
    """A writable stream that keeps only a running hash and a byte count, sampling RSS as it goes."""

    def __init__(self) -> None:
        self.hasher = hashlib.sha256()
        self.count = 0
        self.writes = 0
        self.max_rss = _rss()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.hasher.update(data)
        n = len(memoryview(data).cast("B"))
        self.count += n
        self.writes += 1
        if self.writes % 16 == 0:
            self.max_rss = max(self.max_rss, _rss())
        return n


class ReadOnly:
    """A minimal file-like source: ``read(n)`` only (no ``readinto``), with short reads."""

    def __init__(self, data: bytes, step: int = 1000) -> None:
        self._data = data
        self._pos = 0
        self._step = step

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = len(self._data)
        n = min(n, self._step)
        chunk = self._data[self._pos : self._pos + n]
        self._pos += len(chunk)
        return chunk


class WriteOnly:
    """A minimal file-like destination: ``write`` only."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.parts.append(bytes(data))
        return len(self.parts[-1])

    def getvalue(self) -> bytes:
        return b"".join(self.parts)


# -- round trips ------------------------------------------------------------------------------------


def _sizes(frame: int) -> list[int]:
    return sorted({0, 1, frame - 1, frame, frame + 1, 5 * frame + 3})


@pytest.mark.parametrize(
    "suite", [UNSIGNED, SIGNED, Suite.AES_128_GCM_IV12_TAG16_NO_KDF], ids=lambda s: f"{s.id:04X}"
)
@pytest.mark.parametrize("frame_length", [1, 7, 128, 4096, 65536])
def test_bytesio_round_trips(suite: Suite, frame_length: int) -> None:
    envelope = _envelope(suite, frame_length)
    for size in _sizes(frame_length):
        if frame_length == 1 and size > 100:
            continue
        plaintext = random_bytes(size, seed=frame_length)
        encrypted = io.BytesIO()
        header = envelope.encrypt_stream(io.BytesIO(plaintext), encrypted, CONTEXT)
        message = encrypted.getvalue()
        assert header == envelope.parse_header(message)
        assert header.suite is suite and header.frame_length == frame_length
        # stream -> one-shot, one-shot -> stream, stream -> stream
        assert envelope.decrypt(message, CONTEXT) == plaintext
        decrypted = io.BytesIO()
        one_shot = envelope.encrypt(plaintext, CONTEXT)
        returned = envelope.decrypt_stream(io.BytesIO(one_shot), decrypted, CONTEXT)
        assert isinstance(returned, MessageHeader)
        assert decrypted.getvalue() == plaintext
        decrypted = io.BytesIO()
        assert envelope.decrypt_stream(io.BytesIO(message), decrypted) == header
        assert decrypted.getvalue() == plaintext


@pytest.mark.parametrize("suite", [UNSIGNED, SIGNED], ids=lambda s: f"{s.id:04X}")
@pytest.mark.parametrize(("size", "frame_length"), [(0, 4096), (100_000, 4096), (3 * MiB + 5, 64 * 1024)])
def test_real_file_round_trips(tmp_path: Path, suite: Suite, size: int, frame_length: int) -> None:
    envelope = _envelope(suite, frame_length)
    plaintext = random_bytes(size, seed=4)
    source, encrypted, decrypted = tmp_path / "plain", tmp_path / "enc", tmp_path / "dec"
    source.write_bytes(plaintext)
    with source.open("rb") as src, encrypted.open("wb") as dst:
        envelope.encrypt_stream(src, dst, CONTEXT)
    assert envelope.decrypt(encrypted.read_bytes(), CONTEXT) == plaintext
    with encrypted.open("rb") as src, decrypted.open("wb") as dst:
        header = envelope.decrypt_stream(src, dst, CONTEXT)
    assert decrypted.read_bytes() == plaintext
    assert dict(header.encryption_context).items() >= CONTEXT.items()
    # unbuffered files too (raw FileIO: readinto may return short counts)
    with open(encrypted, "rb", buffering=0) as src, open(decrypted, "wb", buffering=0) as dst:
        envelope.decrypt_stream(src, dst)
    assert decrypted.read_bytes() == plaintext


@pytest.mark.parametrize("suite", [UNSIGNED, SIGNED], ids=lambda s: f"{s.id:04X}")
@pytest.mark.parametrize("step", [1, 13, 4096, 1 << 20])
def test_file_objects_without_readinto(suite: Suite, step: int) -> None:
    envelope = _envelope(suite, 512)
    plaintext = random_bytes(5000 if step > 1 else 700, seed=step)
    assert not hasattr(ReadOnly(b""), "readinto")
    encrypted = WriteOnly()
    envelope.encrypt_stream(cast(BinaryIO, ReadOnly(plaintext, step)), cast(BinaryIO, encrypted), CONTEXT)
    assert envelope.decrypt(encrypted.getvalue(), CONTEXT) == plaintext
    decrypted = WriteOnly()
    envelope.decrypt_stream(cast(BinaryIO, ReadOnly(encrypted.getvalue(), step)), cast(BinaryIO, decrypted))
    assert decrypted.getvalue() == plaintext


def test_streaming_through_a_pipe() -> None:
    envelope = _envelope(SIGNED, 1000)
    plaintext = random_bytes(300_000, seed=8)
    with _pipeline(envelope, io.BytesIO(plaintext)) as reader:
        sink = io.BytesIO()
        envelope.decrypt_stream(reader, sink)
    assert sink.getvalue() == plaintext


# -- bounded memory -----------------------------------------------------------------------------------


class _pipeline:
    """Encrypt ``source`` into an OS pipe on a thread; yields the pipe's read end."""

    def __init__(self, envelope: Envelope, source: BinaryIO | io.RawIOBase) -> None:
        self._envelope = envelope
        self._source = source
        self._error: BaseException | None = None

    def __enter__(self) -> BinaryIO:
        read_fd, write_fd = os.pipe()
        self._reader = open(read_fd, "rb")
        self._writer = open(write_fd, "wb")

        def run() -> None:
            try:
                with self._writer:
                    self._envelope.encrypt_stream(cast(BinaryIO, self._source), self._writer, CONTEXT)
            except BaseException as exc:  # reported on exit
                self._error = exc

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self._reader

    def __exit__(self, *exc_info: object) -> None:
        self._reader.close()  # unblocks a writer if the reader stopped early
        self._thread.join(timeout=120)
        assert not self._thread.is_alive()
        if self._error is not None and exc_info[0] is None:
            raise self._error


def _measure_pipeline(
    size: int, frame_length: int, suite: Suite, *, release_unverified: bool = False
) -> tuple[int, int]:
    """Stream ``size`` synthetic bytes: encrypt -> pipe -> decrypt. (tracemalloc peak, RSS growth)."""
    envelope = _envelope(suite, frame_length)
    expected = Synthetic.digest(size, seed=size)
    sink = HashSink()
    rss_before = sink.max_rss
    tracemalloc.start()
    try:
        with _pipeline(envelope, Synthetic(size, seed=size)) as reader:
            envelope.decrypt_stream(
                reader, cast(BinaryIO, sink), CONTEXT, release_unverified=release_unverified
            )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sink.count == size
    assert sink.hasher.digest() == expected
    return peak, sink.max_rss - rss_before


def test_memory_bounded_small() -> None:
    peak, _rss_growth = _measure_pipeline(24 * MiB, 64 * 1024, UNSIGNED)
    assert peak < 2 * MiB, f"peak {peak / MiB:.1f} MiB"


def test_memory_bounded_256_mib() -> None:
    """256 MiB with 64 KiB frames (about 1-3 s here, so not marked slow)."""
    peak, rss_growth = _measure_pipeline(256 * MiB, 64 * 1024, UNSIGNED)
    assert peak < 2 * MiB, f"tracemalloc peak {peak / MiB:.1f} MiB"
    assert rss_growth < 32 * MiB, f"RSS grew by {rss_growth / MiB:.1f} MiB"


def test_memory_bounded_signed_release_unverified() -> None:
    peak, _rss_growth = _measure_pipeline(16 * MiB, 64 * 1024, SIGNED, release_unverified=True)
    assert peak < 2 * MiB, f"peak {peak / MiB:.1f} MiB"


def test_memory_bounded_signed_spools_to_disk() -> None:
    """Signed streams hold verified plaintext back: in memory up to the spool limit, then on disk."""
    peak, _rss_growth = _measure_pipeline(SPOOL_MEMORY_LIMIT + 8 * MiB, 64 * 1024, SIGNED)
    assert peak < SPOOL_MEMORY_LIMIT * 2 + 2 * MiB, f"peak {peak / MiB:.1f} MiB"


@pytest.mark.slow
def test_memory_bounded_1_gib() -> None:
    peak, rss_growth = _measure_pipeline(1 << 30, 64 * 1024, UNSIGNED)
    assert peak < 2 * MiB, f"tracemalloc peak {peak / MiB:.1f} MiB"
    assert rss_growth < 32 * MiB, f"RSS grew by {rss_growth / MiB:.1f} MiB"


def test_synthetic_source_is_what_it_claims() -> None:
    """Control for the memory tests: the generator is deterministic, position-dependent and exact."""
    data = Synthetic(3 * Synthetic.BLOCK + 5, seed=1).read()
    assert len(data) == 3 * Synthetic.BLOCK + 5
    assert data == Synthetic(3 * Synthetic.BLOCK + 5, seed=1).read()
    assert data[: Synthetic.BLOCK] != data[Synthetic.BLOCK : 2 * Synthetic.BLOCK]
    assert hashlib.sha256(data).digest() == Synthetic.digest(3 * Synthetic.BLOCK + 5, seed=1)


# -- signed streams and tampering -----------------------------------------------------------------------


def _signed_message(size: int = 10_000, frame_length: int = 1000) -> tuple[Envelope, bytes, bytes]:
    envelope = _envelope(SIGNED, frame_length)
    plaintext = random_bytes(size, seed=size)
    return envelope, plaintext, envelope.encrypt(plaintext, CONTEXT)


def _flip(data: bytes, at: int) -> bytes:
    tampered = bytearray(data)
    tampered[at] ^= 0x01
    return bytes(tampered)


@pytest.mark.parametrize("at", [-1, -30, -60])
def test_tampered_signature_writes_nothing_by_default(at: int) -> None:
    envelope, plaintext, message = _signed_message()
    sink = io.BytesIO()
    with pytest.raises(SignatureError):
        envelope.decrypt_stream(io.BytesIO(_flip(message, at)), sink, CONTEXT)
    assert sink.getvalue() == b""
    # release_unverified writes every (tag-verified) frame, then reports the bad signature
    sink = io.BytesIO()
    with pytest.raises(SignatureError):
        envelope.decrypt_stream(io.BytesIO(_flip(message, at)), sink, CONTEXT, release_unverified=True)
    assert sink.getvalue() == plaintext


def test_tampered_frame_in_a_signed_stream() -> None:
    envelope, plaintext, message = _signed_message()
    header_size = envelope.parse_header(message).size
    frame = 4 + 12 + 1000 + 16
    damaged = _flip(message, header_size + 4 * frame + 100)  # inside the fifth frame's ciphertext
    sink = io.BytesIO()
    with pytest.raises(AuthenticationError):
        envelope.decrypt_stream(io.BytesIO(damaged), sink, CONTEXT)
    assert sink.getvalue() == b""
    sink = io.BytesIO()
    with pytest.raises(AuthenticationError):
        envelope.decrypt_stream(io.BytesIO(damaged), sink, CONTEXT, release_unverified=True)
    assert sink.getvalue() == plaintext[:4000]


def test_tampered_frame_in_an_unsigned_stream() -> None:
    envelope = _envelope(UNSIGNED, 1000)
    plaintext = random_bytes(10_000, seed=3)
    message = envelope.encrypt(plaintext)
    header_size = envelope.parse_header(message).size
    frame = 4 + 12 + 1000 + 16
    sink = io.BytesIO()
    with pytest.raises(AuthenticationError):
        envelope.decrypt_stream(io.BytesIO(_flip(message, header_size + 6 * frame + 20)), sink)
    # each frame is released once its tag verifies; nothing of the damaged frame is written
    assert sink.getvalue() == plaintext[:6000]


def test_truncated_streams() -> None:
    envelope, _plaintext, message = _signed_message()
    for cut in (len(message) - 1, len(message) - 110, len(message) // 2, 10):
        sink = io.BytesIO()
        with pytest.raises(KmsEnvelopeError):
            envelope.decrypt_stream(io.BytesIO(message[:cut]), sink, CONTEXT)
        assert sink.getvalue() == b""


def test_large_signed_stream_spooled_to_disk_then_tampered(tmp_path: Path) -> None:
    """Beyond the in-memory spool limit the held-back plaintext goes to a temporary file."""
    size = SPOOL_MEMORY_LIMIT + MiB + 7
    envelope = _envelope(SIGNED, 64 * 1024)
    encrypted = tmp_path / "enc"
    with encrypted.open("wb") as dst:
        envelope.encrypt_stream(cast(BinaryIO, Synthetic(size, seed=5)), dst, CONTEXT)
    message = encrypted.read_bytes()
    sink = HashSink()
    envelope.decrypt_stream(io.BytesIO(message), cast(BinaryIO, sink), CONTEXT)
    assert sink.count == size and sink.hasher.digest() == Synthetic.digest(size, seed=5)
    sink = HashSink()
    with pytest.raises(SignatureError):
        envelope.decrypt_stream(io.BytesIO(_flip(message, len(message) - 5)), cast(BinaryIO, sink), CONTEXT)
    assert sink.count == 0


def _chunks(data: bytes, n: int) -> Iterator[bytes]:
    for i in range(0, len(data), n):
        yield data[i : i + n]


def test_output_arrives_frame_by_frame() -> None:
    """An unsigned stream writes each frame as soon as it verifies (not all at the end)."""
    envelope = _envelope(UNSIGNED, 100)
    plaintext = random_bytes(1000, seed=2)
    writes = WriteOnly()
    envelope.decrypt_stream(io.BytesIO(envelope.encrypt(plaintext)), cast(BinaryIO, writes))
    assert writes.parts == list(_chunks(plaintext, 100))
