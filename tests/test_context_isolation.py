"""Encryption contexts cannot be changed by one caller under another, rejected headers leave no memory
behind, and every message written serializes its context canonically (issue 12, defects 1, 2 and 5).
"""

from __future__ import annotations

import contextlib
import copy
import gc
import os
import pickle
import tracemalloc

import pytest

from kmsenvelope import (
    CommitmentPolicy,
    DefaultMaterials,
    EncryptedDataKey,
    EncryptionContext,
    Envelope,
    RawAesKeyring,
    Suite,
    errors,
)
from kmsenvelope.materials.materials import EncryptionRequest
from kmsenvelope.message import body as body_mod
from kmsenvelope.message.keys import derive_message_keys
from kmsenvelope.primitives.aead import AesGcm
from kmsenvelope.values import parse_context, serialize_context

from ._esdk import esdk_aes_key, esdk_decrypt

KEY = bytes(range(32))
NS, NAME = "isolation", "aes"
SUITE = Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY


def _envelope() -> Envelope:
    return Envelope(RawAesKeyring(NS, NAME, KEY), frame_length=64)


# -- defect 1: a context handed to one caller cannot change another's messages ------------------------


def _attempt_mutations(context: object) -> None:
    """Every way the old dict subclass could be changed in place; each must fail or rebind only."""
    attempts = [
        lambda c: c.__setitem__("tenant", "evil"),
        lambda c: c.update({"tenant": "evil"}),
        lambda c: c.pop("tenant"),
        lambda c: c.clear(),
        lambda c: dict.__setitem__(c, "tenant", "evil"),
        lambda c: dict.update(c, {"tenant": "evil"}),
        lambda c: dict.__ior__(c, {"tenant": "evil"}),
        lambda c: dict.clear(c),
        lambda c: object.__setattr__(c, "_pairs", {"tenant": "evil"}),
        lambda c: object.__setattr__(c, "_serialized", b"evil"),
        lambda c: setattr(c, "serialized", b"evil"),
        lambda c: vars(c).update(x=1),
    ]
    for attempt in attempts:
        with contextlib.suppress(TypeError, AttributeError):
            attempt(context)
    alias = context
    alias |= {"tenant": "evil"}  # type: ignore[operator]
    assert alias is not context


def test_decrypt_result_context_cannot_change_other_callers_messages() -> None:
    envelope = _envelope()
    message = envelope.encrypt(b"first caller", {"tenant": "acme"})
    result = envelope.decrypt_with_header(message, {"tenant": "acme"})
    context = result.encryption_context
    _attempt_mutations(context)
    _attempt_mutations(result.header.encryption_context)
    assert dict(context) == {"tenant": "acme"}
    assert context.serialize() == serialize_context({"tenant": "acme"})
    assert result.header.encryption_context == {"tenant": "acme"}
    # Any other code in the process, with its own equal context, is unaffected.
    other = _envelope()
    again = other.encrypt(b"second caller", {"tenant": "acme"})
    assert other.decrypt(again, {"tenant": "acme"}) == b"second caller"
    assert other.decrypt_with_header(again).encryption_context == {"tenant": "acme"}
    assert other.decrypt(message, {"tenant": "acme"}) == b"first caller"
    with pytest.raises(errors.ContextMismatchError):
        other.decrypt(again, {"tenant": "evil"})


def test_materials_contexts_are_immutable_too() -> None:
    cmm = DefaultMaterials(RawAesKeyring(NS, NAME, KEY))
    request = EncryptionRequest({"tenant": "acme"}, CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT, SUITE)
    materials = cmm.get_encryption_materials(request)
    assert type(request.encryption_context) is EncryptionContext
    assert type(materials.encryption_context) is EncryptionContext
    _attempt_mutations(materials.encryption_context)
    assert materials.encryption_context == {"tenant": "acme"}
    edk = materials.encrypted_data_keys[0]
    for attempt in (
        lambda: object.__setattr__(edk, "ciphertext", b"evil"),
        lambda: setattr(edk, "ciphertext", b"evil"),
        lambda: vars(edk),
    ):
        with pytest.raises((TypeError, AttributeError)):
            attempt()
    before = (edk.provider_id, edk.provider_info, edk.ciphertext)
    edk.__init__("evil", b"", b"")  # type: ignore[misc]
    assert (edk.provider_id, edk.provider_info, edk.ciphertext) == before


