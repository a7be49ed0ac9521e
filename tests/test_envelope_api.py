"""The public API: suites, Envelope construction, results, buffer reuse, and no secret in any text."""

from __future__ import annotations

import base64
import io
import json
import traceback
from collections.abc import Callable, Iterable
from typing import cast

import pytest
from aws_cryptographic_material_providers.mpl.models import (  # type: ignore[import-untyped]
    ESDKAlgorithmSuiteId,
)
from aws_encryption_sdk.identifiers import Algorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kmsenvelope import (
    CommitmentPolicy,
    DecryptResult,
    DefaultMaterials,
    Envelope,
    MessageHeader,
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
    SignatureError,
)
from kmsenvelope.suites import DbeSuite

from ._esdk import generate_rsa_pem, random_bytes

AES_KEY = bytes.fromhex("5ec2e7a11d0c5a8f91b3e6d4c7a2f0e19d8b7c6a5f4e3d2c1b0a99887766554f")
PLAINTEXT = b"TOP-SECRET-PLAINTEXT:" + random_bytes(64, seed=99)
NS = "api-tests"
REQUIRE_ALLOW = CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT


@pytest.fixture(scope="module")
def rsa_pem() -> tuple[bytes, bytes]:
    return generate_rsa_pem(2048)


def _aes(key: bytes = AES_KEY, name: str = "key") -> RawAesKeyring:
    return RawAesKeyring(NS, name, key)


# -- suites ---------------------------------------------------------------------------------------------


def test_suite_has_the_eleven_esdk_suites() -> None:
    assert len(Suite) == 11
    # the ESDK's (MPL's) suite identifiers are "ALG_" + our name, valued by our id
    for suite in Suite:
        assert getattr(ESDKAlgorithmSuiteId, "ALG_" + suite.name) == f"0x{suite.id:04X}"
    assert {getattr(ESDKAlgorithmSuiteId, n) for n in dir(ESDKAlgorithmSuiteId) if n.startswith("ALG_")} == {
        f"0x{s.id:04X}" for s in Suite
    }


@pytest.mark.parametrize("suite", list(Suite), ids=lambda s: s.name)
def test_suite_properties_match_the_esdk(suite: Suite) -> None:
    algorithm = Algorithm.get_by_id(suite.id)
    assert algorithm.algorithm_id == suite.id
    assert suite.key_length == algorithm.data_key_len
    assert suite.data_key_length == algorithm.kdf_input_len
    assert suite.committing == algorithm.is_committing()
    assert suite.signing == (algorithm.signing_algorithm_info is not None)
    assert suite.message_version == algorithm.message_format_version
    assert suite.id_bytes == suite.id.to_bytes(2, "big")
    # the legacy ESDK's names lack the spec's "_NO_KDF" suffix for identity-KDF suites
    assert suite.name in (algorithm.name, algorithm.name + "_NO_KDF")


@pytest.mark.parametrize("suite", list(Suite), ids=lambda s: s.name)
def test_from_id_round_trips(suite: Suite) -> None:
    assert Suite.from_id(suite.id) is suite
    assert Suite.from_id(int.from_bytes(suite.id_bytes, "big")) is suite


@pytest.mark.parametrize(
    "suite_id", [0, 1, 0x0015, 0x0079, 0x0479, 0x0678, 0x6700, 0x6701, 0xFFFF, 0x10078, -1]
)
def test_from_id_rejects_unknown(suite_id: int) -> None:
    with pytest.raises(MalformedInputError):
        Suite.from_id(suite_id)


def test_database_suites_are_not_message_suites() -> None:
    for dbe in DbeSuite:
        with pytest.raises(MalformedInputError):
            Suite.from_id(dbe.id)
        with pytest.raises(ConfigurationError):
            Envelope(_aes(), suite=dbe)  # type: ignore[arg-type]


# -- Envelope construction ------------------------------------------------------------------------------


