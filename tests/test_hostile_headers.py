"""Hostile and malformed messages: each is rejected with its exact error class.

Headers are built by hand here (independently of the library's serializer) so that each case differs
from a well-formed control in exactly one field. Cases that declare huge sizes with tiny input also
check the failure comes quickly and without allocations sized by the declared value.
"""

from __future__ import annotations

import io
import time
import tracemalloc
from collections.abc import Callable, Sequence

import pytest

from kmsenvelope import (
    CommitmentPolicy,
    Envelope,
    MultiKeyring,
    RawAesKeyring,
    RawRsaKeyring,
    RequiredContextMaterials,
    Suite,
)
from kmsenvelope.errors import (
    AuthenticationError,
    ContextMismatchError,
    KmsEnvelopeError,
    MalformedInputError,
    NoUsableKeyError,
    PolicyError,
    SignatureError,
)
from kmsenvelope.materials.materials import (
    DecryptionMaterials,
    EncryptedDataKey,
    EncryptionMaterials,
)
from kmsenvelope.message.codec import TruncatedInputError
from kmsenvelope.message.header import DecryptLimits

from ._esdk import esdk_aes_key, esdk_encrypt, generate_rsa_pem, random_bytes

KEY = bytes(range(32))
NS = "hostile"
PLAINTEXT = random_bytes(100, seed=1)
FRAME = 32


@pytest.fixture(scope="module")
def rsa_pem() -> tuple[bytes, bytes]:
    return generate_rsa_pem(2048)


def _envelope(**kwargs: object) -> Envelope:
    return Envelope(RawAesKeyring(NS, "key", KEY), **kwargs)  # type: ignore[arg-type]


# -- a hand-written serializer ------------------------------------------------------------------------


def u16(n: int) -> bytes:
    return n.to_bytes(2, "big")


def u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def context_bytes(pairs: Sequence[tuple[bytes, bytes]], count: int | None = None) -> bytes:
    """Serialized pairs as given (no sorting or validation), with an optional false count."""
    if not pairs and count is None:
        return b""
    out = u16(len(pairs) if count is None else count)
    for key, value in pairs:
        out += u16(len(key)) + key + u16(len(value)) + value
    return out


def edks_bytes(edks: Sequence[tuple[bytes, bytes, bytes]], count: int | None = None) -> bytes:
    out = u16(len(edks) if count is None else count)
    for provider_id, info, ciphertext in edks:
        out += u16(len(provider_id)) + provider_id + u16(len(info)) + info + u16(len(ciphertext)) + ciphertext
    return out


ONE_EDK = edks_bytes([(NS.encode(), b"key" + bytes(20), bytes(48))])
GOOD_CONTEXT = context_bytes([(b"purpose", b"test"), ("région".encode(), "ü".encode())])


def v2_header(
    *,
    version: int = 2,
    suite_id: int = 0x0478,
    message_id: bytes = bytes(32),
    aad: bytes = GOOD_CONTEXT,
    aad_length: int | None = None,
    edks: bytes = ONE_EDK,
    content_type: int = 2,
    frame_length: int = 4096,
    commitment: bytes = bytes(32),
    tag: bytes = bytes(16),
) -> bytes:
    return (
        bytes([version])
        + u16(suite_id)
        + message_id
        + u16(len(aad) if aad_length is None else aad_length)
        + aad
        + edks
        + bytes([content_type])
        + u32(frame_length)
        + commitment
        + tag
    )


def v1_header(
    *,
    message_type: int = 0x80,
    suite_id: int = 0x0178,
    aad: bytes = GOOD_CONTEXT,
    edks: bytes = ONE_EDK,
    content_type: int = 2,
    reserved: bytes = bytes(4),
    iv_length: int = 12,
    frame_length: int = 4096,
) -> bytes:
    return (
        bytes([1, message_type])
        + u16(suite_id)
        + bytes(16)
        + u16(len(aad))
        + aad
        + edks
        + bytes([content_type])
        + reserved
        + bytes([iv_length])
        + u32(frame_length)
        + bytes(12)
        + bytes(16)
    )


LEGACY_OK = CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT


