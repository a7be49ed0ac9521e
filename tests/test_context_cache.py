"""The content-keyed caches of frozen and parsed encryption contexts are safe to share."""

from __future__ import annotations

import pytest

from kmsenvelope import Envelope, RawAesKeyring, errors
from kmsenvelope.materials import materials
from kmsenvelope.materials.materials import freeze_context
from kmsenvelope.message import context as context_mod
from kmsenvelope.message.context import parse_context, serialize_context


def test_equal_contexts_share_one_frozen_value() -> None:
    first = freeze_context({"tenant": "acme", "table": "t"})
    second = freeze_context({"tenant": "acme", "table": "t"})
    assert first is second
    assert dict(first) == {"tenant": "acme", "table": "t"}
    with pytest.raises(TypeError):
        first["tenant"] = "evil"  # type: ignore[index]
    assert freeze_context({"tenant": "other", "table": "t"}) is not first


def test_invalid_contexts_are_still_rejected() -> None:
    freeze_context({"a": "1"})
    for bad in ({"a": 1}, {"a": ["list"]}, {1: "a"}):
        with pytest.raises(errors.MalformedInputError):
            freeze_context(bad)  # type: ignore[arg-type]


def test_parsed_contexts_are_shared_and_immutable() -> None:
    raw = serialize_context({"k": "v", "x": "y"})
    first = parse_context(raw)
    assert parse_context(bytearray(raw)) is first
    with pytest.raises(TypeError):
        first.pop("k")  # type: ignore[attr-defined]


def test_caches_stay_bounded() -> None:
    for i in range(materials._CONTEXT_CACHE_SIZE * 2 + 5):
        freeze_context({"n": str(i)})
        parse_context(serialize_context({"n": str(i)}))
    assert len(materials._FROZEN) <= materials._CONTEXT_CACHE_SIZE
    assert len(context_mod._PARSED) <= materials._CONTEXT_CACHE_SIZE


def test_a_cached_context_does_not_leak_between_messages() -> None:
    envelope = Envelope(RawAesKeyring("ns", "k", bytes(32)))
    a = envelope.encrypt(b"a", {"tenant": "acme"})
    b = envelope.encrypt(b"b", {"tenant": "beta"})
    assert envelope.decrypt_with_header(a).encryption_context == {"tenant": "acme"}
    assert envelope.decrypt_with_header(b).encryption_context == {"tenant": "beta"}
    with pytest.raises(errors.ContextMismatchError):
        envelope.decrypt(a, {"tenant": "beta"})
