"""kmsenvelope.rewrap / rewrap_stream with raw keyrings: every suite, interop with the real ESDK,
body bytes unchanged, tampering caught, and the refusals the API promises.
"""

from __future__ import annotations

import io
import os
from typing import Any, BinaryIO, cast

import pytest
from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError
from cryptography.exceptions import InvalidTag
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kmsenvelope
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
    ConfigurationError,
    ContextMismatchError,
    KmsEnvelopeError,
    MalformedInputError,
    NoUsableKeyError,
    PolicyError,
)
from kmsenvelope.message.body import FINAL_OVERHEAD
from kmsenvelope.message.header import DecryptLimits

from ._esdk import (
    StaticRawKeyProvider,
    aes_wrapping_key,
    esdk_decrypt,
    esdk_encrypt,
    generate_rsa_pem,
    random_bytes,
    rsa_wrapping_key,
)

ALLOW = CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT
CONTEXT = {"tenant": "acme", "purpose": "rewrap"}
PLAINTEXT = random_bytes(10_000, seed=14)
FRAME = 1024
OLD_AES = bytes(range(32))
NEW_AES = bytes(range(32, 64))


@pytest.fixture(scope="module")
def rsa_pems() -> tuple[tuple[bytes, bytes], tuple[bytes, bytes]]:
    return generate_rsa_pem(), generate_rsa_pem()


def _keyrings(kind: str, pems: Any) -> tuple[Any, Any, Any, Any]:
    """(old keyring, new keyring, ESDK provider for old, ESDK provider for new)."""
    (old_pem, _), (new_pem, _) = pems
    if kind == "aes":
        return (
            RawAesKeyring("ns", "old", OLD_AES),
            RawAesKeyring("ns", "new", NEW_AES),
            StaticRawKeyProvider.create("ns", {"old": aes_wrapping_key(OLD_AES)}),
            StaticRawKeyProvider.create("ns", {"new": aes_wrapping_key(NEW_AES)}),
        )
    if kind == "rsa":
        return (
            RawRsaKeyring("ns", "old", private_key=old_pem, padding="OAEP-SHA256"),
            RawRsaKeyring("ns", "new", private_key=new_pem, padding="OAEP-SHA256"),
            StaticRawKeyProvider.create("ns", {"old": rsa_wrapping_key(old_pem, "OAEP-SHA256")}),
            StaticRawKeyProvider.create("ns", {"new": rsa_wrapping_key(new_pem, "OAEP-SHA256")}),
        )
    # multi: old messages carry two EDKs; the new keyring writes two others.
    old_extra = bytes(range(64, 96))
    return (
        MultiKeyring(RawAesKeyring("ns", "old", OLD_AES), [RawAesKeyring("ns", "old2", old_extra)]),
        MultiKeyring(
            RawAesKeyring("ns", "new", NEW_AES),
            [RawRsaKeyring("ns", "new-rsa", private_key=new_pem, padding="OAEP-SHA1")],
        ),
        StaticRawKeyProvider.create(
            "ns", {"old": aes_wrapping_key(OLD_AES), "old2": aes_wrapping_key(old_extra)}
        ),
        StaticRawKeyProvider.create("ns", {"new-rsa": rsa_wrapping_key(new_pem, "OAEP-SHA1")}),
    )


def _encrypt(keyring: Any, suite: Suite, plaintext: bytes = PLAINTEXT) -> bytes:
    policy = (
        CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
        if suite.committing
        else CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT
    )
    return Envelope(keyring, suite=suite, frame_length=FRAME, commitment_policy=policy).encrypt(
        plaintext, CONTEXT
    )


def _body(message: bytes) -> bytes:
    """The body bytes of a framed message: header and footer cut off."""
    header = Envelope(RawAesKeyring("x", "y", bytes(32))).parse_header(message)
    frames = (len(PLAINTEXT) - 1) // FRAME
    final = len(PLAINTEXT) - frames * FRAME
    length = frames * (FRAME + 32) + final + FINAL_OVERHEAD
    return message[header.size : header.size + length]


