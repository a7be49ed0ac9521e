"""``KMSENVELOPE_PORTABLE`` and the one remaining private-API shortcut, ``primitives.buffers.new_bytes``.

``new_bytes`` writes into a fresh, not yet shared ``bytes`` object through ``ctypes``: these tests check the
object it returns is an ordinary immutable ``bytes`` in every respect, and that every library output is
bytes-identical with the switch on (the public-API path) and off, by running the same deterministic
workload in two fresh interpreters.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from kmsenvelope import Envelope, RawAesKeyring
from kmsenvelope.primitives import buffers, portable

from .conftest import REPO_ROOT

_SHORTCUTS_USABLE = sys.implementation.name == "cpython" and not portable.ACTIVE


def _filled(size: int, seed: int = 0) -> tuple[bytes, bytes]:
    """A ``new_bytes`` result filled with a known pattern, and the same pattern as ordinary bytes."""
    expected = hashlib.shake_256(seed.to_bytes(4, "big")).digest(size)
    fresh = buffers.new_bytes(size)
    assert fresh is not None
    result, view = fresh
    with view:
        assert len(view) == size and not view.readonly and view.format == "B"
        view[:] = expected
    return result, expected


@pytest.mark.skipif(not _SHORTCUTS_USABLE, reason="the in-place path is off (PyPy or KMSENVELOPE_PORTABLE)")
@pytest.mark.parametrize("size", [1, 2, 7, 8, 64, 4095, 8192, (1 << 20) + 3, 16 << 20])
def test_new_bytes_is_an_ordinary_bytes_object(size: int) -> None:
    result, expected = _filled(size, seed=size)
    assert type(result) is bytes
    assert len(result) == size
    assert result == expected
    assert result != expected[:-1] + bytes([expected[-1] ^ 1])
    assert hash(result) == hash(bytes(bytearray(expected)))  # the hash cache was not filled early
    assert {result: 1}[expected] == 1
    assert result[0] == expected[0] and result[-1] == expected[-1]
    assert bytes(result) is result  # bytes() of an exact bytes returns it unchanged, as for any bytes
    with pytest.raises(TypeError):
        result[0] = 0  # type: ignore[index]
    assert memoryview(result).readonly


@pytest.mark.skipif(not _SHORTCUTS_USABLE, reason="the in-place path is off (PyPy or KMSENVELOPE_PORTABLE)")
def test_new_bytes_results_are_distinct_objects_and_views_release() -> None:
    first = buffers.new_bytes(16)
    second = buffers.new_bytes(16)
    assert first is not None and second is not None
    (a, view_a), (b, view_b) = first, second
    del first, second
    assert a is not b
    with view_a, view_b:
        view_a[:] = b"a" * 16
        view_b[:] = b"b" * 16
    assert (a, b) == (b"a" * 16, b"b" * 16)
    with pytest.raises(ValueError):
        view_a[0] = 1  # a released view can no longer write
    assert sys.getrefcount(a) == 2  # nothing else (no view, no ctypes array) keeps the object alive


def test_new_bytes_refuses_empty_and_negative_sizes() -> None:
    # Size 0 would be CPython's shared empty-bytes singleton: never hand out a writable view of it.
    assert buffers.new_bytes(0) is None
    assert buffers.new_bytes(-1) is None


@pytest.mark.skipif(not _SHORTCUTS_USABLE, reason="the in-place path is off (PyPy or KMSENVELOPE_PORTABLE)")
def test_large_envelope_results_hold_no_extra_references() -> None:
    envelope = Envelope(RawAesKeyring("ns", "name", bytes(32)))
    plaintext = os.urandom(3 << 20)
    message = envelope.encrypt(plaintext)
    assert type(message) is bytes and sys.getrefcount(message) == 2
    decrypted = envelope.decrypt(message)
    assert decrypted == plaintext and type(decrypted) is bytes and sys.getrefcount(decrypted) == 2


# -- the switch ---------------------------------------------------------------------------------

# Runs in a fresh interpreter: os.urandom is made deterministic before kmsenvelope is imported, so the same
# calls produce the same messages and items whichever path builds them. Prints the switch's state and a
# digest per output.
_WORKLOAD = r"""
import hashlib, json, os, random, sys
_rng = random.Random(20261203)
os.urandom = lambda n: _rng.randbytes(n)
from kmsenvelope import Envelope, HierarchicalKeyring, RawAesKeyring, StaticBranchKeyStore
from kmsenvelope.dynamodb import Action, ItemEncryptor, TableConfig
from kmsenvelope.primitives import buffers, portable

out = {"active": portable.ACTIVE, "shortcuts": portable.shortcuts(),
       "new_bytes": buffers.new_bytes(64) is not None, "digests": {}}
def record(name, data):
    out["digests"][name] = hashlib.sha256(data).hexdigest()
for frame in (4096, 65536):
    envelope = Envelope(RawAesKeyring("ns", "name", bytes(range(32))), frame_length=frame)
    for size in (0, 1, 8191, 8192, 65537, (1 << 20) + 3, 3 << 20):
        plaintext = _rng.randbytes(size)
        message = envelope.encrypt(plaintext, {"tenant": "acme"})
        assert envelope.decrypt(message) == plaintext
        record(f"message {frame} {size}", message)
        into = bytearray()
        envelope.encrypt_into(plaintext, into, {"tenant": "acme"})
        record(f"encrypt_into {frame} {size}", bytes(into))
store = StaticBranchKeyStore("bk", "5a1a1a1a-0b0b-4c4c-8d8d-9e9e9e9e9e9e", bytes(32), bytes(range(32)))
actions = {"pk": Action.SIGN_ONLY, "secret": Action.ENCRYPT_AND_SIGN, "note": Action.ENCRYPT_AND_SIGN}
encryptor = ItemEncryptor(TableConfig("t", "pk", actions=actions,
                                      keyring=HierarchicalKeyring(store, branch_key_id="bk")))
for i in range(20):
    item = {"pk": {"S": f"p{i}"}, "secret": {"S": "x" * (i * 37)}, "note": {"B": _rng.randbytes(i * 11)}}
    encrypted = encryptor.encrypt_item(item)
    assert encryptor.decrypt_item(encrypted) == item
    record(f"item {i}", repr(sorted(encrypted.items())).encode())
print(json.dumps(out))
"""


def _run_workload(portable_switch: str | None) -> dict[str, object]:
    import json

    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    env.pop(portable.ENV_VAR, None)
    if portable_switch is not None:
        env[portable.ENV_VAR] = portable_switch
    result = subprocess.run(
        [sys.executable, "-c", _WORKLOAD], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    return document


def test_switch_turns_every_shortcut_off_and_outputs_are_identical() -> None:
    fast = _run_workload(None)
    slow = _run_workload("1")
    assert slow["active"] is True and fast["active"] is False
    assert slow["new_bytes"] is False
    shortcuts = slow["shortcuts"]
    assert isinstance(shortcuts, dict) and shortcuts and not any(shortcuts.values())
    if sys.implementation.name == "cpython":
        assert fast["new_bytes"] is True and all(fast["shortcuts"].values())  # type: ignore[attr-defined]
    digests = fast["digests"]
    assert isinstance(digests, dict) and len(digests) == 2 * 2 * 7 + 20
    assert slow["digests"] == digests


@pytest.mark.parametrize(("value", "active"), [("1", True), ("true", True), ("0", False), ("", False)])
def test_switch_values(value: str, active: bool) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), portable.ENV_VAR: value}
    code = "from kmsenvelope.primitives import portable; print(portable.ACTIVE, portable.shortcuts())"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == str(active)
