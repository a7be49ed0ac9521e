"""Memory follows the bytes that arrive, not the lengths a message claims (issue 12, defect 3).

Each hostile message carries a real, authentic header (so it gets past key and commitment checks) and
then a body length it never delivers. Peaks are measured with ``tracemalloc``: it sees every Python
allocation, so a buffer sized from a claimed length shows up even if the OS never backs its pages.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import textwrap
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kmsenvelope import Envelope
from kmsenvelope.errors import MalformedInputError, PolicyError
from kmsenvelope.keyrings.raw_aes import RawAesKeyring
from kmsenvelope.message.codec import TruncatedInputError
from kmsenvelope.message.header import MAX_FRAME_LENGTH, DecryptLimits
from kmsenvelope.suites import Suite

from .fuzz._common import non_framed_message

KEYRING = RawAesKeyring("ns", "k", os.urandom(32))
MIB = 1 << 20
PEAK_LIMIT = 16 * MIB
FRAME_LENGTHS = [1 << 26, 1 << 28, 1 << 30, MAX_FRAME_LENGTH]


def _peak(call: Callable[[], object]) -> tuple[object, int]:
    """What ``call`` returned or raised, and the peak of traced memory while it ran."""
    tracemalloc.start()
    try:
        try:
            result: object = call()
        except Exception as exc:  # returned for the caller to check
            result = exc
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


class _Sink(io.RawIOBase):
    """Keeps a hash and a count of what is written, not the bytes (so they do not count in the peak)."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        view = memoryview(data)  # type: ignore[arg-type]
        self.hash.update(view)
        self.count += view.nbytes
        return view.nbytes


def _envelope(frame_length: int) -> Envelope:
    return Envelope(KEYRING, frame_length=frame_length)


def _final_frame_claiming(frame_length: int, tail: bytes = b"") -> bytes:
    """A real header for ``frame_length``, then a final frame claiming ``frame_length`` bytes."""
    envelope = _envelope(frame_length)
    message = envelope.encrypt(b"x")
    length_at = envelope.parse_header(message).size + 4 + 4 + 12
    return message[:length_at] + frame_length.to_bytes(4, "big") + tail


def _regular_frame_started(frame_length: int) -> bytes:
    """A real header for ``frame_length``, then the start of a first regular (full-length) frame."""
    envelope = _envelope(frame_length)
    message = envelope.encrypt(b"x")
    header_size = envelope.parse_header(message).size
    return message[:header_size] + (1).to_bytes(4, "big") + bytes(11) + b"\x01" + b"junk"


def _stream(envelope: Envelope, message: bytes) -> int:
    sink = _Sink()
    envelope.decrypt_stream(io.BytesIO(message), sink)  # type: ignore[arg-type]
    return sink.count


def test_the_hostile_message_is_small() -> None:
    assert len(_final_frame_claiming(1 << 26)) < 256


@pytest.mark.parametrize("frame_length", FRAME_LENGTHS)
def test_a_final_frame_claiming_the_frame_length_that_never_arrives(frame_length: int) -> None:
    envelope = _envelope(frame_length)
    _stream(envelope, envelope.encrypt(b"warm up lazy imports"))
    for tail in (b"", b"0123456789" * 3):
        hostile = _final_frame_claiming(frame_length, tail)
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
    envelope = Envelope(KEYRING, limits=DecryptLimits(max_frame_length=MAX_FRAME_LENGTH))
    assert envelope.decrypt(message) == b"body"
    assert _stream(envelope, message) == 4
    length_at = envelope.parse_header(message).size + 12
    hostile = message[:length_at] + claimed.to_bytes(8, "big") + b"some of the body"
    result, peak = _peak(lambda: _stream(envelope, hostile))
    assert type(result) is TruncatedInputError, result
    assert peak < PEAK_LIMIT, f"a non-framed stream drove a peak of {peak / MIB:.1f} MiB"