def _rejects(
    expected: type[KmsEnvelopeError],
    data: bytes,
    envelope: Envelope | None = None,
    context: dict[str, str] | None = None,
) -> None:
    """``data`` fails with exactly ``expected``, one-shot and streamed (nothing written to dst)."""
    envelope = envelope or _envelope(commitment_policy=LEGACY_OK)
    with pytest.raises(KmsEnvelopeError) as info:
        envelope.decrypt(data, context)
    assert type(info.value) is expected, f"{type(info.value).__name__}: {info.value}"
    sink = io.BytesIO()
    with pytest.raises(KmsEnvelopeError) as info:
        envelope.decrypt_stream(io.BytesIO(data), sink, context)
    assert type(info.value) is expected, f"stream: {type(info.value).__name__}: {info.value}"
    assert sink.getvalue() == b""


def _header_rejects(expected: type[KmsEnvelopeError], data: bytes, envelope: Envelope | None = None) -> None:
    envelope = envelope or _envelope(commitment_policy=LEGACY_OK)
    with pytest.raises(KmsEnvelopeError) as info:
        envelope.parse_header(data)
    assert type(info.value) is expected, f"parse_header: {type(info.value).__name__}: {info.value}"
    _rejects(expected, data, envelope)


def _fast_and_small(call: Callable[[], object]) -> KmsEnvelopeError:
    """Run a call that must fail; check it fails within 0.5 s and allocates under 256 KiB."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        call()
    except KmsEnvelopeError as exc:
        error = exc
    else:
        raise AssertionError("hostile input was accepted")
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < 0.5, f"took {elapsed:.3f} s"
    assert peak < 256 * 1024, f"allocated {peak} bytes"
    return error


@pytest.fixture(autouse=True, scope="module")
def _warm_up() -> None:
    """Import everything the decrypt paths load lazily, so allocation checks see only the call."""
    envelope = _envelope()
    message = envelope.encrypt(b"warm")
    envelope.decrypt_stream(io.BytesIO(message), io.BytesIO())


# -- controls -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [v2_header(), v1_header()], ids=["v2", "v1"])
def test_controls_parse_and_fail_only_for_want_of_a_key(header: bytes) -> None:
    """The hand-built headers are well formed: they parse, and decrypt fails only at the keyring."""
    envelope = _envelope(commitment_policy=LEGACY_OK)
    parsed = envelope.parse_header(header)
    assert parsed.size == len(header)
    assert dict(parsed.encryption_context) == {"purpose": "test", "région": "ü"}
    assert parsed.frame_length == 4096 and parsed.framed
    _rejects(NoUsableKeyError, header)


def test_real_message_decrypts() -> None:
    envelope = _envelope(frame_length=FRAME)
    assert envelope.decrypt(envelope.encrypt(PLAINTEXT)) == PLAINTEXT


# -- EDK count ----------------------------------------------------------------------------------------


def test_edk_count_over_max_encrypted_data_keys() -> None:
    keyrings = [RawAesKeyring(NS, f"k{i}", bytes([i]) * 32) for i in range(3)]
    three = Envelope(MultiKeyring(keyrings[0], keyrings[1:])).encrypt(PLAINTEXT)
    for envelope in (
        Envelope(keyrings[0], max_encrypted_data_keys=2),
        Envelope(keyrings[0], limits=DecryptLimits(max_encrypted_data_keys=2)),
    ):
        _rejects(PolicyError, three, envelope)
    assert Envelope(keyrings[2], max_encrypted_data_keys=3).decrypt(three) == PLAINTEXT
    # the encrypt side refuses to write such a message
    with pytest.raises(PolicyError):
        Envelope(MultiKeyring(keyrings[0], keyrings[1:]), max_encrypted_data_keys=2).encrypt(PLAINTEXT)


def test_edk_count_65535_with_tiny_input() -> None:
    header = v2_header(edks=u16(0xFFFF) + u16(2) + b"ns")
    limited = _envelope(max_encrypted_data_keys=10)
    error = _fast_and_small(lambda: limited.decrypt(header))
    assert type(error) is PolicyError
    error = _fast_and_small(lambda: limited.decrypt_stream(io.BytesIO(header), io.BytesIO()))
    assert type(error) is PolicyError
    unlimited = _envelope()
    error = _fast_and_small(lambda: unlimited.decrypt(header))
    assert type(error) is TruncatedInputError
    _rejects(TruncatedInputError, header, unlimited)


def test_edk_limit_checked_before_the_edks_are_parsed() -> None:
    """65535 well-formed EDKs (393 KB) are refused by count alone, before any is materialised."""
    header = v2_header(edks=edks_bytes([(b"", b"", b"")] * 0xFFFF))
    limited = _envelope(max_encrypted_data_keys=10)
    error = _fast_and_small(lambda: limited.parse_header(header))
    assert type(error) is PolicyError


def test_zero_edks() -> None:
    _header_rejects(MalformedInputError, v2_header(edks=u16(0)))


# -- frame length -------------------------------------------------------------------------------------


def test_frame_length_zero() -> None:
    _header_rejects(MalformedInputError, v2_header(frame_length=0))
    _header_rejects(MalformedInputError, v1_header(frame_length=0))


@pytest.mark.parametrize("frame_length", [2**31 - 1, 2**32 - 1, (1 << 26) + 1])
def test_frame_length_over_the_limit(frame_length: int) -> None:
    header = v2_header(frame_length=frame_length)
    envelope = _envelope()
    error = _fast_and_small(lambda: envelope.decrypt(header))
    assert type(error) is PolicyError
    error = _fast_and_small(lambda: envelope.decrypt_stream(io.BytesIO(header), io.BytesIO()))
    assert type(error) is PolicyError
    _header_rejects(PolicyError, header)


def test_custom_frame_length_limit() -> None:
    limits = DecryptLimits(max_frame_length=4096)
    envelope = _envelope(limits=limits)
    _header_rejects(PolicyError, v2_header(frame_length=4097), envelope)
    assert envelope.parse_header(v2_header(frame_length=4096)).frame_length == 4096
    # a real message over the limit is refused before its key is even looked for
    big = _envelope(frame_length=8192).encrypt(PLAINTEXT)
    _rejects(PolicyError, big, envelope)


def test_non_framed_with_frame_length() -> None:
    _header_rejects(MalformedInputError, v2_header(content_type=1, frame_length=4096))
    assert _envelope().parse_header(v2_header(content_type=1, frame_length=0)).framed is False


def test_esdk_frame_length_over_our_limit() -> None:
    """A real ESDK message whose (legal) frame length exceeds our default limit of 64 MiB."""
    master_key = esdk_aes_key(NS, "key", KEY)
    policy = CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    message = esdk_encrypt(policy, PLAINTEXT, frame_length=1 << 27, key_provider=master_key)
    envelope = _envelope()
    error = _fast_and_small(lambda: envelope.decrypt_stream(io.BytesIO(message), io.BytesIO()))
    assert type(error) is PolicyError
    assert _envelope(limits=DecryptLimits(max_frame_length=1 << 27)).decrypt(message) == PLAINTEXT


# -- lengths running past the end of the input ---------------------------------------------------------


def _past_end_cases() -> dict[str, bytes]:
    prefix = b"\x02" + u16(0x0478) + bytes(32)
    full = v2_header()
    return {
        "empty": b"",
        "version only": b"\x02",
        "inside the message id": prefix[:20],
        "AAD length 65535, 2 bytes of AAD": prefix + u16(0xFFFF) + b"\x00\x01",
        "EDK count, then nothing": prefix + u16(0) + u16(1),
        "EDK provider id past the end": prefix + u16(0) + u16(1) + u16(500) + b"abc",
        "EDK provider info past the end": prefix + u16(0) + u16(1) + u16(2) + b"ns" + u16(0xFFFF) + b"x",
        "EDK ciphertext past the end": prefix + u16(0) + u16(1) + u16(2) + b"ns" + u16(0) + u16(0xFFFF)
        + b"x",
        "no frame length": full[: len(full) - 52],
        "no key commitment": full[: len(full) - 40],
        "no header tag": full[: len(full) - 16],
        "half a header tag": full[: len(full) - 8],
        "v1 without header IV": v1_header()[:-28],
    }


@pytest.mark.parametrize("case", list(_past_end_cases()))
def test_lengths_past_the_end(case: str) -> None:
    data = _past_end_cases()[case]
    error = _fast_and_small(lambda: _envelope().decrypt(data))
    assert type(error) is TruncatedInputError
    _header_rejects(TruncatedInputError, data)


def _body_cases() -> dict[str, Callable[[bytes, int], bytes]]:
    """Mutations of a real message's body, given (message, header size)."""
    regular = 4 + 12 + FRAME + 16

    def set_u32(message: bytes, at: int, value: int) -> bytes:
        return message[:at] + u32(value) + message[at + 4 :]

    def final_at(message: bytes, header_size: int) -> int:
        return header_size + 3 * regular  # 100 bytes: three full frames of 32, a final frame of 4

    return {
        "cut inside a frame": lambda m, h: m[: h + regular + 10],
        "cut inside the final frame": lambda m, h: m[: final_at(m, h) + 30],
        "final frame length past the end": lambda m, h: set_u32(m, final_at(m, h) + 20, FRAME),
        "no body": lambda m, h: m[:h],
    }


