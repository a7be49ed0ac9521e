"""Hostile DynamoDB items and attribute values, each with the exact error class it must raise.

Every case starts from a real encrypted item (hierarchical keyring, fresh static branch key) and
changes one thing: the type or presence of ``aws_dbe_head``/``aws_dbe_foot``, their bytes (unknown
version or flavour, lengths past the end, huge declared lengths), the attribute values (wrong
DynamoDB types, not DynamoDB JSON at all), the key or table the item is read under. The exact class
is asserted (not a subclass), because callers and the CLI's exit codes depend on it. Cases with huge
declared lengths must also fail fast: within 0.5 s and allocating under 256 KiB.

ESDK message headers are covered by ``test_hostile_headers.py``; EDKs and streams by
``test_hostile_edks.py``.
"""

from __future__ import annotations

import functools
import os
import time
import tracemalloc
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from kmsenvelope.aws.key_store import StaticBranchKeyStore
from kmsenvelope.dynamodb import SIGNING_SUITE, Action, ItemEncryptor, TableConfig
from kmsenvelope.dynamodb.attributes import MAX_DEPTH, deserialize, serialize
from kmsenvelope.errors import (
    AuthenticationError,
    MalformedInputError,
    NoUsableKeyError,
    SignatureError,
)
from kmsenvelope.keyrings.hierarchical import HierarchicalKeyring
from kmsenvelope.structured.model import Terminal

Item = dict[str, Any]

STORE = StaticBranchKeyStore("hostile-bk", str(uuid.uuid4()), os.urandom(32), os.urandom(32))
KEYRING = HierarchicalKeyring(STORE, branch_key_id="hostile-bk")
ACTIONS = {
    "pk": Action.SIGN_ONLY,
    "sk": Action.SIGN_ONLY,
    "secret": Action.ENCRYPT_AND_SIGN,
    "note": Action.SIGN_ONLY,
    "cache": Action.DO_NOTHING,
}


def _config(table: str = "hostile", **overrides: Any) -> TableConfig:
    args: dict[str, Any] = {
        "sort_key": "sk",
        "actions": ACTIONS,
        "keyring": KEYRING,
        "allowed_unsigned": ["cache"],
    }
    args.update(overrides)
    return TableConfig(table, "pk", **args)


ENCRYPTOR = ItemEncryptor(_config())
SIGNING = ItemEncryptor(_config(suite=SIGNING_SUITE))
PLAIN: Item = {
    "pk": {"S": "customer#1"},
    "sk": {"N": "1"},
    "secret": {"S": "4111-1111-1111-1111"},
    "note": {"S": "gold"},
    "cache": {"S": "unsigned"},
}


def _encrypted(encryptor: ItemEncryptor = ENCRYPTOR) -> Item:
    return encryptor.encrypt_item(PLAIN)


def _with(**changes: Any) -> Callable[[], Item]:
    """An encrypted item with attributes replaced (a value of ``None`` removes the attribute)."""

    def build() -> Item:
        item = _encrypted()
        for name, value in changes.items():
            if value is None:
                del item[name]
            else:
                item[name] = value
        return item

    return build


def _head(change: Callable[[bytes], bytes]) -> Callable[[], Item]:
    def build() -> Item:
        item = _encrypted()
        item["aws_dbe_head"] = {"B": change(item["aws_dbe_head"]["B"])}
        return item

    return build


def _foot(change: Callable[[bytes], bytes], encryptor: ItemEncryptor = ENCRYPTOR) -> Callable[[], Item]:
    def build() -> Item:
        item = _encrypted(encryptor)
        item["aws_dbe_foot"] = {"B": change(item["aws_dbe_foot"]["B"])}
        return item

    return build


def _at(offset: int, value: int) -> Callable[[bytes], bytes]:
    return lambda data: data[:offset] + bytes([value]) + data[offset + 1 :]


def _flip(offset: int) -> Callable[[bytes], bytes]:
    return lambda data: data[:offset] + bytes([data[offset] ^ 1]) + data[offset + 1 :]


# The head of our items: version, flavour, message id (32), legend length (2) and legend (4 signed
# attributes: pk, sk, secret, note), context count (2) and pairs, EDK count (1), EDKs, commitment (32).
_LEGEND_AT = 34
_CONTEXT_AT = _LEGEND_AT + 2 + 4


