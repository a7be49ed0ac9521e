"""Decrypt a flat record of terminals (``structured-encryption/decrypt-structure.md``).

Nothing is decrypted before the header commitment, the recipient tag and (for the ECDSA flavor) the
signature have all verified over every signed attribute.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..errors import MalformedInputError, PolicyError
from ..materials.cmm import DefaultMaterials
from ..materials.materials import DecryptionMaterials, DecryptionRequest
from ..materials.protocols import MaterialsManager
from ..suites import CommitmentPolicy, DbeSuite
from .context import serialize_context, v2_context
from .crypt import decrypt_fields
from .footer import canonical_hash, verify_footer
from .header import Header, RecordKeys, parse_header
from .layout import DecryptLayout, decrypt_layout, legend_plan_size
from .model import (
    BINARY_TYPE,
    FOOTER_FIELD,
    HEADER_FIELD,
    LEGEND_ACTIONS,
    LEGEND_CONTEXT,
    LEGEND_ENCRYPT,
    ParsedHeader,
    Terminal,
)

__all__ = ["DecryptedRecord", "decrypt_record", "decrypt_structure"]


class DecryptedRecord:
    """``record`` holds the decrypted attributes (all of them for :func:`decrypt_structure`).

    ``header`` is the verified header; it is assembled on first use, since most callers never look.
    """

    __slots__ = ("_header", "_verified", "record")

    def __init__(
        self,
        record: dict[str, Terminal],
        verified: ParsedHeader | tuple[Header, tuple[tuple[bytes, str], ...], Mapping[str, str]],
    ) -> None:
        self.record = record
        if isinstance(verified, ParsedHeader):
            self._header: ParsedHeader | None = verified
        else:
            self._header = None
            self._verified = verified

    @property
    def header(self) -> ParsedHeader:
        if self._header is None:
            header, fields, encryption_context = self._verified
            legend = header.legend
            self._header = ParsedHeader(
                version=header.version,
                suite=header.suite,
                actions={name: LEGEND_ACTIONS[byte] for (_, name), byte in zip(fields, legend, strict=True)},
                encrypted_data_keys=header.encrypted_data_keys,
                stored_context=header.stored_context,
                encryption_context=encryption_context,
            )
        return self._header

    def __repr__(self) -> str:
        return f"DecryptedRecord(attributes={sorted(self.record)!r})"


def decrypt_structure(
    table_name: str,
    record: Mapping[str, Terminal],
    signed: Mapping[str, bool],
    materials: MaterialsManager,
    *,
    encryption_context: Mapping[str, str] | None = None,
) -> DecryptedRecord:
    """Verify and decrypt ``record``.

    ``signed`` names every attribute except the header and footer and says whether it is expected to be
    signed (the authenticate schema). The result holds every attribute but the header and footer.
    """
    expected = set(record) - {HEADER_FIELD, FOOTER_FIELD}
    if set(signed) != expected:
        raise MalformedInputError("the authenticate schema must name exactly the record's attributes")
    header, footer = _header_and_footer(record)
    signed_fields = {name: record[name] for name, sign in signed.items() if sign}
    result = decrypt_record(
        table_name, signed_fields, header, footer, materials, dict(encryption_context or {}), ()
    )
    out = {name: record[name] for name in expected}
    out.update(result.record)
    return DecryptedRecord(out, result.header)


def _header_and_footer(record: Mapping[str, Terminal]) -> tuple[bytes, bytes]:
    try:
        header, footer = record[HEADER_FIELD], record[FOOTER_FIELD]
    except KeyError:
        raise MalformedInputError("record has no header or no footer") from None
    if header.type_id != BINARY_TYPE or footer.type_id != BINARY_TYPE:
        raise MalformedInputError("record header and footer must be binary")
    return header.value, footer.value


def decrypt_record(
    table_name: str,
    signed: Mapping[str, Terminal],
    header_value: bytes,
    footer_value: bytes,
    manager: MaterialsManager,
    context: Mapping[str, str],
    required_keys: Iterable[str],
    layout: DecryptLayout | None = None,
) -> DecryptedRecord:
    """The decrypt operation behind :func:`decrypt_structure` and the DynamoDB item encryptor.

    ``signed`` holds exactly the attributes in signature scope; ``context`` (taken over, not copied) is
    the caller's reproduced encryption context, whose keys listed in ``required_keys`` must be bound to
    the record without being stored in it. ``layout``, if given, must be
    ``decrypt_layout(table_name, signed)`` (callers cache it per set of attribute names). Returns only the
    decrypted attributes.
    """
    if not signed:
        raise MalformedInputError("at least one attribute must be signed")
    header = parse_header(header_value)
    if layout is None:
        layout = decrypt_layout(table_name, signed)
    fields = layout.fields
    legend = header.legend
    if len(legend) != len(fields):
        raise MalformedInputError(
            "the record's signed attributes do not match its header "
            f"({len(legend)} signed when written, {len(fields)} in signature scope now)"
        )
    plan = layout.plans.get(legend)
    new_plan = plan is None
    if plan is None:
        plan = _legend_plan(layout, legend)
    hashed_layout, encrypted, context_names = plan

    required = required_keys if type(required_keys) is frozenset else frozenset(required_keys)
    if header.version == 2:
        extra = v2_context({name: signed[name] for name in context_names})
        if not extra.keys().isdisjoint(context):
            raise PolicyError("version 2 record context collides with the caller's encryption context")
        context = {**context, **extra}
        required |= extra.keys()

    suite = header.suite
    direct = (
        manager.record_key_for_decrypt(
            suite, header.encrypted_data_keys, header.stored_context, _POLICY, context
        )
        if type(manager) is DefaultMaterials
        else None
    )
    if direct is not None:
        # The full context is the stored pairs merged with the caller's, all of which it keeps.
        final_context, _, data_key, signing_key = direct
        verification_key = None
    else:
        check = RecordCheck(header, context, required, hashed_layout, signed, footer_value)
        materials = _materials(manager, header, context, required, check)
        if materials.plaintext_data_key is None or materials.symmetric_signing_key is None:
            raise PolicyError(
                "the materials manager returned no plaintext data key or no symmetric signing key"
            )
        final_context = materials.encryption_context
        data_key, signing_key = materials.plaintext_data_key, materials.symmetric_signing_key
        verification_key = materials.verification_key if suite.signing else None

    keys = RecordKeys(suite, data_key, header.message_id)
    keys.verify(header)
    record_hash = canonical_hash(header.raw, serialize_context(final_context), hashed_layout, signed)
    verify_footer(footer_value, record_hash, len(header.encrypted_data_keys), signing_key, verification_key)
    if new_plan:
        # Only now: a legend kept before the footer verified would let unauthenticated records fill it.
        layout.plans.put(legend, plan, legend_plan_size(len(fields)))
    plaintexts = decrypt_fields(keys.field_root_key, encrypted, signed)
    return DecryptedRecord(plaintexts, (header, fields, final_context))


def _materials(
    manager: MaterialsManager,
    header: Header,
    context: Mapping[str, str],
    required: frozenset[str],
    authenticate: RecordCheck | None = None,
) -> DecryptionMaterials:
    """Materials from any manager, checked (the general path).

    ``authenticate`` goes into the request so that a caching manager caches the materials only once
    they have authenticated this record; the caller still verifies the record itself.
    """
    if type(manager) is DefaultMaterials:
        # The same call without the request object, which DefaultMaterials does not need.
        materials = manager.decryption_materials(
            header.suite, header.encrypted_data_keys, header.stored_context, _POLICY, context
        )
    else:
        materials = manager.decrypt_materials(
            DecryptionRequest(
                header.suite,
                header.encrypted_data_keys,
                header.stored_context,
                _POLICY,
                context,
                authenticate,
            )
        )
    _check_materials(materials, header, context, required)
    return materials


class RecordCheck:
    """The ``authenticate`` check of a record's decrypt request: commitment, recipient tag, signature.

    Raises unless the materials open this record, exactly as decrypt verifies it before decrypting.
    """

    __slots__ = ("_context", "_footer", "_header", "_layout", "_required", "_signed")

    def __init__(
        self,
        header: Header,
        context: Mapping[str, str],
        required: frozenset[str],
        hashed_layout: tuple[tuple[bytes, str, bool], ...],
        signed: Mapping[str, Terminal],
        footer_value: bytes,
    ) -> None:
        self._header, self._context, self._required = header, context, required
        self._layout, self._signed, self._footer = hashed_layout, signed, footer_value

    def __call__(self, materials: DecryptionMaterials) -> None:
        header = self._header
        _check_materials(materials, header, self._context, self._required)
        data_key, signing_key = materials.plaintext_data_key, materials.symmetric_signing_key
        if data_key is None or signing_key is None:  # _check_materials refused this already
            raise PolicyError("the materials manager returned no data key or no symmetric signing key")
        RecordKeys(header.suite, data_key, header.message_id).verify(header)
        record_hash = canonical_hash(
            header.raw, serialize_context(materials.encryption_context), self._layout, self._signed
        )
        verification_key = materials.verification_key if header.suite.signing else None
        verify_footer(
            self._footer, record_hash, len(header.encrypted_data_keys), signing_key, verification_key
        )


_POLICY = CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
_Plan = tuple[tuple[tuple[bytes, str, bool], ...], tuple[tuple[bytes, str], ...], tuple[str, ...]]


def _legend_plan(layout: DecryptLayout, legend: bytes) -> _Plan:
    """(path, name, encrypted?) of every signed field, the encrypted (path, name), the context names.

    Depends only on public values that repeat from item to item, so the decryptor keeps it with the
    layout once a record with this legend has authenticated.
    """
    pairs = tuple(zip(layout.fields, legend, strict=True))
    return (
        tuple((path, name, byte == LEGEND_ENCRYPT) for (path, name), byte in pairs),
        tuple(field for field, byte in pairs if byte == LEGEND_ENCRYPT),
        tuple(name for (_, name), byte in pairs if byte == LEGEND_CONTEXT),
    )


def _check_materials(
    materials: DecryptionMaterials, header: Header, context: Mapping[str, str], required: frozenset[str]
) -> None:
    suite = materials.suite
    if not isinstance(suite, DbeSuite) or suite is not header.suite:
        raise PolicyError("the materials manager changed the record's algorithm suite")
    if materials.plaintext_data_key is None or materials.symmetric_signing_key is None:
        raise PolicyError("the materials manager returned no data key or no symmetric signing key")
    if suite.signing and materials.verification_key is None:
        raise PolicyError("the materials manager returned no verification key for a signed record")
    final = materials.encryption_context
    if final is not context:
        for key, value in context.items():
            # The reproduced pairs are what binds the record to its table, key and context attributes.
            if final.get(key) != value:
                raise PolicyError(
                    "the materials manager dropped or changed a reproduced encryption context pair"
                )
    if not required <= final.keys():
        raise PolicyError("required encryption context keys are missing from the decryption materials")
