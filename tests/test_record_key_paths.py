"""The short materials path for DB-ESDK records and the primitives it runs on.

``DefaultMaterials`` asks a :class:`~kmsenvelope.materials.protocols.RecordKeyring` (the hierarchical
keyring) for a record's data key directly instead of going through ``on_encrypt`` / ``on_decrypt``.
These tests check its EDKs against a by-hand reading of the MPL specification (hierarchical keyring +
intermediate key wrapping), both ways, and against the keyring's general path; and they check the
KDF, HMAC and AES-CTR shortcuts against the standard library and NIST vectors.
"""

from __future__ import annotations

import hmac
import os
import uuid

import pytest
from cryptography.hazmat.primitives.ciphers import modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kmsenvelope import RawAesKeyring
from kmsenvelope.aws.key_store import StaticBranchKeyStore
from kmsenvelope.errors import AuthenticationError, NoUsableKeyError
from kmsenvelope.keyrings.hierarchical import HierarchicalKeyring
from kmsenvelope.keyrings.multi import MultiKeyring
from kmsenvelope.materials.cmm import DefaultMaterials
from kmsenvelope.materials.materials import (
    DecryptionMaterials,
    DecryptionRequest,
    EncryptedDataKey,
    EncryptionMaterials,
    EncryptionRequest,
)
from kmsenvelope.materials.protocols import RecordKeyring
from kmsenvelope.message.header import MessageHeader
from kmsenvelope.primitives import ctr
from kmsenvelope.primitives.kdf import CounterKdf, hmac_digest, kdf_counter_hmac
from kmsenvelope.structured.header import Header
from kmsenvelope.suites import CommitmentPolicy, DbeSuite
from kmsenvelope.values import EncryptionContext

SUITE = DbeSuite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_SYMSIG_HMAC_SHA384
POLICY = CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
CONTEXT = {"aws-crypto-table-name": "orders", "tenant": "acme"}
BRANCH_KEY = bytes(range(32))
VERSION = "5a1a1a1a-0b0b-4c4c-8d8d-9e9e9e9e9e9e"


def _keyring() -> HierarchicalKeyring:
    store = StaticBranchKeyStore("bk", VERSION, BRANCH_KEY, os.urandom(32))
    return HierarchicalKeyring(store, branch_key_id="bk")


def _context_aad() -> bytes:
    pairs = sorted((k.encode(), v.encode()) for k, v in CONTEXT.items())
    out = len(pairs).to_bytes(2, "big")
    for key, value in pairs:
        out += len(key).to_bytes(2, "big") + key + len(value).to_bytes(2, "big") + value
    return out


def _hkdf_sha512(ikm: bytes, info: bytes) -> bytes:
    prk = hmac.digest(bytes(64), ikm, "sha512")
    return hmac.digest(prk, info + b"\x01", "sha512")[:32]


def _open_by_hand(edk: EncryptedDataKey) -> tuple[bytes, bytes]:
    """(data key, symmetric signing key), following the specifications step by step."""
    assert edk.provider_id == "aws-kms-hierarchy" and edk.provider_info == b"bk"
    sealed, inner = edk.ciphertext[:48], edk.ciphertext[48:]
    salt, iv, version, wrapped = inner[:16], inner[16:28], inner[28:44], inner[44:]
    assert version == uuid.UUID(VERSION).bytes
    derived = hmac.digest(
        BRANCH_KEY,
        b"\x00\x00\x00\x01" + b"aws-kms-hierarchy" + b"\x00" + salt + b"\x00\x00\x01\x00",
        "sha256",
    )
    aad = b"aws-kms-hierarchy" + b"bk" + version + _context_aad()
    intermediate = AESGCM(derived).decrypt(iv, wrapped, aad)
    kek = _hkdf_sha512(intermediate, b"AWS_MPL_INTERMEDIATE_KEYWRAP_ENC")
    signing_key = _hkdf_sha512(intermediate, b"AWS_MPL_INTERMEDIATE_KEYWRAP_MAC")
    return AESGCM(kek).decrypt(bytes(12), sealed, _context_aad()), signing_key


