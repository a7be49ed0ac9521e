"""Hostile encrypted data keys and hostile streams, each with the exact error class it must raise.

``test_hostile_headers.py`` covers the header's layout; here the header is well formed and the EDKs
in it are not: too short, the wrong size, naming unknown branch key versions, KMS provider infos that
are not key ARNs. Each keyring must refuse such an EDK with a reason, without calling KMS, and the
caller sees exactly :class:`NoUsableKeyError`. The streaming reader gets sources that never end, bodies
that claim 2**36 bytes and frames declared 64 MiB long that hold one byte: it must stop early and
allocate only what the input actually holds.
"""

from __future__ import annotations

import functools
import io
import os
import time
import tracemalloc
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kmsenvelope import (
    CachingMaterials,
    DiscoveryFilter,
    Envelope,
    KmsDiscoveryKeyring,
    KmsKeyring,
    MultiKeyring,
    RawAesKeyring,
    RawRsaKeyring,
)
from kmsenvelope.aws.key_store import StaticBranchKeyStore
from kmsenvelope.errors import MalformedInputError, NoUsableKeyError, PolicyError
from kmsenvelope.keyrings.hierarchical import HierarchicalKeyring
from kmsenvelope.materials.materials import EncryptedDataKey
from kmsenvelope.message.codec import TruncatedInputError
from kmsenvelope.message.header import DecryptLimits
from kmsenvelope.suites import Suite
from kmsenvelope.testing import LocalAws

from .fuzz._common import non_framed_message

AES = RawAesKeyring("hostile", "aes", os.urandom(32))
STORE = StaticBranchKeyStore("bk", str(uuid.uuid4()), os.urandom(32), os.urandom(32))
HIERARCHICAL = HierarchicalKeyring(STORE, branch_key_id="bk")
_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA = RawRsaKeyring(
    "hostile",
    "rsa",
    private_key=_RSA.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ),
)
ACCOUNT = "123456789012"


def _edk_bytes(edks: Sequence[EncryptedDataKey]) -> bytes:
    out = [len(edks).to_bytes(2, "big")]
    for edk in edks:
        for field in (edk.provider_id.encode(), edk.provider_info, edk.ciphertext):
            out += (len(field).to_bytes(2, "big"), field)
    return b"".join(out)


def with_edks(edks: Sequence[EncryptedDataKey], message: bytes | None = None) -> bytes:
    """A real v2 message (no context) whose EDKs are replaced: the header is well formed, its tag stale."""
    message = Envelope(AES).encrypt(b"hostile") if message is None else message
    header = Envelope(AES).parse_header(message)
    start = 1 + 2 + 32 + 2
    end = start + len(_edk_bytes(header.encrypted_data_keys))
    return message[:start] + _edk_bytes(edks) + message[end:]


def _aes_info(keyring: RawAesKeyring, iv: bytes = bytes(12)) -> bytes:
    return keyring.name.encode() + (128).to_bytes(4, "big") + (12).to_bytes(4, "big") + iv


def _hierarchical_ciphertext(version: str, body: bytes) -> bytes:
    return os.urandom(16) + os.urandom(12) + uuid.UUID(version).bytes + body


def _raises_exactly(expected: type[Exception], call: Callable[[], object]) -> Any:
    with pytest.raises(expected) as info:
        call()
    assert type(info.value) is expected, f"{type(info.value).__name__}: {info.value}"
    return info.value


# (case id, keyring, EDKs, text every failure reason must contain)
EDK_CASES: list[tuple[str, Any, list[EncryptedDataKey], str]] = [
    (
        "aes-ciphertext-shorter-than-the-tag",
        AES,
        [EncryptedDataKey("hostile", _aes_info(AES), b"\x00" * 15)],
        "MalformedInputError: raw AES EDK ciphertext is too short",
    ),
    (
        "aes-ciphertext-garbage",
        AES,
        [EncryptedDataKey("hostile", _aes_info(AES), os.urandom(48))],
        "AuthenticationError",
    ),
    (
        "aes-info-truncated",
        AES,
        [EncryptedDataKey("hostile", _aes_info(AES)[:-1], b"")],
        "not for RawAesKeyring",
    ),
    ("aes-info-65535", AES, [EncryptedDataKey("hostile", b"a" * 65535, b"")], "not for RawAesKeyring"),
    (
        "rsa-ciphertext-garbage",
        RSA,
        [EncryptedDataKey("hostile", b"rsa", os.urandom(256))],
        "AuthenticationError",
    ),
    ("rsa-ciphertext-empty", RSA, [EncryptedDataKey("hostile", b"rsa", b"")], "AuthenticationError"),
    (
        "rsa-ciphertext-65535",
        RSA,
        [EncryptedDataKey("hostile", b"rsa", b"\xff" * 65535)],
        "AuthenticationError",
    ),
    (
        "hierarchical-no-room-for-a-key",
        HIERARCHICAL,
        [EncryptedDataKey("aws-kms-hierarchy", b"bk", bytes(60))],
        "MalformedInputError: hierarchical EDK ciphertext is too short",
    ),
    (
        "hierarchical-unknown-version",
        HIERARCHICAL,
        [
            EncryptedDataKey(
                "aws-kms-hierarchy", b"bk", _hierarchical_ciphertext(str(uuid.uuid4()), bytes(48))
            )
        ],
        "KeyStoreError",
    ),
    (
        "hierarchical-other-branch-key",
        HIERARCHICAL,
        [EncryptedDataKey("aws-kms-hierarchy", b"other", bytes(100))],
        "different branch key id",
    ),
    (
        "hierarchical-garbage",
        HIERARCHICAL,
        [
            EncryptedDataKey(
                "aws-kms-hierarchy",
                b"bk",
                _hierarchical_ciphertext(
                    STORE.get_active_branch_key("bk").branch_key_version, os.urandom(48)
                ),
            )
        ],
        "AuthenticationError",
    ),
]


