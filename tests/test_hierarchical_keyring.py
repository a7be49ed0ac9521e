"""The hierarchical keyring: EDK layout, ESDK and DB-ESDK suites, rotation, TTL cache, tenants."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Mapping

import pytest

from kmsenvelope import Envelope, Suite
from kmsenvelope.aws.key_store import (
    BeaconKeyMaterials,
    BranchKeyMaterials,
    BranchKeyStore,
    StaticBranchKeyStore,
)
from kmsenvelope.errors import ConfigurationError, KeyStoreError, NoUsableKeyError, PolicyError
from kmsenvelope.keyrings.hierarchical import HierarchicalKeyring
from kmsenvelope.materials.materials import DecryptionMaterials, EncryptedDataKey, EncryptionMaterials
from kmsenvelope.primitives.aead import AesGcm
from kmsenvelope.primitives.kdf import kdf_counter_hmac
from kmsenvelope.suites import DbeSuite

CONTEXT = {"tenant": "acme", "purpose": "test"}


class RotatingStore:
    """An in-memory branch key store with rotation, counting the calls it serves."""

    def __init__(self) -> None:
        self.versions: dict[str, list[BranchKeyMaterials]] = {}
        self.calls: list[tuple[str, str, str | None]] = []
        self.fail = False

    def create(self, branch_key_id: str) -> BranchKeyMaterials:
        self.versions[branch_key_id] = []
        return self.rotate(branch_key_id)

    def rotate(self, branch_key_id: str) -> BranchKeyMaterials:
        materials = BranchKeyMaterials(branch_key_id, str(uuid.uuid4()), os.urandom(32))
        self.versions[branch_key_id].append(materials)
        return materials

    def get_active_branch_key(self, branch_key_id: str) -> BranchKeyMaterials:
        self.calls.append(("active", branch_key_id, None))
        if self.fail or branch_key_id not in self.versions:
            raise KeyStoreError("no such branch key")
        return self.versions[branch_key_id][-1]

    def get_branch_key_version(self, branch_key_id: str, version: str) -> BranchKeyMaterials:
        self.calls.append(("version", branch_key_id, version))
        if self.fail:
            raise KeyStoreError("store unavailable")
        for materials in self.versions.get(branch_key_id, ()):
            if materials.branch_key_version == version:
                return materials
        raise KeyStoreError("no such branch key version")

    def get_beacon_key(self, branch_key_id: str) -> BeaconKeyMaterials:
        raise KeyStoreError("no beacon keys here")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _encrypt_materials(suite: Suite | DbeSuite, context: Mapping[str, str] = CONTEXT) -> EncryptionMaterials:
    return EncryptionMaterials(suite=suite, encryption_context=context)


def _decrypt(keyring: HierarchicalKeyring, materials: EncryptionMaterials) -> DecryptionMaterials:
    return keyring.on_decrypt(
        DecryptionMaterials(suite=materials.suite, encryption_context=materials.encryption_context),
        materials.encrypted_data_keys,
    )


def test_store_satisfies_protocol() -> None:
    assert isinstance(RotatingStore(), BranchKeyStore)
    store = StaticBranchKeyStore("id", str(uuid.uuid4()), os.urandom(32), os.urandom(32))
    assert isinstance(store, BranchKeyStore)


@pytest.mark.parametrize("suite", list(Suite), ids=lambda s: s.name)
def test_esdk_suites_round_trip_at_keyring_level(suite: Suite) -> None:
    store = RotatingStore()
    active = store.create("bk-1")
    keyring = HierarchicalKeyring(store, branch_key_id="bk-1")
    materials = keyring.on_encrypt(_encrypt_materials(suite))
    assert materials.plaintext_data_key is not None
    (edk,) = materials.encrypted_data_keys
    assert edk.provider_id == "aws-kms-hierarchy"
    assert edk.provider_info == b"bk-1"
    # salt (16) || IV (12) || version (16) || wrapped key || tag (16); direct wrapping for ESDK suites.
    assert len(edk.ciphertext) == 60 + suite.data_key_length
    assert edk.ciphertext[28:44] == uuid.UUID(active.branch_key_version).bytes
    assert materials.symmetric_signing_keys == ()
    recovered = _decrypt(keyring, materials)
    assert recovered.plaintext_data_key == materials.plaintext_data_key
    assert recovered.symmetric_signing_key is None


def test_edk_layout_matches_the_specification() -> None:
    """Unwrap an EDK by hand: KDF-CTR-HMAC-SHA256 key, AAD = provider id || id || version || context."""
    store = RotatingStore()
    active = store.create("bk-1")
    keyring = HierarchicalKeyring(store, branch_key_id="bk-1")
    materials = keyring.on_encrypt(_encrypt_materials(Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY))
    ciphertext = materials.encrypted_data_keys[0].ciphertext
    salt, iv, version, sealed = ciphertext[:16], ciphertext[16:28], ciphertext[28:44], ciphertext[44:]
    derived = kdf_counter_hmac("sha256", active.branch_key, b"aws-kms-hierarchy", salt, 32)
    context = b"\x00\x02" + b"\x00\x07purpose\x00\x04test" + b"\x00\x06tenant\x00\x04acme"
    aad = b"aws-kms-hierarchy" + b"bk-1" + version + context
    assert AesGcm(derived).decrypt(iv, sealed, aad) == materials.plaintext_data_key


def test_dbe_suites_use_intermediate_wrapping() -> None:
    store = RotatingStore()
    store.create("bk-1")
    keyring = HierarchicalKeyring(store, branch_key_id="bk-1")
    for suite in DbeSuite:
        materials = keyring.on_encrypt(_encrypt_materials(suite))
        (edk,) = materials.encrypted_data_keys
        # wrapped data key (32 + 16) || hierarchy-wrapped intermediate key (60 + 32)
        assert len(edk.ciphertext) == 48 + 92
        (signing_key,) = materials.symmetric_signing_keys
        assert len(signing_key) == 32
        recovered = _decrypt(keyring, materials)
        assert recovered.plaintext_data_key == materials.plaintext_data_key
        assert recovered.symmetric_signing_key == signing_key
        # A second wrap of the same data key gets its own intermediate key and signing key.
        again = keyring.on_encrypt(materials)
        assert again.symmetric_signing_keys[0] == signing_key
        assert again.symmetric_signing_keys[1] != signing_key


def test_envelope_round_trip_with_hierarchical_keyring() -> None:
    store = RotatingStore()
    store.create("bk-1")
    envelope = Envelope(HierarchicalKeyring(store, branch_key_id="bk-1"))
    message = envelope.encrypt(b"hello hierarchy" * 100, CONTEXT)
    assert envelope.decrypt(message, CONTEXT) == b"hello hierarchy" * 100


def test_wrong_context_or_tampered_edk_is_refused_and_not_cached() -> None:
    store = RotatingStore()
    store.create("bk-1")
    writer = HierarchicalKeyring(store, branch_key_id="bk-1")
    materials = writer.on_encrypt(_encrypt_materials(Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY))
    reader = HierarchicalKeyring(store, branch_key_id="bk-1")
    with pytest.raises(NoUsableKeyError) as info:
        reader.on_decrypt(
            DecryptionMaterials(suite=materials.suite, encryption_context={"tenant": "evil"}),
            materials.encrypted_data_keys,
        )
    assert "AuthenticationError" in str(info.value)
    assert reader.cache_size == 0
    edk = materials.encrypted_data_keys[0]
    flipped = bytearray(edk.ciphertext)
    flipped[-1] ^= 1
    with pytest.raises(NoUsableKeyError):
        reader.on_decrypt(
            DecryptionMaterials(suite=materials.suite, encryption_context=CONTEXT),
            [EncryptedDataKey(edk.provider_id, edk.provider_info, bytes(flipped))],
        )
    assert reader.cache_size == 0
    assert _decrypt(reader, materials).plaintext_data_key == materials.plaintext_data_key
    assert reader.cache_size == 1


def test_edks_of_other_branch_keys_and_providers_are_skipped() -> None:
    store = RotatingStore()
    store.create("bk-1")
    store.create("bk-2")
    materials = HierarchicalKeyring(store, branch_key_id="bk-2").on_encrypt(
        _encrypt_materials(Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY)
    )
    other = EncryptedDataKey("raw-aes", b"x", b"y" * 40)
    with pytest.raises(NoUsableKeyError) as info:
        HierarchicalKeyring(store, branch_key_id="bk-1").on_decrypt(
            DecryptionMaterials(suite=materials.suite, encryption_context=CONTEXT),
            [other, *materials.encrypted_data_keys],
        )
    assert "different branch key id" in str(info.value)
    assert ("version", "bk-2", store.versions["bk-2"][0].branch_key_version) not in store.calls


def test_rotation_with_ttl_clock() -> None:
    store = RotatingStore()
    first = store.create("bk-1")
    clock = Clock()
    keyring = HierarchicalKeyring(store, branch_key_id="bk-1", ttl_seconds=60, clock=clock)
    old = keyring.on_encrypt(_encrypt_materials(Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY))
    assert old.encrypted_data_keys[0].ciphertext[28:44] == uuid.UUID(first.branch_key_version).bytes
    second = store.rotate("bk-1")

    # Within the TTL the cached active version keeps being used: no store call.
    clock.now += 59
    calls = len(store.calls)
    cached = keyring.on_encrypt(_encrypt_materials(Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY))
    assert cached.encrypted_data_keys[0].ciphertext[28:44] == uuid.UUID(first.branch_key_version).bytes
    assert len(store.calls) == calls

    # After the TTL the new active version is fetched and used for new messages.
    clock.now += 2
    new = keyring.on_encrypt(_encrypt_materials(Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY))
    assert new.encrypted_data_keys[0].ciphertext[28:44] == uuid.UUID(second.branch_key_version).bytes
    assert store.calls[-1] == ("active", "bk-1", None)

    # Both old and new messages still decrypt, each through its own version.
    assert _decrypt(keyring, old).plaintext_data_key == old.plaintext_data_key
    assert _decrypt(keyring, new).plaintext_data_key == new.plaintext_data_key
    fetched = {call[2] for call in store.calls if call[0] == "version"}
    assert fetched == {first.branch_key_version, second.branch_key_version}

    # Decrypt versions are cached too, until their TTL runs out.
    calls = len(store.calls)
    _decrypt(keyring, old)
    assert len(store.calls) == calls
    clock.now += 61
    _decrypt(keyring, old)
    assert store.calls[-1:] == [("version", "bk-1", first.branch_key_version)]


def test_multi_tenant_supplier() -> None:
    store = RotatingStore()
    for tenant in ("acme", "globex"):
        store.create(f"bk-{tenant}")
    keyring = HierarchicalKeyring(store, branch_key_id_supplier=lambda context: f"bk-{context['tenant']}")
    acme = keyring.on_encrypt(
        _encrypt_materials(Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY, {"tenant": "acme"})
    )
    globex = keyring.on_encrypt(
        _encrypt_materials(Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY, {"tenant": "globex"})
    )
    assert acme.encrypted_data_keys[0].provider_info == b"bk-acme"
    assert globex.encrypted_data_keys[0].provider_info == b"bk-globex"
    assert _decrypt(keyring, acme).plaintext_data_key == acme.plaintext_data_key
    assert _decrypt(keyring, globex).plaintext_data_key == globex.plaintext_data_key
    # A message claiming another tenant's context looks for that tenant's branch key and fails.
    with pytest.raises(NoUsableKeyError):
        keyring.on_decrypt(
            DecryptionMaterials(suite=acme.suite, encryption_context={"tenant": "globex"}),
            acme.encrypted_data_keys,
        )


def test_supplier_must_return_an_id() -> None:
    store = RotatingStore()
    keyring = HierarchicalKeyring(store, branch_key_id_supplier=lambda context: "")
    with pytest.raises(KeyStoreError):
        keyring.on_encrypt(_encrypt_materials(Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY))


def test_cache_is_limited_to_capacity() -> None:
    store = RotatingStore()
    tenants = [f"t{i}" for i in range(5)]
    for tenant in tenants:
        store.create(tenant)
    keyring = HierarchicalKeyring(
        store, branch_key_id_supplier=lambda context: context["tenant"], cache_capacity=2
    )
    for _ in range(3):
        for tenant in tenants:
            keyring.on_encrypt(
                _encrypt_materials(Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY, {"tenant": tenant})
            )
            assert keyring.cache_size <= 2
    assert keyring.cache_size == 2
    # Cycling through five tenants with room for two evicts every time: each encrypt is a store call.
    assert len(store.calls) == 15
    keyring.clear_cache()
    assert keyring.cache_size == 0


def test_store_failure_fails_the_call_and_caches_nothing() -> None:
    store = RotatingStore()
    store.create("bk-1")
    keyring = HierarchicalKeyring(store, branch_key_id="bk-1")
    store.fail = True
    with pytest.raises(KeyStoreError):
        keyring.on_encrypt(_encrypt_materials(Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY))
    assert keyring.cache_size == 0
    store.fail = False
    materials = keyring.on_encrypt(_encrypt_materials(Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY))
    store.fail = True
    reader = HierarchicalKeyring(store, branch_key_id="bk-1")
    with pytest.raises(NoUsableKeyError) as info:
        _decrypt(reader, materials)
    assert "KeyStoreError" in str(info.value)
    assert reader.cache_size == 0


def test_store_answer_for_another_key_is_refused() -> None:
    class Liar(RotatingStore):
        def get_active_branch_key(self, branch_key_id: str) -> BranchKeyMaterials:
            return super().get_active_branch_key("other")

    store = Liar()
    store.create("other")
    with pytest.raises(KeyStoreError):
        HierarchicalKeyring(store, branch_key_id="bk-1").on_encrypt(
            _encrypt_materials(Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY)
        )


def test_decrypt_with_data_key_already_present_is_refused() -> None:
    store = RotatingStore()
    store.create("bk-1")
    keyring = HierarchicalKeyring(store, branch_key_id="bk-1")
    materials = keyring.on_encrypt(_encrypt_materials(Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY))
    full = _decrypt(keyring, materials)
    with pytest.raises(PolicyError):
        keyring.on_decrypt(full, materials.encrypted_data_keys)


def test_threads_share_one_keyring() -> None:
    store = RotatingStore()
    store.create("bk-1")
    keyring = HierarchicalKeyring(store, branch_key_id="bk-1", cache_capacity=4)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(50):
                materials = keyring.on_encrypt(
                    _encrypt_materials(DbeSuite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_SYMSIG_HMAC_SHA384)
                )
                assert _decrypt(keyring, materials).plaintext_data_key == materials.plaintext_data_key
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert keyring.cache_size == 2  # the active entry and the one version


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"branch_key_id": "a", "branch_key_id_supplier": lambda c: "a"},
        {"branch_key_id": ""},
        {"branch_key_id": "a", "ttl_seconds": 0},
        {"branch_key_id": "a", "ttl_seconds": -1},
        {"branch_key_id": "a", "cache_capacity": 0},
        {"branch_key_id": "a", "cache_capacity": True},
        {"branch_key_id_supplier": "not callable"},
    ],
)
def test_configuration_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        HierarchicalKeyring(RotatingStore(), **kwargs)  # type: ignore[arg-type]


def test_key_store_needs_the_protocol() -> None:
    with pytest.raises(ConfigurationError):
        HierarchicalKeyring(object(), branch_key_id="a")  # type: ignore[arg-type]


def test_static_store() -> None:
    version = str(uuid.uuid4())
    store = StaticBranchKeyStore("bk", version, b"k" * 32, b"b" * 32)
    assert store.get_active_branch_key("bk").branch_key_version == version
    assert store.get_branch_key_version("bk", version).branch_key == b"k" * 32
    assert store.get_beacon_key("bk").beacon_key == b"b" * 32
    with pytest.raises(KeyStoreError):
        store.get_active_branch_key("other")
    with pytest.raises(KeyStoreError):
        store.get_branch_key_version("bk", str(uuid.uuid4()))
    text = repr(store) + repr(store.get_active_branch_key("bk")) + repr(store.get_beacon_key("bk"))
    assert "kkkk" not in text and "bbbb" not in text and "k' * 32" not in text
    assert "branch_key=" not in repr(store.get_active_branch_key("bk"))
    for bad in (
        ("", version, b"k" * 32, b"b" * 32),
        ("bk", "not-a-uuid", b"k" * 32, b"b" * 32),
        ("bk", version.upper(), b"k" * 32, b"b" * 32),
        ("bk", version, b"k" * 31, b"b" * 32),
        ("bk", version, b"k" * 32, b"b" * 16),
    ):
        with pytest.raises(ConfigurationError):
            StaticBranchKeyStore(*bad)


def test_short_or_foreign_version_edks_are_refused() -> None:
    store = RotatingStore()
    store.create("bk-1")
    keyring = HierarchicalKeyring(store, branch_key_id="bk-1")
    materials = DecryptionMaterials(
        suite=Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY, encryption_context=CONTEXT
    )
    with pytest.raises(NoUsableKeyError) as info:
        keyring.on_decrypt(materials, [EncryptedDataKey("aws-kms-hierarchy", b"bk-1", b"x" * 60)])
    assert "MalformedInputError" in str(info.value)
    unknown_version = os.urandom(28) + uuid.uuid4().bytes + os.urandom(48)
    with pytest.raises(NoUsableKeyError) as info:
        keyring.on_decrypt(materials, [EncryptedDataKey("aws-kms-hierarchy", b"bk-1", unknown_version)])
    assert "KeyStoreError" in str(info.value)


def test_store_answer_for_another_version_is_refused() -> None:
    class WrongVersion(RotatingStore):
        def get_branch_key_version(self, branch_key_id: str, version: str) -> BranchKeyMaterials:
            return self.versions[branch_key_id][-1]

    store = WrongVersion()
    store.create("bk-1")
    keyring = HierarchicalKeyring(store, branch_key_id="bk-1")
    old = keyring.on_encrypt(_encrypt_materials(Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY))
    store.rotate("bk-1")
    with pytest.raises(NoUsableKeyError) as info:
        _decrypt(HierarchicalKeyring(store, branch_key_id="bk-1"), old)
    assert "different branch key version" in str(info.value)