@pytest.mark.parametrize("kind", ["aes", "rsa", "multi"])
@pytest.mark.parametrize("suite", list(Suite), ids=lambda s: s.name)
def test_every_suite_and_keyring_rewraps_for_the_esdk(suite: Suite, kind: str, rsa_pems: Any) -> None:
    old, new, esdk_old, esdk_new = _keyrings(kind, rsa_pems)
    message = _encrypt(old, suite)
    rewrapped = kmsenvelope.rewrap(message, old, new, commitment_policy=ALLOW, resign=suite.signing)

    plaintext, header = esdk_decrypt(ALLOW, rewrapped, key_provider=esdk_new)
    assert plaintext == PLAINTEXT
    assert {k: v for k, v in header.encryption_context.items() if not k.startswith("aws-")} == CONTEXT
    assert Envelope(new, commitment_policy=ALLOW).decrypt(rewrapped, CONTEXT) == PLAINTEXT
    # Same message id and body bytes; the old key no longer opens it.
    assert Envelope(new).parse_header(rewrapped).message_id == Envelope(old).parse_header(message).message_id
    assert _body(rewrapped) == _body(message)
    with pytest.raises(AWSEncryptionSDKClientError):
        esdk_decrypt(ALLOW, rewrapped, key_provider=esdk_old)
    with pytest.raises(NoUsableKeyError):
        Envelope(old, commitment_policy=ALLOW).decrypt(rewrapped)


@pytest.mark.parametrize(
    "suite",
    [Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY, Suite.AES_128_GCM_IV12_TAG16_HKDF_SHA256],
    ids=lambda s: s.name,
)
def test_keep_old_keeps_both_keys_working(suite: Suite) -> None:
    old, new = RawAesKeyring("ns", "old", OLD_AES), RawAesKeyring("ns", "new", NEW_AES)
    message = _encrypt(old, suite)
    rewrapped = kmsenvelope.rewrap(message, old, new, keep_old=True, commitment_policy=ALLOW)
    header = Envelope(new).parse_header(rewrapped)
    assert [edk.provider_info[:3] for edk in header.encrypted_data_keys] == [b"new", b"old"]
    for keyring in (old, new):
        assert Envelope(keyring, commitment_policy=ALLOW).decrypt(rewrapped) == PLAINTEXT
    esdk_old = StaticRawKeyProvider.create("ns", {"old": aes_wrapping_key(OLD_AES)})
    assert esdk_decrypt(ALLOW, rewrapped, key_provider=esdk_old)[0] == PLAINTEXT


def test_version_1_header_gets_a_fresh_iv() -> None:
    old, new = RawAesKeyring("ns", "old", OLD_AES), RawAesKeyring("ns", "new", NEW_AES)
    message = _encrypt(old, Suite.AES_256_GCM_IV12_TAG16_HKDF_SHA256)
    before = Envelope(old).parse_header(message)
    after = Envelope(new).parse_header(kmsenvelope.rewrap(message, old, new, commitment_policy=ALLOW))
    assert before.header_iv == bytes(12)
    assert len(after.header_iv) == 12 and after.header_iv != before.header_iv


def test_signed_suites_need_resign_and_get_a_new_public_key() -> None:
    old, new = RawAesKeyring("ns", "old", OLD_AES), RawAesKeyring("ns", "new", NEW_AES)
    message = _encrypt(old, Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384)
    with pytest.raises(PolicyError, match="resign=True"):
        kmsenvelope.rewrap(message, old, new)
    with pytest.raises(PolicyError, match="keep_old"):
        kmsenvelope.rewrap(message, old, new, resign=True, keep_old=True)
    rewrapped = kmsenvelope.rewrap(message, old, new, resign=True)
    key = "aws-crypto-public-key"
    old_context = Envelope(old).parse_header(message).encryption_context
    new_context = Envelope(new).parse_header(rewrapped).encryption_context
    assert new_context[key] != old_context[key]
    assert {k: v for k, v in new_context.items() if k != key} == CONTEXT
    assert Envelope(new).decrypt(rewrapped, CONTEXT) == PLAINTEXT