def _head_prefix(rest: bytes) -> Callable[[bytes], bytes]:
    """Keep version, flavour and message id; the rest of the header is ``rest`` then 32 bytes."""
    return lambda data: data[:_LEGEND_AT] + rest + bytes(32)


def _edk_section(data: bytes) -> int:
    """Offset of the EDK count in a head whose stored context is empty (the default suite's)."""
    assert data[_CONTEXT_AT : _CONTEXT_AT + 2] == b"\x00\x00"
    return _CONTEXT_AT + 2


def _edks(rest: bytes) -> Callable[[bytes], bytes]:
    return lambda data: data[: _edk_section(data)] + rest + bytes(32)


def _deep(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"S": "x"}
    for _ in range(depth):
        value = {"L": [value]}
    return value


def _other_key() -> Item:
    item = _encrypted()
    item["pk"] = {"S": "customer#2"}  # a signed key value: also part of the v1 encryption context
    return item


def _other_branch_key() -> Item:
    other = StaticBranchKeyStore("hostile-bk", str(uuid.uuid4()), os.urandom(32), os.urandom(32))
    keyring = HierarchicalKeyring(other, branch_key_id="hostile-bk")
    return ItemEncryptor(_config(keyring=keyring)).encrypt_item(PLAIN)


def _extra_signed() -> Item:
    item = _encrypted()
    item["intruder"] = {"S": "added later"}  # not allowed unsigned, so it is in signature scope
    return item


def _too_many() -> Item:
    item = _encrypted()
    item.update({f"cache{i}": {"S": "x"} for i in range(100)})
    return item