class _Endless(io.RawIOBase):
    """``prefix``, then zero bytes for ever; counts what was read."""

    def __init__(self, prefix: bytes) -> None:
        self._prefix = prefix
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, view: Any) -> int:
        n = len(view)
        take = min(n, len(self._prefix))
        view[:take] = self._prefix[:take]
        view[take:n] = bytes(n - take)
        self._prefix = self._prefix[take:]
        self.consumed += n
        return n


def test_a_frame_over_max_message_size_is_refused_before_it_is_read() -> None:
    frame_length = 1 << 26
    hostile = _final_frame_claiming(frame_length)
    envelope = Envelope(
        KEYRING,
        frame_length=frame_length,
        limits=DecryptLimits(max_frame_length=frame_length, max_message_size=MIB),
    )
    source = _Endless(hostile)
    result, peak = _peak(lambda: envelope.decrypt_stream(source, _Sink()))  # type: ignore[arg-type]
    assert type(result) is PolicyError, result
    assert "max_message_size" in str(result)
    assert source.consumed < 64 * 1024 and peak < MIB


@pytest.mark.parametrize("frame_length", [1 << 26, MAX_FRAME_LENGTH])
def test_one_shot_decrypt_allocates_no_more_than_the_input(frame_length: int) -> None:
    envelope = _envelope(frame_length)
    hostile = _final_frame_claiming(frame_length, b"0123456789")
    result, peak = _peak(lambda: envelope.decrypt(hostile))
    assert type(result) is TruncatedInputError, result
    assert peak < MIB
    out = bytearray(b"previous contents")
    result, peak = _peak(lambda: envelope.decrypt_into(hostile, out))
    assert type(result) is TruncatedInputError, result
    assert peak < MIB
    assert out == b""


def test_one_shot_non_framed_allocates_no_more_than_the_input() -> None:
    message = non_framed_message(Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY, KEYRING, b"body", {})
    envelope = Envelope(KEYRING)
    length_at = envelope.parse_header(message).size + 12
    hostile = message[:length_at] + (1 << 36).to_bytes(8, "big") + b"some of the body"
    for call in (lambda: envelope.decrypt(hostile), lambda: envelope.decrypt_into(hostile, bytearray())):
        result, peak = _peak(call)
        assert isinstance(result, MalformedInputError), result
        assert peak < MIB


def test_a_large_frame_that_really_arrives_still_decrypts() -> None:
    """Growing in steps costs nothing in correctness: a 24 MiB frame and a 40 MiB message decrypt."""
    frame_length = 24 * MIB
    envelope = _envelope(frame_length)
    plaintext = os.urandom(40 * MIB)
    message = envelope.encrypt(plaintext)
    sink = _Sink()
    source = io.BytesIO(message)
    result, peak = _peak(lambda: envelope.decrypt_stream(source, sink))  # type: ignore[arg-type]
    assert not isinstance(result, Exception), result
    assert sink.count == len(plaintext)
    assert sink.hash.digest() == hashlib.sha256(plaintext).digest()
    # One buffer for the sealed frame and one for its plaintext, plus one growth step.
    assert peak < 2 * frame_length + 4 * MIB, f"peak {peak / MIB:.1f} MiB"

    non_framed = non_framed_message(Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY, KEYRING, plaintext, {})
    reader = Envelope(KEYRING, limits=DecryptLimits(max_frame_length=64 * MIB))
    sink = _Sink()
    reader.decrypt_stream(io.BytesIO(non_framed), sink)  # type: ignore[arg-type]
    assert sink.hash.digest() == hashlib.sha256(plaintext).digest()