@pytest.mark.parametrize("case", list(_body_cases()))
def test_body_lengths_past_the_end(case: str) -> None:
    envelope = _envelope(frame_length=FRAME)
    message = envelope.encrypt(PLAINTEXT)
    tampered = _body_cases()[case](message, envelope.parse_header(message).size)
    with pytest.raises(TruncatedInputError):
        envelope.decrypt(tampered)
    sink = io.BytesIO()
    with pytest.raises(TruncatedInputError):
        envelope.decrypt_stream(io.BytesIO(tampered), sink)
    # unsigned streams release the frames before the damage, never the damaged one
    assert PLAINTEXT.startswith(sink.getvalue()) and len(sink.getvalue()) % FRAME == 0


def test_body_structure() -> None:
    envelope = _envelope(frame_length=FRAME)
    message = envelope.encrypt(PLAINTEXT)
    h = envelope.parse_header(message).size
    regular = 4 + 12 + FRAME + 16
    final_at = h + 3 * regular
    cases = {
        "frame out of sequence": message[:h] + u32(2) + message[h + 4 :],
        "final frame out of sequence": message[: final_at + 4] + u32(9) + message[final_at + 8 :],
        "final frame longer than the frame length": message[: final_at + 20] + u32(FRAME + 1)
        + message[final_at + 24 :],
    }
    for name, tampered in cases.items():
        with pytest.raises(KmsEnvelopeError) as info:
            envelope.decrypt(tampered)
        assert type(info.value) is MalformedInputError, name
        with pytest.raises(KmsEnvelopeError) as info:
            envelope.decrypt_stream(io.BytesIO(tampered), io.BytesIO())
        assert type(info.value) is MalformedInputError, name