def test_defaults() -> None:
    envelope = Envelope(_aes())
    assert envelope.suite is Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY
    assert envelope.frame_length == 64 * 1024
    assert envelope.commitment_policy is CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    assert isinstance(envelope.materials_manager, DefaultMaterials)
    legacy = Envelope(_aes(), commitment_policy=CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT)
    assert legacy.suite is Suite.AES_256_GCM_IV12_TAG16_HKDF_SHA256
    assert legacy.parse_header(legacy.encrypt(b"x")).suite is Suite.AES_256_GCM_IV12_TAG16_HKDF_SHA256
    message = envelope.encrypt(b"x" * 70_000)
    assert envelope.parse_header(message).frame_length == 64 * 1024


@pytest.mark.parametrize("frame_length", [0, -1, -4096, 2**31, 2**40, "4096", 4096.0, b"1"])
def test_bad_frame_length(frame_length: object) -> None:
    with pytest.raises(ConfigurationError):
        Envelope(_aes(), frame_length=frame_length)  # type: ignore[arg-type]


@pytest.mark.parametrize("frame_length", [1, 127, 128, 2**31 - 1])
def test_frame_length_bounds_accepted(frame_length: int) -> None:
    assert Envelope(_aes(), frame_length=frame_length).frame_length == frame_length


@pytest.mark.parametrize("suite", [s for s in Suite if not s.committing], ids=lambda s: s.name)
def test_legacy_suite_conflicts_with_requiring_policies(suite: Suite) -> None:
    for policy in (CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT, REQUIRE_ALLOW):
        with pytest.raises(ConfigurationError):
            Envelope(_aes(), suite=suite, commitment_policy=policy)
    Envelope(_aes(), suite=suite, commitment_policy=CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT)


@pytest.mark.parametrize("suite", [s for s in Suite if s.committing], ids=lambda s: s.name)
def test_committing_suite_conflicts_with_forbid(suite: Suite) -> None:
    with pytest.raises(ConfigurationError):
        Envelope(_aes(), suite=suite, commitment_policy=CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT)
    Envelope(_aes(), suite=suite, commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT)


@pytest.mark.parametrize(
    "suite", [0x0478, "AES_256_GCM_HKDF_SHA512_COMMIT_KEY", Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY]
)
def test_suite_must_be_a_suite(suite: object) -> None:
    with pytest.raises(ConfigurationError):
        Envelope(_aes(), suite=suite)  # type: ignore[arg-type]


@pytest.mark.parametrize("policy", ["REQUIRE_ENCRYPT_REQUIRE_DECRYPT", None, 1])
def test_policy_must_be_a_policy(policy: object) -> None:
    with pytest.raises(ConfigurationError):
        Envelope(_aes(), commitment_policy=policy)  # type: ignore[arg-type]


@pytest.mark.parametrize("source", [object(), None, b"key", "keyring", AES_KEY, {"on_encrypt": 1}])
def test_source_must_be_a_keyring_or_materials_manager(source: object) -> None:
    with pytest.raises(ConfigurationError):
        Envelope(source)  # type: ignore[arg-type]


@pytest.mark.parametrize("limit", [0, -1, "3", 1.5])
def test_bad_max_encrypted_data_keys(limit: object) -> None:
    with pytest.raises(ConfigurationError):
        Envelope(_aes(), max_encrypted_data_keys=limit)  # type: ignore[arg-type]


def test_configuration_error_is_a_value_error() -> None:
    assert issubclass(ConfigurationError, ValueError) and issubclass(ConfigurationError, KmsEnvelopeError)
    assert issubclass(MalformedInputError, ValueError)
    assert issubclass(SignatureError, AuthenticationError)


