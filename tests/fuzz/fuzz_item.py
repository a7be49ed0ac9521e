"""Fuzz target ``item``: :meth:`ItemEncryptor.decrypt_item` on mutated DynamoDB-JSON items.

Input: a config byte, a transform byte, then the item serialized as the value of a DynamoDB map
(``kmsenvelope.dynamodb.attributes`` encoding: type id, length and bytes of every attribute). So the
bytes of ``aws_dbe_head``, ``aws_dbe_foot`` and every attribute value lie directly in the input for
libFuzzer to mutate, and a mutated type id turns a binary into a string, a number, a list...

The config byte picks the table configuration (the DB-ESDK vectors' configs, then our own); the
transform byte applies a shape change the byte encoding cannot express (an ``aws_dbe_`` attribute of
the wrong type or missing or repeated under another name, values that are not DynamoDB JSON at all).
Seeds: every encrypted item of the DB-ESDK decrypt manifests and items we encrypt now.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``tests.fuzz`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kmsenvelope.dynamodb import SIGNING_SUITE, Action, ItemEncryptor, TableConfig
from kmsenvelope.dynamodb.attributes import MAP, deserialize, serialize
from kmsenvelope.errors import KmsEnvelopeError
from kmsenvelope.structured.model import FOOTER_FIELD, HEADER_FIELD, Terminal
from tests import _dbesdk
from tests.fuzz import _common

TARGET = "item"

Item = dict[str, Any]


def _our_configs() -> list[TableConfig]:
    keyring = _common.hierarchical_keyring()
    v1 = {
        "pk": Action.SIGN_ONLY,
        "sk": Action.SIGN_ONLY,
        "card": Action.ENCRYPT_AND_SIGN,
        "profile": Action.ENCRYPT_AND_SIGN,
        "status": Action.SIGN_ONLY,
        "cache": Action.DO_NOTHING,
    }
    v2 = {
        "pk": Action.SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT,
        "tenant": Action.SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT,
        "secret": Action.ENCRYPT_AND_SIGN,
        "flag": Action.SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT,
    }
    return [
        TableConfig(
            "fuzz-orders",
            "pk",
            sort_key="sk",
            actions=v1,
            keyring=keyring,
            allowed_unsigned=["cache"],
            allowed_unsigned_prefix="tmp_",
        ),
        TableConfig("fuzz-tenants", "pk", actions=v2, keyring=keyring, suite=SIGNING_SUITE),
    ]


def _our_items() -> list[tuple[int, Item]]:
    """(index among our configs, plaintext item)."""
    return [
        (
            0,
            {
                "pk": {"S": "order#1"},
                "sk": {"N": "12.50"},
                "card": {"S": "4111-1111-1111-1111"},
                "profile": {
                    "M": {
                        "name": {"S": "Ada"},
                        "tags": {"SS": ["b", "a"]},
                        "n": {"NS": ["1", "2.5"]},
                        "bin": {"BS": [b"\x00", b"\xff"]},
                        "nested": {"L": [{"NULL": True}, {"BOOL": False}, {"M": {}}]},
                    }
                },
                "status": {"BOOL": True},
                "cache": {"S": "unsigned"},
                "tmp_trace": {"B": b"trace"},
            },
        ),
        (0, {"pk": {"S": "order#2"}, "sk": {"N": "0"}, "card": {"B": b""}, "status": {"NULL": True}}),
        (
            1,
            {
                "pk": {"B": b"\x01\x02"},
                "tenant": {"S": "acme"},
                "secret": {"L": [{"S": "x"}, {"N": "-1e-5"}]},
                "flag": {"BOOL": True},
            },
        ),
        (1, {"pk": {"N": "7"}, "tenant": {"NULL": True}, "secret": {"S": ""}, "flag": {"BOOL": False}}),
    ]


_CONFIGS: list[TableConfig] | None = None


def configs() -> list[TableConfig]:
    """Vector configs (deduplicated, in a fixed order) then ours; built once."""
    global _CONFIGS
    if _CONFIGS is None:
        _common.require_vectors("dbesdk")
        keyring = _common.hierarchical_keyring()
        seen: dict[str, TableConfig] = {}
        for _, test in _dbesdk.manifest_tests():
            key = json.dumps(test["config"], sort_keys=True)
            if key not in seen:
                seen[key] = _dbesdk.vector_config(test["config"], keyring)
        _CONFIGS = [seen[key] for key in sorted(seen)] + _our_configs()
    return _CONFIGS


def _config_index(config: dict[str, Any]) -> int:
    keys = sorted({json.dumps(test["config"], sort_keys=True) for _, test in _dbesdk.manifest_tests()})
    return keys.index(json.dumps(config, sort_keys=True))


def encode(config_index: int, transform: int, item: Item) -> bytes:
    terminal = serialize({"M": item})
    assert terminal.type_id == MAP
    return bytes((config_index, transform)) + terminal.value


def seeds() -> list[bytes]:
    out = []
    for _, test in _dbesdk.manifest_tests():
        out.append(encode(_config_index(test["config"]), 0, _dbesdk.ddb_item(test["encrypted"])))
    base = len(configs()) - len(_our_configs())
    for index, item in _our_items():
        encrypted = ItemEncryptor(configs()[base + index]).encrypt_item(item)
        for transform in range(len(_TRANSFORMS)):
            out.append(encode(base + index, transform, encrypted))
    return out


def _first_plain(item: Item) -> str | None:
    names = sorted(name for name in item if not name.startswith("aws_dbe_"))
    return names[0] if names else None


def _retype(name: str, make: Callable[[Any], Any]) -> Callable[[Item], Any]:
    def transform(item: Item) -> Any:
        target = _first_plain(item) if name == "" else name
        if target is not None and target in item:
            item[target] = make(item[target])
        return item

    return transform


def _drop(name: str) -> Callable[[Item], Any]:
    def transform(item: Item) -> Any:
        item.pop(name, None)
        return item

    return transform


def _copy_as(source: str, name: str) -> Callable[[Item], Any]:
    def transform(item: Item) -> Any:
        if source in item:
            item[name] = item[source]
        return item

    return transform


def _only_value(value: Any) -> Any:
    return next(iter(value.values())) if isinstance(value, dict) and value else value


_TRANSFORMS: tuple[Callable[[Item], Any], ...] = (
    lambda item: item,
    _retype(HEADER_FIELD, lambda v: {"S": repr(_only_value(v))}),  # header as a string
    _retype(HEADER_FIELD, lambda v: {"B": bytearray(_only_value(v) or b"")}),  # bytearray is allowed
    _retype(FOOTER_FIELD, lambda v: {"B": memoryview(bytes(_only_value(v) or b""))}),
    _drop(HEADER_FIELD),
    _drop(FOOTER_FIELD),
    _copy_as(HEADER_FIELD, "aws_dbe_head_copy"),  # a second aws_dbe_ attribute holding a header
    _copy_as(FOOTER_FIELD, HEADER_FIELD),  # footer bytes where the header belongs
    _retype("", lambda v: {"B": str(_only_value(v))}),  # binary tag with a str value
    _retype("", lambda v: {"S": _only_value(v)}),  # string tag with whatever value
    _retype("", lambda v: _only_value(v)),  # bare value, not DynamoDB JSON
    _retype("", lambda v: {**v, "NULL": True} if isinstance(v, dict) else v),  # two type keys
    _retype(HEADER_FIELD, lambda v: {"B": None}),
    lambda item: list(item.items()),  # not a mapping at all
)


def TestOneInput(data: bytes) -> None:  # the name atheris and libFuzzer expect
    if len(data) < 2:
        return
    config = configs()[data[0] % len(configs())]
    transform = _TRANSFORMS[data[1] % len(_TRANSFORMS)]
    try:
        value = deserialize(Terminal(MAP, data[2:]))
    except KmsEnvelopeError:
        return
    item = transform(dict(value["M"]))
    encryptor = ItemEncryptor(config)
    try:
        plain, header = encryptor.decrypt_item_with_header(item)
    except KmsEnvelopeError:
        return
    assert isinstance(item, dict)
    assert HEADER_FIELD not in plain and FOOTER_FIELD not in plain
    assert set(plain) == set(item) - {HEADER_FIELD, FOOTER_FIELD}
    signed = {name for name in item if not config.allowed_unsigned_name(name)}
    assert set(header.actions) == signed, "the verified header covers other attributes than the item's"
    for name, action in header.actions.items():
        if action is not Action.ENCRYPT_AND_SIGN:
            assert plain[name] == item[name], f"decrypt changed the signed plaintext attribute {name!r}"
    repr(header)


if __name__ == "__main__":
    from tests.fuzz import run

    sys.exit(run.main(["--target", TARGET, *sys.argv[1:]]))