def test_resign_refuses_an_old_message_whose_signature_does_not_verify() -> None:
    # A reader holding the data key could forge a message with valid frames; its signature would
    # not verify, and re-signing must not launder it.
    old, new = RawAesKeyring("ns", "old", OLD_AES), RawAesKeyring("ns", "new", NEW_AES)
    message = bytearray(_encrypt(old, Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384))
    message[-1] ^= 1
    with pytest.raises(AuthenticationError):
        kmsenvelope.rewrap(bytes(message), old, new, resign=True)
    with pytest.raises(AuthenticationError):
        kmsenvelope.rewrap_stream(io.BytesIO(message), io.BytesIO(), old, new, resign=True)


def test_context_is_checked_as_decrypt_checks_it() -> None:
    old, new = RawAesKeyring("ns", "old", OLD_AES), RawAesKeyring("ns", "new", NEW_AES)
    message = _encrypt(old, Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY)
    with pytest.raises(ContextMismatchError):
        kmsenvelope.rewrap(message, old, new, context={"tenant": "other"})
    assert (
        Envelope(new).decrypt(kmsenvelope.rewrap(message, old, new, context={"tenant": "acme"})) == PLAINTEXT
    )


def test_required_context_pairs_stay_authenticated_and_unstored() -> None:
    old, new = RawAesKeyring("ns", "old", OLD_AES), RawAesKeyring("ns", "new", NEW_AES)
    message = Envelope(RequiredContextMaterials(old, ["tenant"])).encrypt(PLAINTEXT, CONTEXT)
    with pytest.raises(ContextMismatchError):
        kmsenvelope.rewrap(message, RequiredContextMaterials(old, ["tenant"]), new)
    rewrapped = kmsenvelope.rewrap(message, old, new, context={"tenant": "acme"})
    assert "tenant" not in Envelope(new).parse_header(rewrapped).encryption_context
    assert Envelope(new).decrypt(rewrapped, {"tenant": "acme"}) == PLAINTEXT
    with pytest.raises((AuthenticationError, NoUsableKeyError)):  # the raw AES EDK binds the context too
        Envelope(new).decrypt(rewrapped, {"tenant": "evil"})


def test_refusals() -> None:
    old, new = RawAesKeyring("ns", "old", OLD_AES), RawAesKeyring("ns", "new", NEW_AES)
    legacy = _encrypt(old, Suite.AES_256_GCM_IV12_TAG16_HKDF_SHA256)
    with pytest.raises(PolicyError, match="commitment policy"):
        kmsenvelope.rewrap(legacy, old, new)
    message = _encrypt(old, Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY)
    with pytest.raises(NoUsableKeyError):
        kmsenvelope.rewrap(message, new, old)
    with pytest.raises(ConfigurationError):
        kmsenvelope.rewrap(message, old, Envelope(new).materials_manager)  # type: ignore[arg-type]
    with pytest.raises(MalformedInputError):
        kmsenvelope.rewrap(message + b"x", old, new)
    with pytest.raises(MalformedInputError):
        kmsenvelope.rewrap(message[:-1], old, new)
    limits = DecryptLimits(max_encrypted_data_keys=1)
    with pytest.raises(PolicyError, match="encrypted data keys"):
        kmsenvelope.rewrap(message, old, new, keep_old=True, limits=limits)


