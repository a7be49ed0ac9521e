"""Rewrapping a version 2 message reuses its header tag's AES-GCM key and all-zero IV, so it is opt-in.

Without ``allow_header_nonce_reuse=True`` every committing suite is refused before any key is used,
any byte written or any upload started; version 1 suites (fresh header IV) need no flag. The last tests
show the reuse is real: both header tags are AES-GCM under one derived key and IV 0, so their XOR is a
polynomial in the GHASH key H with public coefficients, and whoever holds H forges frames.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import kmsenvelope
from kmsenvelope import CommitmentPolicy, Envelope, KmsKeyring, RawAesKeyring, Suite
from kmsenvelope.aws import rewrap_object
from kmsenvelope.errors import PolicyError
from kmsenvelope.materials.materials import DecryptionMaterials, EncryptedDataKey, EncryptionMaterials
from kmsenvelope.testing import LocalAws

ALLOW = CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT
CONTEXT = {"tenant": "acme", "purpose": "nonce"}
PLAINTEXT = os.urandom(3000)
FRAME = 1024
MIB = 1024 * 1024
COMMITTING = [suite for suite in Suite if suite.committing]
LEGACY = [suite for suite in Suite if not suite.committing]


class CountingKeyring:
    """A raw AES keyring that counts its calls and remembers the data key it unwrapped."""

    def __init__(self, name: str, key: bytes) -> None:
        self._inner = RawAesKeyring("ns", name, key)
        self.calls = 0
        self.data_key: bytes | None = None

    def on_encrypt(self, materials: EncryptionMaterials) -> EncryptionMaterials:
        self.calls += 1
        return self._inner.on_encrypt(materials)

    def on_decrypt(
        self, materials: DecryptionMaterials, edks: Sequence[EncryptedDataKey]
    ) -> DecryptionMaterials:
        self.calls += 1
        opened = self._inner.on_decrypt(materials, edks)
        self.data_key = opened.plaintext_data_key
        return opened


def _keyrings() -> tuple[CountingKeyring, CountingKeyring]:
    return CountingKeyring("old", bytes(range(32))), CountingKeyring("new", bytes(range(32, 64)))


def _encrypt(keyring: Any, suite: Suite) -> bytes:
    policy = (
        CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
        if suite.committing
        else CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT
    )
    envelope = Envelope(keyring, suite=suite, frame_length=FRAME, commitment_policy=policy)
    return envelope.encrypt(PLAINTEXT, CONTEXT)


def test_the_committing_suites_are_the_version_2_ones() -> None:
    assert [s.id for s in COMMITTING] == [0x0478, 0x0578]
    old, _ = _keyrings()
    for suite in Suite:
        assert Envelope(old).parse_header(_encrypt(old, suite)).version == (2 if suite.committing else 1)


@pytest.mark.parametrize("suite", COMMITTING, ids=lambda s: s.name)
def test_version_2_is_refused_by_default_before_any_key_or_byte(suite: Suite, tmp_path: Any) -> None:
    old, new = _keyrings()
    message = _encrypt(old, suite)
    old.calls = 0
    with pytest.raises(PolicyError, match="allow_header_nonce_reuse=True") as refused:
        kmsenvelope.rewrap(message, old, new, resign=suite.signing)
    assert "forge" in str(refused.value) and "re-encrypt" in str(refused.value)
    dst = io.BytesIO()
    with pytest.raises(PolicyError, match="allow_header_nonce_reuse"):
        kmsenvelope.rewrap_stream(io.BytesIO(message), dst, old, new, resign=suite.signing)
    assert dst.getvalue() == b""
    source, target = tmp_path / "in.enc", tmp_path / "out.enc"
    source.write_bytes(message)
    with open(source, "rb") as src, open(target, "wb") as out, pytest.raises(PolicyError):
        kmsenvelope.rewrap_stream(src, out, old, new, resign=suite.signing)
    assert target.read_bytes() == b""
    # Neither keyring was asked anything: the header's version decides, before the data key is opened.
    assert (old.calls, new.calls) == (0, 0)

    rewrapped = kmsenvelope.rewrap(message, old, new, resign=suite.signing, allow_header_nonce_reuse=True)
    assert Envelope(new).decrypt(rewrapped, CONTEXT) == PLAINTEXT


@pytest.mark.parametrize("suite", LEGACY, ids=lambda s: s.name)
def test_version_1_needs_no_flag(suite: Suite) -> None:
    old, new = _keyrings()
    message = _encrypt(old, suite)
    rewrapped = kmsenvelope.rewrap(message, old, new, commitment_policy=ALLOW, resign=suite.signing)
    out = io.BytesIO()
    kmsenvelope.rewrap_stream(
        io.BytesIO(message), out, old, new, commitment_policy=ALLOW, resign=suite.signing
    )
    for result in (rewrapped, out.getvalue()):
        assert Envelope(new, commitment_policy=ALLOW).decrypt(result, CONTEXT) == PLAINTEXT


def test_kms_default_refusal_makes_no_kms_request(local_aws: LocalAws) -> None:
    supplier = local_aws.client_supplier()
    old_key, new_key = local_aws.create_key("us-east-1"), local_aws.create_key("us-east-1")
    old, new = KmsKeyring(old_key, client_supplier=supplier), KmsKeyring(new_key, client_supplier=supplier)
    message = Envelope(old).encrypt(PLAINTEXT, CONTEXT)
    local_aws.reset()
    with pytest.raises(PolicyError):
        kmsenvelope.rewrap(message, old, new)
    with pytest.raises(PolicyError):
        kmsenvelope.rewrap_stream(io.BytesIO(message), io.BytesIO(), old, new)
    assert local_aws.requests() == ()
    kmsenvelope.rewrap(message, old, new, allow_header_nonce_reuse=True)
    assert sorted(r.operation for r in local_aws.requests()) == ["Decrypt", "Encrypt"]  # the recorder works


def test_s3_default_refusal_uploads_nothing(local_aws: LocalAws) -> None:
    supplier = local_aws.client_supplier()
    old_key, new_key = local_aws.create_key("us-east-1"), local_aws.create_key("us-east-1")
    old, new = KmsKeyring(old_key, client_supplier=supplier), KmsKeyring(new_key, client_supplier=supplier)
    s3 = local_aws.client("s3", "us-east-1")
    bucket = f"nonce-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    bodies = {
        "small": Envelope(old).encrypt(b"small", CONTEXT),  # rewrapped in memory
        "large": Envelope(old).encrypt(os.urandom(7 * MIB), CONTEXT),  # header plus UploadPartCopy
        "signed": Envelope(old, suite=Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384).encrypt(
            os.urandom(7 * MIB), CONTEXT
        ),  # streamed through a multipart upload
    }
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    local_aws.reset()
    operations: list[str] = []  # botocore names each S3 operation the client makes
    s3.meta.events.register("before-call.s3", lambda model, **_: operations.append(model.name))
    for key in bodies:
        for dest_key in (key, f"{key}.moved"):
            with pytest.raises(PolicyError, match="allow_header_nonce_reuse"):
                rewrap_object(
                    s3,
                    bucket,
                    key,
                    old,
                    new,
                    dest_key=dest_key,
                    resign=key == "signed",
                    multipart_threshold=6 * MIB,
                )
    assert local_aws.requests() == ()  # no KMS call
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert listed == sorted(bodies)
    for key, body in bodies.items():
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert set(operations) == {
        "HeadObject",
        "GetObjectTagging",
        "GetObject",
        "ListMultipartUploads",
        "ListObjectsV2",
    }

    result = rewrap_object(
        s3, bucket, "large", old, new, multipart_threshold=6 * MIB, allow_header_nonce_reuse=True
    )
    assert result.copied_in_s3 > 0
    assert {"CreateMultipartUpload", "UploadPart", "UploadPartCopy"} <= set(operations)  # the hook sees them


# --- The reuse the flag accepts, shown with the bytes ------------------------------------------------


def _gf_mult(x: int, y: int) -> int:
    """Multiplication in GCM's GF(2^128) (bit 0 of the field element is the block's leftmost bit)."""
    product, v = 0, y
    for bit in range(127, -1, -1):
        if (x >> bit) & 1:
            product ^= v
        v = (v >> 1) ^ (0xE1 << 120) if v & 1 else v >> 1
    return product


def _ghash(h: int, aad: bytes, ciphertext: bytes) -> int:
    def blocks(data: bytes) -> list[bytes]:
        padded = data + bytes(-len(data) % 16)
        return [padded[i : i + 16] for i in range(0, len(padded), 16)]

    lengths = (8 * len(aad)).to_bytes(8, "big") + (8 * len(ciphertext)).to_bytes(8, "big")
    y = 0
    for block in [*blocks(aad), *blocks(ciphertext), lengths]:
        y = _gf_mult(y ^ int.from_bytes(block, "big"), h)
    return y


def _hkdf(data_key: bytes, message_id: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA512(), length=32, salt=message_id, info=info).derive(data_key)


def _split_header(message: bytes, size: int) -> tuple[bytes, bytes]:
    """(header body, header tag) of a version 2 header of ``size`` bytes: the tag is its last 16 bytes."""
    return message[: size - 16], message[size - 16 : size]


def test_both_header_tags_use_one_key_and_iv_zero_so_h_forges_frames() -> None:
    suite = Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY
    old, new = _keyrings()
    message = _encrypt(old, suite)
    rewrapped = kmsenvelope.rewrap(message, old, new, allow_header_nonce_reuse=True)
    assert old.data_key is not None
    old_header, new_header = Envelope(old).parse_header(message), Envelope(new).parse_header(rewrapped)
    message_id = old_header.message_id
    assert new_header.message_id == message_id

    # The derived key, computed here from the spec (HKDF-SHA512, salt = message id); the commitment
    # stored in the header confirms it is the message's.
    suite_id = suite.id.to_bytes(2, "big")
    key = _hkdf(old.data_key, message_id, suite_id + b"DERIVEKEY")
    assert (
        _hkdf(old.data_key, message_id, b"COMMITKEY")
        == message[old_header.size - 16 - 32 : old_header.size - 16]
    )

    old_body, old_tag = _split_header(message, old_header.size)
    new_body, new_tag = _split_header(rewrapped, new_header.size)
    assert old_body != new_body and old_tag != new_tag
    zero_iv = bytes(12)
    assert AESGCM(key).encrypt(zero_iv, b"", old_body) == old_tag
    assert AESGCM(key).encrypt(zero_iv, b"", new_body) == new_tag  # same key, same IV: a reused nonce

    # Tag = GHASH_H(A) xor E_K(J0); with one key and IV the mask cancels, so old_tag xor new_tag is a
    # polynomial in H whose coefficients anyone holding both ciphertexts reads off the headers. Its
    # roots (a handful, found with standard root finding, not done here) include H.
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    h = int.from_bytes(encryptor.update(bytes(16)) + encryptor.finalize(), "big")
    difference = int.from_bytes(old_tag, "big") ^ int.from_bytes(new_tag, "big")
    assert difference == _ghash(h, old_body, b"") ^ _ghash(h, new_body, b"")

    # H is the GHASH key of every frame too (same derived key). H is computed from the key above, as a
    # stand-in for that root finding; from here on no key is used: with H and a frame's own tag, flip
    # a plaintext bit and fix the tag, and the rewrapped message decrypts to the forgery.
    start = new_header.size
    sequence = rewrapped[start : start + 4]  # then the frame's IV, which the tag's mask depends on
    assert int.from_bytes(sequence, "big") == 1
    ciphertext = rewrapped[start + 16 : start + 16 + FRAME]
    tag = rewrapped[start + 16 + FRAME : start + 32 + FRAME]
    aad = message_id + b"AWSKMSEncryptionClient Frame" + sequence + FRAME.to_bytes(8, "big")
    mask = int.from_bytes(tag, "big") ^ _ghash(h, aad, ciphertext)
    flipped = bytearray(ciphertext)
    flipped[0] ^= 0x01
    forged_tag = (_ghash(h, aad, bytes(flipped)) ^ mask).to_bytes(16, "big")
    forged = rewrapped[: start + 16] + bytes(flipped) + forged_tag + rewrapped[start + 32 + FRAME :]
    plaintext = Envelope(new).decrypt(forged, CONTEXT)
    assert plaintext[0] == PLAINTEXT[0] ^ 0x01 and plaintext[1:] == PLAINTEXT[1:]
