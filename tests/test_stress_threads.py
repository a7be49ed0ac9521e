"""Thread safety: 2 threads x 10,000 mixed operations on shared envelopes, caches and keyrings.

Shared by both threads: one raw AES keyring; one CachingMaterials over it (small message and byte
limits, so entries are used up and replaced constantly) behind one Envelope; one plain Envelope; one
HierarchicalKeyring (branch key cache) behind one ItemEncryptor. Operations: one-shot and
``decrypt_into`` round trips, streaming round trips, DynamoDB item round trips, decrypting what the
other thread wrote, and tampered messages that must fail with exactly ``AuthenticationError``. Every
result is checked. The interpreter switches threads every 10 microseconds (instead of 5 ms) so that
they interleave inside the library's critical sections.

After the run, the caching limits must have held under contention: no cached data key (identified by
its EDK) encrypted more than ``max_messages`` messages or ``max_bytes`` plaintext bytes.
"""

from __future__ import annotations

import collections
import io
import os
import random
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from kmsenvelope import CachingMaterials, Envelope, RawAesKeyring
from kmsenvelope.aws.key_store import StaticBranchKeyStore
from kmsenvelope.dynamodb import Action, ItemEncryptor, TableConfig
from kmsenvelope.errors import AuthenticationError
from kmsenvelope.keyrings.hierarchical import HierarchicalKeyring

THREADS = 2
OPERATIONS = 10_000
MAX_MESSAGES = 25
MAX_BYTES = 6_000


@dataclass
class Shared:
    caching: Envelope
    plain: Envelope
    items: ItemEncryptor
    cache: CachingMaterials
    # (thread, ciphertext, plaintext, context) written by each thread for the other to read
    mailbox: collections.deque[tuple[int, bytes, bytes, dict[str, str]]] = field(
        default_factory=lambda: collections.deque(maxlen=200)
    )
    # EDK ciphertext of the data key -> (messages, plaintext bytes) it encrypted via the cache
    usage: dict[bytes, list[int]] = field(default_factory=dict)
    usage_lock: threading.Lock = field(default_factory=threading.Lock)


def _shared() -> Shared:
    keyring = RawAesKeyring("stress", "aes-256", os.urandom(32))
    cache = CachingMaterials(keyring, max_age=600, max_messages=MAX_MESSAGES, max_bytes=MAX_BYTES, capacity=8)
    store = StaticBranchKeyStore("stress-bk", str(uuid.uuid4()), os.urandom(32), os.urandom(32))
    config = TableConfig(
        "stress",
        "pk",
        actions={"pk": Action.SIGN_ONLY, "secret": Action.ENCRYPT_AND_SIGN, "n": Action.SIGN_ONLY},
        keyring=HierarchicalKeyring(store, branch_key_id="stress-bk", ttl_seconds=0.05),
    )
    return Shared(
        caching=Envelope(cache, frame_length=64),
        plain=Envelope(keyring, frame_length=100),
        items=ItemEncryptor(config),
        cache=cache,
    )


@pytest.fixture
def fast_switching() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def _record_usage(shared: Shared, ciphertext: bytes, size: int) -> None:
    (edk,) = shared.caching.parse_header(ciphertext).encrypted_data_keys
    with shared.usage_lock:
        counts = shared.usage.setdefault(edk.ciphertext, [0, 0])
        counts[0] += 1
        counts[1] += size


def _operation(
    shared: Shared, thread: int, index: int, rng: random.Random, counts: collections.Counter[str]
) -> None:
    kind = rng.randrange(6)
    plaintext = rng.randbytes(rng.randrange(0, 400))
    context = {"tenant": f"t{rng.randrange(3)}"}  # few contexts: both threads share cache entries
    if kind == 0:
        ciphertext = shared.caching.encrypt(plaintext, context)
        _record_usage(shared, ciphertext, len(plaintext))
        assert shared.caching.decrypt(ciphertext, context) == plaintext
        shared.mailbox.append((thread, ciphertext, plaintext, context))
    elif kind == 1:
        ciphertext = shared.plain.encrypt(plaintext, context)
        out = bytearray(rng.randbytes(rng.randrange(0, 50)))
        shared.plain.decrypt_into(ciphertext, out, context)
        assert out == plaintext
        shared.mailbox.append((thread, ciphertext, plaintext, context))
    elif kind == 2:
        encrypted, decrypted = io.BytesIO(), io.BytesIO()
        envelope = shared.caching if rng.random() < 0.5 else shared.plain
        envelope.encrypt_stream(io.BytesIO(plaintext), encrypted, context)
        envelope.decrypt_stream(io.BytesIO(encrypted.getvalue()), decrypted, context)
        assert decrypted.getvalue() == plaintext
    elif kind == 3:
        item: dict[str, Any] = {
            "pk": {"S": f"{thread}-{index}"},
            "secret": {"B": plaintext},
            "n": {"N": str(index)},
        }
        stored = shared.items.encrypt_item(item)
        assert stored["secret"] != item["secret"]
        assert shared.items.decrypt_item(stored) == item
    elif kind == 4:
        received = [m for m in list(shared.mailbox) if m[0] != thread]
        if received:
            _, ciphertext, expected, sent_context = rng.choice(received)
            assert shared.caching.decrypt(ciphertext, sent_context) == expected
            counts["cross-thread"] += 1
    else:
        tampered = bytearray(shared.caching.encrypt(plaintext, context))
        _record_usage(shared, bytes(tampered), len(plaintext))
        tampered[-1 - rng.randrange(16)] ^= 1 << rng.randrange(8)  # inside the final frame's tag
        with pytest.raises(AuthenticationError) as info:
            shared.caching.decrypt(bytes(tampered), context)
        assert type(info.value) is AuthenticationError
    counts[str(kind)] += 1


def test_two_threads_ten_thousand_mixed_operations(fast_switching: None) -> None:
    shared = _shared()
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []
    counts: list[collections.Counter[str]] = [collections.Counter() for _ in range(THREADS)]

    def worker(thread: int) -> None:
        rng = random.Random(thread)
        start.wait()
        try:
            for index in range(OPERATIONS):
                _operation(shared, thread, index, rng, counts[thread])
        except BaseException as exc:  # re-raised in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for started in threads:
        started.start()
    for started in threads:
        started.join()
    if errors:
        raise errors[0]

    for done in counts:
        assert sum(n for kind, n in done.items() if kind != "cross-thread") == OPERATIONS
        assert all(done[str(kind)] > 1_400 for kind in range(6)), done
        assert done["cross-thread"] > 1_000
    # The cache's limits held under contention: no data key went past them.
    assert shared.usage
    over = {edk[:8].hex(): n for edk, n in shared.usage.items() if n[0] > MAX_MESSAGES or n[1] > MAX_BYTES}
    assert not over, f"cached data keys used past their limits: {over}"
    assert max(n[0] for n in shared.usage.values()) > 1  # the cache was actually hit
    assert len(shared.cache.cache) <= 8
