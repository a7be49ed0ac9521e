"""Hierarchical keyrings, branch key stores and caching managers through pickle: configuration travels,
cached key material and credentials do not, and a process pool migrates a table with them."""

from __future__ import annotations

import os
import pickle
import uuid
from typing import Any

import pytest

from kmsenvelope import Envelope
from kmsenvelope.aws.branch_key_store import KeyStore
from kmsenvelope.aws.key_store import StaticBranchKeyStore
from kmsenvelope.bulk import migrate_table
from kmsenvelope.dynamodb import ItemEncryptor
from kmsenvelope.keyrings.hierarchical import HierarchicalKeyring
from kmsenvelope.materials.caching import CachingMaterials
from kmsenvelope.testing import LocalAws

from ._branch_keys import new_store
from ._bulk_env import mixed_table, scan_all
from ._dynamodb_env import config


@pytest.fixture
def worker_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # An unpickled store builds its clients from the receiving process's credential chain.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def _keyring(local_aws: LocalAws) -> tuple[HierarchicalKeyring, bytes]:
    store = new_store(local_aws)
    branch_key_id = store.create_key()
    keyring = HierarchicalKeyring(store, branch_key_id=branch_key_id, ttl_seconds=123, cache_capacity=7)
    return keyring, store.get_active_branch_key(branch_key_id).branch_key


def test_hierarchical_keyring_pickles_its_configuration_not_its_keys(
    local_aws: LocalAws, worker_credentials: None
) -> None:
    keyring, branch_key = _keyring(local_aws)
    envelope = Envelope(keyring)
    message = envelope.encrypt(b"secret payload", {"tenant": "a"})
    assert keyring.cache_size == 1
    data_key = keyring.on_decrypt(*_decryption_inputs(envelope, message)).plaintext_data_key
    assert data_key is not None

    pickled = pickle.dumps(keyring)
    assert branch_key not in pickled and data_key not in pickled
    secret = local_aws.session.get_credentials().secret_key
    assert secret.encode() not in pickled or secret == "testing"  # moto's dummy is also the worker's

    copy = pickle.loads(pickled)
    assert copy.cache_size == 0
    assert copy.branch_key_id == keyring.branch_key_id
    store, copied_store = keyring.key_store, copy.key_store
    assert isinstance(store, KeyStore) and isinstance(copied_store, KeyStore)
    assert copied_store.get_key_store_info() == store.get_key_store_info()
    assert copy._rules.cache._ttl == 123 and copy._rules.cache._capacity == 7
    # The copy fetches the branch key itself (its own DynamoDB and KMS clients) and opens the message.
    local_aws.reset()
    assert Envelope(copy).decrypt(message, {"tenant": "a"}) == b"secret payload"
    assert copy.cache_size == 1
    assert [r.operation for r in local_aws.requests()] == ["Decrypt"]
    assert [r.operation for r in local_aws.requests(service="dynamodb")] == ["GetItem"]
    # Pickling again after use still carries no key.
    assert branch_key not in pickle.dumps(copy)


def _decryption_inputs(envelope: Envelope, message: bytes) -> tuple[Any, Any]:
    from kmsenvelope.materials.materials import DecryptionMaterials

    header = envelope.parse_header(message)
    materials = DecryptionMaterials(header.suite, header.encryption_context)
    return materials, header.encrypted_data_keys


def test_caching_materials_pickle_with_an_empty_cache(local_aws: LocalAws, worker_credentials: None) -> None:
    keyring, branch_key = _keyring(local_aws)
    caching = CachingMaterials(keyring, max_age=60, max_messages=9, capacity=11, capacity_bytes=2**20)
    envelope = Envelope(caching)
    message = envelope.encrypt(b"cached", {"tenant": "b"})
    envelope.encrypt(b"cached again", {"tenant": "b"})
    assert len(caching.cache) >= 1
    data_key = keyring.on_decrypt(*_decryption_inputs(envelope, message)).plaintext_data_key
    assert data_key is not None

    pickled = pickle.dumps(caching)
    assert data_key not in pickled and branch_key not in pickled
    copy = pickle.loads(pickled)
    assert len(copy.cache) == 0 and copy.cache.capacity == 11 and copy.cache.capacity_bytes == 2**20
    assert copy.partition == caching.partition
    assert Envelope(copy).decrypt(message, {"tenant": "b"}) == b"cached"


def test_static_branch_key_store_carries_its_key_by_design() -> None:
    branch_key = os.urandom(32)
    store = StaticBranchKeyStore("static", str(uuid.uuid4()), branch_key, os.urandom(32))
    keyring = HierarchicalKeyring(store, branch_key_id="static")
    message = Envelope(keyring).encrypt(b"offline")
    pickled = pickle.dumps(keyring)
    assert branch_key in pickled  # documented in docs/bulk.md, like a raw keyring's wrapping key
    assert Envelope(pickle.loads(pickled)).decrypt(message) == b"offline"


def test_a_store_with_a_client_that_cannot_travel_refuses_to_pickle(local_aws: LocalAws) -> None:
    store = KeyStore("table-x", local_aws.create_key(), ddb_client=object())
    with pytest.raises(TypeError, match="boto3 DynamoDB client"):
        pickle.dumps(store)


def test_process_pool_migrates_to_a_hierarchical_keyring(
    local_aws: LocalAws, worker_credentials: None
) -> None:
    table = mixed_table(local_aws, 9)
    keyring, _ = _keyring(local_aws)
    target = config(table.name, keyring=keyring)
    local_aws.reset()
    report = migrate_table(
        table.raw, table.name, source=table.sources, target=target, segments=2, engine="processes"
    )
    assert report.engine == "processes"
    assert (report.items_failed, report.items_written) == (0, 9), report.failures[:3]
    # The job probes the target here (one branch key fetch); each worker, starting with an empty
    # cache, fetched the branch key again from its own clients.
    assert len(local_aws.requests("GetItem", service="dynamodb")) >= 2
    encryptor = ItemEncryptor(target)
    stored = scan_all(table.raw, table.name)
    assert len(stored) == 9
    for item in stored:
        assert encryptor.decrypt_item(item) == table.expected[(item["pk"]["S"], item["sk"]["S"])]
