"""Interop in both directions with the real ``aws-encryption-sdk`` 4.x from PyPI (no mocks).

Both of the ESDK's key APIs are exercised, through ``EncryptionSDKClient.encrypt`` / ``.decrypt``:

* legacy: ``RawMasterKey`` + ``WrappingKey`` (AES-GCM and all RSA wrapping algorithms), a
  ``RawMasterKeyProvider`` subclass holding several keys, and providers combined with
  ``add_master_key_provider`` -- the full suite x frame length x size x context matrix runs here;
* MPL (``aws-cryptographic-material-providers``, from ``aws-encryption-sdk[MPL]`` in our test extras):
  ``create_raw_aes_keyring``, ``create_raw_rsa_keyring``, ``create_multi_keyring`` and
  ``create_required_encryption_context_cmm`` -- a smaller matrix (MPL calls cost 5-70 ms each) plus
  keyrings, multi-keyring and required encryption context in both directions.

Mapping checked throughout: keyring namespace == ESDK ``provider_id`` / MPL ``key_namespace``; keyring
name == ESDK ``key_id`` / MPL ``key_name`` (RSA key info is exactly the name; AES key info is
name | tag bits (128) | IV length (12) | IV).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import pytest
from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError

from kmsenvelope import (
    CommitmentPolicy,
    Envelope,
    MultiKeyring,
    RawAesKeyring,
    RawRsaKeyring,
    RequiredContextMaterials,
    Suite,
)
from kmsenvelope.errors import AuthenticationError, ContextMismatchError, NoUsableKeyError
from kmsenvelope.materials.protocols import Keyring

from ._esdk import (
    PADDINGS,
    StaticRawKeyProvider,
    aes_wrapping_key,
    esdk_aes_key,
    esdk_decrypt,
    esdk_encrypt,
    esdk_rsa_key,
    generate_rsa_pem,
    keys_of,
    mpl_aes_keyring,
    mpl_multi_keyring,
    mpl_required_context_cmm,
    mpl_rsa_keyring,
    policy_for,
    random_bytes,
    rsa_wrapping_key,
)

NS = "kmsenvelope-interop"
AES_NAME = "aes-wrapping-key"
RSA_NAME = "rsa-wrapping-key"
AES_KEYS = {n: bytes((7 * i + n) % 256 for i in range(n)) for n in (16, 24, 32)}
PUBLIC_KEY = "aws-crypto-public-key"
APIS = ["legacy", "mpl"]

LEGACY_SUITES = [s for s in Suite if not s.committing]
ALL_SUITES = [s for s in Suite if s.committing] + LEGACY_SUITES
FRAMES = [128, 512, 4096, 1 << 20]
SIZE_KINDS = ["0", "1", "frame-1", "frame", "frame+1"]
CONTEXTS: dict[str, dict[str, str]] = {
    "ctx0": {},
    "ctx1": {"purpose": "interop"},
    # non-ASCII keys and values (2-, 3- and 4-byte UTF-8), insertion order != sorted order
    "ctx5": {
        "zeta": "last by key",
        "région": "eu-west-3 (Paris)",
        "名前": "値 — ünïcödé",
        "emoji 🔐": "🗝️✓",
        "Alpha": "",
    },
}


@pytest.fixture(scope="module")
def rsa_pem() -> tuple[bytes, bytes]:
    """One 2048-bit RSA key pair for the whole module."""
    return generate_rsa_pem(2048)


def _sid(suite: Any) -> str:
    return f"{suite.id:04X}" if isinstance(suite, Suite) else str(suite)


def _size(kind: str, frame: int) -> int:
    return {"0": 0, "1": 1, "frame-1": frame - 1, "frame": frame, "frame+1": frame + 1}[kind]


def _aes(n: int = 32, namespace: str = NS, name: str = AES_NAME) -> RawAesKeyring:
    return RawAesKeyring(namespace, name, AES_KEYS[n])


def _esdk_aes(api: str, n: int = 32, namespace: str = NS, name: str = AES_NAME) -> dict[str, Any]:
    """ESDK key source matching ``_aes(n, namespace, name)``, as ``esdk_encrypt``/``esdk_decrypt`` kwargs."""
    if api == "legacy":
        return {"key_provider": esdk_aes_key(namespace, name, AES_KEYS[n])}
    return {"keyring": mpl_aes_keyring(namespace, name, AES_KEYS[n])}


def _esdk_rsa(
    api: str, pair: tuple[bytes, bytes], padding: str, *, private: bool, name: str = RSA_NAME
) -> dict[str, Any]:
    """ESDK RSA key source from ``pair`` = (private PEM, public PEM); ``private=False``: public key only."""
    private_pem, public_pem = pair
    if api == "legacy":
        pem = private_pem if private else public_pem
        return {"key_provider": esdk_rsa_key(NS, name, pem, padding, private=private)}
    if private:
        return {"keyring": mpl_rsa_keyring(NS, name, padding, private_pem=private_pem, public_pem=public_pem)}
    return {"keyring": mpl_rsa_keyring(NS, name, padding, public_pem=public_pem)}


def _check_context(reported: Mapping[str, str], context: Mapping[str, str], suite: Suite) -> None:
    """The reported context is the caller's plus, for signed suites only, the verification key."""
    reported = dict(reported)
    assert (PUBLIC_KEY in reported) == suite.signing
    reported.pop(PUBLIC_KEY, None)
    assert reported == dict(context)


