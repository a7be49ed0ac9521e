"""Rewrap a DB-ESDK record: new encrypted data keys, nothing re-encrypted.

The record's attributes are encrypted under keys derived from the data key and the message id, which
stay. What changes (``structured-encryption/header.md``, ``footer.md``): the header's EDKs (and, when
re-signing, the stored ``aws-crypto-public-key``) and so its commitment; the footer's recipient tags,
one HMAC per EDK over the canonical hash, which covers the header; and, for the ECDSA flavor, the
signature. Every encrypted attribute stays byte-identical. Header commitment and recipient tags are
HMACs, so recomputing them reuses no nonce.

Before anything is built, the old record is verified as decrypt verifies it: commitment, recipient
tag and signature over every signed attribute. Attributes are not decrypted: each stays authenticated
by its own AES-GCM tag and by the canonical hash the new footer covers.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterable, Mapping

from ..errors import MalformedInputError, NoUsableKeyError, PolicyError
from ..keyrings.multi import as_wrapping_keyring
from ..materials.cmm import PUBLIC_KEY_CONTEXT_KEY
from ..materials.materials import EncryptionMaterials
from ..materials.protocols import Keyring, MaterialsManager
from ..primitives import ecdsa
from ..primitives.kdf import constant_time_equal, hmac_digest
from ..values import EncryptedDataKey, freeze_context
from .context import serialize_context, v2_context
from .decrypt import RecordCheck, _legend_plan, _materials
from .footer import TAG_LENGTH, canonical_hash, make_footer, verify_footer
from .header import RecordKeys, parse_header, serialize_header, serialize_partial_header
from .layout import DecryptLayout, decrypt_layout
from .model import Terminal

__all__ = ["rewrap_record"]


def rewrap_record(
    table_name: str,
    signed: Mapping[str, Terminal],
    header_value: bytes,
    footer_value: bytes,
    manager: MaterialsManager,
    context: Mapping[str, str],
    required_keys: Iterable[str],
    new: Keyring,
    *,
    keep_old: bool = False,
    resign: bool = False,
    layout: DecryptLayout | None = None,
) -> tuple[bytes, bytes]:
    """(new header value, new footer value) for a record whose data key ``new`` wraps.

    Arguments as :func:`~kmsenvelope.structured.decrypt.decrypt_record` (``context`` is taken over),
    plus the ``new`` keyring. ``keep_old=True`` keeps the old EDK that ``manager`` opened; it refuses
    records with other old EDKs, whose recipient tags cannot be recomputed without their keys.
    Signed records need ``resign=True``, which cannot be combined with ``keep_old``.
    """
    if not isinstance(new, Keyring):
        raise PolicyError("new must be a keyring (it wraps the record's existing data key)")
    if not signed:
        raise MalformedInputError("at least one attribute must be signed")
    header = parse_header(header_value)
    suite = header.suite
    if suite.signing and not resign:
        raise PolicyError(
            "this record's suite signs it with ECDSA and the signature covers the header: rewrapping "
            "must re-sign with a fresh key pair; pass resign=True (the rewrapper then signs as a writer)"
        )
    if suite.signing and keep_old:
        raise PolicyError(
            "keep_old cannot be combined with resign: re-signing replaces aws-crypto-public-key, to "
            "which the old encrypted data keys are bound through the context"
        )
    if layout is None:
        layout = decrypt_layout(table_name, signed)
    if len(header.legend) != len(layout.fields):
        raise MalformedInputError(
            "the record's signed attributes do not match its header "
            f"({len(header.legend)} signed when written, {len(layout.fields)} in signature scope now)"
        )
    hashed_layout, _, context_names = _legend_plan(layout, header.legend)
    required = frozenset(required_keys)
    if header.version == 2:
        extra = v2_context({name: signed[name] for name in context_names})
        if not extra.keys().isdisjoint(context):
            raise PolicyError("version 2 record context collides with the caller's encryption context")
        context = {**context, **extra}
        required |= extra.keys()

    # Verify the old record exactly as decrypt does, without decrypting any attribute.
    check = RecordCheck(header, context, required, hashed_layout, signed, footer_value)
    materials = _materials(manager, header, context, required, check)
    data_key, old_tag_key = materials.plaintext_data_key, materials.symmetric_signing_key
    if data_key is None or old_tag_key is None:
        raise PolicyError("the materials manager returned no data key or signing key")
    keys = RecordKeys(suite, data_key, header.message_id)
    keys.verify(header)
    old_hash = canonical_hash(
        header.raw, serialize_context(materials.encryption_context), hashed_layout, signed
    )
    verify_footer(
        footer_value,
        old_hash,
        len(header.encrypted_data_keys),
        old_tag_key,
        materials.verification_key if suite.signing else None,
    )

    full = dict(materials.encryption_context)
    stored = dict(header.stored_context)
    signing_key = None
    if suite.signing:
        curve = suite.info.signature_curve
        if curve is None:
            raise PolicyError(f"signing suite {suite.name} names no signature curve")
        signing_key = ecdsa.generate_signing_key(curve)
        public = base64.b64encode(ecdsa.compress_public_key(signing_key.public_key())).decode("ascii")
        full[PUBLIC_KEY_CONTEXT_KEY] = stored[PUBLIC_KEY_CONTEXT_KEY] = public
    wrapped = as_wrapping_keyring(new).on_encrypt(
        EncryptionMaterials(
            suite, freeze_context(full), (), data_key, signing_key, materials.required_context_keys
        )
    )
    returned = wrapped.plaintext_data_key
    if returned is None or not constant_time_equal(returned, data_key):
        raise PolicyError("the new keyring replaced the data key instead of wrapping it")
    if wrapped.suite is not suite or dict(wrapped.encryption_context) != full:
        raise PolicyError("the new keyring changed the suite or encryption context")
    edks = wrapped.encrypted_data_keys
    tag_keys = wrapped.symmetric_signing_keys
    if not edks:
        raise NoUsableKeyError("the new keyring produced no encrypted data key")
    if len(tag_keys) != len(edks):
        raise PolicyError("the new keyring did not give one symmetric signing key per encrypted data key")
    if keep_old:
        kept = _openable_old_edks(header.encrypted_data_keys, footer_value, old_hash, old_tag_key)
        edks += kept
        tag_keys += (old_tag_key,) * len(kept)
    partial = serialize_partial_header(header.version, suite, header.message_id, header.legend, stored, edks)
    new_header = serialize_header(partial, keys)
    new_hash = canonical_hash(new_header, serialize_context(full), hashed_layout, signed)
    return new_header, make_footer(new_hash, tag_keys, signing_key)


def _openable_old_edks(
    edks: tuple[EncryptedDataKey, ...], footer: bytes, record_hash: bytes, tag_key: bytes
) -> tuple[EncryptedDataKey, ...]:
    """The old EDKs whose recipient tag is ours; refuse if any other would be lost."""
    expected = hmac_digest("sha384", tag_key, record_hash)
    kept = tuple(
        edk
        for index, edk in enumerate(edks)
        if hmac.compare_digest(expected, footer[index * TAG_LENGTH : (index + 1) * TAG_LENGTH])
    )
    if len(kept) != len(edks):
        raise PolicyError(
            f"keep_old: the record has {len(edks)} encrypted data keys, and only the one the old keyring "
            "opened can be kept (a recipient tag needs its own EDK's symmetric signing key); "
            "rewrap without keep_old and list every recipient in the new keyring"
        )
    return kept