def test_encryption_context_value_semantics() -> None:
    context = EncryptionContext({"b": "2", "a": "1"})
    assert context == {"a": "1", "b": "2"} and context == {"a": "1", "b": "2"}
    assert context == EncryptionContext([("a", "1"), ("b", "2")])
    assert hash(context) == hash(EncryptionContext({"a": "1", "b": "2"}))
    assert context != {"a": "1"} and context != EncryptionContext({"a": "1", "b": "3"})
    assert len(context) == 2 and "a" in context and context.get("z") is None and context["b"] == "2"
    assert sorted(context.items()) == [("a", "1"), ("b", "2")]
    merged = context | {"c": "3"}
    assert type(merged) is EncryptionContext and merged == {"a": "1", "b": "2", "c": "3"}
    assert context == {"a": "1", "b": "2"}
    assert type({"c": "3"} | context) is EncryptionContext
    assert pickle.loads(pickle.dumps(context)) == context
    assert copy.copy(context) is context and copy.deepcopy(context) is context
    assert context.serialize() == b"\x00\x02\x00\x01a\x00\x011\x00\x01b\x00\x012"
    assert EncryptionContext.parse(context.serialize()) == context
    assert "EncryptionContext" in repr(context)
    with pytest.raises(TypeError):

        class Sub(EncryptionContext):  # type: ignore[misc]
            pass

    with pytest.raises(errors.MalformedInputError):
        EncryptionContext({"a": 1})  # type: ignore[dict-item]
    with pytest.raises(errors.MalformedInputError):
        EncryptionContext("ab")  # type: ignore[arg-type]
    with pytest.raises(errors.MalformedInputError):
        EncryptionContext({"a": "x" * 65536})
    with pytest.raises(errors.MalformedInputError):
        EncryptedDataKey(5, b"", b"")  # type: ignore[arg-type]


def test_str_subclasses_are_copied_to_plain_str() -> None:
    class Sneaky(str):
        def __hash__(self) -> int:
            return 0

    context = EncryptionContext({Sneaky("k"): Sneaky("v")})
    key, value = next(iter(context.items()))
    assert type(key) is str and type(value) is str


# -- defect 2: rejected unauthenticated headers leave no memory held ---------------------------------


def _big_context_message(envelope: Envelope) -> tuple[bytes, int]:
    """A real message whose context value is ~64 KB, and the offset of that value in it."""
    value = "v" * 65000
    message = envelope.encrypt(b"x", {"k": value})
    offset = message.index(b"v" * 64)
    return message, offset


@pytest.mark.parametrize("stream", [False, True], ids=["one-shot", "stream"])
def test_rejected_headers_leave_no_memory_held(stream: bool) -> None:
    writer = Envelope(RawAesKeyring(NS, "someone-else", KEY))
    reader = _envelope()
    message, offset = _big_context_message(writer)
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        for i in range(400):
            # 400 distinct contexts: each header differs (unauthenticated bytes under our control).
            tampered = message[:offset] + i.to_bytes(4, "big").hex().encode() + message[offset + 8 :]
            with pytest.raises(errors.NoUsableKeyError):
                if stream:
                    import io

                    reader.decrypt_stream(io.BytesIO(tampered), io.BytesIO())
                else:
                    reader.decrypt(tampered)
            del tampered
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert held < 32 * 1024 * 1024, f"{held / 2**20:.1f} MiB still held after 400 rejected headers"


# -- defect 5: every message written serializes its context canonically -----------------------------


