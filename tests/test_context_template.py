"""ContextTemplate: immutable, pre-serialized encryption contexts for records with fixed context keys."""

from __future__ import annotations

import random

import pytest

from kmsenvelope.errors import ConfigurationError, MalformedInputError
from kmsenvelope.keyrings.wrapping import encryption_context_aad
from kmsenvelope.materials.context_template import ContextTemplate
from kmsenvelope.values import EncryptionContext, freeze_context

ALPHABET = ["a", "z", "A", "-", ".", "é", "\u00ff", "\u0800", "\uffef", "\U0001f600", "\ue000"]


def _text(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(length))


@pytest.mark.parametrize("seed", range(40))
def test_build_matches_the_general_serialization(seed: int) -> None:
    rng = random.Random(seed)
    keys = list({_text(rng, rng.randint(1, 6)) for _ in range(rng.randint(1, 8))})
    rng.shuffle(keys)
    split = rng.randint(0, len(keys))
    fixed = {key: _text(rng, rng.randint(0, 5)) for key in keys[:split]}
    variable = keys[split:]
    template = ContextTemplate(fixed, variable)
    for _ in range(3):
        values = [_text(rng, rng.randint(0, 9)) for _ in variable]
        context = template.build(values)
        expected = {**fixed, **dict(zip(variable, values, strict=True))}
        assert dict(context) == expected
        # Same bytes as the keyrings' canonical AAD computed from a plain dict (sorted by UTF-8 bytes).
        assert context.serialize() == encryption_context_aad(dict(expected))
        assert encryption_context_aad(context) == encryption_context_aad(dict(expected))
        assert type(context) is EncryptionContext and freeze_context(context) is context
        with pytest.raises(TypeError):
            context["x"] = "y"  # type: ignore[index]


def test_item_shaped_template() -> None:
    fixed = {"aws-crypto-table-name": "orders", "aws-crypto-partition-name": "pk"}
    template = ContextTemplate(fixed, ["aws-crypto-attr.pk"])
    context = template.build(["AAFjdXN0b21lcg=="])
    assert list(template.keys) == [*fixed, "aws-crypto-attr.pk"]
    assert context.serialize() == (
        b"\x00\x03"
        + b"\x00\x12aws-crypto-attr.pk\x00\x10AAFjdXN0b21lcg=="
        + b"\x00\x19aws-crypto-partition-name\x00\x02pk"
        + b"\x00\x15aws-crypto-table-name\x00\x06orders"
    )


def test_bad_templates_and_values_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        ContextTemplate({"a": "1"}, ["a"])
    with pytest.raises(ConfigurationError):
        ContextTemplate({"a": "\ud800"}, ["b"])
    with pytest.raises(ConfigurationError):
        ContextTemplate({}, ["x" * 70000])
    template = ContextTemplate({"a": "1"}, ["b", "c"])
    with pytest.raises(MalformedInputError):
        template.build(["only one"])
    with pytest.raises(MalformedInputError):
        template.build(["ok", 5])  # type: ignore[list-item]
    with pytest.raises(MalformedInputError):
        template.build(["ok", "\udc80"])
    with pytest.raises(MalformedInputError):
        template.build(["ok", "v" * 70000])
    assert "a" in repr(template) and "b" in repr(template)


def test_build_ascii_matches_build() -> None:
    template = ContextTemplate({"aws-crypto-table-name": "t"}, ["aws-crypto-attr.pk", "aws-crypto-attr.sk"])
    values = ["AAFjdXN0b21lcg==", "AAFwcm9maWxl"]
    from_text = template.build(values)
    from_ascii = template.build_ascii([value.encode("ascii") for value in values])
    assert dict(from_ascii) == dict(from_text) and from_ascii.serialize() == from_text.serialize()
    with pytest.raises(MalformedInputError):
        template.build_ascii([b"\xc3\xa9", b"x"])
    with pytest.raises(MalformedInputError):
        template.build_ascii(["text", b"x"])  # type: ignore[list-item]
    with pytest.raises(MalformedInputError):
        template.build_ascii([b"x"])