def test_the_untouched_messages_decrypt() -> None:
    """The controls: each keyring decrypts its own message, and a spliced valid EDK still parses."""
    for keyring in (AES, RSA, HIERARCHICAL):
        envelope = Envelope(keyring)
        assert envelope.decrypt(envelope.encrypt(b"ok")) == b"ok"
    message = Envelope(AES).encrypt(b"x")
    assert with_edks(Envelope(AES).parse_header(message).encrypted_data_keys, message) == message


@pytest.mark.parametrize(("case", "keyring", "edks", "reason"), EDK_CASES, ids=[c[0] for c in EDK_CASES])
def test_hostile_edk(case: str, keyring: Any, edks: list[EncryptedDataKey], reason: str) -> None:
    message = with_edks(edks)
    error = _raises_exactly(NoUsableKeyError, lambda: Envelope(keyring).decrypt(message))
    assert len(error.failures) == len(edks)
    assert all(reason in failure.reason for failure in error.failures), error.failures
    # Through a multi-keyring the same failure is reported, next to the other keyrings' reasons.
    multi = MultiKeyring(children=[AES, HIERARCHICAL, RSA])
    error = _raises_exactly(NoUsableKeyError, lambda: Envelope(multi).decrypt(message))
    assert any(reason in failure.reason for failure in error.failures), error.failures


def test_caching_never_caches_a_failure() -> None:
    caching = CachingMaterials(AES, max_age=60)
    message = with_edks([EncryptedDataKey("hostile", _aes_info(AES), os.urandom(48))])
    for _ in range(2):
        _raises_exactly(NoUsableKeyError, lambda: Envelope(caching).decrypt(message))
    assert len(caching.cache) == 0


def test_many_junk_edks_without_an_edk_limit_stay_bounded() -> None:
    """No EDK limit configured: a header of 60,000 junk EDKs (just under 1 MiB, the default header limit)
    is refused in bounded time. With ``max_encrypted_data_keys`` it is refused by count, before any
    keyring runs."""
    junk = EncryptedDataKey("hostile", b"xyz", b"")
    message = with_edks([junk] * 60_000)
    assert 950_000 < len(message) < 1 << 20
    started = time.process_time()
    error = _raises_exactly(NoUsableKeyError, lambda: Envelope(AES).decrypt(message))
    assert time.process_time() - started < 5
    assert len(error.failures) == 60_000
    _raises_exactly(PolicyError, lambda: Envelope(AES, max_encrypted_data_keys=10).decrypt(message))


# -- KMS EDKs: refused before any request ----------------------------------------------------------

