"""The hierarchical keyring on the DynamoDB KeyStore and the local KMS: rotation, TTL, call counts,
threads, tenants, and failures that must not be cached.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import pytest

import kmsenvelope
from kmsenvelope import Envelope, HierarchicalKeyring
from kmsenvelope.aws import accounting
from kmsenvelope.errors import KeyStoreError, NoUsableKeyError
from kmsenvelope.testing import LocalAws

from ._branch_keys import edk_branch_keys, get_item, new_store, put_item

CONTEXT = {"tenant": "acme", "purpose": "hierarchical-kms"}


class Clock:
    """The keyring's injectable clock: time moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


def _calls(local_aws: LocalAws) -> list[str]:
    """What reached the local AWS since the last reset, e.g. ``["dynamodb:GetItem", "kms:Decrypt"]``."""
    return [f"{r.service}:{r.operation}" for r in local_aws.requests(service=None)]


FETCH = ["dynamodb:GetItem", "kms:Decrypt"]


def test_rotation_new_messages_use_the_new_version_and_old_ones_still_decrypt(local_aws: LocalAws) -> None:
    store = new_store(local_aws)
    branch_key_id = store.create_key()
    first = store.get_active_branch_key(branch_key_id).branch_key_version
    clock = Clock()
    envelope = Envelope(HierarchicalKeyring(store, branch_key_id=branch_key_id, ttl_seconds=600, clock=clock))

    old = envelope.encrypt(b"before rotation", CONTEXT)
    assert edk_branch_keys(envelope, old) == [(branch_key_id, first)]

    second = store.version_key(branch_key_id)
    # Within the TTL the cached ACTIVE version is still used: rotation takes effect within ttl_seconds.
    clock.now += 599
    assert edk_branch_keys(envelope, envelope.encrypt(b"cached", CONTEXT)) == [(branch_key_id, first)]
    clock.now += 1
    new = envelope.encrypt(b"after rotation", CONTEXT)
    assert edk_branch_keys(envelope, new) == [(branch_key_id, second)]

    # A fresh keyring (empty cache) reads both versions from the store.
    fresh = Envelope(HierarchicalKeyring(store, branch_key_id=branch_key_id))
    assert fresh.decrypt(old, CONTEXT) == b"before rotation"
    assert fresh.decrypt(new, CONTEXT) == b"after rotation"
    assert edk_branch_keys(fresh, fresh.encrypt(b"x", CONTEXT)) == [(branch_key_id, second)]


def test_ttl_is_respected_on_encrypt_and_decrypt(local_aws: LocalAws) -> None:
    store = new_store(local_aws)
    branch_key_id = store.create_key()
    clock = Clock()
    keyring = HierarchicalKeyring(store, branch_key_id=branch_key_id, ttl_seconds=600, clock=clock)
    envelope = Envelope(keyring)
    local_aws.reset()

    ciphertext = envelope.encrypt(b"payload", CONTEXT)
    assert _calls(local_aws) == FETCH  # ACTIVE item
    assert envelope.decrypt(ciphertext, CONTEXT) == b"payload"
    assert _calls(local_aws) == FETCH * 2  # the version item (cached separately from ACTIVE)
    assert keyring.cache_size == 2

    local_aws.reset()
    clock.now += 599.9
    for _ in range(5):
        assert envelope.decrypt(envelope.encrypt(b"payload", CONTEXT), CONTEXT) == b"payload"
    assert _calls(local_aws) == []

    clock.now += 0.1  # exactly ttl_seconds after both entries were cached
    assert envelope.decrypt(envelope.encrypt(b"payload", CONTEXT), CONTEXT) == b"payload"
    assert _calls(local_aws) == FETCH * 2


def test_call_counts_for_10000_encrypts_and_10000_decrypts(local_aws: LocalAws) -> None:
    store = new_store(local_aws)
    branch_key_id = store.create_key()
    envelope = Envelope(HierarchicalKeyring(store, branch_key_id=branch_key_id, ttl_seconds=600))
    accounting.reset()
    local_aws.reset()
    messages = [envelope.encrypt(b"item %d" % i, {"table": "orders", "row": str(i)}) for i in range(10_000)]
    for i, message in enumerate(messages):
        assert envelope.decrypt(message, {"table": "orders", "row": str(i)}) == b"item %d" % i
    stats = kmsenvelope.stats()
    assert stats.calls <= 4
    # Exactly: one Decrypt for the ACTIVE item (encrypt), one for the version item (decrypt).
    assert dict(stats.by_operation) == {"Decrypt": 2} and stats.errors == 0
    assert len(local_aws.requests("Decrypt")) == 2
    assert len(local_aws.requests("GetItem", service="dynamodb")) == 2
    assert len({m[-64:] for m in messages}) == 10_000  # really 10,000 distinct messages