def _aes_info_matches(info: bytes, name: str) -> bool:
    prefix = name.encode() + (128).to_bytes(4, "big") + (12).to_bytes(4, "big")
    return info.startswith(prefix) and len(info) == len(prefix) + 12


def _both_directions(
    api: str, suite: Suite, frame_length: int, plaintext: bytes, context: Mapping[str, str], *, stream: bool
) -> None:
    policy = policy_for(suite)
    envelope = Envelope(_aes(), suite=suite, frame_length=frame_length, commitment_policy=policy)

    # ESDK -> kmsenvelope
    esdk_ct = esdk_encrypt(
        policy, plaintext, suite=suite, frame_length=frame_length, context=context, **_esdk_aes(api)
    )
    result = envelope.decrypt_with_header(esdk_ct, context)
    assert result.plaintext == plaintext
    assert result.header.suite is suite
    assert result.header.frame_length == frame_length and result.header.framed
    _check_context(result.header.encryption_context, context, suite)
    [edk] = result.header.encrypted_data_keys
    assert edk.provider_id == NS
    assert _aes_info_matches(edk.provider_info, AES_NAME)
    if stream:
        sink = io.BytesIO()
        envelope.decrypt_stream(io.BytesIO(esdk_ct), sink, context)
        assert sink.getvalue() == plaintext

    # kmsenvelope -> ESDK
    ours = envelope.encrypt(plaintext, context)
    decrypted, header = esdk_decrypt(policy, ours, **_esdk_aes(api))
    assert decrypted == plaintext
    assert header.algorithm.algorithm_id == suite.id
    assert header.frame_length == frame_length
    assert header.message_id == envelope.parse_header(ours).message_id
    _check_context(header.encryption_context, context, suite)
    [(provider_id, key_info)] = keys_of(header.encrypted_data_keys)
    assert provider_id == NS
    assert _aes_info_matches(key_info, AES_NAME)


# -- the suite x frame length x plaintext length x context matrix ------------------------------------


@pytest.mark.parametrize("ctx_name", list(CONTEXTS))
@pytest.mark.parametrize("kind", SIZE_KINDS)
@pytest.mark.parametrize("frame_length", FRAMES)
@pytest.mark.parametrize("suite", ALL_SUITES, ids=_sid)
def test_matrix_legacy(suite: Suite, frame_length: int, kind: str, ctx_name: str) -> None:
    plaintext = random_bytes(_size(kind, frame_length), seed=suite.id)
    _both_directions("legacy", suite, frame_length, plaintext, CONTEXTS[ctx_name], stream=True)


@pytest.mark.parametrize(("kind", "ctx_name"), [("0", "ctx0"), ("frame", "ctx1"), ("frame+1", "ctx5")])
@pytest.mark.parametrize("frame_length", [128, 4096])
@pytest.mark.parametrize("suite", ALL_SUITES, ids=_sid)
def test_matrix_mpl(suite: Suite, frame_length: int, kind: str, ctx_name: str) -> None:
    plaintext = random_bytes(_size(kind, frame_length), seed=suite.id)
    _both_directions("mpl", suite, frame_length, plaintext, CONTEXTS[ctx_name], stream=False)