# (case id, item builder, the exact exception decrypt_item must raise)
ITEM_CASES: list[tuple[str, Callable[[], Any], type[Exception]]] = [
    # The item and its attributes are not DynamoDB JSON.
    ("item-is-a-list", lambda: list(_encrypted().items()), MalformedInputError),
    ("item-is-a-string", lambda: "aws_dbe_head", MalformedInputError),
    ("value-not-a-mapping", _with(note="gold"), MalformedInputError),
    ("value-unknown-type", _with(note={"X": "gold"}), MalformedInputError),
    ("value-two-types", _with(note={"S": "gold", "N": "1"}), MalformedInputError),
    ("value-empty-mapping", _with(note={}), MalformedInputError),
    ("string-holds-int", _with(note={"S": 1}), MalformedInputError),
    ("string-holds-bytes", _with(note={"S": b"gold"}), MalformedInputError),
    ("number-not-a-number", _with(sk={"N": "one"}), MalformedInputError),
    ("number-out-of-range", _with(sk={"N": "1e126"}), MalformedInputError),
    ("number-39-digits", _with(sk={"N": "1" * 39}), MalformedInputError),
    ("binary-holds-str", _with(note={"B": "Z29sZA=="}), MalformedInputError),
    ("bool-holds-str", _with(note={"BOOL": "true"}), MalformedInputError),
    ("null-false", _with(note={"NULL": False}), MalformedInputError),
    ("string-set-duplicates", _with(note={"SS": ["a", "a"]}), MalformedInputError),
    ("number-set-equal-numbers", _with(note={"NS": ["1", "1.0"]}), MalformedInputError),
    ("binary-set-duplicates", _with(note={"BS": [b"a", b"a"]}), MalformedInputError),
    ("set-not-a-list", _with(note={"SS": "abc"}), MalformedInputError),
    ("list-not-a-list", _with(note={"L": {"S": "x"}}), MalformedInputError),
    ("map-int-key", _with(note={"M": {1: {"S": "x"}}}), MalformedInputError),
    ("nested-past-the-limit", _with(note=_deep(MAX_DEPTH)), MalformedInputError),
    ("too-many-attributes", _too_many, MalformedInputError),
    ("partition-key-missing", _with(pk=None), MalformedInputError),
    ("sort-key-missing", _with(sk=None), MalformedInputError),
    # aws_dbe_head / aws_dbe_foot missing, of the wrong type, empty.
    ("head-missing", _with(aws_dbe_head=None), MalformedInputError),
    ("foot-missing", _with(aws_dbe_foot=None), MalformedInputError),
    ("head-is-a-string", _with(aws_dbe_head={"S": "AQA="}), MalformedInputError),
    ("head-binary-holds-str", _with(aws_dbe_head={"B": "AQA="}), MalformedInputError),
    ("head-two-types", _with(aws_dbe_head={"B": b"\x01\x00", "S": "x"}), MalformedInputError),
    ("head-not-a-mapping", _with(aws_dbe_head=b"\x01\x00"), MalformedInputError),
    ("foot-is-a-number", _with(aws_dbe_foot={"N": "1"}), MalformedInputError),
    ("foot-is-a-list", _with(aws_dbe_foot={"L": []}), MalformedInputError),
    ("head-empty", _with(aws_dbe_head={"B": b""}), MalformedInputError),
    # Unknown versions and flavours.
    ("head-version-0", _head(_at(0, 0)), MalformedInputError),
    ("head-version-3", _head(_at(0, 3)), MalformedInputError),
    ("head-version-255", _head(_at(0, 255)), MalformedInputError),
    ("head-flavour-2", _head(_at(1, 2)), MalformedInputError),
    ("head-flavour-255", _head(_at(1, 255)), MalformedInputError),
    # Lengths past the end, huge declared lengths in tiny heads.
    ("head-only-version-and-flavour", _head(lambda d: d[:2]), MalformedInputError),
    ("head-truncated-in-message-id", _head(lambda d: d[:20]), MalformedInputError),
    ("head-legend-length-65535", _head(_head_prefix(b"\xff\xff")), MalformedInputError),
    ("head-context-count-65535", _head(_head_prefix(b"\x00\x00\xff\xff")), MalformedInputError),
    ("head-context-key-65535", _head(_head_prefix(b"\x00\x00\x00\x01\xff\xff")), MalformedInputError),
    ("head-edk-count-missing", _head(_head_prefix(b"\x00\x00\x00\x00")), MalformedInputError),
    ("head-edk-count-255-tiny", _head(_edks(b"\xff")), MalformedInputError),
    ("head-edk-count-0", _head(_edks(b"\x00")), MalformedInputError),
    ("head-provider-id-65535", _head(_edks(b"\x01\xff\xff")), MalformedInputError),
    ("head-provider-info-65535", _head(_edks(b"\x01\x00\x00\xff\xff")), MalformedInputError),
    ("head-edk-ciphertext-65535", _head(_edks(b"\x01\x00\x00\x00\x00\xff\xff")), MalformedInputError),
    ("head-provider-id-not-utf8", _head(_edks(b"\x01\x00\x01\xff\x00\x00\x00\x00")), MalformedInputError),
    ("head-trailing-byte", _head(lambda d: d[:-32] + b"\x00" + d[-32:]), MalformedInputError),
    ("head-legend-bad-byte", _head(_at(_LEGEND_AT + 2, ord("x"))), MalformedInputError),
    (
        "head-context-not-ascending",
        _head(
            _head_prefix(b"\x00\x00" + b"\x00\x02" + b"\x00\x01b\x00\x00" + b"\x00\x01a\x00\x00" + b"\x00")
        ),
        MalformedInputError,
    ),
    (
        "head-context-duplicate-key",
        _head(_head_prefix(b"\x00\x00" + b"\x00\x02" + b"\x00\x01a\x00\x00" * 2 + b"\x00")),
        MalformedInputError,
    ),
    # Signed attributes that no longer match the header's legend.
    ("signed-attribute-added", _extra_signed, MalformedInputError),
    ("signed-attribute-removed", _with(note=None), MalformedInputError),
    ("encrypted-attribute-removed", _with(secret=None), MalformedInputError),
    # Authentic shape, wrong content.
    ("commitment-flipped", _head(lambda d: d[:-1] + bytes([d[-1] ^ 1])), AuthenticationError),
    ("message-id-flipped", _head(_flip(5)), AuthenticationError),
    ("signed-value-changed", _with(note={"S": "platinum"}), AuthenticationError),
    ("signed-value-retyped", _with(note={"B": b"gold"}), AuthenticationError),
    ("encrypted-value-as-string", lambda: {**_encrypted(), "secret": {"S": "4111"}}, AuthenticationError),
    ("foot-tag-flipped", _foot(_flip(0)), AuthenticationError),
    ("foot-one-byte-short", _foot(lambda d: d[:-1]), MalformedInputError),
    ("foot-extra-tag", _foot(lambda d: d + d[:48]), MalformedInputError),
    ("foot-empty", _foot(lambda d: b""), MalformedInputError),
    ("signature-flipped", _foot(lambda d: d[:-1] + bytes([d[-1] ^ 1]), SIGNING), SignatureError),
    ("signature-missing", _foot(lambda d: d[:48], SIGNING), MalformedInputError),
    # Moved: another key value (in the v1 encryption context), another branch key, version 2 claimed.
    ("moved-to-another-partition-key", _other_key, NoUsableKeyError),
    ("key-value-retyped", _with(sk={"S": "1"}), NoUsableKeyError),
    ("other-branch-key-version", _other_branch_key, NoUsableKeyError),
    ("head-claims-version-2", _head(_at(0, 2)), NoUsableKeyError),
]


