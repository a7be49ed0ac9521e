"""Item plan caches keep only what authenticated, and are bounded in bytes (issue 12, defect 2).

A plan is everything about an item that depends only on its attribute names. Names of a stored item are
whatever its writer chose -- thousands of ``aws_dbe_`` names (outside the 100-attribute limit), or a
hundred 10,000-character ones -- so a plan built for an item that then fails must not be kept, and a
plan kept for an item that did authenticate (extra unsigned names pass through decryption) must count
against a byte budget. Held memory is measured with ``tracemalloc`` after the items are gone.
"""

from __future__ import annotations

import gc
import os
import threading
import tracemalloc
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from kmsenvelope.aws.key_store import StaticBranchKeyStore
from kmsenvelope.dynamodb import Action, ItemEncryptor, TableConfig
from kmsenvelope.dynamodb.encryptor import PLAN_CACHE_BYTES, PLAN_CACHE_ENTRIES
from kmsenvelope.errors import AuthenticationError, ConfigurationError, KmsEnvelopeError
from kmsenvelope.keyrings.hierarchical import HierarchicalKeyring
from kmsenvelope.materials.bounded_cache import BoundedCache, size_of_strings

Item = dict[str, Any]
MIB = 1 << 20
HELD_LIMIT = 32 * MIB

STORE = StaticBranchKeyStore("plans-bk", str(uuid.uuid4()), os.urandom(32), os.urandom(32))
KEYRING = HierarchicalKeyring(STORE, branch_key_id="plans-bk")
ACTIONS = {"pk": Action.SIGN_ONLY, "sk": Action.SIGN_ONLY, "secret": Action.ENCRYPT_AND_SIGN}
PLAIN: Item = {"pk": {"S": "customer#1"}, "sk": {"N": "1"}, "secret": {"S": "4111-1111-1111-1111"}}


def _encryptor(**overrides: Any) -> ItemEncryptor:
    return ItemEncryptor(
        TableConfig("plans", "pk", sort_key="sk", actions=ACTIONS, keyring=KEYRING, **overrides)
    )