@pytest.mark.parametrize(
    ("api", "suite", "frame_length"),
    [
        ("legacy", Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY, 1 << 20),
        ("legacy", Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384, 4096),
        ("legacy", Suite.AES_128_GCM_IV12_TAG16_HKDF_SHA256, 1 << 20),
        ("mpl", Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384, 1 << 20),
    ],
    ids=_sid,
)
def test_three_mib(api: str, suite: Suite, frame_length: int) -> None:
    _both_directions(api, suite, frame_length, random_bytes(3 << 20, seed=3), CONTEXTS["ctx5"], stream=True)


@pytest.mark.parametrize("size", [0, 1, 5000])
@pytest.mark.parametrize(
    "suite",
    [
        Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
        Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
        Suite.AES_128_GCM_IV12_TAG16_NO_KDF,
        Suite.AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384,
    ],
    ids=_sid,
)
def test_esdk_non_framed_messages_decrypt(suite: Suite, size: int) -> None:
    """The ESDK still writes non-framed bodies (frame_length=0); we read them, whole and streamed."""
    plaintext = random_bytes(size, seed=11)
    context = CONTEXTS["ctx5"]
    esdk_ct = esdk_encrypt(
        policy_for(suite), plaintext, suite=suite, frame_length=0, context=context, **_esdk_aes("legacy")
    )
    envelope = Envelope(_aes(), commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT)
    result = envelope.decrypt_with_header(esdk_ct, context)
    assert result.plaintext == plaintext
    assert not result.header.framed and result.header.frame_length == 0
    sink = io.BytesIO()
    envelope.decrypt_stream(io.BytesIO(esdk_ct), sink, context)
    assert sink.getvalue() == plaintext


@pytest.mark.parametrize(
    "suite",
    [Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384, Suite.AES_192_GCM_IV12_TAG16_HKDF_SHA256],
    ids=_sid,
)
def test_streaming_encrypt_decrypts_with_esdk(suite: Suite) -> None:
    policy = policy_for(suite)
    plaintext = random_bytes(10_000, seed=5)
    envelope = Envelope(_aes(), suite=suite, frame_length=512, commitment_policy=policy)
    out = io.BytesIO()
    envelope.encrypt_stream(io.BytesIO(plaintext), out, CONTEXTS["ctx5"])
    for api in APIS:
        decrypted, header = esdk_decrypt(policy, out.getvalue(), **_esdk_aes(api))
        assert decrypted == plaintext
        _check_context(header.encryption_context, CONTEXTS["ctx5"], suite)


# -- frame lengths the ESDK cannot write: we write them, the ESDK reads them --------------------------


def _walk_frames(message: bytes, header_size: int, frame_length: int, signed: bool) -> list[int]:
    """An independent body walker: each frame's content length; checks sequence numbers and IVs."""
    pos = header_size
    lengths = []
    sequence = 1
    while True:
        marker = int.from_bytes(message[pos : pos + 4], "big")
        if marker == 0xFFFFFFFF:
            assert int.from_bytes(message[pos + 4 : pos + 8], "big") == sequence
            assert message[pos + 8 : pos + 20] == bytes(8) + sequence.to_bytes(4, "big")
            length = int.from_bytes(message[pos + 20 : pos + 24], "big")
            lengths.append(length)
            pos += 24 + length + 16
            break
        assert marker == sequence
        assert message[pos + 4 : pos + 16] == bytes(8) + sequence.to_bytes(4, "big")
        lengths.append(frame_length)
        pos += 16 + frame_length + 16
        sequence += 1
    if signed:
        pos += 2 + int.from_bytes(message[pos : pos + 2], "big")
    assert pos == len(message)
    return lengths


def _sizes_around(frame: int) -> list[int]:
    return sorted({0, 1, frame - 1, frame, frame + 1, 2 * frame - 1, 2 * frame, 2 * frame + 1, 3 * frame + 2})