class _Trickle(io.RawIOBase):
    """A source that hands out at most ``step`` bytes per read, like a pipe."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = min(len(b), self._step, len(self._data))
        b[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


@pytest.mark.parametrize(
    "suite",
    [
        Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
        Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
        Suite.AES_128_GCM_IV12_TAG16_NO_KDF,
        Suite.AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384,
    ],
    ids=lambda s: s.name,
)
def test_stream_matches_in_memory(suite: Suite) -> None:
    old, new = RawAesKeyring("ns", "old", OLD_AES), RawAesKeyring("ns", "new", NEW_AES)
    message = _encrypt(old, suite)
    out = io.BytesIO()
    header = kmsenvelope.rewrap_stream(
        cast(BinaryIO, _Trickle(message, 777)), out, old, new, commitment_policy=ALLOW, resign=suite.signing
    )
    rewrapped = out.getvalue()
    assert header.message_id == Envelope(old).parse_header(message).message_id
    assert header.size == Envelope(new).parse_header(rewrapped).size
    assert _body(rewrapped) == _body(message)
    assert Envelope(new, commitment_policy=ALLOW).decrypt(rewrapped) == PLAINTEXT


def test_stream_copies_non_framed_bodies_and_large_frames_in_chunks() -> None:
    old, new = RawAesKeyring("ns", "old", OLD_AES), RawAesKeyring("ns", "new", NEW_AES)
    plaintext = os.urandom(3 * 1024 * 1024 + 5)
    message = Envelope(old, frame_length=2 * 1024 * 1024).encrypt(plaintext)
    out = io.BytesIO()
    kmsenvelope.rewrap_stream(io.BytesIO(message), out, old, new)
    assert Envelope(new).decrypt(out.getvalue()) == plaintext
    # A non-framed message (version 1, written by the ESDK) is copied too.
    esdk_old = StaticRawKeyProvider.create("ns", {"old": aes_wrapping_key(OLD_AES)})
    non_framed = esdk_encrypt(
        CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT,
        PLAINTEXT,
        suite=Suite.AES_256_GCM_IV12_TAG16_HKDF_SHA256,
        frame_length=0,
        key_provider=esdk_old,
    )
    assert not Envelope(old).parse_header(non_framed).framed
    for rewrapped in (
        kmsenvelope.rewrap(non_framed, old, new, commitment_policy=ALLOW),
        _stream(non_framed, old, new),
    ):
        esdk_new = StaticRawKeyProvider.create("ns", {"new": aes_wrapping_key(NEW_AES)})
        assert esdk_decrypt(ALLOW, rewrapped, key_provider=esdk_new)[0] == PLAINTEXT


def _stream(message: bytes, old: Any, new: Any, **kwargs: Any) -> bytes:
    out = io.BytesIO()
    kmsenvelope.rewrap_stream(io.BytesIO(message), out, old, new, commitment_policy=ALLOW, **kwargs)
    return out.getvalue()


_TAMPER_SUITES = [
    Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
    Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
    Suite.AES_256_GCM_IV12_TAG16_HKDF_SHA256,
]
_SMALL = random_bytes(700, seed=3)
_OLD = RawAesKeyring("ns", "old", OLD_AES)
_NEW = RawAesKeyring("ns", "new", NEW_AES)
_MESSAGES = {
    suite: Envelope(
        _OLD,
        suite=suite,
        frame_length=256,
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
        if suite.committing
        else CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT,
    ).encrypt(_SMALL, CONTEXT)
    for suite in _TAMPER_SUITES
}
_ESDK_NEW = StaticRawKeyProvider.create("ns", {"new": aes_wrapping_key(NEW_AES)})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    suite=st.sampled_from(_TAMPER_SUITES),
    where=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    flip=st.integers(min_value=1, max_value=255),
    streaming=st.booleans(),
)
def test_tampering_anywhere_fails_the_rewrap_or_every_reader(
    suite: Suite, where: float, flip: int, streaming: bool
) -> None:
    original = _MESSAGES[suite]
    tampered = bytearray(original)
    tampered[int(where * len(tampered))] ^= flip
    try:
        if streaming:
            rewrapped = _stream(bytes(tampered), _OLD, _NEW, resign=suite.signing)
        else:
            rewrapped = kmsenvelope.rewrap(
                bytes(tampered), _OLD, _NEW, commitment_policy=ALLOW, resign=suite.signing
            )
    except KmsEnvelopeError:
        return
    with pytest.raises(KmsEnvelopeError):
        Envelope(_NEW, commitment_policy=ALLOW).decrypt(rewrapped)
    with pytest.raises(KmsEnvelopeError):
        kmsenvelope.Envelope(_NEW, commitment_policy=ALLOW).decrypt_stream(
            io.BytesIO(rewrapped), io.BytesIO()
        )
    with pytest.raises((AWSEncryptionSDKClientError, InvalidTag)):  # the ESDK lets InvalidTag through
        esdk_decrypt(ALLOW, rewrapped, key_provider=_ESDK_NEW)


@pytest.mark.parametrize("zero_copy", [True, False], ids=["kernel-copy", "python-copy"])
def test_file_to_file_both_copy_paths(tmp_path: Any, zero_copy: bool, monkeypatch: Any) -> None:
    from kmsenvelope.message import body_copy

    monkeypatch.setattr(body_copy, "ZERO_COPY", zero_copy)
    old, new = RawAesKeyring("ns", "old", OLD_AES), RawAesKeyring("ns", "new", NEW_AES)
    message = _encrypt(old, Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY)
    source, target = tmp_path / "in.enc", tmp_path / "out.enc"
    source.write_bytes(b"prefix" + message)  # the message need not start the file
    with open(source, "rb") as src, open(target, "wb") as dst:
        src.seek(6)
        kmsenvelope.rewrap_stream(src, dst, old, new)
        assert src.tell() == len(message) + 6
        dst.flush()
        assert dst.tell() == os.fstat(dst.fileno()).st_size  # the writer knows where the copy ended
    rewrapped = target.read_bytes()
    assert _body(rewrapped) == _body(message)
    assert Envelope(new).decrypt(rewrapped, CONTEXT) == PLAINTEXT

    bad_bodies = {
        "truncated": message[:-1],
        "trailing": message + b"x",
        "out of sequence": _swap_first_frames(message),
    }
    for bad in bad_bodies.values():
        source.write_bytes(bad)
        with open(source, "rb") as src, open(target, "wb") as dst, pytest.raises(MalformedInputError):
            kmsenvelope.rewrap_stream(src, dst, old, new)


def _swap_first_frames(message: bytes) -> bytes:
    header = Envelope(RawAesKeyring("x", "y", bytes(32))).parse_header(message)
    frame = 4 + 12 + FRAME + 16
    first = message[header.size : header.size + frame]
    second = message[header.size + frame : header.size + 2 * frame]
    return message[: header.size] + second + first + message[header.size + 2 * frame :]


def test_the_exported_names_stay_functions_after_every_import() -> None:
    # A submodule named like an export would replace it on the package once imported.
    import importlib

    for module in ("kmsenvelope.rewrapping", "kmsenvelope.cli.rewrap_cmd", "kmsenvelope.aws.s3_rewrap"):
        importlib.import_module(module)
    assert kmsenvelope.rewrap.__name__ == "rewrap" and callable(kmsenvelope.rewrap)
    assert kmsenvelope.rewrap_stream.__name__ == "rewrap_stream"
    assert "rewrap" in kmsenvelope.__all__ and "rewrap_stream" in kmsenvelope.__all__
    from kmsenvelope import aws

    assert aws.rewrap_object.__name__ == "rewrap_object"


class _Discard(io.RawIOBase):
    """A sink that keeps nothing but a byte count and a running hash of what it was given."""

    def __init__(self) -> None:
        import hashlib

        self.count = 0
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.count += len(data)
        self.digest.update(data)
        return len(data)


@pytest.mark.parametrize(
    "suite", [Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY, Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384]
)
def test_stream_memory_stays_bounded_by_the_copy_buffer(suite: Suite) -> None:
    import hashlib
    import tracemalloc

    old, new = RawAesKeyring("ns", "old", OLD_AES), RawAesKeyring("ns", "new", NEW_AES)
    message = Envelope(old, suite=suite, frame_length=4 * 1024 * 1024).encrypt(os.urandom(24 * 1024 * 1024))
    src, sink = io.BytesIO(message), _Discard()
    tracemalloc.start()
    try:
        header = kmsenvelope.rewrap_stream(
            cast(BinaryIO, src), cast(BinaryIO, sink), old, new, resign=suite.signing
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * 1024 * 1024, peak  # 4 MiB frames, a 1 MiB copy buffer, a 24 MiB message
    old_header = Envelope(old).parse_header(message)
    new_header = header.body + header.header_iv + header.header_tag
    if suite.signing:
        # Header, the same body, and a footer of 2 + at most 104 bytes in place of the old one.
        old_footer = len(message) - _signed_body_end(message)
        extra = sink.count - len(new_header) - (len(message) - old_header.size - old_footer)
        assert 2 < extra <= 2 + 104
    else:
        assert sink.count == len(new_header) + len(message) - old_header.size
        assert sink.digest.hexdigest() == hashlib.sha256(new_header + message[old_header.size :]).hexdigest()


def _signed_body_end(message: bytes) -> int:
    from kmsenvelope.message.body import scan_framed
    from kmsenvelope.message.codec import Reader

    header = Envelope(RawAesKeyring("x", "y", bytes(32))).parse_header(message)
    reader = Reader(message, header.size)
    scan_framed(reader, header.frame_length)
    return reader.pos
