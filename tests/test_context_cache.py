"""Encryption contexts are never cached across callers: every context is its own immutable object."""

from __future__ import annotations

import pytest

from kmsenvelope import Envelope, RawAesKeyring, errors
from kmsenvelope.materials import materials
from kmsenvelope.values import EncryptionContext, freeze_context, parse_context, serialize_context


def test_equal_contexts_are_distinct_objects() -> None:
    first = freeze_context({"tenant": "acme", "table": "t"})
    second = freeze_context({"tenant": "acme", "table": "t"})
    assert first is not second
    assert first == second and hash(first) == hash(second)
    assert dict(first) == {"tenant": "acme", "table": "t"}
    with pytest.raises(TypeError):
        first["tenant"] = "evil"  # type: ignore[index]
    assert freeze_context(first) is first


def test_invalid_contexts_are_rejected() -> None:
    freeze_context({"a": "1"})
    for bad in ({"a": 1}, {"a": ["list"]}, {1: "a"}, {"a": "\ud800"}):
        with pytest.raises(errors.MalformedInputError):
            freeze_context(bad)  # type: ignore[arg-type]
    with pytest.raises(errors.MalformedInputError):
        freeze_context([("a", "1")])  # type: ignore[arg-type]


def test_each_parse_returns_a_new_object() -> None:
    raw = serialize_context({"k": "v", "x": "y"})
    first = parse_context(raw)
    second = parse_context(bytearray(raw))
    assert first is not second and first == second
    with pytest.raises(AttributeError):
        first.pop("k")  # type: ignore[attr-defined]


def test_no_module_level_context_cache_remains() -> None:
    from kmsenvelope import values
    from kmsenvelope.message import header

    for module in (materials, values, header):
        assert not hasattr(module, "_FROZEN") and not hasattr(module, "_PARSED")
        assert not hasattr(module, "_FrozenDict")
        caches = [n for n, v in vars(module).items() if isinstance(v, dict) and v and not n.startswith("__")]
        assert caches == [], f"{module.__name__} holds module-level dicts {caches}"


def test_contexts_do_not_leak_between_messages() -> None:
    envelope = Envelope(RawAesKeyring("ns", "k", bytes(32)))
    a = envelope.encrypt(b"a", {"tenant": "acme"})
    b = envelope.encrypt(b"b", {"tenant": "beta"})
    assert envelope.decrypt_with_header(a).encryption_context == {"tenant": "acme"}
    assert envelope.decrypt_with_header(b).encryption_context == {"tenant": "beta"}
    with pytest.raises(errors.ContextMismatchError):
        envelope.decrypt(a, {"tenant": "beta"})
    assert type(envelope.decrypt_with_header(a).encryption_context) is EncryptionContext
