"""Encrypt a flat record of terminals (``structured-encryption/encrypt-structure.md``).

Steps: sort the signed attributes by canonical path; build the encryption context (adding the version 2
pairs for SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT attributes, which become required keys); get materials
from the materials manager; derive the record keys; write the header; encrypt the ENCRYPT_AND_SIGN
attributes; hash the record and write the footer.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, NamedTuple

from ..errors import MalformedInputError, PolicyError
from ..materials.cmm import DefaultMaterials
from ..materials.materials import (
    RESERVED_CONTEXT_PREFIX,
    EncryptedDataKey,
    EncryptionMaterials,
    EncryptionRequest,
)
from ..materials.protocols import MaterialsManager
from ..suites import CommitmentPolicy, DbeSuite
from .context import serialize_context, v2_context
from .crypt import encrypt_fields
from .footer import make_footer
from .header import MESSAGE_ID_LENGTH, RecordKeys, serialize_header, serialize_partial_header
from .layout import EncryptLayout, encrypt_layout
from .model import BINARY_TYPE, FOOTER_FIELD, HEADER_FIELD, Action, ParsedHeader, Terminal

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey

__all__ = ["EncryptedRecord", "SealedRecord", "Written", "encrypt_record", "encrypt_structure", "seal_record"]

_POLICY = CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT

DEFAULT_SUITE = DbeSuite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384_SYMSIG_HMAC_SHA384
"""The structured-encryption default when no suite is given (``encrypt-structure.md``)."""


class Written(NamedTuple):
    """What a record's header says, kept as plain values until someone asks for the ParsedHeader."""

    version: int
    layout: EncryptLayout
    suite: DbeSuite
    encrypted_data_keys: tuple[EncryptedDataKey, ...]
    stored_context: Mapping[str, str]
    encryption_context: Mapping[str, str]

    def parsed(self) -> ParsedHeader:
        return ParsedHeader(
            version=self.version,
            suite=self.suite,
            actions=self.layout.actions,
            encrypted_data_keys=self.encrypted_data_keys,
            stored_context=self.stored_context,
            encryption_context=self.encryption_context,
        )


class SealedRecord(NamedTuple):
    """The parts :func:`seal_record` produces: the stored form of each ENCRYPT_AND_SIGN attribute, the
    ``aws_dbe_head`` and ``aws_dbe_foot`` values, and what the header says."""

    encrypted: dict[str, Terminal]
    header: bytes
    footer: bytes
    written: Written


class EncryptedRecord:
    """The encrypted record: every input attribute (encrypted ones replaced) plus header and footer.

    ``header`` says what was written; it is assembled on first use, since most callers never look.
    """

    __slots__ = ("_header", "_written", "record")

    def __init__(self, record: dict[str, Terminal], written: Written) -> None:
        self.record = record
        self._written = written
        self._header: ParsedHeader | None = None

    @property
    def header(self) -> ParsedHeader:
        if self._header is None:
            self._header = self._written.parsed()
        return self._header

    def __repr__(self) -> str:
        return f"EncryptedRecord(attributes={sorted(self.record)!r})"


def encrypt_structure(
    table_name: str,
    record: Mapping[str, Terminal],
    actions: Mapping[str, Action],
    materials: MaterialsManager,
    *,
    suite: DbeSuite | None = None,
    encryption_context: Mapping[str, str] | None = None,
) -> EncryptedRecord:
    """Encrypt and sign ``record`` under ``actions`` (one action per attribute, no more, no fewer).

    ``encryption_context`` is stored in the header and may not use the reserved ``aws-crypto-`` prefix.
    """
    context = dict(encryption_context or {})
    if any(key.startswith(RESERVED_CONTEXT_PREFIX) for key in context):
        raise PolicyError(f"encryption context keys starting with {RESERVED_CONTEXT_PREFIX!r} are reserved")
    if set(record) != set(actions):
        raise MalformedInputError("the crypto actions must name exactly the attributes of the record")
    return encrypt_record(table_name, record, actions, materials, suite or DEFAULT_SUITE, context, ())


def encrypt_record(
    table_name: str,
    record: Mapping[str, Terminal],
    actions: Mapping[str, Action],
    manager: MaterialsManager,
    suite: DbeSuite,
    context: Mapping[str, str],
    required_keys: Iterable[str],
    layout: EncryptLayout | None = None,
) -> EncryptedRecord:
    """The encrypt operation behind :func:`encrypt_structure` and the SQL row encryptor.

    ``actions`` must give an action for every attribute of ``record``; ``layout``, if given, must be
    ``encrypt_layout(table_name, actions)`` for exactly those attributes (callers cache it per set of
    attribute names). ``context`` is taken over (not copied); pairs named in ``required_keys`` are
    authenticated but left out of the header, and must be supplied again to decrypt.
    """
    if layout is None:
        layout = encrypt_layout(table_name, {name: actions[name] for name in record})
    sealed = seal_record(record, manager, suite, context, required_keys, layout)
    out = dict(record)
    out.update(sealed.encrypted)
    out[HEADER_FIELD] = Terminal(BINARY_TYPE, sealed.header)
    out[FOOTER_FIELD] = Terminal(BINARY_TYPE, sealed.footer)
    return EncryptedRecord(out, sealed.written)