def _out_of_order_message(plaintext: bytes, context: dict[str, str]) -> bytes:
    """A valid 0x0478 message whose header stores the context pairs in *reverse* canonical order.

    Built by hand from ``data-format/message-header.md``: the raw AES EDK binds the canonical
    serialization (what every keyring binds), the header tag covers the header bytes as stored.
    """
    materials = DefaultMaterials(RawAesKeyring(NS, NAME, KEY)).get_encryption_materials(
        EncryptionRequest(context, CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT, SUITE)
    )
    data_key = materials.plaintext_data_key
    assert data_key is not None
    pairs = sorted((k.encode(), v.encode()) for k, v in context.items())
    pairs.reverse()
    aad = len(pairs).to_bytes(2, "big") + b"".join(
        len(k).to_bytes(2, "big") + k + len(v).to_bytes(2, "big") + v for k, v in pairs
    )
    assert aad != serialize_context(context)
    edks = len(materials.encrypted_data_keys).to_bytes(2, "big")
    for edk in materials.encrypted_data_keys:
        for field in (edk.provider_id.encode(), edk.provider_info, edk.ciphertext):
            edks += len(field).to_bytes(2, "big") + field
    message_id = os.urandom(32)
    key, commitment = derive_message_keys(SUITE.info, data_key, message_id)
    frame_length = 64
    body = b"\x02" + SUITE.id_bytes + message_id + len(aad).to_bytes(2, "big") + aad + edks
    body += b"\x02" + frame_length.to_bytes(4, "big") + commitment
    aead = AesGcm(key)
    header = body + aead.encrypt(bytes(12), b"", body)
    parts = [header]
    body_mod.encrypt_framed_parts(aead, message_id, memoryview(plaintext), frame_length, parts)
    return b"".join(parts)


def _stored_context_bytes(message: bytes) -> bytes:
    length = int.from_bytes(message[35:37], "big")
    return message[37 : 37 + length]


def test_out_of_order_context_is_read_and_never_written_again() -> None:
    context = {"tenant": "acme", "a-first": "1", "zone": "z", "\u00e9t\u00e9": "summer", "Z": "upper"}
    plaintext = b"pairs stored out of order by another writer" * 3
    crafted = _out_of_order_message(plaintext, context)
    esdk_key = esdk_aes_key(NS, NAME, KEY)
    policy = CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    # The AWS Encryption SDK reads such a message: the spec's reader does not enforce the order.
    assert esdk_decrypt(policy, crafted, key_provider=esdk_key)[0] == plaintext

    envelope = _envelope()
    result = envelope.decrypt_with_header(crafted, {"tenant": "acme"})
    assert result.plaintext == plaintext
    assert result.encryption_context == context
    assert result.header.body[37:39] == _stored_context_bytes(crafted)[:2]
    # The parsed context serializes canonically, not as the header stored it.
    assert result.encryption_context.serialize() == serialize_context(context)
    assert parse_context(_stored_context_bytes(crafted)).serialize() == serialize_context(context)

    # Re-encrypting with the returned context writes canonical bytes the ESDK accepts.
    again = envelope.encrypt(b"copied forward", result.encryption_context)
    assert _stored_context_bytes(again) == serialize_context(context)
    assert esdk_decrypt(policy, again, key_provider=esdk_key)[0] == b"copied forward"
    streamed = envelope.encrypt(b"header too", result.header.encryption_context)
    assert esdk_decrypt(policy, streamed, key_provider=esdk_key)[0] == b"header too"


def test_a_tampered_order_still_fails_authentication() -> None:
    """Reordering the pairs of a canonical message changes the authenticated header bytes."""
    envelope = _envelope()
    message = envelope.encrypt(b"x", {"a": "1", "b": "2"})
    stored = _stored_context_bytes(message)
    swapped = stored[:2] + stored[2 + 6 :] + stored[2 : 2 + 6]
    tampered = message[:37] + swapped + message[37 + len(stored) :]
    with pytest.raises(errors.AuthenticationError):
        envelope.decrypt(tampered)


def test_branch_key_versions_are_read_without_a_cache() -> None:
    """The version a hierarchical EDK names is unauthenticated input: formatted, never cached."""
    import uuid

    from kmsenvelope.keyrings.hierarchical_rules import _version_string

    assert not hasattr(_version_string, "cache_info")
    for _ in range(50):
        raw = os.urandom(16)
        assert _version_string(raw) == str(uuid.UUID(bytes=raw))
    with pytest.raises(errors.MalformedInputError):
        _version_string(b"short")


def test_canonical_paths_are_not_cached() -> None:
    """Attribute names of items being decrypted are unauthenticated: no module cache keeps them."""
    from kmsenvelope.structured.context import canonical_path

    assert not hasattr(canonical_path, "cache_info")
    assert canonical_path("t", "a") == b"t" + (1).to_bytes(8, "big") + b"$" + (1).to_bytes(8, "big") + b"a"