@pytest.mark.parametrize("frame_length", range(1, 71))
def test_small_frame_lengths_round_trip(frame_length: int) -> None:
    envelope = Envelope(_aes(), frame_length=frame_length)
    context = {"f": str(frame_length)}
    for size in _sizes_around(frame_length):
        plaintext = random_bytes(size, seed=frame_length)
        message = envelope.encrypt(plaintext, context)
        lengths = _walk_frames(message, envelope.parse_header(message).size, frame_length, signed=False)
        assert sum(lengths) == size
        # every frame is full except the final one, which holds 1..frame_length bytes (0 only if empty)
        assert all(n == frame_length for n in lengths[:-1])
        assert (lengths[-1] == 0) == (size == 0) and lengths[-1] <= frame_length
        assert envelope.decrypt(message, context) == plaintext
        sink = io.BytesIO()
        envelope.decrypt_stream(io.BytesIO(message), sink, context)
        assert sink.getvalue() == plaintext
        streamed = io.BytesIO()
        envelope.encrypt_stream(io.BytesIO(plaintext), streamed, context)
        streamed_size = envelope.parse_header(streamed.getvalue()).size
        assert _walk_frames(streamed.getvalue(), streamed_size, frame_length, signed=False) == lengths
        assert envelope.decrypt(streamed.getvalue(), context) == plaintext
    # the ESDK only writes multiples of 128 but reads any frame length
    policy = CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    for size in (0, frame_length, 2 * frame_length + 1):
        plaintext = random_bytes(size, seed=frame_length)
        assert esdk_decrypt(policy, envelope.encrypt(plaintext), **_esdk_aes("legacy"))[0] == plaintext


@pytest.mark.parametrize("frame_length", [1, 3, 16, 17, 64])
def test_small_frame_lengths_signed_and_legacy(frame_length: int) -> None:
    for suite in (Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384, Suite.AES_128_GCM_IV12_TAG16_NO_KDF):
        policy = policy_for(suite)
        envelope = Envelope(_aes(), suite=suite, frame_length=frame_length, commitment_policy=policy)
        for size in _sizes_around(frame_length):
            plaintext = random_bytes(size, seed=frame_length)
            message = envelope.encrypt(plaintext)
            header_size = envelope.parse_header(message).size
            assert sum(_walk_frames(message, header_size, frame_length, signed=suite.signing)) == size
            assert envelope.decrypt(message) == plaintext
        plaintext = random_bytes(2 * frame_length + 1)
        assert esdk_decrypt(policy, envelope.encrypt(plaintext), **_esdk_aes("legacy"))[0] == plaintext


# -- raw AES keyrings ---------------------------------------------------------------------------------

KEYRING_SUITES = [
    Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
    Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
    Suite.AES_128_GCM_IV12_TAG16_NO_KDF,
    Suite.AES_192_GCM_IV12_TAG16_HKDF_SHA256,
    Suite.AES_192_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384,
]


@pytest.mark.parametrize("suite", KEYRING_SUITES, ids=_sid)
@pytest.mark.parametrize("key_size", [16, 24, 32])
@pytest.mark.parametrize("api", APIS)
def test_raw_aes_keyring(api: str, key_size: int, suite: Suite) -> None:
    policy = policy_for(suite)
    context = CONTEXTS["ctx5"]
    plaintext = random_bytes(1000, seed=key_size)
    name = f"aes-{key_size}"
    envelope = Envelope(_aes(key_size, name=name), suite=suite, frame_length=256, commitment_policy=policy)
    esdk_key = _esdk_aes(api, key_size, name=name)

    esdk_ct = esdk_encrypt(policy, plaintext, suite=suite, frame_length=256, context=context, **esdk_key)
    result = envelope.decrypt_with_header(esdk_ct, context)
    assert result.plaintext == plaintext
    [edk] = result.header.encrypted_data_keys
    assert edk.provider_id == NS and _aes_info_matches(edk.provider_info, name)

    ours = envelope.encrypt(plaintext, context)
    decrypted, header = esdk_decrypt(policy, ours, **esdk_key)
    assert decrypted == plaintext
    [(provider_id, key_info)] = keys_of(header.encrypted_data_keys)
    assert provider_id == NS and _aes_info_matches(key_info, name)

    # the mapping is load-bearing: another name, namespace or key does not match
    with pytest.raises(AWSEncryptionSDKClientError):
        esdk_decrypt(policy, ours, **_esdk_aes(api, key_size, name="other-name"))
    with pytest.raises(NoUsableKeyError):
        Envelope(_aes(key_size, namespace="other-ns", name=name), commitment_policy=policy).decrypt(esdk_ct)
    other_key = RawAesKeyring(NS, name, bytes(key_size))
    with pytest.raises(NoUsableKeyError):
        Envelope(other_key, commitment_policy=policy).decrypt(esdk_ct)


