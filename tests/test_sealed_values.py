"""Values handed to callers are sealed: no API, C-level attribute and dict methods included, changes them.

CachingMaterials hands one materials object to many callers, and key stores share branch keys, so a
"frozen" value that one caller could still change would change another caller's keys or context.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import pytest

from kmsenvelope import CachingMaterials, Envelope, RawAesKeyring
from kmsenvelope.aws.key_store import BeaconKeyMaterials, BranchKeyMaterials
from kmsenvelope.materials.materials import (
    DecryptionMaterials,
    DecryptionRequest,
    EncryptionMaterials,
    EncryptionRequest,
)
from kmsenvelope.structured.header import Header
from kmsenvelope.structured.model import Action, ParsedHeader
from kmsenvelope.suites import CommitmentPolicy, DbeSuite, Suite
from kmsenvelope.values import EncryptedDataKey, EncryptionContext, frozen_field, seal_dataclass

SUITE = Suite.from_id(0x0478)
DBE_SUITE = DbeSuite.from_id(0x6700)
POLICY = CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
EDK = EncryptedDataKey("raw", b"info", b"ciphertext")


def _envelope() -> Envelope:
    return Envelope(RawAesKeyring("ns", "name", bytes(range(32))))


def _values() -> dict[str, Any]:
    message = _envelope().encrypt(b"secret", {"tenant": "acme"})
    result = _envelope().decrypt_with_header(message)
    return {
        "EncryptionRequest": EncryptionRequest({"a": "b"}, POLICY),
        "DecryptionRequest": DecryptionRequest(SUITE, (EDK,), {"a": "b"}, POLICY),
        "EncryptionMaterials": EncryptionMaterials(SUITE, {"a": "b"}).with_data_key(bytes(32), EDK),
        "DecryptionMaterials": DecryptionMaterials(SUITE, {"a": "b"}).with_data_key(bytes(32)),
        "MessageHeader": result.header,
        "DecryptResult": result,
        "Header": Header(1, DBE_SUITE, bytes(32), b"e", {"a": "b"}, (EDK,), b"raw"),
        "ParsedHeader": ParsedHeader(1, DBE_SUITE, {"x": Action.ENCRYPT_AND_SIGN}, (EDK,), {}, {"a": "b"}),
        "BranchKeyMaterials": BranchKeyMaterials("id", "version", bytes(32), {"a": "b"}),
        "BeaconKeyMaterials": BeaconKeyMaterials("id", bytes(32), {"x": b"k"}, {"a": "b"}),
        "EncryptedDataKey": EDK,
    }


VALUES = _values()

ATTEMPTS: dict[str, Callable[[Any, str], object]] = {
    "vars": lambda value, name: vars(value).__setitem__(name, None),
    "__dict__": lambda value, name: value.__dict__.__setitem__(name, None),
    "setattr": lambda value, name: setattr(value, name, None),
    "delattr": lambda value, name: delattr(value, name),
    "new attribute": lambda value, name: object.__setattr__(value, "extra", None),
    "__class__": lambda value, name: setattr(value, "__class__", object),
}
# Writing a slot through object's own C-level setter is the documented boundary of seal_dataclass
# (docs/security.md); the context and the EDK, whose descriptors are sealed too, refuse it as well.
C_LEVEL: dict[str, Callable[[Any, str], object]] = {
    "object.__setattr__": lambda value, name: object.__setattr__(value, name, None),
    "object.__delattr__": lambda value, name: object.__delattr__(value, name),
}


@pytest.mark.parametrize("attempt", sorted(ATTEMPTS))
@pytest.mark.parametrize("kind", sorted(VALUES))
def test_no_api_changes_a_sealed_value(kind: str, attempt: str) -> None:
    value = _values()[kind]
    names = [f.name for f in dataclasses.fields(value)]
    before = {name: getattr(value, name) for name in names}
    for name in names:
        with pytest.raises((AttributeError, TypeError)):
            ATTEMPTS[attempt](value, name)
    assert {name: getattr(value, name) for name in names} == before
    assert not hasattr(value, "__dict__") and type(value).__name__ == kind


@pytest.mark.parametrize("attempt", sorted(C_LEVEL))
def test_the_edk_and_the_context_refuse_object_setattr_too(attempt: str) -> None:
    context = EncryptionContext({"a": "b"})
    for name in ("provider_id", "provider_info", "ciphertext"):
        with pytest.raises(AttributeError):
            C_LEVEL[attempt](EDK, name)
    for name in ("_pairs", "_serialized"):
        with pytest.raises(AttributeError):
            C_LEVEL[attempt](context, name)
    assert EncryptedDataKey("raw", b"info", b"ciphertext") == EDK and context == {"a": "b"}


@pytest.mark.parametrize("kind", sorted(set(VALUES) - {"EncryptedDataKey"}))
def test_calling_init_or_setstate_again_changes_nothing(kind: str) -> None:
    value = _values()[kind]
    names = [f.name for f in dataclasses.fields(value)]
    before = {name: getattr(value, name) for name in names}
    value.__init__(*[None] * len(names))
    assert not hasattr(value, "__setstate__")
    assert {name: getattr(value, name) for name in names} == before


@pytest.mark.parametrize("kind", sorted(set(VALUES) - {"DecryptResult", "MessageHeader"}))
def test_sealed_values_keep_their_value_semantics(kind: str) -> None:
    value = VALUES[kind]
    if kind != "EncryptedDataKey":
        assert copy.copy(value) is value and copy.deepcopy(value) is value
    assert pickle.loads(pickle.dumps(value)) == value


def test_message_values_pickle_and_replace() -> None:
    result = VALUES["DecryptResult"]
    assert pickle.loads(pickle.dumps(result)) == result
    request = VALUES["EncryptionRequest"]
    changed = dataclasses.replace(request, max_plaintext_length=10)
    assert changed.max_plaintext_length == 10 and request.max_plaintext_length is None
    assert changed.encryption_context == request.encryption_context


def test_repr_shows_no_secrets() -> None:
    key = bytes(range(100, 132))
    shown = repr(EncryptionMaterials(SUITE, {"a": "b"}).with_data_key(key))
    shown += repr(DecryptionMaterials(SUITE, {"a": "b"}).with_data_key(key))
    shown += repr(BranchKeyMaterials("id", "v", key)) + repr(BeaconKeyMaterials("id", key, {"x": key}))
    shown += repr(VALUES["DecryptResult"])
    for secret in (key.hex(), repr(key), "secret"):
        assert secret not in shown


def test_mutable_containers_are_copied_in() -> None:
    """A value keeps no container its builder can still change."""
    key = bytearray(32)
    keys = {"k"}
    edks = [EDK]
    materials = EncryptionMaterials(SUITE, {"a": "b"}, edks, key, None, keys)  # type: ignore[arg-type]
    key[0], edks[:] = 1, []
    keys.add("other")
    assert materials.plaintext_data_key == bytes(32)
    assert materials.encrypted_data_keys == (EDK,) and materials.required_context_keys == {"k"}
    actions = {"x": Action.ENCRYPT_AND_SIGN}
    parsed = ParsedHeader(1, DBE_SUITE, actions, (EDK,), {}, {})
    actions["y"] = Action.DO_NOTHING
    assert dict(parsed.actions) == {"x": Action.ENCRYPT_AND_SIGN}
    assert isinstance(parsed.actions, MappingProxyType)
    assert frozen_field([1]) == (1,) and frozen_field(memoryview(b"x")) == b"x" and frozen_field(2) == 2


def test_a_cached_materials_object_cannot_be_changed_by_one_caller_for_another() -> None:
    caching = CachingMaterials(RawAesKeyring("ns", "name", bytes(range(32))), max_age=300)
    request = EncryptionRequest({"tenant": "acme"}, POLICY, SUITE, max_plaintext_length=100)
    first = caching.get_encryption_materials(request)
    key, context = first.plaintext_data_key, first.encryption_context
    for attempt in ATTEMPTS.values():
        for name in ("plaintext_data_key", "encryption_context", "encrypted_data_keys"):
            with pytest.raises((AttributeError, TypeError)):
                attempt(first, name)
    with pytest.raises((AttributeError, TypeError)):
        dict.__setitem__(first.encryption_context, "tenant", "evil")  # type: ignore[index]
    second = caching.get_encryption_materials(request)
    assert second.plaintext_data_key == key and second.encryption_context == {"tenant": "acme"}
    assert second.encryption_context is context
    message = Envelope(caching, suite=SUITE).encrypt(b"data", {"tenant": "acme"})
    assert _envelope().decrypt(message, {"tenant": "acme"}) == b"data"


def test_seal_dataclass_refuses_classes_it_cannot_seal() -> None:
    @dataclasses.dataclass(frozen=True)
    class Unslotted:
        a: int

    with pytest.raises(TypeError, match="slotted"):
        seal_dataclass(Unslotted)

    @dataclasses.dataclass(frozen=True, slots=True, init=False)
    class NoNew:
        a: int

    with pytest.raises(TypeError, match="__new__"):
        seal_dataclass(NoNew)


def test_encryption_context_of_sealed_values_is_an_encryption_context() -> None:
    for kind, value in VALUES.items():
        for field in dataclasses.fields(value):
            if field.name.endswith("context"):
                assert type(getattr(value, field.name)) is EncryptionContext, (kind, field.name)