KMS_EDK_CASES = [
    ("not-an-arn", b"1234abcd-12ab-34cd-56ef-1234567890ab", "not a valid AWS KMS key ARN"),
    ("alias-arn", f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/hostile".encode(), "not a valid AWS KMS key ARN"),
    ("not-utf8", b"arn:aws:kms:\xff", "not a valid AWS KMS key ARN"),
    ("empty", b"", "not a valid AWS KMS key ARN"),
    ("65535-bytes", b"arn:aws:kms:" + b"a" * 65523, "not a valid AWS KMS key ARN"),
]


@pytest.mark.parametrize(("case", "info", "reason"), KMS_EDK_CASES, ids=[c[0] for c in KMS_EDK_CASES])
def test_kms_edk_that_is_not_a_key_arn(local_aws: LocalAws, case: str, info: bytes, reason: str) -> None:
    key = local_aws.create_key("us-east-1")
    supplier = local_aws.client_supplier()
    local_aws.reset()
    message = with_edks([EncryptedDataKey("aws-kms", info, os.urandom(100))])
    for keyring in (
        KmsKeyring(key, client_supplier=supplier),
        KmsDiscoveryKeyring("us-east-1", client_supplier=supplier),
    ):
        error = _raises_exactly(NoUsableKeyError, functools.partial(Envelope(keyring).decrypt, message))
        assert any(reason in failure.reason for failure in error.failures), error.failures
    assert local_aws.requests() == ()  # refused from the bytes alone


def test_kms_edks_for_other_keys_send_no_request(local_aws: LocalAws) -> None:
    key = local_aws.create_key("us-east-1")
    supplier = local_aws.client_supplier()
    local_aws.reset()
    other_account = f"arn:aws:kms:us-east-1:999999999999:key/{uuid.uuid4()}"
    other_region = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{uuid.uuid4()}"
    message = with_edks(
        [EncryptedDataKey("aws-kms", arn.encode(), os.urandom(100)) for arn in (other_account, other_region)]
    )
    error = _raises_exactly(
        NoUsableKeyError, lambda: Envelope(KmsKeyring(key, client_supplier=supplier)).decrypt(message)
    )
    assert [f.reason for f in error.failures] == ["does not match any configured KMS key"] * 2
    discovery = KmsDiscoveryKeyring(
        "us-east-1", discovery_filter=DiscoveryFilter("aws", [ACCOUNT]), client_supplier=supplier
    )
    error = _raises_exactly(NoUsableKeyError, lambda: Envelope(discovery).decrypt(message))
    assert [f.reason.split(":")[0] for f in error.failures] == ["filtered out"] * 2
    assert local_aws.requests() == ()


# -- streams ---------------------------------------------------------------------------------------


class EndlessSource:
    """``prefix`` then ``pattern`` forever; counts what was read."""

    def __init__(self, prefix: bytes, pattern: bytes) -> None:
        self._prefix = prefix
        self._pattern = pattern
        self._at = 0  # position in the pattern
        self.consumed = 0

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            raise AssertionError("an endless source cannot be read to its end")
        out = bytearray(self._prefix[:n])
        self._prefix = self._prefix[n:]
        while len(out) < n:
            piece = self._pattern[self._at : self._at + n - len(out)]
            out += piece
            self._at = (self._at + len(piece)) % len(self._pattern)
        self.consumed += n
        return bytes(out)


def _peak(call: Callable[[], object]) -> tuple[object, int]:
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


def _stream(envelope: Envelope, source: Any) -> bytes:
    sink = io.BytesIO()
    envelope.decrypt_stream(source, sink)
    return sink.getvalue()


def test_a_header_that_never_ends() -> None:
    """65535 EDKs with 64 KiB provider ids, streamed without end: refused once past the header limit."""
    prefix = b"\x02\x04\x78" + bytes(32) + b"\x00\x00" + b"\xff\xff"
    edk = b"\xff\xff" + b"a" * 0xFFFF + b"\x00\x00\x00\x00"
    for limit in (4096, 1 << 20):
        source = EndlessSource(prefix, edk)
        envelope = Envelope(AES, limits=DecryptLimits(max_header_size=limit))
        _raises_exactly(PolicyError, functools.partial(_stream, envelope, source))
        assert source.consumed <= 2 * limit + 1024


def test_frames_declared_64_mib_holding_one_byte() -> None:
    """Memory follows the bytes received, not the frame length the (authentic) header declares."""
    envelope = Envelope(AES, frame_length=1 << 26)
    message = envelope.encrypt(b"x")
    assert envelope.decrypt(message) == b"x"
    _stream(envelope, io.BytesIO(message))  # warm up lazy imports
    result, peak = _peak(lambda: _stream(envelope, io.BytesIO(message)))
    assert result == b"x"
    assert peak < 1 << 20, f"streaming a one-byte frame allocated {peak} bytes"
    result, peak = _peak(lambda: _stream(envelope, io.BytesIO(message[:-10])))
    assert type(result) is TruncatedInputError
    assert peak < 1 << 20, f"a truncated one-byte frame allocated {peak} bytes"


def test_non_framed_body_claiming_2_to_the_36_bytes_in_a_stream() -> None:
    """Refused by the streaming limit right after the length field, before any body byte is read."""
    message = non_framed_message(Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY, AES, b"body", {})
    header_size = Envelope(AES).parse_header(message).size
    length_at = header_size + 12
    hostile = message[:length_at] + (1 << 36).to_bytes(8, "big")
    assert Envelope(AES).decrypt(message) == b"body"
    source = EndlessSource(hostile, b"\x00")
    error = _raises_exactly(PolicyError, lambda: _stream(Envelope(AES), source))
    assert "exceeds the streaming limit" in str(error)
    assert source.consumed <= len(hostile) + 1024


def test_final_frame_longer_than_the_frame_length_in_a_stream() -> None:
    envelope = Envelope(AES, frame_length=16)
    message = envelope.encrypt(b"0123456789")
    length_at = envelope.parse_header(message).size + 4 + 4 + 12
    hostile = message[:length_at] + (17).to_bytes(4, "big") + message[length_at + 4 :]
    _raises_exactly(MalformedInputError, lambda: _stream(envelope, io.BytesIO(hostile)))
    hostile = message[:length_at] + b"\xff\xff\xff\xff" + message[length_at + 4 :]
    _raises_exactly(MalformedInputError, lambda: _stream(envelope, io.BytesIO(hostile)))


@pytest.mark.parametrize("cut", [0, 1, 3, 40, -17, -1])
def test_streams_that_stop_early(cut: int) -> None:
    envelope = Envelope(AES, frame_length=8)
    message = envelope.encrypt(b"0123456789abcdef0123")
    _raises_exactly(TruncatedInputError, lambda: _stream(envelope, io.BytesIO(message[:cut])))