def _raises_exactly(expected: type[Exception], call: Callable[[], object]) -> Exception:
    with pytest.raises(expected) as info:
        call()
    assert type(info.value) is expected, f"{type(info.value).__name__}: {info.value}"
    return info.value


def test_the_untouched_item_decrypts() -> None:
    """The control: every case below changes one thing about an item that decrypts."""
    for encryptor in (ENCRYPTOR, SIGNING):
        assert encryptor.decrypt_item(_encrypted(encryptor)) == PLAIN


@pytest.mark.parametrize(("case", "build", "expected"), ITEM_CASES, ids=[c[0] for c in ITEM_CASES])
def test_hostile_item(case: str, build: Callable[[], Any], expected: type[Exception]) -> None:
    item = build()
    encryptor = SIGNING if case.startswith("signature-") else ENCRYPTOR
    error = _raises_exactly(expected, lambda: encryptor.decrypt_item(item))
    assert "4111" not in str(error)


def test_other_table_name() -> None:
    """The logical table name is bound through the encryption context: another table cannot read it."""
    _raises_exactly(NoUsableKeyError, lambda: ItemEncryptor(_config("other")).decrypt_item(_encrypted()))


def test_item_already_holding_a_header_is_not_encrypted_again() -> None:
    for name in ("aws_dbe_head", "aws_dbe_foot"):
        item = {**PLAIN, name: {"B": b"x"}}
        _raises_exactly(MalformedInputError, functools.partial(ENCRYPTOR.encrypt_item, item))


def test_reserved_attributes_are_outside_the_signature() -> None:
    """Other ``aws_dbe_`` attributes (beacons, a copied header) are not authenticated: they pass through
    decryption untouched, like any unsigned attribute. Callers must not trust them."""
    item = _encrypted()
    item["aws_dbe_b_extra"] = {"S": "not signed"}
    item["aws_dbe_head_copy"] = item["aws_dbe_head"]
    plain = ENCRYPTOR.decrypt_item(item)
    assert plain == {
        **PLAIN,
        "aws_dbe_b_extra": {"S": "not signed"},
        "aws_dbe_head_copy": item["aws_dbe_head"],
    }


# -- the attribute value deserializer -------------------------------------------------------------

U32_MAX = b"\xff\xff\xff\xff"
STRING, NUMBER, BINARY, BOOLEAN, NULL = b"\x00\x01", b"\x00\x02", b"\xff\xff", b"\x00\x04", b"\x00\x00"
STRING_SET, NUMBER_SET, BINARY_SET, MAP, LIST = (
    b"\x01\x01",
    b"\x01\x02",
    b"\x01\xff",
    b"\x02\x00",
    b"\x03\x00",
)


def _nested_lists(depth: int) -> bytes:
    value = b""  # NULL, empty
    type_id = NULL
    for _ in range(depth):
        value = b"\x00\x00\x00\x01" + type_id + len(value).to_bytes(4, "big") + value
        type_id = LIST
    return value