@pytest.mark.parametrize("length", [0, 105, 0xFFFF])
def test_bad_signature_length(length: int) -> None:
    envelope = _envelope(suite=Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384, frame_length=FRAME)
    message = envelope.encrypt(PLAINTEXT)
    # 100 bytes: three regular frames of 32 and a final frame of 4, then the footer
    footer_at = envelope.parse_header(message).size + 3 * (4 + 12 + FRAME + 16) + (4 + 4 + 12 + 4 + 4 + 16)
    assert int.from_bytes(message[footer_at : footer_at + 2], "big") == len(message) - footer_at - 2
    tampered = message[:footer_at] + u16(length) + message[footer_at + 2 :]
    _rejects(MalformedInputError, tampered, envelope)
    _rejects(TruncatedInputError, message[:footer_at], envelope)
    _rejects(TruncatedInputError, message[: footer_at + 1], envelope)
    _rejects(TruncatedInputError, message[:-1], envelope)


# -- encryption context ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "aad",
    [
        context_bytes([(b"\xff\xfe", b"value")]),
        context_bytes([(b"key", b"\xc3")]),  # truncated 2-byte sequence
        context_bytes([(b"key", b"\xed\xa0\x80")]),  # an encoded surrogate: not valid UTF-8
    ],
    ids=["key", "value", "surrogate"],
)
def test_non_utf8_context(aad: bytes) -> None:
    _header_rejects(MalformedInputError, v2_header(aad=aad))