@pytest.mark.parametrize(
    "make",
    [
        lambda: RawAesKeyring(NS, "k", bytes(17)),
        lambda: RawAesKeyring(NS, "k", "0" * 32),  # type: ignore[arg-type]
        lambda: RawAesKeyring("", "k", AES_KEY),
        lambda: RawAesKeyring(NS, "", AES_KEY),
        lambda: RawAesKeyring("aws-kms", "k", AES_KEY),
        lambda: RawRsaKeyring(NS, "k"),
        lambda: RawRsaKeyring(NS, "k", private_key=b"not a pem"),
        lambda: RawRsaKeyring(NS, "k", public_key=b"not a pem"),
        lambda: MultiKeyring(),
        lambda: MultiKeyring(children=[object()]),  # type: ignore[list-item]
        lambda: RequiredContextMaterials(_aes(), []),
        lambda: RequiredContextMaterials(_aes(), [""]),
        lambda: DefaultMaterials(object()),  # type: ignore[arg-type]
    ],
)
def test_keyring_and_materials_construction_errors(make: object) -> None:
    with pytest.raises(ConfigurationError):
        make()  # type: ignore[operator]


def test_rsa_padding_must_be_known(rsa_pem: tuple[bytes, bytes]) -> None:
    with pytest.raises(ConfigurationError):
        RawRsaKeyring(NS, "k", public_key=rsa_pem[1], padding="OAEP-MD5")


def test_rsa_public_key_must_match_private(rsa_pem: tuple[bytes, bytes]) -> None:
    other_public = (
        rsa.generate_private_key(public_exponent=65537, key_size=1024)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ConfigurationError):
        RawRsaKeyring(NS, "k", private_key=rsa_pem[0], public_key=other_public)


# -- decrypt_with_header ----------------------------------------------------------------------------------


@pytest.mark.parametrize("suite", list(Suite), ids=lambda s: s.name)
def test_decrypt_with_header(rsa_pem: tuple[bytes, bytes], suite: Suite) -> None:
    policy = CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT if suite.committing else (
        CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT
    )
    rsa_keyring = RawRsaKeyring("rsa-ns", "rsa-name", private_key=rsa_pem[0])
    keyring = MultiKeyring(_aes(), [rsa_keyring])
    envelope = Envelope(keyring, suite=suite, frame_length=40, commitment_policy=policy)
    context = {"tenant": "acme", "ключ": "значение"}
    message = envelope.encrypt(PLAINTEXT, context)
    result = envelope.decrypt_with_header(message, context)
    assert isinstance(result, DecryptResult) and isinstance(result.header, MessageHeader)
    assert result.plaintext == PLAINTEXT
    header = result.header
    assert header.suite is suite
    assert header.version == suite.message_version
    id_at = 3 if suite.message_version == 2 else 4
    assert header.message_id == message[id_at : id_at + len(header.message_id)]
    assert len(header.message_id) == (32 if suite.committing else 16)
    stored = dict(header.encryption_context)
    assert ("aws-crypto-public-key" in stored) == suite.signing
    stored.pop("aws-crypto-public-key", None)
    assert stored == context
    assert dict(result.encryption_context) == dict(header.encryption_context)
    assert [edk.provider_id for edk in header.encrypted_data_keys] == [NS, "rsa-ns"]
    assert header.encrypted_data_keys[0].provider_info.startswith(b"key")
    assert header.encrypted_data_keys[1].provider_info == b"rsa-name"
    assert header.frame_length == 40 and header.framed
    assert header == envelope.parse_header(message)
    description = header.to_dict()
    json.dumps(description)
    assert description["suite_id"] == f"0x{suite.id:04X}"
    assert description["message_id"] == header.message_id.hex()
    # each message gets a fresh id
    assert envelope.parse_header(envelope.encrypt(PLAINTEXT, context)).message_id != header.message_id


def test_decrypt_with_header_reports_required_pairs() -> None:
    envelope = Envelope(RequiredContextMaterials(_aes(), ["tenant"]))
    message = envelope.encrypt(PLAINTEXT, {"tenant": "acme", "stored": "yes"})
    result = envelope.decrypt_with_header(message, {"tenant": "acme"})
    assert dict(result.header.encryption_context) == {"stored": "yes"}
    assert dict(result.encryption_context) == {"tenant": "acme", "stored": "yes"}


