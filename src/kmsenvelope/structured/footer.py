"""The canonical hash of a record and the ``aws_dbe_foot`` value that authenticates it.

Source: ``structured-encryption/footer.md``; bytes as the reference ``Footer.dfy``.

Footer = one 48-byte HMAC-SHA-384 recipient tag per EDK (keyed with that EDK's symmetric signing key),
then, for the ECDSA flavor, a 103-byte DER ECDSA P-384 signature. Both cover the canonical hash::

    SHA-384( header || uint64 len(AAD) || AAD || canonical field... )

where AAD is the materials' encryption context in header encoding and each signed field, in
canonical-path order, is ``path || uint64 length || "ENCRYPTED" || stored value`` (length excludes the
2-byte type prefix) or ``path || uint64 length || "PLAINTEXT" || type id || value``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from ..errors import AuthenticationError, MalformedInputError, SignatureError
from ..primitives.kdf import hmac_digest
from .model import Terminal

__all__ = ["SIGNATURE_LENGTH", "TAG_LENGTH", "canonical_hash", "make_footer", "verify_footer"]

TAG_LENGTH = 48
SIGNATURE_LENGTH = 103
_P384_ORDER = int(
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973", 16
)
_ENCRYPTED = b"ENCRYPTED"
_PLAINTEXT = b"PLAINTEXT"


def canonical_hash(
    header: bytes,
    context: bytes,
    fields: Iterable[tuple[bytes, str, bool]],
    record: Mapping[str, Terminal],
) -> bytes:
    """SHA-384 of the canonical record.

    ``fields`` is (path, name, encrypted?) in canonical-path order and ``record`` maps those names to
    their stored terminals.
    """
    # One buffer and one hash update: per-field update calls cost more than copying ~1 KiB.
    parts = [header, len(context).to_bytes(8, "big"), context]
    for path, name, encrypted in fields:
        type_id, value = record[name]
        if encrypted:
            if len(value) < 2:
                raise MalformedInputError("encrypted attribute value is too short")
            parts += (path, (len(value) - 2).to_bytes(8, "big"), _ENCRYPTED, value)
        else:
            parts += (path, len(value).to_bytes(8, "big"), _PLAINTEXT, type_id, value)
    return hashlib.sha384(b"".join(parts)).digest()


def make_footer(
    record_hash: bytes, signing_keys: Sequence[bytes], signing_key: ec.EllipticCurvePrivateKey | None
) -> bytes:
    """Recipient tags, then the signature when the suite signs."""
    parts = [hmac_digest("sha384", key, record_hash) for key in signing_keys]
    if signing_key is not None:
        parts.append(_fixed_length_signature(signing_key, record_hash))
    return b"".join(parts)


def verify_footer(
    footer: bytes,
    record_hash: bytes,
    edk_count: int,
    symmetric_signing_key: bytes,
    verification_key: ec.EllipticCurvePublicKey | None,
) -> None:
    """Check the footer shape, that one recipient tag matches our key, then the signature if any."""
    signature_length = SIGNATURE_LENGTH if verification_key is not None else 0
    tags_length = len(footer) - signature_length
    if tags_length < TAG_LENGTH or tags_length % TAG_LENGTH:
        raise MalformedInputError("record footer has the wrong length for its algorithm suite")
    if tags_length // TAG_LENGTH != edk_count:
        raise MalformedInputError("record footer has a different number of tags than the header has EDKs")
    expected = hmac_digest("sha384", symmetric_signing_key, record_hash)
    matched = False
    for offset in range(0, tags_length, TAG_LENGTH):
        # Every tag is compared, so timing does not reveal which recipient matched.
        matched |= hmac.compare_digest(expected, footer[offset : offset + TAG_LENGTH])
    if not matched:
        raise AuthenticationError("no recipient tag in the record footer matches")
    if verification_key is not None:
        try:
            verification_key.verify(footer[tags_length:], record_hash, ec.ECDSA(hashes.SHA384()))
        except InvalidSignature:
            raise SignatureError("record signature did not verify") from None


def _fixed_length_signature(key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    """A DER ECDSA P-384 signature of exactly 103 bytes, as the format requires.

    Low-s normalization keeps s within 48 bytes; r needs its high bit set for the DER integer to be
    49 bytes, so about every second attempt fits.
    """
    while True:
        r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA384())))
        if s > _P384_ORDER // 2:
            s = _P384_ORDER - s
        signature = encode_dss_signature(r, s)
        if len(signature) == SIGNATURE_LENGTH:
            return signature
