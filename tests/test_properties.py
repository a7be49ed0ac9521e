"""Property tests (hypothesis): round trips, and every truncation or bit flip is a clean failure.

Examples are derandomized (fixed seed) so runs are reproducible. The default run keeps example
counts small; ``--run-slow`` adds variants with many more examples and an exhaustive bit-flip sweep.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Mapping

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kmsenvelope import Envelope, MessageHeader, RawAesKeyring, Suite
from kmsenvelope.errors import KmsEnvelopeError, SignatureError

from ._esdk import policy_for, random_bytes

KEY = bytes(range(100, 132))
PUBLIC_KEY = "aws-crypto-public-key"


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


FAST = _settings(200)
SLOW = _settings(3000)

contexts = st.dictionaries(
    keys=st.text(max_size=10).filter(lambda k: not k.startswith("aws-crypto-")),
    values=st.text(max_size=10),
    max_size=5,
)
suites = st.sampled_from(list(Suite))


def _envelope(suite: Suite, frame_length: int) -> Envelope:
    return Envelope(
        RawAesKeyring("props", "key", KEY),
        suite=suite,
        frame_length=frame_length,
        commitment_policy=policy_for(suite),
    )


class Trickle(io.RawIOBase):
    """A readable stream that returns at most ``step`` bytes per read (exercises short reads)."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._step, len(self._data) - self._pos)
        buffer[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


def _stored(context: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in context.items() if k != PUBLIC_KEY}


# -- round trips ------------------------------------------------------------------------------------


def _round_trip(
    suite: Suite, frame_length: int, plaintext: bytes, context: dict[str, str], step: int
) -> None:
    envelope = _envelope(suite, frame_length)
    message = envelope.encrypt(plaintext, context)
    result = envelope.decrypt_with_header(message, context)
    assert result.plaintext == plaintext
    assert _stored(result.encryption_context) == context
    assert (PUBLIC_KEY in result.encryption_context) == suite.signing
    assert result.header.suite is suite and result.header.frame_length == frame_length

    # streaming both ways, through a source that returns short reads
    streamed = io.BytesIO()
    header = envelope.encrypt_stream(Trickle(plaintext, step), streamed, context)  # type: ignore[arg-type]
    assert isinstance(header, MessageHeader)
    assert envelope.decrypt(streamed.getvalue(), context) == plaintext
    sink = io.BytesIO()
    envelope.decrypt_stream(Trickle(message, step), sink, context)  # type: ignore[arg-type]
    assert sink.getvalue() == plaintext


@FAST
@given(
    suite=suites,
    frame_length=st.integers(1, 300),
    plaintext=st.binary(max_size=700),
    context=contexts,
    step=st.integers(1, 4096),
)
def test_round_trip(
    suite: Suite, frame_length: int, plaintext: bytes, context: dict[str, str], step: int
) -> None:
    _round_trip(suite, frame_length, plaintext, context, step)


@pytest.mark.slow
@SLOW
@given(
    suite=suites,
    frame_length=st.integers(1, 5000),
    plaintext=st.binary(max_size=20_000),
    context=contexts,
    step=st.integers(1, 70_000),
)
def test_round_trip_many(
    suite: Suite, frame_length: int, plaintext: bytes, context: dict[str, str], step: int
) -> None:
    _round_trip(suite, frame_length, plaintext, context, step)


# -- tampering ----------------------------------------------------------------------------------------

FRAME = 16
PLAINTEXT = random_bytes(5 * FRAME + 3, seed=42)  # five full frames and a final frame of 3 bytes
CONTEXT = {"tenant": "acme", "région": "ü"}
TAMPER_SUITES = [
    Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
    Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
    Suite.AES_128_GCM_IV12_TAG16_NO_KDF,
    Suite.AES_128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256,
]


@functools.cache
def _message(suite: Suite) -> tuple[Envelope, bytes, MessageHeader]:
    envelope = _envelope(suite, FRAME)
    message = envelope.encrypt(PLAINTEXT, CONTEXT)
    return envelope, message, envelope.parse_header(message)


def _allowed_stream_output(suite: Suite, header: MessageHeader, damaged_at: int) -> int:
    """Plaintext bytes a streaming decrypt may release when the first damaged byte is ``damaged_at``.

    Signed suites release nothing. Unsigned suites may release the frames wholly before the damage.
    """
    if suite.signing or damaged_at < header.size:
        return 0
    frame_index = (damaged_at - header.size) // (4 + 12 + FRAME + 16)
    return min(frame_index, len(PLAINTEXT) // FRAME) * FRAME


def _assert_clean_failure(call: Callable[[], object]) -> KmsEnvelopeError:
    try:
        returned = call()
    except KmsEnvelopeError as exc:
        return exc
    raise AssertionError(f"tampered message was accepted and returned {returned!r:.80}")


def _stream_decrypt(envelope: Envelope, data: bytes, step: int) -> tuple[bytes, KmsEnvelopeError | None]:
    """(bytes written to dst, the library error raised or None). Any other exception propagates."""
    sink = io.BytesIO()
    try:
        envelope.decrypt_stream(Trickle(data, step), sink, CONTEXT)  # type: ignore[arg-type]
    except KmsEnvelopeError as exc:
        return sink.getvalue(), exc
    return sink.getvalue(), None


def _check_tampered(suite: Suite, tampered: bytes, damaged_at: int) -> None:
    envelope, _message_bytes, header = _message(suite)
    _assert_clean_failure(lambda: envelope.decrypt(tampered, CONTEXT))
    _assert_clean_failure(lambda: envelope.decrypt_with_header(tampered, CONTEXT))
    out = bytearray()
    _assert_clean_failure(lambda: envelope.decrypt_into(tampered, out, CONTEXT))
    assert out == b""
    for step in (1 << 16, 7):
        written, error = _stream_decrypt(envelope, tampered, step)
        assert error is not None, "tampered stream was accepted"
        assert PLAINTEXT.startswith(written)
        assert len(written) % FRAME == 0
        assert len(written) <= _allowed_stream_output(suite, header, damaged_at)


@FAST
@given(data=st.data())
@pytest.mark.parametrize("suite", TAMPER_SUITES, ids=lambda s: f"{s.id:04X}")
def test_any_bit_flip_fails_cleanly(suite: Suite, data: st.DataObject) -> None:
    _env, message, _header = _message(suite)
    bit = data.draw(st.integers(0, len(message) * 8 - 1), label="bit")
    tampered = bytearray(message)
    tampered[bit // 8] ^= 1 << (bit % 8)
    _check_tampered(suite, bytes(tampered), bit // 8)


@FAST
@given(data=st.data())
@pytest.mark.parametrize("suite", TAMPER_SUITES, ids=lambda s: f"{s.id:04X}")
def test_any_truncation_fails_cleanly(suite: Suite, data: st.DataObject) -> None:
    _env, message, _header = _message(suite)
    length = data.draw(st.integers(0, len(message) - 1), label="length")
    _check_tampered(suite, message[:length], length)


@pytest.mark.slow
@SLOW
@given(data=st.data())
@pytest.mark.parametrize("suite", TAMPER_SUITES, ids=lambda s: f"{s.id:04X}")
def test_any_bit_flip_fails_cleanly_many(suite: Suite, data: st.DataObject) -> None:
    _env, message, _header = _message(suite)
    bit = data.draw(st.integers(0, len(message) * 8 - 1), label="bit")
    tampered = bytearray(message)
    tampered[bit // 8] ^= 1 << (bit % 8)
    _check_tampered(suite, bytes(tampered), bit // 8)


@pytest.mark.slow
@pytest.mark.parametrize("suite", TAMPER_SUITES, ids=lambda s: f"{s.id:04X}")
def test_every_bit_flip_and_truncation_exhaustively(suite: Suite) -> None:
    _env, message, _header = _message(suite)
    for bit in range(len(message) * 8):
        tampered = bytearray(message)
        tampered[bit // 8] ^= 1 << (bit % 8)
        _check_tampered(suite, bytes(tampered), bit // 8)
    for length in range(len(message)):
        _check_tampered(suite, message[:length], length)


@pytest.mark.parametrize("suite", [s for s in TAMPER_SUITES if s.signing], ids=lambda s: f"{s.id:04X}")
def test_signature_flips_are_signature_errors(suite: Suite) -> None:
    """Every bit of the DER signature matters (the footer is the last 2 + n bytes)."""
    envelope, message, header = _message(suite)
    regular, final = divmod(len(PLAINTEXT), FRAME)
    footer_at = header.size + regular * (4 + 12 + FRAME + 16) + (4 + 4 + 12 + 4 + final + 16)
    signature_length = int.from_bytes(message[footer_at : footer_at + 2], "big")
    assert footer_at + 2 + signature_length == len(message)
    for offset in range(footer_at + 2, len(message)):
        for bit in (0, 3, 7):
            tampered = bytearray(message)
            tampered[offset] ^= 1 << bit
            with pytest.raises(SignatureError):
                envelope.decrypt(bytes(tampered), CONTEXT)
            sink = io.BytesIO()
            with pytest.raises(SignatureError):
                envelope.decrypt_stream(io.BytesIO(bytes(tampered)), sink, CONTEXT)
            assert sink.getvalue() == b""


def test_untampered_messages_decrypt() -> None:
    """Control for the tamper properties: the unmodified messages are accepted, whole and streamed."""
    for suite in TAMPER_SUITES:
        envelope, message, _header = _message(suite)
        assert envelope.decrypt(message, CONTEXT) == PLAINTEXT
        sink = io.BytesIO()
        envelope.decrypt_stream(Trickle(message, 7), sink, CONTEXT)  # type: ignore[arg-type]
        assert sink.getvalue() == PLAINTEXT


# one-shot decrypt writes large multi-frame plaintexts in place; tampering must not break that path
BIG_FRAME = 64 * 1024
BIG_PLAINTEXT = random_bytes(5 * BIG_FRAME + 1, seed=7)


@functools.cache
def _big_message(suite: Suite) -> tuple[Envelope, bytes]:
    envelope = _envelope(suite, BIG_FRAME)
    return envelope, envelope.encrypt(BIG_PLAINTEXT, CONTEXT)


@_settings(25)
@given(data=st.data())
@pytest.mark.parametrize(
    "suite",
    [Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY, Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384],
    ids=lambda s: f"{s.id:04X}",
)
def test_large_message_tampering_fails_cleanly(suite: Suite, data: st.DataObject) -> None:
    envelope, message = _big_message(suite)
    assert envelope.decrypt(message, CONTEXT) == BIG_PLAINTEXT
    header_size = envelope.parse_header(message).size
    # flip inside the body, where the in-place decryption runs
    bit = data.draw(st.integers(header_size * 8, len(message) * 8 - 1), label="bit")
    tampered = bytearray(message)
    tampered[bit // 8] ^= 1 << (bit % 8)
    _assert_clean_failure(lambda: envelope.decrypt(bytes(tampered), CONTEXT))
    out = bytearray()
    _assert_clean_failure(lambda: envelope.decrypt_into(bytes(tampered), out, CONTEXT))
    assert out == b""
    length = data.draw(st.integers(0, len(message) - 1), label="length")
    _assert_clean_failure(lambda: envelope.decrypt(message[:length], CONTEXT))