def test_non_utf8_edk_provider_id() -> None:
    _header_rejects(MalformedInputError, v2_header(edks=edks_bytes([(b"\xff", b"", b"x")])))


def test_duplicate_context_keys() -> None:
    _header_rejects(MalformedInputError, v2_header(aad=context_bytes([(b"k", b"1"), (b"k", b"2")])))
    _header_rejects(MalformedInputError, v2_header(aad=context_bytes([(b"k", b"1"), (b"k", b"1")])))


def test_zero_pair_context_with_nonzero_length() -> None:
    _header_rejects(MalformedInputError, v2_header(aad=u16(0)))


def test_context_with_trailing_bytes_or_a_false_count() -> None:
    _header_rejects(MalformedInputError, v2_header(aad=GOOD_CONTEXT + b"\x00"))
    _header_rejects(MalformedInputError, v2_header(aad=context_bytes([(b"a", b"b"), (b"c", b"d")], count=1)))


@pytest.mark.parametrize(
    ("suite_id", "public_key"),
    [
        (0x0478, "A" * 44),  # unsigned suite carrying a verification key
        (0x0578, None),  # signed suite without one
        (0x0578, "not base64!"),
        (0x0578, "AAAA"),  # valid base64, not a P-384 point
        (0x0578, "Ag" + "A" * 64),  # 49 bytes with a compressed-point prefix, not on the curve
    ],
    ids=["unsigned-with-key", "signed-without-key", "bad-base64", "short-point", "off-curve"],
)
def test_verification_key_in_the_context(suite_id: int, public_key: str | None) -> None:
    pairs = [(b"purpose", b"test")]
    if public_key is not None:
        pairs.insert(0, (b"aws-crypto-public-key", public_key.encode()))
    _rejects(MalformedInputError, v2_header(suite_id=suite_id, aad=context_bytes(pairs)))


def test_reserved_context_keys_on_encrypt() -> None:
    envelope = _envelope()
    for key in ("aws-crypto-public-key", "aws-crypto-anything", "aws-crypto-"):
        with pytest.raises(KmsEnvelopeError) as info:
            envelope.encrypt(PLAINTEXT, {key: "x", "ok": "y"})
        assert type(info.value) is PolicyError
        dst = io.BytesIO()
        with pytest.raises(KmsEnvelopeError) as info:
            envelope.encrypt_stream(io.BytesIO(PLAINTEXT), dst, {key: "x"})
        assert type(info.value) is PolicyError
        assert dst.getvalue() == b""
    # the prefix is exact: these are ordinary keys
    for key in ("aws-crypto", "AWS-CRYPTO-x", "x-aws-crypto-"):
        assert envelope.decrypt(envelope.encrypt(PLAINTEXT, {key: "v"})) == PLAINTEXT


def test_header_size_and_message_size_limits() -> None:
    big_context = context_bytes([(b"k%d" % i, b"v" * 200) for i in range(100)])
    small = _envelope(limits=DecryptLimits(max_header_size=1024))
    _header_rejects(PolicyError, v2_header(aad=big_context), small)
    message = _envelope().encrypt(PLAINTEXT)
    with pytest.raises(PolicyError):
        _envelope(limits=DecryptLimits(max_message_size=len(message) - 1)).decrypt(message)
    assert _envelope(limits=DecryptLimits(max_message_size=len(message))).decrypt(message) == PLAINTEXT


# -- version, suite, content type, reserved bytes -----------------------------------------------------


@pytest.mark.parametrize("version", [0, 3, 0x80, 0xFF])
def test_unknown_version(version: int) -> None:
    _header_rejects(MalformedInputError, v2_header(version=version))


def test_unknown_v1_message_type() -> None:
    _header_rejects(MalformedInputError, v1_header(message_type=0x81))


@pytest.mark.parametrize("suite_id", [0x0000, 0x0015, 0x0479, 0x6700, 0x6701, 0xFFFF])
def test_unknown_suite(suite_id: int) -> None:
    _header_rejects(MalformedInputError, v2_header(suite_id=suite_id))
    _header_rejects(MalformedInputError, v1_header(suite_id=suite_id))