def _held_after(run: Callable[[], None]) -> int:
    """Bytes still allocated once ``run`` (and everything it built) has finished."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def _reserved_names(item_no: int, count: int = 2000, length: int = 200) -> list[str]:
    """Other ``aws_dbe_`` names: outside the signature and outside the 100-attribute limit."""
    pad = "x" * (length - 20)
    return [f"aws_dbe_{item_no:05}_{n:05}_{pad}" for n in range(count)]


def _long_names(item_no: int, count: int = 95, length: int = 10_000) -> list[str]:
    """Names no action covers: in signature scope, so each gets a canonical path."""
    pad = "x" * (length - 20)
    return [f"n{item_no:05}_{n:05}_{pad}" for n in range(count)]


def _decrypt_rejected(encryptor: ItemEncryptor, good: Item, names: Callable[[int], list[str]]) -> None:
    value = {"S": "v"}
    for item_no in range(300):
        item = dict(good)
        item.update(dict.fromkeys(names(item_no), value))
        item["secret"] = {"B": b"tampered"}
        with pytest.raises(KmsEnvelopeError):
            encryptor.decrypt_item(item)


@pytest.mark.parametrize(
    "names",
    [_reserved_names, _long_names],
    ids=["2000 reserved names of 200 chars", "95 signed names of 10,000 chars"],
)
def test_rejected_items_leave_no_memory_behind(names: Callable[[int], list[str]]) -> None:
    encryptor = _encryptor()
    good = encryptor.encrypt_item(PLAIN)
    assert encryptor.decrypt_item(good) == PLAIN  # warm up: the one good plan is kept
    held = _held_after(lambda: _decrypt_rejected(encryptor, good, names))
    assert held < HELD_LIMIT, f"300 rejected items left {held / MIB:.1f} MiB allocated"
    assert len(encryptor._decrypt_plans) == 1


def test_a_tampered_item_keeps_no_plan_and_no_legend() -> None:
    encryptor = _encryptor()
    item = encryptor.encrypt_item(PLAIN)
    item["secret"] = {"B": item["secret"]["B"][:-1] + bytes([item["secret"]["B"][-1] ^ 1])}
    with pytest.raises(AuthenticationError):
        encryptor.decrypt_item(item)
    assert len(encryptor._decrypt_plans) == 0


def test_a_successful_decrypt_keeps_its_plan_and_reuses_it() -> None:
    encryptor = _encryptor()
    first = encryptor.encrypt_item(PLAIN)
    second = encryptor.encrypt_item({**PLAIN, "secret": {"S": "another"}})
    assert encryptor.decrypt_item(first) == PLAIN
    plan = encryptor._decrypt_plans.get(tuple(first))
    assert plan is not None
    names, layout = plan
    assert set(names) == set(ACTIONS)
    assert len(layout.plans) == 1  # the legend, kept once the footer verified
    assert encryptor.decrypt_item(second)["secret"] == {"S": "another"}
    assert encryptor._decrypt_plans.get(tuple(second)) is plan  # same names: the same plan, reused
    assert len(encryptor._decrypt_plans) == 1 and len(layout.plans) == 1
    # The encrypt side kept one plan for the one shape of item it was given.
    assert len(encryptor._encrypt_plans) == 1


def _authentic_with_extra_names(encryptor: ItemEncryptor, good: Item) -> None:
    # Whoever can write to the table can add unsigned names to an authentic item: it still decrypts.
    value = {"S": "v"}
    for item_no in range(150):
        item = dict(good)
        item.update(dict.fromkeys(_reserved_names(item_no, count=500), value))
        encryptor.decrypt_item(item)


def test_plans_of_authentic_items_stay_within_the_byte_budget() -> None:
    encryptor = _encryptor()
    good = encryptor.encrypt_item(PLAIN)
    encryptor.decrypt_item(good)
    held = _held_after(lambda: _authentic_with_extra_names(encryptor, good))
    cache = encryptor._decrypt_plans
    assert cache.held_bytes <= PLAN_CACHE_BYTES
    assert len(cache) < 150  # some were evicted: the budget, not the entry count, was the limit
    assert held < HELD_LIMIT, f"{held / MIB:.1f} MiB held"
    # The estimate is conservative: what is really held is not more than what the cache counted.
    assert held <= cache.held_bytes + 512 * 1024, (held, cache.held_bytes)


def test_encrypt_plans_stay_within_the_byte_budget() -> None:
    encryptor = _encryptor(allowed_unsigned_prefix="u_")

    def encrypt_many() -> None:
        for item_no in range(300):
            item = dict(PLAIN)
            for n in range(60):
                item[f"u_{item_no}_{n}_".ljust(2000, "x")] = {"S": "v"}
            encryptor.encrypt_item(item)

    held = _held_after(encrypt_many)
    cache = encryptor._encrypt_plans
    assert cache.held_bytes <= PLAN_CACHE_BYTES
    assert len(cache) < 300
    assert held < HELD_LIMIT, f"{held / MIB:.1f} MiB held"
    assert held <= cache.held_bytes + 512 * 1024, (held, cache.held_bytes)


# -- BoundedCache ------------------------------------------------------------------------------


def test_bounded_cache_evicts_least_recently_used_by_count() -> None:
    cache: BoundedCache[str, int] = BoundedCache(max_entries=2, max_bytes=1000)
    assert cache.put("a", 1, 10) and cache.put("b", 2, 10)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3, 10)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2 and cache.held_bytes == 20


def test_bounded_cache_evicts_by_bytes() -> None:
    cache: BoundedCache[int, int] = BoundedCache(max_entries=100, max_bytes=100, max_entry_bytes=60)
    for key in range(5):
        assert cache.put(key, key, 30)
    assert len(cache) == 3 and cache.held_bytes == 90
    assert cache.get(0) is None and cache.get(1) is None and cache.get(4) == 4
    assert not cache.put(99, 99, 61)  # bigger than one entry may be: not kept, nothing evicted
    assert len(cache) == 3 and cache.get(99) is None
    cache.put(4, 40, 50)  # replacing an entry replaces its size
    assert cache.held_bytes <= 100 and cache.get(4) == 40
    cache.clear()
    assert len(cache) == 0 and cache.held_bytes == 0


def test_bounded_cache_refuses_no_room() -> None:
    with pytest.raises(ConfigurationError):
        BoundedCache(0, 100)
    with pytest.raises(ConfigurationError):
        BoundedCache(10, 0)


def test_bounded_cache_under_threads() -> None:
    cache: BoundedCache[int, int] = BoundedCache(max_entries=50, max_bytes=2000)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for n in range(5000):
                key = (n * 7 + offset) % 200
                value = cache.get(key)
                assert value is None or value == key
                cache.put(key, key, 1 + key % 60)
        except BaseException as exc:  # collected for the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(cache) <= 50 and cache.held_bytes <= 2000
    assert cache.held_bytes == sum(1 + key % 60 for key in range(200) if cache.get(key) is not None)


def test_size_of_strings_counts_every_string() -> None:
    short = size_of_strings(["a"])
    assert size_of_strings(["a" * 10_001]) >= short + 10_000
    assert size_of_strings(["a", "b"]) > short
    assert PLAN_CACHE_ENTRIES >= 1