def seal_record(
    record: Mapping[str, Terminal],
    manager: MaterialsManager,
    suite: DbeSuite,
    context: Mapping[str, str],
    required_keys: Iterable[str],
    layout: EncryptLayout,
) -> SealedRecord:
    """:func:`encrypt_record` returning only what encryption adds (the DynamoDB item encryptor's entry).

    ``layout`` must be the :func:`encrypt_layout` of exactly the attributes of ``record``.
    """
    if not isinstance(suite, DbeSuite):
        raise PolicyError("structured encryption needs a DB-ESDK algorithm suite")
    if HEADER_FIELD in record or FOOTER_FIELD in record:
        raise MalformedInputError(f"attribute names {HEADER_FIELD!r} and {FOOTER_FIELD!r} are reserved")

    required = required_keys if type(required_keys) is frozenset else frozenset(required_keys)
    version = 1
    if layout.context_names:
        version = 2
        extra = v2_context({name: record[name] for name in layout.context_names})
        if not extra.keys().isdisjoint(context):
            raise PolicyError("version 2 record context collides with the caller's encryption context")
        context = {**context, **extra}
        required |= extra.keys()

    direct = (
        manager.record_key_for_encrypt(context, _POLICY, suite) if type(manager) is DefaultMaterials else None
    )
    edks: tuple[EncryptedDataKey, ...]
    symmetric_keys: tuple[bytes, ...]
    signing_key: EllipticCurvePrivateKey | None
    if direct is not None:
        # One EDK with its signing key, the caller's context frozen, the required keys as asked.
        full_context, data_key, edk, symmetric_key = direct
        used_suite, edks, symmetric_keys, signing_key, dropped = (
            suite,
            (edk,),
            (symmetric_key,),
            None,
            required,
        )
    else:
        materials = _materials(record, manager, suite, context, required, layout)
        if not isinstance(materials.suite, DbeSuite) or materials.plaintext_data_key is None:
            raise PolicyError("the materials manager returned no DB-ESDK suite or no plaintext data key")
        used_suite, data_key = materials.suite, materials.plaintext_data_key
        full_context, edks = materials.encryption_context, materials.encrypted_data_keys
        symmetric_keys, signing_key = materials.symmetric_signing_keys, materials.signing_key
        dropped = materials.required_context_keys

    message_id = os.urandom(MESSAGE_ID_LENGTH)
    stored = {k: v for k, v in full_context.items() if k not in dropped} if dropped else full_context
    keys = RecordKeys(used_suite, data_key, message_id)
    header = serialize_header(
        serialize_partial_header(version, used_suite, message_id, layout.legend, stored, edks), keys
    )
    encrypted: dict[str, Terminal] = {}
    record_hash = encrypt_fields(
        keys.field_root_key, layout.signed, record, encrypted, header, serialize_context(full_context)
    )
    footer = make_footer(record_hash, symmetric_keys, signing_key)
    return SealedRecord(
        encrypted, header, footer, Written(version, layout, used_suite, edks, stored, full_context)
    )


def _materials(
    record: Mapping[str, Terminal],
    manager: MaterialsManager,
    suite: DbeSuite,
    context: Mapping[str, str],
    required: frozenset[str],
    layout: EncryptLayout,
) -> EncryptionMaterials:
    """Materials from any manager, checked (the general path)."""
    if type(manager) is DefaultMaterials:
        # The same call without the request object, which DefaultMaterials does not need.
        materials = manager.encryption_materials(context, _POLICY, suite, required)
    else:
        encrypted_size = 2 * len(layout.encrypted)  # the type ids stay in plaintext
        for name in layout.encrypted:
            encrypted_size += len(record[name].value)
        materials = manager.get_encryption_materials(
            EncryptionRequest(context, _POLICY, suite, encrypted_size, required)
        )
    _check_materials(materials, required)
    return materials


def _check_materials(materials: EncryptionMaterials, required: frozenset[str]) -> None:
    """Refuse materials the format cannot carry or that dropped what we asked for."""
    suite = materials.suite
    if not isinstance(suite, DbeSuite):
        raise PolicyError("the materials manager returned a suite that is not a DB-ESDK suite")
    if materials.plaintext_data_key is None:
        raise PolicyError("the materials manager returned no data key")
    edks = materials.encrypted_data_keys
    if not 0 < len(edks) < 256:
        raise PolicyError("a record needs between 1 and 255 encrypted data keys")
    if len(materials.symmetric_signing_keys) != len(edks):
        raise PolicyError("the materials need one symmetric signing key per encrypted data key")
    if suite.signing and materials.signing_key is None:
        raise PolicyError("the materials manager returned no signing key for a signing suite")
    if not required <= materials.required_context_keys:
        raise PolicyError("the materials manager dropped required encryption context keys")
