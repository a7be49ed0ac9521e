"""encrypt_structure / decrypt_structure end to end: suites, contexts, recipients, tampering."""

from __future__ import annotations

import hmac
import os
import uuid

import pytest

from kmsenvelope import MultiKeyring, RawAesKeyring
from kmsenvelope.aws.key_store import StaticBranchKeyStore
from kmsenvelope.errors import (
    AuthenticationError,
    KmsEnvelopeError,
    MalformedInputError,
    NoUsableKeyError,
    PolicyError,
)
from kmsenvelope.keyrings.hierarchical import HierarchicalKeyring
from kmsenvelope.materials.cmm import DefaultMaterials
from kmsenvelope.materials.materials import DecryptionRequest
from kmsenvelope.structured import (
    FOOTER_FIELD,
    HEADER_FIELD,
    Action,
    Terminal,
    decrypt_structure,
    encrypt_structure,
    parse_header,
)
from kmsenvelope.structured.context import canonical_path, serialize_context
from kmsenvelope.structured.footer import canonical_hash
from kmsenvelope.suites import CommitmentPolicy, DbeSuite

HMAC_ONLY = DbeSuite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_SYMSIG_HMAC_SHA384
SIGNING = DbeSuite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384_SYMSIG_HMAC_SHA384
TABLE = "records"

RECORD = {
    "id": Terminal(b"\x00\x01", b"record-1"),
    "secret": Terminal(b"\x00\x01", b"top secret"),
    "blob": Terminal(b"\xff\xff", os.urandom(40)),
    "count": Terminal(b"\x00\x02", b"42"),
    "note": Terminal(b"\x00\x01", b"not signed"),
}
ACTIONS = {
    "id": Action.SIGN_ONLY,
    "secret": Action.ENCRYPT_AND_SIGN,
    "blob": Action.ENCRYPT_AND_SIGN,
    "count": Action.SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT,
    "note": Action.DO_NOTHING,
}
SIGNED = {name: action is not Action.DO_NOTHING for name, action in ACTIONS.items()}


def _hierarchy(branch_key_id: str = "bk") -> HierarchicalKeyring:
    store = StaticBranchKeyStore(branch_key_id, str(uuid.uuid4()), os.urandom(32), os.urandom(32))
    return HierarchicalKeyring(store, branch_key_id=branch_key_id)


KEYRING = _hierarchy()
MANAGER = DefaultMaterials(KEYRING)


@pytest.mark.parametrize("suite", list(DbeSuite), ids=lambda s: s.name)
def test_round_trip(suite: DbeSuite) -> None:
    result = encrypt_structure(TABLE, RECORD, ACTIONS, MANAGER, suite=suite, encryption_context={"app": "x"})
    stored = result.record
    assert set(stored) == set(RECORD) | {HEADER_FIELD, FOOTER_FIELD}
    for name in ("secret", "blob"):
        assert stored[name].type_id == b"\xff\xff"
        assert stored[name].value[:2] == RECORD[name].type_id
        assert RECORD[name].value not in stored[name].value
    for name in ("id", "count", "note"):
        assert stored[name] == RECORD[name]
    header = parse_header(stored[HEADER_FIELD].value)
    assert header.version == 2 and header.suite is suite
    # The version 2 context pairs are required keys: bound, not stored.
    assert "aws-crypto-attr.count" not in header.stored_context
    assert header.stored_context["app"] == "x"
    assert ("aws-crypto-public-key" in header.stored_context) is suite.signing
    assert result.header.encryption_context["aws-crypto-attr.count"] == "42"
    assert result.header.encryption_context["aws-crypto-legend"] == "N"
    assert result.header.actions == {k: v for k, v in ACTIONS.items() if v is not Action.DO_NOTHING}

    decrypted = decrypt_structure(TABLE, stored, SIGNED, MANAGER)
    assert decrypted.record == RECORD
    assert decrypted.header.actions == result.header.actions
    assert decrypted.header.suite is suite
    assert dict(decrypted.header.encryption_context) == dict(result.header.encryption_context)


def test_version_1_without_context_attributes() -> None:
    actions = {**ACTIONS, "count": Action.SIGN_ONLY}
    stored = encrypt_structure(TABLE, RECORD, actions, MANAGER, suite=HMAC_ONLY).record
    assert parse_header(stored[HEADER_FIELD].value).version == 1
    assert parse_header(stored[HEADER_FIELD].value).stored_context == {}
    assert decrypt_structure(TABLE, stored, SIGNED, MANAGER).record == RECORD


def test_input_validation() -> None:
    with pytest.raises(PolicyError):
        encrypt_structure(TABLE, RECORD, ACTIONS, MANAGER, encryption_context={"aws-crypto-x": "y"})
    with pytest.raises(MalformedInputError):
        encrypt_structure(TABLE, RECORD, {**ACTIONS, "extra": Action.SIGN_ONLY}, MANAGER)
    with pytest.raises(MalformedInputError):
        encrypt_structure(TABLE, {"only": RECORD["id"]}, {"only": Action.DO_NOTHING}, MANAGER)
    with pytest.raises(MalformedInputError):
        encrypt_structure(
            TABLE,
            {**RECORD, HEADER_FIELD: RECORD["id"]},
            {**ACTIONS, HEADER_FIELD: Action.DO_NOTHING},
            MANAGER,
        )
    stored = encrypt_structure(TABLE, RECORD, ACTIONS, MANAGER).record
    with pytest.raises(MalformedInputError):
        decrypt_structure(TABLE, stored, {**SIGNED, "extra": True}, MANAGER)
    with pytest.raises(MalformedInputError):
        decrypt_structure(TABLE, {k: v for k, v in stored.items() if k != FOOTER_FIELD}, SIGNED, MANAGER)
    with pytest.raises(MalformedInputError):
        decrypt_structure(TABLE, {**stored, FOOTER_FIELD: Terminal(b"\x00\x01", b"x")}, SIGNED, MANAGER)
    # The caller's context must not collide with the version 2 pairs.
    with pytest.raises(PolicyError):
        decrypt_structure(TABLE, stored, SIGNED, MANAGER, encryption_context={"aws-crypto-legend": "N"})