def test_results_and_contexts_are_read_only() -> None:
    envelope = Envelope(_aes())
    result = envelope.decrypt_with_header(envelope.encrypt(PLAINTEXT, {"a": "b"}))
    with pytest.raises(TypeError):
        result.header.encryption_context["a"] = "c"  # type: ignore[index]
    with pytest.raises(AttributeError):
        result.plaintext = b""  # type: ignore[misc]


# -- RSA public-key-only keyrings -------------------------------------------------------------------------


def test_rsa_public_key_only_encrypts_but_cannot_decrypt(rsa_pem: tuple[bytes, bytes]) -> None:
    private, public = rsa_pem
    public_only = RawRsaKeyring(NS, "rsa", public_key=public)
    assert "can_decrypt=False" in repr(public_only)
    envelope = Envelope(public_only)
    message = envelope.encrypt(PLAINTEXT, {"a": "b"})
    with pytest.raises(NoUsableKeyError):
        envelope.decrypt(message)
    with pytest.raises(NoUsableKeyError):
        envelope.decrypt_stream(io.BytesIO(message), io.BytesIO())
    assert Envelope(RawRsaKeyring(NS, "rsa", private_key=private)).decrypt(message) == PLAINTEXT
    # as a child next to a decrypting generator it only adds an EDK
    multi = Envelope(MultiKeyring(_aes(), [public_only]))
    message = multi.encrypt(PLAINTEXT)
    assert len(multi.parse_header(message).encrypted_data_keys) == 2
    assert multi.decrypt(message) == PLAINTEXT
    assert Envelope(RawRsaKeyring(NS, "rsa", private_key=private)).decrypt(message) == PLAINTEXT


# -- secrets never appear in text -------------------------------------------------------------------------