def test_raw_master_key_provider_with_two_keys() -> None:
    """A RawMasterKeyProvider holding two keys writes two EDKs; each of our keyrings reads one."""
    provider = StaticRawKeyProvider.create(
        NS, {"first": aes_wrapping_key(AES_KEYS[16]), "second": aes_wrapping_key(AES_KEYS[32])}
    )
    policy = CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    plaintext = random_bytes(777)
    esdk_ct = esdk_encrypt(policy, plaintext, context=CONTEXTS["ctx1"], key_provider=provider)
    for name, n in (("first", 16), ("second", 32)):
        result = Envelope(RawAesKeyring(NS, name, AES_KEYS[n])).decrypt_with_header(esdk_ct, CONTEXTS["ctx1"])
        assert result.plaintext == plaintext
        assert len(result.header.encrypted_data_keys) == 2
    ours = Envelope(
        MultiKeyring(RawAesKeyring(NS, "second", AES_KEYS[32]), [RawAesKeyring(NS, "first", AES_KEYS[16])])
    )
    assert esdk_decrypt(policy, ours.encrypt(plaintext), key_provider=provider)[0] == plaintext


# -- raw RSA keyrings ---------------------------------------------------------------------------------

RSA_SUITES = [
    Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
    Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
    Suite.AES_128_GCM_IV12_TAG16_HKDF_SHA256,
]


@pytest.mark.parametrize("suite", RSA_SUITES, ids=_sid)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("api", APIS)
def test_raw_rsa_keyring(rsa_pem: tuple[bytes, bytes], api: str, padding: str, suite: Suite) -> None:
    private, public = rsa_pem
    policy = policy_for(suite)
    context = CONTEXTS["ctx5"]
    plaintext = random_bytes(3000, seed=len(padding))
    keyring = RawRsaKeyring(NS, RSA_NAME, private_key=private, padding=padding)
    envelope = Envelope(keyring, suite=suite, frame_length=1024, commitment_policy=policy)

    # ESDK with the public key only -> us
    esdk_ct = esdk_encrypt(
        policy, plaintext, suite=suite, frame_length=1024, context=context,
        **_esdk_rsa(api, rsa_pem, padding, private=False),
    )
    result = envelope.decrypt_with_header(esdk_ct, context)
    assert result.plaintext == plaintext
    [edk] = result.header.encrypted_data_keys
    assert (edk.provider_id, edk.provider_info) == (NS, RSA_NAME.encode())

    # us with the public key only -> ESDK
    encrypt_only = Envelope(
        RawRsaKeyring(NS, RSA_NAME, public_key=public, padding=padding), suite=suite, commitment_policy=policy
    )
    ours = encrypt_only.encrypt(plaintext, context)
    decrypted, header = esdk_decrypt(policy, ours, **_esdk_rsa(api, rsa_pem, padding, private=True))
    assert decrypted == plaintext
    assert keys_of(header.encrypted_data_keys) == {(NS, RSA_NAME.encode())}
    assert envelope.decrypt(ours, context) == plaintext