def _seal_by_hand(data_key: bytes, intermediate: bytes) -> EncryptedDataKey:
    salt, iv = os.urandom(16), os.urandom(12)
    version = uuid.UUID(VERSION).bytes
    derived = kdf_counter_hmac("sha256", BRANCH_KEY, b"aws-kms-hierarchy", salt, 32)
    aad = b"aws-kms-hierarchy" + b"bk" + version + _context_aad()
    inner = salt + iv + version + AESGCM(derived).encrypt(iv, intermediate, aad)
    kek = _hkdf_sha512(intermediate, b"AWS_MPL_INTERMEDIATE_KEYWRAP_ENC")
    sealed = AESGCM(kek).encrypt(bytes(12), data_key, _context_aad())
    return EncryptedDataKey("aws-kms-hierarchy", b"bk", sealed + inner)


def test_hierarchical_keyring_offers_the_record_path() -> None:
    assert isinstance(_keyring(), RecordKeyring)
    assert not isinstance(RawAesKeyring("ns", "name", os.urandom(32)), RecordKeyring)


def test_record_path_edk_opens_by_the_specification() -> None:
    cmm = DefaultMaterials(_keyring())
    materials = cmm.get_encryption_materials(
        EncryptionRequest(CONTEXT, POLICY, SUITE, required_context_keys=frozenset({"tenant"}))
    )
    (edk,) = materials.encrypted_data_keys
    (signing_key,) = materials.symmetric_signing_keys
    assert _open_by_hand(edk) == (materials.plaintext_data_key, signing_key)
    assert materials.required_context_keys == {"tenant"}
    assert dict(materials.encryption_context) == CONTEXT
    assert materials.signing_key is None


def test_record_path_opens_an_edk_sealed_by_the_specification() -> None:
    data_key, intermediate = os.urandom(32), os.urandom(32)
    edk = _seal_by_hand(data_key, intermediate)
    cmm = DefaultMaterials(_keyring())
    materials = cmm.decrypt_materials(DecryptionRequest(SUITE, (edk,), CONTEXT, POLICY))
    assert materials.plaintext_data_key == data_key
    assert materials.symmetric_signing_key == _hkdf_sha512(intermediate, b"AWS_MPL_INTERMEDIATE_KEYWRAP_MAC")
    with pytest.raises(NoUsableKeyError) as info:
        cmm.decrypt_materials(DecryptionRequest(SUITE, (edk,), {**CONTEXT, "tenant": "evil"}, POLICY))
    assert "AuthenticationError" in str(info.value.failures)


def test_record_path_and_general_path_read_each_other() -> None:
    keyring = _keyring()
    # General path: the hierarchical keyring as a second keyring wraps an existing data key.
    multi = MultiKeyring(generator=RawAesKeyring("ns", "k", os.urandom(32)), children=[keyring])
    general = multi.on_encrypt(EncryptionMaterials(SUITE, CONTEXT))
    hierarchy_edk = general.encrypted_data_keys[1]
    data_key, signing_key = keyring.open_record_key(SUITE, CONTEXT, (hierarchy_edk,))
    assert data_key == general.plaintext_data_key
    assert signing_key == general.symmetric_signing_keys[1]
    # Record path, read back through on_decrypt.
    fresh_key, edk, fresh_signing_key = keyring.fresh_record_key(SUITE, CONTEXT)
    recovered = keyring.on_decrypt(DecryptionMaterials(SUITE, CONTEXT), (edk,))
    assert (recovered.plaintext_data_key, recovered.symmetric_signing_key) == (fresh_key, fresh_signing_key)


def test_record_path_is_not_used_for_signing_suites() -> None:
    signing_suite = DbeSuite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384_SYMSIG_HMAC_SHA384
    materials = DefaultMaterials(_keyring()).get_encryption_materials(
        EncryptionRequest(CONTEXT, POLICY, signing_suite)
    )
    assert materials.signing_key is not None
    assert "aws-crypto-public-key" in materials.encryption_context