def test_suite_in_the_wrong_version() -> None:
    _header_rejects(MalformedInputError, v2_header(suite_id=0x0178))
    _header_rejects(MalformedInputError, v1_header(suite_id=0x0478))


@pytest.mark.parametrize("content_type", [0, 3, 0xFF])
def test_unknown_content_type(content_type: int) -> None:
    _header_rejects(MalformedInputError, v2_header(content_type=content_type))
    _header_rejects(MalformedInputError, v1_header(content_type=content_type))


@pytest.mark.parametrize("reserved", [b"\x01\x00\x00\x00", b"\x00\x00\x00\x80", b"\xff\xff\xff\xff"])
def test_v1_reserved_bytes_not_zero(reserved: bytes) -> None:
    _header_rejects(MalformedInputError, v1_header(reserved=reserved))


@pytest.mark.parametrize("iv_length", [0, 11, 16])
def test_v1_header_iv_length(iv_length: int) -> None:
    _header_rejects(MalformedInputError, v1_header(iv_length=iv_length))


# -- trailing bytes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "suite",
    [Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY, Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384],
    ids=lambda s: f"{s.id:04X}",
)
@pytest.mark.parametrize("trailer", [b"\x00", b"\xff" * 100, bytes(1 << 16)])
def test_trailing_bytes(suite: Suite, trailer: bytes) -> None:
    envelope = _envelope(suite=suite, frame_length=FRAME)
    message = envelope.encrypt(PLAINTEXT) + trailer
    with pytest.raises(KmsEnvelopeError) as info:
        envelope.decrypt(message)
    assert type(info.value) is MalformedInputError
    out = bytearray()
    with pytest.raises(MalformedInputError):
        envelope.decrypt_into(message, out)
    assert out == b""
    sink = io.BytesIO()
    with pytest.raises(KmsEnvelopeError) as info:
        envelope.decrypt_stream(io.BytesIO(message), sink)
    assert type(info.value) is MalformedInputError
    # a signed stream holds everything back; an unsigned one has released the verified frames
    assert sink.getvalue() == (b"" if suite.signing else PLAINTEXT)


def test_trailing_bytes_after_a_non_framed_message() -> None:
    master_key = esdk_aes_key(NS, "key", KEY)
    policy = CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    message = esdk_encrypt(policy, PLAINTEXT, frame_length=0, key_provider=master_key,
                           suite=Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY)
    assert _envelope().decrypt(message) == PLAINTEXT
    with pytest.raises(KmsEnvelopeError) as info:
        _envelope().decrypt(message + b"\x00")
    assert type(info.value) is MalformedInputError


def test_non_framed_body_length_hostile() -> None:
    """A real non-framed ESDK message whose body length field claims 2**36 bytes."""
    master_key = esdk_aes_key(NS, "key", KEY)
    policy = CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    message = esdk_encrypt(policy, PLAINTEXT, frame_length=0, key_provider=master_key,
                           suite=Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY)
    envelope = _envelope()
    at = envelope.parse_header(message).size + 12
    assert int.from_bytes(message[at : at + 8], "big") == len(PLAINTEXT)
    for claimed, one_shot, streamed in (
        (2**36 - 32, TruncatedInputError, PolicyError),  # the format maximum
        (2**36, MalformedInputError, PolicyError),  # beyond it
        (2**64 - 1, MalformedInputError, PolicyError),
    ):
        hostile = message[:at] + claimed.to_bytes(8, "big") + message[at + 8 :]
        error = _fast_and_small(lambda: envelope.decrypt(hostile))  # noqa: B023
        assert type(error) is one_shot, claimed
        error = _fast_and_small(lambda: envelope.decrypt_stream(io.BytesIO(hostile), io.BytesIO()))  # noqa: B023
        assert type(error) is streamed, claimed


# -- commitment policy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suite", [s for s in Suite if not s.committing], ids=lambda s: f"{s.id:04X}")
def test_legacy_suite_needs_a_permissive_policy(suite: Suite) -> None:
    legacy = _envelope(suite=suite, commitment_policy=CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT)
    message = legacy.encrypt(PLAINTEXT, {"a": "b"})
    _rejects(PolicyError, message, _envelope())  # default: REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    for policy in (LEGACY_OK, CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT):
        envelope = _envelope(commitment_policy=policy)
        assert envelope.decrypt(message) == PLAINTEXT
        sink = io.BytesIO()
        envelope.decrypt_stream(io.BytesIO(message), sink)
        assert sink.getvalue() == PLAINTEXT