def _forms(secret: bytes) -> set[str]:
    """Ways a secret (or a 12-byte window of it) could show up in text."""
    out: set[str] = set()
    windows = [secret] + ([secret[len(secret) // 2 - 6 : len(secret) // 2 + 6]] if len(secret) > 12 else [])
    for value in windows:
        out |= {
            value.hex(),
            value.hex().upper(),
            base64.b64encode(value).decode(),
            base64.urlsafe_b64encode(value).decode(),
            repr(value)[2:-1],
        }
        try:
            out.add(value.decode("utf-8"))
        except UnicodeDecodeError:
            out.add(value.decode("latin-1"))
    return {form for form in out if len(form) >= 8}


def _texts(values: Iterable[object]) -> list[str]:
    texts: list[str] = []
    for value in values:
        texts += [repr(value), str(value)]
        if isinstance(value, BaseException):
            texts.append("".join(traceback.format_exception(value)))
            texts += [repr(arg) for arg in value.args]
            for failure in getattr(value, "failures", ()):
                texts += [repr(failure), str(failure)]
    return texts


def _assert_no_secret(secrets: dict[str, bytes], values: Iterable[object]) -> None:
    texts = _texts(values)
    for label, secret in secrets.items():
        for form in _forms(secret):
            for text in texts:
                assert form not in text, f"{label} appears in {text[:200]!r}"


def _errors(calls: Iterable[Callable[[], object]]) -> list[BaseException]:
    errors: list[BaseException] = []
    for call in calls:
        with pytest.raises(KmsEnvelopeError) as info:
            call()
        errors.append(info.value)
    return errors


def test_no_secret_in_any_text(rsa_pem: tuple[bytes, bytes]) -> None:
    private, public = rsa_pem
    private_key = cast(rsa.RSAPrivateKey, serialization.load_pem_private_key(private, None))
    private_der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    numbers = private_key.private_numbers()
    d_bytes = numbers.d.to_bytes((numbers.d.bit_length() + 7) // 8, "big")
    aes = _aes()
    rsa_keyring = RawRsaKeyring(NS, "rsa", private_key=private)
    multi = MultiKeyring(aes, [rsa_keyring])
    required = RequiredContextMaterials(multi, ["tenant"])
    envelopes = [
        Envelope(multi, suite=Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384),
        Envelope(required),
        Envelope(aes, suite=Suite.AES_128_GCM_IV12_TAG16_NO_KDF,
                 commitment_policy=CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT),
    ]
    context = {"tenant": "acme"}
    signed, with_required, no_kdf = envelopes
    message = signed.encrypt(PLAINTEXT, context)
    enc_materials = signed.encryption_materials(context, len(PLAINTEXT))
    out = bytearray()
    header, dec_materials = signed.decrypt_into(message, out, context)
    assert bytes(out) == PLAINTEXT
    data_key = dec_materials.plaintext_data_key
    assert data_key is not None and enc_materials.plaintext_data_key is not None
    signing_key = enc_materials.signing_key
    assert signing_key is not None
    signing_scalar = signing_key.private_numbers().private_value.to_bytes(48, "big")
    # NO_KDF: the data key is the content key itself
    no_kdf_message = no_kdf.encrypt(PLAINTEXT)
    no_kdf_out = bytearray()
    _h, no_kdf_materials = no_kdf.decrypt_into(no_kdf_message, no_kdf_out)
    assert no_kdf_materials.plaintext_data_key is not None

    tampered_body = bytearray(message)
    tampered_body[header.size + 40] ^= 1
    tampered_sig = bytearray(message)
    tampered_sig[-1] ^= 1
    errors = _errors(
        [
            lambda: Envelope(_aes(bytes(32))).decrypt(message, context),
            lambda: Envelope(RawRsaKeyring(NS, "rsa", public_key=public)).decrypt(message, context),
            lambda: signed.decrypt(bytes(tampered_body), context),
            lambda: signed.decrypt(bytes(tampered_sig), context),
            lambda: signed.decrypt_stream(io.BytesIO(bytes(tampered_sig)), io.BytesIO(), context),
            lambda: signed.decrypt(message, {"tenant": "other"}),
            lambda: with_required.encrypt(PLAINTEXT, {}),
            lambda: signed.decrypt(message[:-3], context),
            lambda: signed.encrypt(PLAINTEXT, {"aws-crypto-x": "y"}),
            lambda: RawAesKeyring(NS, "k", AES_KEY[:17]),
            lambda: RawRsaKeyring(NS, "k", private_key=private[:200]),
            lambda: RawRsaKeyring(NS, "k", private_key=private.replace(b"\n", b"\r\n")[:-40]),
        ]
    )
    decrypted = signed.decrypt_with_header(message, context)
    values: list[object] = [
        aes, rsa_keyring, multi, required, *envelopes, *(e.materials_manager for e in envelopes),
        enc_materials, dec_materials, no_kdf_materials, header, header.to_dict(), decrypted,
        decrypted.header, *header.encrypted_data_keys, *errors,
    ]
    _assert_no_secret(
        {
            "AES wrapping key": AES_KEY,
            "RSA private key (DER)": private_der,
            "RSA private exponent": d_bytes,
            "data key": data_key,
            "NO_KDF data key": no_kdf_materials.plaintext_data_key,
            "encryption data key": enc_materials.plaintext_data_key,
            "signing key": signing_scalar,
            "plaintext": PLAINTEXT,
        },
        values,
    )
    pem_body = b"".join(private.splitlines()[1:-1])
    for text in _texts(values):
        assert pem_body[20:60].decode() not in text


def test_secret_checker_catches_leaks() -> None:
    """Control: the checker above does flag each form it looks for."""
    for leak in (AES_KEY.hex(), AES_KEY.hex().upper(), base64.b64encode(AES_KEY).decode(), repr(AES_KEY),
                 AES_KEY[10:22].hex()):
        with pytest.raises(AssertionError):
            _assert_no_secret({"key": AES_KEY}, [ValueError(leak)])
    with pytest.raises(AssertionError):
        _assert_no_secret({"plaintext": PLAINTEXT}, [PLAINTEXT.decode("latin-1")])


# -- buffer reuse --------------------------------------------------------------------------------------


def test_encrypt_into_reuses_the_buffer() -> None:
    envelope = Envelope(_aes(), frame_length=100)
    buffer = bytearray(b"\xaa" * 100_000)  # larger than any message below: must shrink
    for size in (5000, 0, 1, 250, 20_000, 3):
        plaintext = random_bytes(size, seed=size)
        before = id(buffer)
        written = envelope.encrypt_into(plaintext, buffer, {"n": str(size)})
        assert id(buffer) == before
        assert written == len(buffer)
        assert envelope.decrypt(bytes(buffer), {"n": str(size)}) == plaintext
    signed = Envelope(_aes(), suite=Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384, frame_length=100)
    for size in (0, 777, 10):
        written = signed.encrypt_into(random_bytes(size), buffer)
        assert written == len(buffer)
        assert signed.decrypt(bytes(buffer)) == random_bytes(size)
    # any buffer-protocol plaintext
    envelope.encrypt_into(memoryview(bytearray(PLAINTEXT)), buffer)
    assert envelope.decrypt(bytes(buffer)) == PLAINTEXT


def test_decrypt_into_reuses_the_buffer() -> None:
    envelope = Envelope(_aes(), frame_length=100)
    out = bytearray(b"\xbb" * 50_000)
    for size in (10_000, 0, 1, 300, 40_000, 7):
        plaintext = random_bytes(size, seed=size)
        message = envelope.encrypt(plaintext)
        before = id(out)
        header, materials = envelope.decrypt_into(message, out)
        assert id(out) == before
        assert bytes(out) == plaintext
        assert header.suite is envelope.suite and materials.plaintext_data_key is not None
        # ciphertext may be any buffer
        envelope.decrypt_into(memoryview(bytearray(message)), out)
        assert bytes(out) == plaintext


@pytest.mark.parametrize(
    "suite",
    [Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY, Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384],
    ids=lambda s: f"{s.id:04X}",
)
def test_decrypt_into_leaves_the_buffer_empty_on_body_failures(suite: Suite) -> None:
    """Failures found in the body or footer: trailing bytes, truncation, a bad frame tag or signature."""
    envelope = Envelope(_aes(), suite=suite, frame_length=100)
    message = envelope.encrypt(PLAINTEXT * 10)
    failing = [message + b"\x00", message[:-1], message[: len(message) - 50]]
    for at in (envelope.parse_header(message).size + 20, len(message) - 200):  # first and a late frame
        bad_frame = bytearray(message)
        bad_frame[at] ^= 1
        failing.append(bytes(bad_frame))
    if suite.signing:
        bad_signature = bytearray(message)
        bad_signature[-2] ^= 1
        failing.append(bytes(bad_signature))
    for data in failing:
        out = bytearray(b"previous plaintext, must not survive")
        with pytest.raises(KmsEnvelopeError):
            envelope.decrypt_into(data, out)
        assert out == b""
        # the buffer still works afterwards
        envelope.decrypt_into(message, out)
        assert bytes(out) == PLAINTEXT * 10


def test_decrypt_into_into_fresh_buffer_stays_empty_on_header_failures() -> None:
    envelope = Envelope(_aes())
    message = envelope.encrypt(PLAINTEXT)
    calls: list[Callable[[bytearray], object]] = [
        lambda out: Envelope(_aes(bytes(32))).decrypt_into(message, out),
        lambda out: envelope.decrypt_into(message[:20], out),
        lambda out: envelope.decrypt_into(b"\x03" + message[1:], out),
    ]
    for call in calls:
        out = bytearray()
        with pytest.raises(KmsEnvelopeError):
            call(out)
        assert out == b""


def test_contexts_and_plaintext_types() -> None:
    envelope = Envelope(_aes())
    for plaintext in (bytearray(PLAINTEXT), memoryview(PLAINTEXT)):
        assert envelope.decrypt(envelope.encrypt(plaintext)) == PLAINTEXT  # type: ignore[arg-type]
    with pytest.raises(MalformedInputError):
        envelope.encrypt(PLAINTEXT, {"k": 1})  # type: ignore[dict-item]
    with pytest.raises(MalformedInputError):
        envelope.encrypt(PLAINTEXT, {1: "v"})  # type: ignore[dict-item]
    with pytest.raises(MalformedInputError):
        envelope.encrypt(PLAINTEXT, {"\ud800": "lone surrogate"})
    with pytest.raises(ContextMismatchError):
        envelope.decrypt(envelope.encrypt(PLAINTEXT, {"a": "b"}), {"a": "c"})
    with pytest.raises(PolicyError):
        envelope.encrypt(PLAINTEXT, {"aws-crypto-public-key": "x"})


# -- known library bugs: these tests fail against the current library and are NOT committed ---------------


def test_bug_decrypt_into_empties_the_buffer_on_header_failures() -> None:
    """decrypt_into's docstring: "``out`` is zeroed and emptied on any failure".

    Failures raised before the body is reached (parse_header, policy, keyring, header tag) happen in
    ``_open_message``, outside the try block, so the caller's previous plaintext survives in ``out``.
    """
    envelope = Envelope(_aes())
    message = envelope.encrypt(PLAINTEXT)
    calls: list[Callable[[bytearray], object]] = [
        lambda out: Envelope(_aes(bytes(32))).decrypt_into(message, out),  # NoUsableKeyError
        lambda out: envelope.decrypt_into(message[:20], out),  # TruncatedInputError
        lambda out: envelope.decrypt_into(b"\x03" + message[1:], out),  # MalformedInputError
        lambda out: envelope.decrypt_into(message, out, {"other": "pair"}),  # header tag / context
    ]
    for call in calls:
        out = bytearray(b"previous secret plaintext")
        with pytest.raises(KmsEnvelopeError):
            call(out)
        assert out == b"", f"buffer kept {bytes(out)!r}"


def test_bug_large_frame_length_round_trips_without_max_edks() -> None:
    """An Envelope must decrypt what it encrypts, whether or not max_encrypted_data_keys is set.

    ``Envelope.__init__`` raises ``limits.max_frame_length`` to the configured frame length only inside
    ``if max_encrypted_data_keys is not None``; without it, frames over 64 MiB are refused on decrypt.
    """
    frame_length = (1 << 26) + 128
    with_limit = Envelope(_aes(), frame_length=frame_length, max_encrypted_data_keys=5)
    assert with_limit.decrypt(with_limit.encrypt(b"abc")) == b"abc"
    without = Envelope(_aes(), frame_length=frame_length)
    assert without.decrypt(without.encrypt(b"abc")) == b"abc"  # PolicyError: exceeds the limit 67108864


def test_bug_decrypt_limits_raise_configuration_error() -> None:
    """errors.py: every deliberate error derives from KmsEnvelopeError; invalid construction arguments are
    ConfigurationError. DecryptLimits.__post_init__ raises plain ValueError."""
    from kmsenvelope.message.header import DecryptLimits

    for kwargs in ({"max_frame_length": 0}, {"max_encrypted_data_keys": 0}, {"max_header_size": 10}):
        with pytest.raises(ConfigurationError):
            DecryptLimits(**kwargs)


def test_bug_bool_frame_length_is_rejected() -> None:
    """Minor: ``isinstance(True, int)`` lets frame_length=True through as a 1-byte frame length."""
    with pytest.raises(ConfigurationError):
        Envelope(_aes(), frame_length=True)