def test_tampered_sealed_data_key_is_refused() -> None:
    keyring = _keyring()
    _, edk, _ = keyring.fresh_record_key(SUITE, CONTEXT)
    broken = bytearray(edk.ciphertext)
    broken[3] ^= 1
    with pytest.raises(NoUsableKeyError) as info:
        keyring.open_record_key(SUITE, CONTEXT, (EncryptedDataKey(edk.provider_id, b"bk", bytes(broken)),))
    assert "AuthenticationError" in str(info.value.failures)
    with pytest.raises(NoUsableKeyError):
        keyring.open_record_key(
            SUITE, CONTEXT, (EncryptedDataKey(edk.provider_id, b"bk", edk.ciphertext[:48]),)
        )


# -- primitives ------------------------------------------------------------------------------------


@pytest.mark.parametrize("hash_name", ["sha256", "sha384", "sha512"])
@pytest.mark.parametrize("key_length", [0, 1, 32, 64, 128, 129, 300])
def test_hmac_digest_matches_the_standard_library(hash_name: str, key_length: int) -> None:
    key, message = os.urandom(key_length), os.urandom(100)
    assert hmac_digest(hash_name, key, message) == hmac.digest(key, message, hash_name)


@pytest.mark.parametrize("length", [16, 32, 33, 64, 100])
def test_counter_kdf_matches_kdf_counter_hmac(length: int) -> None:
    key = os.urandom(32)
    kdf = CounterKdf("sha256", key, b"label", length)
    for _ in range(3):
        context = os.urandom(16)
        assert kdf.derive(context) == kdf_counter_hmac("sha256", key, b"label", context, length)
    assert "hidden" in repr(kdf) and key.hex() not in repr(kdf)


def test_aes_ctr_keystream_matches_nist() -> None:
    # NIST SP 800-38A F.5.5 (CTR-AES256.Encrypt): keystream = ciphertext XOR plaintext.
    key = bytes.fromhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
    counter = modes.CTR(bytes.fromhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"))
    plaintext = bytes.fromhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
    ciphertext = bytes.fromhex("601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5")
    expected = bytes(a ^ b for a, b in zip(plaintext, ciphertext, strict=True))
    assert ctr.aes_ctr_keystream(key, counter, 32) == expected
    assert ctr.aes_ctr_keystream(key, counter, 32) == expected  # the mode object is reusable
    with pytest.raises(ValueError):
        ctr.aes_ctr_keystream(os.urandom(16), counter, 16)


def test_authentication_error_names_no_secret() -> None:
    keyring = _keyring()
    _, edk, _ = keyring.fresh_record_key(SUITE, CONTEXT)
    try:
        keyring.open_record_key(SUITE, {"x": "y"}, (edk,))
    except NoUsableKeyError as exc:
        assert BRANCH_KEY.hex() not in str(exc)
    else:  # pragma: no cover - the wrong context must fail
        raise AssertionError("a wrong context opened the EDK")
    with pytest.raises(AuthenticationError):
        from kmsenvelope.keyrings import wrapping

        wrapping.intermediate_open(SUITE, os.urandom(32), edk.ciphertext[:48], b"")


@pytest.mark.parametrize("hash_name", ["sha256", "sha384", "sha512"])
@pytest.mark.parametrize("length", [16, 32, 48, 64, 65, 200])
@pytest.mark.parametrize("salt", [None, b"", b"salt", bytes(200)])
def test_hkdf_many_matches_cryptography(hash_name: str, length: int, salt: bytes | None) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    from kmsenvelope.primitives.kdf import hkdf_many

    algorithm = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[hash_name]
    ikm = os.urandom(32)
    infos = (b"first", b"second" * 10, b"")
    expected = [HKDF(algorithm, length, salt or None, info).derive(ikm) for info in infos]
    assert hkdf_many(hash_name, ikm, salt, infos, length) == expected


def test_hkdf_rfc5869_case_1() -> None:
    from kmsenvelope.primitives.kdf import hkdf

    okm = hkdf(
        "sha256",
        bytes.fromhex("0b" * 22),
        bytes.fromhex("000102030405060708090a0b0c"),
        bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"),
        42,
    )
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


@pytest.mark.parametrize(
    "cls",
    [
        EncryptedDataKey,
        EncryptionRequest,
        DecryptionRequest,
        EncryptionMaterials,
        DecryptionMaterials,
        Header,
        MessageHeader,
    ],
    ids=lambda c: c.__name__,
)
def test_materials_values_init_matches_their_fields(cls: type) -> None:
    """The hand-written __init__ of these frozen values takes exactly the dataclass fields, in order,
    with the declared defaults, and the values stay frozen, comparable and replaceable."""
    import dataclasses
    import inspect

    parameters = list(inspect.signature(cls).parameters.values())
    fields = dataclasses.fields(cls)
    assert [p.name for p in parameters] == [f.name for f in fields]
    for parameter, declared in zip(parameters, fields, strict=True):
        if declared.default is not dataclasses.MISSING:
            assert parameter.default == declared.default
        elif declared.default_factory is not dataclasses.MISSING:
            assert parameter.default is None  # stands for a fresh default_factory() value
        else:
            assert parameter.default is inspect.Parameter.empty
    # Contexts are frozen into EncryptionContext (equal to the dict given) and EDK fields must be bytes.
    arguments: dict[str, object] = {
        f.name: {"k": f"value-{i}"}
        if f.name.endswith("context")
        else f"value-{i}".encode()
        if f.name in ("provider_info", "ciphertext")
        else f"value-{i}"
        for i, f in enumerate(fields)
    }
    value = cls(**arguments)
    assert {f.name: getattr(value, f.name) for f in fields} == arguments
    assert value == cls(**arguments) and hash(value) == hash(cls(**arguments))
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, fields[0].name, "changed")
    changed: object = {"k": "x"} if fields[0].name.endswith("context") else "x"
    assert getattr(dataclasses.replace(value, **{fields[0].name: changed}), fields[0].name) == changed