class _CountingKeyring:
    """A real raw AES keyring that records how often it is asked to decrypt."""

    def __init__(self) -> None:
        self.inner = RawAesKeyring(NS, "key", KEY)
        self.decrypts = 0

    def on_encrypt(self, materials: EncryptionMaterials) -> EncryptionMaterials:
        return self.inner.on_encrypt(materials)

    def on_decrypt(
        self, materials: DecryptionMaterials, edks: Sequence[EncryptedDataKey]
    ) -> DecryptionMaterials:
        self.decrypts += 1
        return self.inner.on_decrypt(materials, edks)


def test_policy_is_checked_before_any_key_is_used() -> None:
    message = _envelope(suite=Suite.AES_128_GCM_IV12_TAG16_HKDF_SHA256,
                        commitment_policy=CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT).encrypt(PLAINTEXT)
    keyring = _CountingKeyring()
    with pytest.raises(PolicyError):
        Envelope(keyring).decrypt(message)
    with pytest.raises(PolicyError):
        Envelope(keyring).decrypt_stream(io.BytesIO(message), io.BytesIO())
    assert keyring.decrypts == 0
    assert Envelope(keyring, commitment_policy=LEGACY_OK).decrypt(message) == PLAINTEXT
    assert keyring.decrypts == 1


# -- keys, context and commitment --------------------------------------------------------------------


def test_wrong_key_lists_every_edk(rsa_pem: tuple[bytes, bytes]) -> None:
    private, _public = rsa_pem
    writer = MultiKeyring(
        RawAesKeyring(NS, "aes-one", KEY), [RawRsaKeyring("rsa-ns", "rsa-one", private_key=private)]
    )
    message = Envelope(writer).encrypt(PLAINTEXT)
    wrong = Envelope(RawAesKeyring(NS, "aes-one", bytes(32)))
    with pytest.raises(NoUsableKeyError) as info:
        wrong.decrypt(message)
    failures = info.value.failures
    assert [f.provider_id for f in failures] == [NS, "rsa-ns"]
    # AES key info is binary (name | lengths | IV): shown as hex of its start
    assert failures[0].provider_info.startswith(b"aes-one".hex())
    assert "rsa-one" in failures[1].provider_info
    assert "AuthenticationError" in failures[0].reason and "not for" in failures[1].reason
    text = str(info.value)
    assert NS in text and "rsa-ns" in text and "rsa-one" in text
    sink = io.BytesIO()
    with pytest.raises(NoUsableKeyError) as stream_info:
        wrong.decrypt_stream(io.BytesIO(message), sink)
    assert [f.provider_id for f in stream_info.value.failures] == [NS, "rsa-ns"]
    assert sink.getvalue() == b""


def test_wrong_required_context(rsa_pem: tuple[bytes, bytes]) -> None:
    private, _public = rsa_pem
    rsa = RawRsaKeyring(NS, "rsa", private_key=private)
    required = Envelope(RequiredContextMaterials(rsa, ["tenant"]))
    message = required.encrypt(PLAINTEXT, {"tenant": "acme", "stored": "yes"})
    assert required.decrypt(message, {"tenant": "acme"}) == PLAINTEXT
    # required key missing on decrypt, and on encrypt
    _rejects(ContextMismatchError, message, required, {})
    _rejects(ContextMismatchError, message, required, {"stored": "yes"})
    with pytest.raises(ContextMismatchError):
        required.encrypt(PLAINTEXT, {"stored": "yes"})
    # a supplied pair contradicts a stored one
    _rejects(ContextMismatchError, message, required, {"tenant": "acme", "stored": "no"})
    _rejects(ContextMismatchError, message, Envelope(rsa), {"stored": "no"})
    # the message never bound a pair the caller requires
    plain_message = Envelope(rsa).encrypt(PLAINTEXT, {"stored": "yes"})
    _rejects(ContextMismatchError, plain_message, required, {"tenant": "acme"})
    _rejects(ContextMismatchError, plain_message, Envelope(rsa), {"tenant": "acme"})