@pytest.mark.parametrize("api", APIS)
def test_rsa_padding_or_name_mismatch(rsa_pem: tuple[bytes, bytes], api: str) -> None:
    private, public = rsa_pem
    policy = CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    esdk_ct = esdk_encrypt(policy, b"data", **_esdk_rsa(api, rsa_pem, "OAEP-SHA256", private=False))
    with pytest.raises(NoUsableKeyError):
        Envelope(RawRsaKeyring(NS, RSA_NAME, private_key=private, padding="OAEP-SHA1")).decrypt(esdk_ct)
    with pytest.raises(NoUsableKeyError):
        Envelope(RawRsaKeyring(NS, "other", private_key=private, padding="OAEP-SHA256")).decrypt(esdk_ct)
    assert Envelope(RawRsaKeyring(NS, RSA_NAME, private_key=private)).decrypt(esdk_ct) == b"data"
    ours = Envelope(RawRsaKeyring(NS, RSA_NAME, public_key=public, padding="OAEP-SHA256")).encrypt(b"data")
    with pytest.raises(AWSEncryptionSDKClientError):
        esdk_decrypt(policy, ours, **_esdk_rsa(api, rsa_pem, "OAEP-SHA256", private=True, name="other"))


# -- multi-keyring ------------------------------------------------------------------------------------

MULTI_SUITES = [
    Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
    Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
    Suite.AES_256_GCM_IV12_TAG16_HKDF_SHA256,
]


@pytest.mark.parametrize("suite", MULTI_SUITES, ids=_sid)
@pytest.mark.parametrize("api", APIS)
def test_multi_keyring_any_child_decrypts(rsa_pem: tuple[bytes, bytes], api: str, suite: Suite) -> None:
    private, _public = rsa_pem
    policy = policy_for(suite)
    context = CONTEXTS["ctx5"]
    plaintext = random_bytes(5000, seed=9)
    aes = _aes(32)
    rsa = RawRsaKeyring(NS, RSA_NAME, private_key=private, padding="OAEP-SHA512")
    esdk_singles = [_esdk_aes(api), _esdk_rsa(api, rsa_pem, "OAEP-SHA512", private=True)]

    # ours: AES generator + RSA child
    ours = Envelope(MultiKeyring(generator=aes, children=[rsa]), suite=suite, commitment_policy=policy)
    message = ours.encrypt(plaintext, context)
    edks = ours.parse_header(message).encrypted_data_keys
    assert [e.provider_info[: len(AES_NAME)] for e in edks] == [AES_NAME.encode(), RSA_NAME.encode()]
    singles: list[Keyring] = [aes, rsa]
    for keyring in singles:
        assert Envelope(keyring, commitment_policy=policy).decrypt(message, context) == plaintext
    for esdk_key in esdk_singles:
        assert esdk_decrypt(policy, message, **esdk_key)[0] == plaintext

    # the ESDK's: AES generator + RSA child
    if api == "legacy":
        combined = StaticRawKeyProvider.combine(
            esdk_singles[0]["key_provider"], esdk_singles[1]["key_provider"]
        )
        one_provider = StaticRawKeyProvider.create(
            NS, {AES_NAME: aes_wrapping_key(AES_KEYS[32]), RSA_NAME: rsa_wrapping_key(private, "OAEP-SHA512")}
        )
        sources = [{"key_provider": combined}, {"key_provider": one_provider}]
    else:
        sources = [{"keyring": mpl_multi_keyring(esdk_singles[0]["keyring"], [esdk_singles[1]["keyring"]])}]
    for source in sources:
        esdk_ct = esdk_encrypt(policy, plaintext, suite=suite, context=context, **source)
        edks = ours.parse_header(esdk_ct).encrypted_data_keys
        names = sorted(e.provider_info[: len(AES_NAME)] for e in edks)
        assert names == [AES_NAME.encode(), RSA_NAME.encode()]
        for keyring in (aes, rsa, MultiKeyring(children=[rsa, aes])):
            assert Envelope(keyring, commitment_policy=policy).decrypt(esdk_ct, context) == plaintext
        for esdk_key in esdk_singles:
            assert esdk_decrypt(policy, esdk_ct, **esdk_key)[0] == plaintext


# -- required encryption context ----------------------------------------------------------------------

REQUIRED = {"tenant": "acmé", "region": "eu"}
STORED = {"purpose": "interop", "名前": "値"}
REQUIRED_SUITES = [
    Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
    Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
    Suite.AES_256_GCM_IV12_TAG16_HKDF_SHA256,
]