def test_other_table_name_is_refused() -> None:
    stored = encrypt_structure(TABLE, RECORD, ACTIONS, MANAGER).record
    with pytest.raises(AuthenticationError):
        decrypt_structure("other-table", stored, SIGNED, MANAGER)


def test_every_bit_of_header_footer_and_signed_values_is_covered() -> None:
    stored = encrypt_structure(TABLE, RECORD, ACTIONS, MANAGER, suite=SIGNING).record
    for name, terminal in stored.items():
        if name == "note":
            continue
        for position in range(0, len(terminal.value), 7):
            flipped = bytearray(terminal.value)
            flipped[position] ^= 0x80
            tampered = {**stored, name: Terminal(terminal.type_id, bytes(flipped))}
            with pytest.raises(KmsEnvelopeError):
                decrypt_structure(TABLE, tampered, SIGNED, MANAGER)
        if name not in (HEADER_FIELD, FOOTER_FIELD):
            retyped = {**stored, name: Terminal(b"\x00\x05", terminal.value)}
            with pytest.raises(KmsEnvelopeError):
                decrypt_structure(TABLE, retyped, SIGNED, MANAGER)
    # The unsigned attribute may change freely.
    changed = {**stored, "note": Terminal(b"\x00\x01", b"edited")}
    assert decrypt_structure(TABLE, changed, SIGNED, MANAGER).record["note"].value == b"edited"


def test_signature_scope_must_match_the_legend() -> None:
    stored = encrypt_structure(TABLE, RECORD, ACTIONS, MANAGER).record
    with pytest.raises(MalformedInputError):
        decrypt_structure(TABLE, stored, {**SIGNED, "note": True}, MANAGER)
    with pytest.raises(MalformedInputError):
        decrypt_structure(TABLE, stored, {**SIGNED, "id": False}, MANAGER)


def test_each_recipient_verifies_its_own_tag() -> None:
    """Two recipients; the second can decrypt but cannot forge a record the first would accept."""
    first = _hierarchy("first")
    second = RawAesKeyring("ns", "second", os.urandom(32))
    writer = DefaultMaterials(MultiKeyring(generator=first, children=[second]))
    stored = encrypt_structure(TABLE, RECORD, ACTIONS, writer, suite=HMAC_ONLY).record
    header = parse_header(stored[HEADER_FIELD].value)
    assert len(header.encrypted_data_keys) == 2
    assert len(stored[FOOTER_FIELD].value) == 2 * 48
    for recipient in (first, second):
        assert decrypt_structure(TABLE, stored, SIGNED, DefaultMaterials(recipient)).record == RECORD

    # The second recipient edits a signed value and recomputes the footer with everything it has.
    forged = {**stored, "id": Terminal(b"\x00\x01", b"record-2")}
    context = {"aws-crypto-attr.count": "42", "aws-crypto-legend": "N"}
    materials = DefaultMaterials(second).decrypt_materials(
        DecryptionRequest(
            suite=header.suite,
            encrypted_data_keys=header.encrypted_data_keys,
            encryption_context=header.stored_context,
            commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
            reproduced_context=context,
        )
    )
    assert materials.symmetric_signing_key is not None
    signed_names = sorted((name for name in SIGNED if SIGNED[name]), key=lambda n: canonical_path(TABLE, n))
    legend = dict(zip(signed_names, header.legend, strict=True))
    fields = [(canonical_path(TABLE, name), name, legend[name] == ord("e")) for name in signed_names]
    record_hash = canonical_hash(header.raw, serialize_context(materials.encryption_context), fields, forged)
    own_tag = hmac.digest(materials.symmetric_signing_key, record_hash, "sha384")
    old_footer = stored[FOOTER_FIELD].value
    forged[FOOTER_FIELD] = Terminal(b"\xff\xff", old_footer[:48] + own_tag)
    assert (
        decrypt_structure(TABLE, forged, SIGNED, DefaultMaterials(second)).record["id"].value == b"record-2"
    )
    with pytest.raises(AuthenticationError):
        decrypt_structure(TABLE, forged, SIGNED, DefaultMaterials(first))


def test_wrong_keyring_cannot_decrypt() -> None:
    stored = encrypt_structure(TABLE, RECORD, ACTIONS, MANAGER).record
    with pytest.raises(NoUsableKeyError):
        decrypt_structure(TABLE, stored, SIGNED, DefaultMaterials(_hierarchy("bk")))


def test_footer_of_another_record_is_refused() -> None:
    one = encrypt_structure(TABLE, RECORD, ACTIONS, MANAGER).record
    two = encrypt_structure(TABLE, RECORD, ACTIONS, MANAGER).record
    with pytest.raises(AuthenticationError):
        decrypt_structure(TABLE, {**one, FOOTER_FIELD: two[FOOTER_FIELD]}, SIGNED, MANAGER)
    with pytest.raises(AuthenticationError):
        decrypt_structure(TABLE, {**one, "secret": two["secret"]}, SIGNED, MANAGER)