@pytest.mark.parametrize("offset", [0, 13, 31])
def test_tampered_commitment(offset: int) -> None:
    envelope = _envelope(frame_length=FRAME)
    message = envelope.encrypt(PLAINTEXT, {"a": "b"})
    header = envelope.parse_header(message)
    at = header.size - 16 - 32 + offset
    assert message[at] == header.commitment[offset]
    tampered = bytearray(message)
    tampered[at] ^= 0x01
    _rejects(AuthenticationError, bytes(tampered))


def _reseal_header(body: bytes, data_key: bytes, message_id: bytes, suite: Suite) -> bytes:
    """A valid v2 header tag for ``body``, computed independently (spec: HKDF-SHA512 DERIVEKEY, zero IV)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    key = HKDF(hashes.SHA512(), 32, salt=message_id, info=suite.id_bytes + b"DERIVEKEY").derive(data_key)
    return AESGCM(key).encrypt(bytes(12), b"", body)


def test_forged_commitment_with_a_valid_header_tag() -> None:
    """Only the commitment is wrong (the header tag is recomputed): the commitment check must catch it."""
    envelope = _envelope(frame_length=FRAME)
    message = envelope.encrypt(PLAINTEXT, {"a": "b"})
    out = bytearray()
    header, materials = envelope.decrypt_into(message, out, {"a": "b"})
    assert materials.plaintext_data_key is not None
    # control: resealing the unmodified body reproduces the message exactly
    tag = _reseal_header(header.body, materials.plaintext_data_key, header.message_id, header.suite)
    assert header.body + tag + message[header.size :] == message
    forged_body = header.body[:-32] + bytes(32)
    forged_tag = _reseal_header(forged_body, materials.plaintext_data_key, header.message_id, header.suite)
    forged = forged_body + forged_tag + message[header.size :]
    _rejects(AuthenticationError, forged, envelope)
    master_key = esdk_aes_key(NS, "key", KEY)
    from aws_encryption_sdk import EncryptionSDKClient
    from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError

    with pytest.raises(AWSEncryptionSDKClientError):  # the ESDK agrees
        EncryptionSDKClient().decrypt(source=forged, key_provider=master_key)


def test_tampered_signature_is_signature_error() -> None:
    envelope = _envelope(suite=Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384, frame_length=FRAME)
    message = bytearray(envelope.encrypt(PLAINTEXT))
    message[-1] ^= 0x01
    _rejects(SignatureError, bytes(message), envelope)


def test_tampered_header_tag_and_message_id() -> None:
    envelope = _envelope(frame_length=FRAME)
    message = envelope.encrypt(PLAINTEXT)
    size = envelope.parse_header(message).size
    for at in (size - 1, size - 16, 3, 34):  # header tag, message id
        tampered = bytearray(message)
        tampered[at] ^= 0x80
        _rejects(AuthenticationError, bytes(tampered), envelope)


# -- known library bugs: these tests fail against the current library and are NOT committed ---------------


@pytest.mark.parametrize("following", [0, 4096, 2 << 20])
def test_bug_context_length_past_the_aad_is_malformed_whatever_follows(following: int) -> None:
    """A context key length that runs past the end of the (complete) AAD is a malformed header.

    parse_context raises TruncatedInputError for it, so the streaming reader takes it for "header not
    read yet" and keeps reading: with enough input after it, decrypt_stream reads past 1 MiB and raises
    PolicyError ("message header exceeds the limit") instead of the one-shot MalformedInputError.
    """
    aad = u16(1) + u16(50) + b"k" + u16(1) + b"v"  # key length 50, but the AAD holds 6 more bytes
    data = v2_header(aad=aad) + bytes(following)
    envelope = _envelope()
    with pytest.raises(KmsEnvelopeError) as one_shot:
        envelope.decrypt(data)
    with pytest.raises(KmsEnvelopeError) as streamed:
        envelope.decrypt_stream(io.BytesIO(data), io.BytesIO())
    assert isinstance(one_shot.value, MalformedInputError)
    error = streamed.value
    assert isinstance(error, MalformedInputError), f"{type(error).__name__}: {error}"