@pytest.mark.parametrize("suite", REQUIRED_SUITES, ids=_sid)
def test_required_context_us_to_us(rsa_pem: tuple[bytes, bytes], suite: Suite) -> None:
    policy = policy_for(suite)
    plaintext = random_bytes(2000, seed=1)
    cmm = RequiredContextMaterials(_aes(), REQUIRED.keys())
    envelope = Envelope(cmm, suite=suite, frame_length=512, commitment_policy=policy)
    message = envelope.encrypt(plaintext, {**REQUIRED, **STORED})
    _check_context(envelope.parse_header(message).encryption_context, STORED, suite)  # required: not stored
    result = envelope.decrypt_with_header(message, REQUIRED)
    assert result.plaintext == plaintext
    _check_context(result.encryption_context, {**REQUIRED, **STORED}, suite)
    sink = io.BytesIO()
    envelope.decrypt_stream(io.BytesIO(message), sink, REQUIRED)
    assert sink.getvalue() == plaintext
    # a plain keyring envelope reads it too when given the pairs
    plain = Envelope(_aes(), commitment_policy=policy)
    assert plain.decrypt(message, REQUIRED) == plaintext
    # missing required pairs
    with pytest.raises(ContextMismatchError):
        envelope.decrypt(message, {"tenant": REQUIRED["tenant"]})
    with pytest.raises(ContextMismatchError):
        envelope.encrypt(plaintext, STORED)
    # the pairs are really bound: a wrong value fails in the AES keyring (it binds the whole context)
    with pytest.raises(NoUsableKeyError):
        envelope.decrypt(message, {**REQUIRED, "tenant": "someone else"})
    with pytest.raises(NoUsableKeyError):
        plain.decrypt(message)
    # ... and at the header tag with RSA, which does not bind the context
    private, _public = rsa_pem
    rsa = RawRsaKeyring(NS, RSA_NAME, private_key=private)
    rsa_cmm = RequiredContextMaterials(rsa, REQUIRED.keys())
    rsa_envelope = Envelope(rsa_cmm, suite=suite, commitment_policy=policy)
    rsa_message = rsa_envelope.encrypt(plaintext, {**REQUIRED, **STORED})
    assert rsa_envelope.decrypt(rsa_message, REQUIRED) == plaintext
    with pytest.raises(AuthenticationError):
        rsa_envelope.decrypt(rsa_message, {**REQUIRED, "tenant": "someone else"})
    with pytest.raises(AuthenticationError):
        Envelope(rsa, commitment_policy=policy).decrypt(rsa_message)


@pytest.mark.parametrize("suite", REQUIRED_SUITES, ids=_sid)
def test_required_context_with_mpl_cmm(suite: Suite) -> None:
    """Our RequiredContextMaterials <-> the MPL's RequiredEncryptionContextCMM, both directions."""
    policy = policy_for(suite)
    plaintext = random_bytes(2000, seed=2)
    cmm = RequiredContextMaterials(_aes(), REQUIRED.keys())
    envelope = Envelope(cmm, suite=suite, frame_length=512, commitment_policy=policy)
    mpl_keyring = mpl_aes_keyring(NS, AES_NAME, AES_KEYS[32])
    mpl_cmm = mpl_required_context_cmm(mpl_keyring, REQUIRED.keys())

    full = {**REQUIRED, **STORED}
    esdk_ct = esdk_encrypt(
        policy, plaintext, suite=suite, frame_length=512, context=full, materials_manager=mpl_cmm
    )
    _check_context(envelope.parse_header(esdk_ct).encryption_context, STORED, suite)
    assert envelope.decrypt(esdk_ct, REQUIRED) == plaintext
    with pytest.raises(ContextMismatchError):
        envelope.decrypt(esdk_ct, {})

    ours = envelope.encrypt(plaintext, {**REQUIRED, **STORED})
    decrypted, header = esdk_decrypt(policy, ours, REQUIRED, materials_manager=mpl_cmm)
    assert decrypted == plaintext
    _check_context(header.encryption_context, STORED, suite)
    assert esdk_decrypt(policy, ours, REQUIRED, keyring=mpl_keyring)[0] == plaintext
    with pytest.raises(AWSEncryptionSDKClientError):
        esdk_decrypt(policy, ours, {**REQUIRED, "region": "us"}, materials_manager=mpl_cmm)
    with pytest.raises(AWSEncryptionSDKClientError):
        esdk_decrypt(policy, ours, keyring=mpl_keyring)
