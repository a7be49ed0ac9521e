"""KMS call accounting: counts, outcomes, latency, immutability, thread safety and DEBUG logs."""

from __future__ import annotations

import base64
import dataclasses
import logging
import threading

import pytest

import kmsenvelope
from kmsenvelope import KmsKeyring
from kmsenvelope.aws import accounting
from kmsenvelope.errors import NoUsableKeyError
from kmsenvelope.materials.materials import DecryptionMaterials, EncryptionMaterials
from kmsenvelope.suites import Suite
from kmsenvelope.testing import LocalAws

SUITE = Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY
CONTEXT = {"customer": "context-value-123"}


@pytest.fixture(autouse=True)
def _fresh_ledger() -> None:
    accounting.reset()


def decrypt_materials() -> DecryptionMaterials:
    return DecryptionMaterials(suite=SUITE, encryption_context=CONTEXT)


def test_counts_by_operation_region_and_outcome(local_aws: LocalAws) -> None:
    a, b = local_aws.create_key("us-east-1"), local_aws.create_key("eu-west-1")
    # A plain callable supplier: accounting must not depend on ClientSupplier.
    keyring = KmsKeyring(a, additional_key_ids=[b], client_supplier=lambda r: local_aws.client("kms", r))
    materials = keyring.on_encrypt(EncryptionMaterials(suite=SUITE, encryption_context=CONTEXT))
    local_aws.disable_key(a)
    with pytest.raises(NoUsableKeyError):
        KmsKeyring(a, client_supplier=local_aws.client_supplier()).on_decrypt(
            decrypt_materials(), materials.encrypted_data_keys
        )
    KmsKeyring(b, client_supplier=local_aws.client_supplier()).on_decrypt(
        decrypt_materials(), materials.encrypted_data_keys
    )

    stats = kmsenvelope.stats()
    assert stats.calls == 4 and stats.errors == 1
    assert dict(stats.by_operation) == {"GenerateDataKey": 1, "Encrypt": 1, "Decrypt": 2}
    assert dict(stats.by_region) == {"us-east-1": 2, "eu-west-1": 2}
    assert dict(stats.by_outcome) == {"ok": 3, "DisabledException": 1}
    assert stats.count(operation="Decrypt", region="us-east-1", outcome="DisabledException") == 1
    assert [(c.operation, c.key_id, c.region) for c in stats.recent] == [
        ("GenerateDataKey", a, "us-east-1"),
        ("Encrypt", b, "eu-west-1"),
        ("Decrypt", a, "us-east-1"),
        ("Decrypt", b, "eu-west-1"),
    ]
    assert all(c.latency_ms > 0 for c in stats.recent)
    assert stats.total_latency_ms == pytest.approx(sum(c.latency_ms for c in stats.recent))


def test_snapshot_is_immutable_and_reset_clears(local_aws: LocalAws) -> None:
    KmsKeyring(local_aws.create_key(), client_supplier=local_aws.client_supplier()).on_encrypt(
        EncryptionMaterials(suite=SUITE, encryption_context=CONTEXT)
    )
    snapshot = kmsenvelope.stats()
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.calls = 0  # type: ignore[misc]
    with pytest.raises(TypeError):
        snapshot.totals[("x", "y", "ok")] = 1  # type: ignore[index]
    with pytest.raises(TypeError):
        snapshot.by_operation["x"] = 1  # type: ignore[index]
    accounting.reset()
    assert snapshot.calls == 1  # an old snapshot does not change
    assert kmsenvelope.stats().calls == 0 and kmsenvelope.stats().recent == ()


def test_concurrent_calls_are_all_counted(local_aws: LocalAws) -> None:
    key = local_aws.create_key("us-east-1")
    keyring = KmsKeyring(key, client_supplier=local_aws.client_supplier())
    materials = keyring.on_encrypt(EncryptionMaterials(suite=SUITE, encryption_context=CONTEXT))
    accounting.reset()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(5):
                keyring.on_decrypt(decrypt_materials(), materials.encrypted_data_keys)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert kmsenvelope.stats().count(operation="Decrypt", outcome="ok") == 20
    assert len(local_aws.requests("Decrypt")) == 20


def test_debug_log_per_call_without_secrets(local_aws: LocalAws, caplog: pytest.LogCaptureFixture) -> None:
    key = local_aws.create_key("us-east-1")
    keyring = KmsKeyring(key, client_supplier=local_aws.client_supplier())
    with caplog.at_level(logging.DEBUG, logger="kmsenvelope.kms"):
        materials = keyring.on_encrypt(EncryptionMaterials(suite=SUITE, encryption_context=CONTEXT))
        keyring.on_decrypt(decrypt_materials(), materials.encrypted_data_keys)
    records = [r for r in caplog.records if r.name == "kmsenvelope.kms"]
    assert len(records) == 2 and all(r.levelno == logging.DEBUG for r in records)
    text = "\n".join(r.getMessage() for r in records)
    assert "GenerateDataKey" in text and "Decrypt" in text and key in text and "us-east-1" in text
    data_key = materials.plaintext_data_key
    assert data_key is not None
    for secret in (data_key.hex(), base64.b64encode(data_key).decode(), repr(data_key), "context-value-123"):
        assert secret not in text