def test_decryption_request_reproduced_context_defaults_to_an_immutable_empty_context() -> None:
    first = DecryptionRequest(SUITE, (), {}, POLICY)
    assert first.reproduced_context == {} and type(first.reproduced_context) is EncryptionContext
    with pytest.raises(TypeError):
        dict.__setitem__(first.reproduced_context, "k", "v")  # type: ignore[arg-type]
    assert DecryptionRequest(SUITE, (), {}, POLICY).reproduced_context == {}


class _PassThrough:
    """A materials manager that is not DefaultMaterials, so records take the request/protocol path."""

    def __init__(self, inner: DefaultMaterials) -> None:
        self.inner = inner
        self.requests: list[object] = []

    def get_encryption_materials(self, request: EncryptionRequest) -> EncryptionMaterials:
        self.requests.append(request)
        return self.inner.get_encryption_materials(request)

    def decrypt_materials(self, request: DecryptionRequest) -> DecryptionMaterials:
        self.requests.append(request)
        return self.inner.decrypt_materials(request)


@pytest.mark.parametrize("suite", list(DbeSuite), ids=lambda s: s.name)
def test_direct_and_protocol_materials_paths_agree(suite: DbeSuite) -> None:
    from kmsenvelope.errors import ContextMismatchError
    from kmsenvelope.structured import Action, Terminal, decrypt_structure, encrypt_structure

    direct = DefaultMaterials(_keyring())
    protocol = _PassThrough(direct)
    record = {"id": Terminal(b"\x00\x01", b"r-1"), "secret": Terminal(b"\x00\x01", b"s" * 40)}
    actions = {"id": Action.SIGN_ONLY, "secret": Action.ENCRYPT_AND_SIGN}
    signed = {"id": True, "secret": True}
    for writer in (direct, protocol):
        encrypted = encrypt_structure(
            "t", record, actions, writer, suite=suite, encryption_context={"k": "v"}
        )
        for reader in (direct, protocol):
            result = decrypt_structure("t", encrypted.record, signed, reader)
            assert result.record["secret"] == record["secret"]
            assert result.header.encryption_context["k"] == "v"
            assert result.header.suite is suite
        assert encrypted.header.stored_context["k"] == "v"
    # The protocol path really went through the requests; the direct one never built any.
    assert len(protocol.requests) == 3  # one encrypt, two decrypts
    # A reproduced context that contradicts the stored one fails the same way on both paths.
    encrypted = encrypt_structure("t", record, actions, direct, suite=suite, encryption_context={"k": "v"})
    for reader in (direct, protocol):
        with pytest.raises(ContextMismatchError):
            decrypt_structure("t", encrypted.record, signed, reader, encryption_context={"k": "other"})