# (case id, type id, serialized value); every one must raise exactly MalformedInputError.
TERMINAL_CASES: list[tuple[str, bytes, bytes]] = [
    ("unknown-type-id", b"\x00\x03", b""),
    ("unknown-set-type", b"\x01\x00", b"\x00\x00\x00\x00"),
    ("string-not-utf8", STRING, b"\xff"),
    ("number-not-utf8", NUMBER, b"\xc3"),
    ("boolean-2", BOOLEAN, b"\x02"),
    ("boolean-empty", BOOLEAN, b""),
    ("boolean-two-bytes", BOOLEAN, b"\x00\x00"),
    ("null-with-a-byte", NULL, b"\x00"),
    ("set-count-missing", STRING_SET, b"\x00\x00"),
    ("set-count-u32-max-tiny", STRING_SET, U32_MAX),
    ("set-entry-length-u32-max", STRING_SET, b"\x00\x00\x00\x01" + U32_MAX + b"a"),
    ("set-entry-past-the-end", BINARY_SET, b"\x00\x00\x00\x01\x00\x00\x00\x05ab"),
    ("set-duplicates", STRING_SET, b"\x00\x00\x00\x02" + b"\x00\x00\x00\x01a" * 2),
    ("number-set-not-utf8", NUMBER_SET, b"\x00\x00\x00\x01\x00\x00\x00\x01\xff"),
    ("set-trailing-bytes", STRING_SET, b"\x00\x00\x00\x00\x00"),
    ("list-count-u32-max-tiny", LIST, U32_MAX),
    ("list-count-u32-max-one-entry", LIST, U32_MAX + NULL + b"\x00\x00\x00\x00"),
    ("list-entry-length-u32-max", LIST, b"\x00\x00\x00\x01" + STRING + U32_MAX),
    ("list-entry-type-cut", LIST, b"\x00\x00\x00\x01\x00"),
    ("list-trailing-bytes", LIST, b"\x00\x00\x00\x00\x00"),
    ("list-nested-past-the-limit", LIST, _nested_lists(MAX_DEPTH)),
    ("map-count-u32-max-tiny", MAP, U32_MAX),
    ("map-key-not-a-string", MAP, b"\x00\x00\x00\x01" + NUMBER + b"\x00\x00\x00\x011" + NULL + bytes(4)),
    ("map-key-length-u32-max", MAP, b"\x00\x00\x00\x01" + STRING + U32_MAX),
    (
        "map-duplicate-keys",
        MAP,
        b"\x00\x00\x00\x02" + (STRING + b"\x00\x00\x00\x01k" + NULL + bytes(4)) * 2,
    ),
    (
        "map-value-cut",
        MAP,
        b"\x00\x00\x00\x01" + STRING + b"\x00\x00\x00\x01k" + STRING + b"\x00\x00\x00\x09ab",
    ),
]


def _fails_fast(expected: type[Exception], call: Callable[[], object]) -> None:
    """Fails with exactly ``expected`` in under 0.5 s, allocating under 256 KiB on the way."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        _raises_exactly(expected, call)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 0.5, f"took {elapsed:.2f} s"
    assert peak < 256 * 1024, f"allocated {peak} bytes"


@pytest.mark.parametrize(("case", "type_id", "value"), TERMINAL_CASES, ids=[c[0] for c in TERMINAL_CASES])
def test_hostile_attribute_value(case: str, type_id: bytes, value: bytes) -> None:
    _fails_fast(MalformedInputError, lambda: deserialize(Terminal(type_id, value)))


def test_nesting_up_to_the_limit_is_accepted() -> None:
    """The control for the nesting cases: one level less is a valid value, both ways."""
    value = _deep(MAX_DEPTH - 1)
    assert deserialize(serialize(value)) == value
    assert deserialize(Terminal(LIST, _nested_lists(MAX_DEPTH - 1)))["L"]


@pytest.mark.parametrize(
    "case",
    [
        "head-legend-length-65535",
        "head-context-count-65535",
        "head-edk-count-255-tiny",
        "head-provider-id-65535",
    ],
)
def test_huge_declared_lengths_in_the_head_fail_fast(case: str) -> None:
    (build,) = [c[1] for c in ITEM_CASES if c[0] == case]
    item = build()
    ENCRYPTOR.decrypt_item(_encrypted())  # warm up lazy imports, so only the hostile call is measured
    _fails_fast(MalformedInputError, lambda: ENCRYPTOR.decrypt_item(item))