def test_two_threads_share_one_keyring(local_aws: LocalAws) -> None:
    store = new_store(local_aws)
    branch_key_id = store.create_key()
    envelope = Envelope(HierarchicalKeyring(store, branch_key_id=branch_key_id, ttl_seconds=600))
    accounting.reset()
    errors: list[BaseException] = []
    checked = [0, 0]
    shared: list[tuple[bytes, bytes, dict[str, str]]] = []
    lock = threading.Lock()
    start = threading.Barrier(2)

    def work(worker: int) -> None:
        try:
            start.wait()
            for i in range(2_500):  # 2,500 encrypts + 2,500 decrypts = 5,000 operations per thread
                plaintext = b"worker %d item %d" % (worker, i)
                context = {"worker": str(worker), "item": str(i)}
                message = envelope.encrypt(plaintext, context)
                with lock:
                    shared.append((message, plaintext, context))
                    # Decrypt a message this or the other thread wrote.
                    other = shared[(len(shared) * 7919) % len(shared)]
                assert envelope.decrypt(other[0], other[2]) == other[1]
                checked[worker] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert checked == [2_500, 2_500] and len(shared) == 5_000
    # Both threads may miss the empty cache at the same moment, so at most one fetch each per entry.
    assert dict(accounting.stats().by_operation).keys() == {"Decrypt"}
    assert 2 <= accounting.stats().calls <= 4


def test_failures_are_not_cached(local_aws: LocalAws) -> None:
    store = new_store(local_aws)
    branch_key_id = store.create_key()
    table = store.table_name
    keyring = HierarchicalKeyring(store, branch_key_id=branch_key_id, ttl_seconds=600)
    envelope = Envelope(keyring)

    # Encrypt path: a tampered ACTIVE item.
    active = get_item(local_aws, table, branch_key_id, "branch:ACTIVE")
    put_item(local_aws, table, {**active, "create-time": {"S": "2000-01-01T00:00:00.000000Z"}})
    local_aws.reset()
    with pytest.raises(KeyStoreError, match="the item was modified"):
        envelope.encrypt(b"payload", CONTEXT)
    assert _calls(local_aws) == FETCH and keyring.cache_size == 0
    put_item(local_aws, table, active)  # fixed
    local_aws.reset()
    ciphertext = envelope.encrypt(b"payload", CONTEXT)
    assert _calls(local_aws) == FETCH  # went to DynamoDB and KMS again
    assert keyring.cache_size == 1

    # Decrypt path: a tampered version item, with a second keyring whose cache is empty.
    version = store.get_active_branch_key(branch_key_id).branch_key_version
    item_type = "branch:version:" + version
    version_item = get_item(local_aws, table, branch_key_id, item_type)
    put_item(local_aws, table, {**version_item, "extra": {"S": "x"}})
    reader_keyring = HierarchicalKeyring(store, branch_key_id=branch_key_id, ttl_seconds=600)
    reader = Envelope(reader_keyring)
    local_aws.reset()
    with pytest.raises(
        NoUsableKeyError, match=r"KeyStoreError: AWS KMS Decrypt failed .*the item was modified"
    ):
        reader.decrypt(ciphertext, CONTEXT)
    assert _calls(local_aws) == FETCH and reader_keyring.cache_size == 0
    put_item(local_aws, table, version_item)
    local_aws.reset()
    assert reader.decrypt(ciphertext, CONTEXT) == b"payload"
    assert _calls(local_aws) == FETCH and reader_keyring.cache_size == 1


def test_missing_branch_key_and_foreign_kms_key_through_the_keyring(local_aws: LocalAws) -> None:
    store = new_store(local_aws)
    branch_key_id = store.create_key()
    with pytest.raises(KeyStoreError, match="does not exist"):
        Envelope(HierarchicalKeyring(store, branch_key_id="no-such-key")).encrypt(b"x", CONTEXT)

    ciphertext = Envelope(HierarchicalKeyring(store, branch_key_id=branch_key_id)).encrypt(b"x", CONTEXT)
    stranger = new_store(
        local_aws,
        table_name=store.table_name,
        kms_key_arn=local_aws.create_key("us-east-1"),
        create_table=False,
    )
    keyring = HierarchicalKeyring(stranger, branch_key_id=branch_key_id)
    with pytest.raises(NoUsableKeyError, match="not by this key store's KMS key"):
        Envelope(keyring).decrypt(ciphertext, CONTEXT)
    with pytest.raises(KeyStoreError, match="not by this key store's KMS key"):
        Envelope(keyring).encrypt(b"x", CONTEXT)
    assert keyring.cache_size == 0


def test_multi_tenant_branch_key_id_supplier(local_aws: LocalAws) -> None:
    store = new_store(local_aws)
    tenants = {name: store.create_key(f"tenant-{name}", {"tenant": name}) for name in ("acme", "globex")}

    def supplier(context: Mapping[str, str]) -> str:
        return tenants[context["tenant"]]

    keyring = HierarchicalKeyring(store, branch_key_id_supplier=supplier, ttl_seconds=600)
    envelope = Envelope(keyring)
    messages = {name: envelope.encrypt(f"data of {name}".encode(), {"tenant": name}) for name in tenants}
    for name, message in messages.items():
        (edk,) = edk_branch_keys(envelope, message)
        assert edk[0] == f"tenant-{name}"
        assert store.get_active_branch_key(edk[0]).branch_key_version == edk[1]
        assert envelope.decrypt(message, {"tenant": name}) == f"data of {name}".encode()
    assert keyring.cache_size == 4  # ACTIVE + version entry per tenant
    # A keyring pinned to one tenant cannot read the other's data.
    acme_only = Envelope(HierarchicalKeyring(store, branch_key_id=tenants["acme"]))
    with pytest.raises(NoUsableKeyError, match="different branch key id"):
        acme_only.decrypt(messages["globex"], {"tenant": "globex"})
