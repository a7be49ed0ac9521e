"""Structured encryption building blocks: canonical paths, field keys, header, footer, contexts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from kmsenvelope.errors import AuthenticationError, MalformedInputError, SignatureError
from kmsenvelope.materials.materials import EncryptedDataKey
from kmsenvelope.structured.context import canonical_path, serialize_context, v2_context
from kmsenvelope.structured.crypt import decrypt_fields, encrypt_fields
from kmsenvelope.structured.footer import SIGNATURE_LENGTH, canonical_hash, make_footer, verify_footer
from kmsenvelope.structured.header import (
    RecordKeys,
    parse_header,
    serialize_header,
    serialize_partial_header,
)
from kmsenvelope.structured.model import Terminal
from kmsenvelope.suites import DbeSuite

HMAC_ONLY = DbeSuite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_SYMSIG_HMAC_SHA384
SIGNING = DbeSuite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384_SYMSIG_HMAC_SHA384
EDKS = (EncryptedDataKey("aws-kms-hierarchy", b"bk", b"c" * 140), EncryptedDataKey("raw", b"\xff\x00", b"d"))


def test_suite_ids_match_the_flavors() -> None:
    assert HMAC_ONLY.id == 0x6700 and not HMAC_ONLY.signing
    assert SIGNING.id == 0x6701 and SIGNING.signing
    assert all(suite.symmetric_signature and suite.committing for suite in DbeSuite)


def test_canonical_path_bytes() -> None:
    path = canonical_path("GazelleVectorTable", "RecNum")
    assert path == b"GazelleVectorTable" + (1).to_bytes(8, "big") + b"$" + (6).to_bytes(8, "big") + b"RecNum"
    # Shorter names sort first: the key length precedes the key.
    names = sorted(["Stuff", "RecNum", "Junk"], key=lambda n: canonical_path("T", n))
    assert names == ["Junk", "Stuff", "RecNum"]
    # Key lengths count UTF-16 code units, as the reference implementation's string length does.
    assert canonical_path("T", "é")[-10:] == (1).to_bytes(8, "big") + "é".encode()
    assert canonical_path("T", "\U00010002")[-12:] == (2).to_bytes(8, "big") + "\U00010002".encode()


def test_field_keys_are_the_ctr_stream_at_three_blocks_per_field() -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from kmsenvelope.structured.model import Action

    root = os.urandom(32)
    # Five encrypted fields between two signed ones, in canonical-path order.
    names = [f"f{offset}" for offset in range(5)]
    signed = [(b"p-plain-a", "plain_a", Action.SIGN_ONLY)]
    signed += [(b"p-" + name.encode(), name, Action.ENCRYPT_AND_SIGN) for name in names]
    signed += [(b"p-plain-b", "plain_b", Action.SIGN_ONLY)]
    record = {name: Terminal(b"\x00\x01", b"value %d" % offset) for offset, name in enumerate(names)}
    record |= {"plain_a": Terminal(b"\x00\x02", b"1"), "plain_b": Terminal(b"\x00\x01", b"b")}
    stored: dict[str, Terminal] = {}
    encrypt_fields(root, signed, record, stored, b"H", b"\x00\x00")
    assert set(stored) == set(names)
    for offset, name in enumerate(names):
        nonce = b"AwsDbeField\x2c" + (3 * offset).to_bytes(4, "big")
        stream = Cipher(algorithms.AES(root), modes.CTR(nonce)).encryptor().update(bytes(44))
        assert stored[name].type_id == b"\xff\xff"
        assert stored[name].value[:2] == b"\x00\x01"
        path = b"p-" + name.encode()
        assert AESGCM(stream[:32]).decrypt(stream[32:], stored[name].value[2:], path) == record[name].value
    encrypted = [(b"p-" + name.encode(), name) for name in names]
    assert decrypt_fields(root, encrypted, stored) == {name: record[name] for name in names}
    with pytest.raises(AuthenticationError):
        decrypt_fields(root, [(b"other path", "f0")], stored)
    with pytest.raises(MalformedInputError):
        decrypt_fields(root, [(b"p", "x")], {"x": Terminal(b"\xff\xff", b"\x00\x01" + b"x" * 15)})
    with pytest.raises(MalformedInputError):
        decrypt_fields(root, [(b"p", "x")], {"x": Terminal(b"\x00\x01", b"x" * 40)})


def test_record_keys_are_hkdf_sha512() -> None:
    data_key, message_id = os.urandom(32), os.urandom(32)
    keys = RecordKeys(HMAC_ONLY, data_key, message_id)
    prk = hmac.digest(bytes(64), data_key, "sha512")
    assert keys.commit_key == hmac.digest(prk, b"AWS_DBE_COMMIT_KEY" + message_id + b"\x01", "sha512")[:32]
    assert (
        keys.field_root_key == hmac.digest(prk, b"AWS_DBE_DERIVE_KEY" + message_id + b"\x01", "sha512")[:32]
    )


def _header(suite: DbeSuite = HMAC_ONLY, version: int = 1, context: dict[str, str] | None = None) -> bytes:
    keys = RecordKeys(suite, b"k" * 32, b"m" * 32)
    partial = serialize_partial_header(
        version, suite, b"m" * 32, b"esc", context or {"b": "2", "a": "1"}, EDKS
    )
    return serialize_header(partial, keys)


def test_header_round_trip_and_layout() -> None:
    raw = _header(SIGNING, version=2)
    header = parse_header(raw)
    assert (header.version, header.suite, header.message_id, header.legend) == (2, SIGNING, b"m" * 32, b"esc")
    assert header.stored_context == {"a": "1", "b": "2"}
    assert header.encrypted_data_keys == EDKS
    assert raw[:2] == b"\x02\x01"
    assert raw[34:39] == b"\x00\x03esc"
    assert raw[39:41] == b"\x00\x02" and raw[41:44] == b"\x00\x01a"  # context sorted by key
    commitment = hmac.digest(RecordKeys(SIGNING, b"k" * 32, b"m" * 32).commit_key, raw[:-32], "sha512")[:32]
    assert header.commitment == commitment
    RecordKeys(SIGNING, b"k" * 32, b"m" * 32).verify(header)
    with pytest.raises(AuthenticationError):
        RecordKeys(SIGNING, b"K" * 32, b"m" * 32).verify(header)
    empty = parse_header(
        serialize_header(
            serialize_partial_header(1, HMAC_ONLY, b"m" * 32, b"s", {}, EDKS[:1]),
            RecordKeys(HMAC_ONLY, b"k" * 32, b"m" * 32),
        )
    )
    assert empty.stored_context == {}


def test_every_truncation_of_a_header_is_malformed() -> None:
    raw = _header()
    for length in range(len(raw)):
        with pytest.raises(MalformedInputError):
            parse_header(raw[:length])
    with pytest.raises(MalformedInputError):
        parse_header(raw[:-32] + b"x" + raw[-32:])


def _patched(raw: bytes, offset: int, replacement: bytes) -> bytes:
    return raw[:offset] + replacement + raw[offset + len(replacement) :]


@pytest.mark.parametrize(
    ("offset", "replacement"),
    [
        (0, b"\x03"),  # version
        (0, b"\x00"),
        (1, b"\x02"),  # flavor
        (36, b"x"),  # legend byte
        (41, b"\x00\x01b\x00\x012\x00\x01a"),  # context keys out of order
        (41, b"\x00\x01a\x00\x011\x00\x01a"),  # duplicate context key
    ],
)
def test_invalid_header_fields(offset: int, replacement: bytes) -> None:
    with pytest.raises(MalformedInputError):
        parse_header(_patched(_header(), offset, replacement))


def test_header_with_no_edks_or_bad_provider_id() -> None:
    raw = _header()
    count_at = 34 + 2 + 3 + 2 + 12
    assert raw[count_at] == 2
    with pytest.raises(MalformedInputError):
        parse_header(raw[:count_at] + b"\x00" + raw[-32:])
    bad_id = serialize_header(
        serialize_partial_header(1, HMAC_ONLY, b"m" * 32, b"s", {}, [EncryptedDataKey("p", b"", b"")]),
        RecordKeys(HMAC_ONLY, b"k" * 32, b"m" * 32),
    )
    with pytest.raises(MalformedInputError):
        parse_header(_patched(bad_id, 34 + 2 + 1 + 2 + 1 + 2, b"\xff"))


def test_header_limits_on_write() -> None:
    keys = RecordKeys(HMAC_ONLY, b"k" * 32, b"m" * 32)
    with pytest.raises(MalformedInputError):
        serialize_partial_header(1, HMAC_ONLY, b"m" * 32, b"s", {}, ())
    with pytest.raises(MalformedInputError):
        serialize_partial_header(1, HMAC_ONLY, b"m" * 32, b"s", {}, EDKS * 128)
    with pytest.raises(MalformedInputError):
        serialize_partial_header(
            1, HMAC_ONLY, b"m" * 32, b"s", {}, [EncryptedDataKey("p", b"", b"x" * 65536)]
        )
    assert keys.commitment(b"") != keys.commitment(b"x")


def test_canonical_hash_layout() -> None:
    header, context = b"H" * 50, serialize_context({"k": "v"})
    fields = [(b"p1", "one", True), (b"p2", "two", False)]
    record = {"one": Terminal(b"\xff\xff", b"\x00\x01" + b"c" * 20), "two": Terminal(b"\x00\x02", b"42")}
    expected = hashlib.sha384(
        header
        + len(context).to_bytes(8, "big")
        + context
        + b"p1"
        + (20).to_bytes(8, "big")
        + b"ENCRYPTED"
        + b"\x00\x01"
        + b"c" * 20
        + b"p2"
        + (2).to_bytes(8, "big")
        + b"PLAINTEXT"
        + b"\x00\x02"
        + b"42"
    ).digest()
    assert canonical_hash(header, context, fields, record) == expected
    with pytest.raises(MalformedInputError):
        canonical_hash(header, context, [(b"p", "x", True)], {"x": Terminal(b"\xff\xff", b"\x00")})
    assert serialize_context({}) == b"\x00\x00"


def test_footer_tags_and_signature() -> None:
    record_hash = os.urandom(48)
    keys = [os.urandom(32), os.urandom(32)]
    signer = ec.generate_private_key(ec.SECP384R1())
    footer = make_footer(record_hash, keys, signer)
    assert len(footer) == 2 * 48 + SIGNATURE_LENGTH
    assert footer[48:96] == hmac.digest(keys[1], record_hash, "sha384")
    for key in keys:
        verify_footer(footer, record_hash, 2, key, signer.public_key())
    with pytest.raises(AuthenticationError):
        verify_footer(footer, record_hash, 2, os.urandom(32), signer.public_key())
    with pytest.raises(SignatureError):
        verify_footer(footer[:-1] + bytes([footer[-1] ^ 1]), record_hash, 2, keys[0], signer.public_key())
    with pytest.raises(SignatureError):
        other = ec.generate_private_key(ec.SECP384R1()).public_key()
        verify_footer(footer, record_hash, 2, keys[0], other)
    with pytest.raises(MalformedInputError):
        verify_footer(footer, record_hash, 3, keys[0], signer.public_key())
    with pytest.raises(MalformedInputError):
        verify_footer(footer, record_hash, 2, keys[0], None)  # signature where none is expected
    unsigned = make_footer(record_hash, keys[:1], None)
    assert len(unsigned) == 48
    verify_footer(unsigned, record_hash, 1, keys[0], None)
    for bad in (unsigned[:-1], unsigned + b"x", b""):
        with pytest.raises(MalformedInputError):
            verify_footer(bad, record_hash, 1, keys[0], None)


def test_signatures_are_always_103_bytes() -> None:
    signer = ec.generate_private_key(ec.SECP384R1())
    for _ in range(25):
        footer = make_footer(os.urandom(48), [b"k" * 32], signer)
        assert len(footer) == 48 + 103
        assert footer[48] == 0x30


def test_v2_context_values_and_legend() -> None:
    fields = {
        "s": Terminal(b"\x00\x01", "é".encode()),
        "n": Terminal(b"\x00\x02", b"12.5"),
        "z": Terminal(b"\x00\x00", b""),
        "t": Terminal(b"\x00\x04", b"\x01"),
        "f": Terminal(b"\x00\x04", b"\x00"),
        "b": Terminal(b"\xff\xff", b"\x01\x02"),
        "l": Terminal(b"\x03\x00", b"\x00\x00\x00\x00"),
    }
    context = v2_context(fields)
    assert context == {
        "aws-crypto-attr.b": base64.b64encode(b"\xff\xff\x01\x02").decode(),
        "aws-crypto-attr.f": "false",
        "aws-crypto-attr.l": base64.b64encode(b"\x03\x00\x00\x00\x00\x00").decode(),
        "aws-crypto-attr.n": "12.5",
        "aws-crypto-attr.s": "é",
        "aws-crypto-attr.t": "true",
        "aws-crypto-attr.z": "null",
        "aws-crypto-legend": "BLBNSLL",
    }
    assert v2_context({}) == {"aws-crypto-legend": ""}
    with pytest.raises(MalformedInputError):
        v2_context({"t": Terminal(b"\x00\x04", b"")})
    with pytest.raises(MalformedInputError):
        v2_context({"s": Terminal(b"\x00\x01", b"\xff")})