class _Trickle(io.RawIOBase):
    """Short reads of at most 100,000 bytes, and no ``readinto`` (the ``read`` fallback)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        return self._data.read(min(n, 100_000) if n >= 0 else 100_000)

    readinto = None  # type: ignore[assignment]


@pytest.mark.parametrize("signed", [False, True])
def test_a_frame_of_several_steps_through_short_reads(signed: bool) -> None:
    """A 3.5 MiB frame grows in four steps, each filled by many short reads; the plaintext is intact."""
    suite = Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384 if signed else None
    envelope = Envelope(KEYRING, frame_length=7 * MIB // 2, suite=suite)
    plaintext = os.urandom(9 * MIB)
    message = envelope.encrypt(plaintext)
    sink = _Sink()
    envelope.decrypt_stream(_Trickle(message), sink)  # type: ignore[arg-type]
    assert sink.hash.digest() == hashlib.sha256(plaintext).digest()
    cut = message[: len(message) // 3]  # inside the second frame, after the first grew
    with pytest.raises(TruncatedInputError):
        envelope.decrypt_stream(_Trickle(cut), _Sink())  # type: ignore[arg-type]


_OUT_OF_MEMORY = """
import io, resource, sys
from kmsenvelope import Envelope
from kmsenvelope.errors import PolicyError
from kmsenvelope.keyrings.raw_aes import RawAesKeyring
from kmsenvelope.message.header import MAX_FRAME_LENGTH

keyring = RawAesKeyring("ns", "k", bytes(32))
envelope = Envelope(keyring, frame_length=MAX_FRAME_LENGTH)
message = envelope.encrypt(b"x")
length_at = envelope.parse_header(message).size + 4 + 4 + 12
prefix = message[:length_at] + MAX_FRAME_LENGTH.to_bytes(4, "big")


class Junk(io.RawIOBase):
    # The claimed frame really arrives, one junk byte after another, so buffers must grow.
    def __init__(self):
        self.prefix = prefix
    def readable(self):
        return True
    def readinto(self, view):
        n = min(len(view), len(self.prefix)) if self.prefix else len(view)
        if self.prefix:
            view[:n] = self.prefix[:n]
            self.prefix = self.prefix[n:]
        return n

# Leave room for the interpreter, not for a 2 GiB frame.
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
with open("/proc/self/statm") as statm:
    in_use = int(statm.read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (in_use + (512 << 20), hard))
try:
    envelope.decrypt_stream(Junk(), io.BytesIO())
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
import resource, sys
from kmsenvelope import Envelope
from kmsenvelope.errors import PolicyError
from kmsenvelope.keyrings.raw_aes import RawAesKeyring

envelope = Envelope(RawAesKeyring("ns", "k", bytes(32)), frame_length=1 << 20)
message = envelope.encrypt(bytes(128 << 20))
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
with open("/proc/self/statm") as statm:
    in_use = int(statm.read().split()[0]) * resource.getpagesize()
# Room for the interpreter, not for a second 128 MiB.
resource.setrlimit(resource.RLIMIT_AS, (in_use + (48 << 20), hard))
failures = 0
for name, call in (("decrypt", lambda: envelope.decrypt(message)),
                   ("decrypt_into", lambda: envelope.decrypt_into(message, bytearray()))):
    try:
        call()
        print(name, "no error")
        failures += 1
    except PolicyError as exc:
        print(name, "PolicyError", exc)
    except BaseException as exc:
        print(name, type(exc).__name__, exc)
        failures += 1
sys.exit(1 if failures else 0)
"""


def _run(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "oom.py"
    script.write_text(textwrap.dedent(source))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env, check=False
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux-only")
def test_one_shot_out_of_memory_is_a_library_error(tmp_path: Path) -> None:
    """A message whose plaintext cannot be allocated: PolicyError from decrypt and decrypt_into."""
    done = _run(tmp_path, _ONE_SHOT_OUT_OF_MEMORY)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("not enough memory") == 2, done.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux-only")
def test_running_out_of_memory_is_a_library_error(tmp_path: Path) -> None:
    """Under an address-space limit, a frame that really arrives but cannot fit is a PolicyError."""
    done = _run(tmp_path, _OUT_OF_MEMORY)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not enough memory" in done.stdout
