"""The ``aws_dbe_head`` value: version, flavor, message id, legend, stored context, EDKs, commitment.

Source: ``structured-encryption/header.md``; bytes as the reference ``Header.dfy``. One deviation from
the prose, which says HMAC-SHA-384: the commitment is the first 32 bytes of an HMAC with the suite's
commit-key hash (SHA-512 for both DB-ESDK suites), as the reference implementation and the published
test vectors do.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import AuthenticationError, MalformedInputError
from ..primitives.kdf import hkdf_many, hmac_digest
from ..suites import DbeSuite
from ..values import (
    EMPTY_CONTEXT,
    EncryptedDataKey,
    EncryptionContext,
    assemble_context,
    freeze_context,
    frozen_field,
    seal_dataclass,
)
from .context import serialize_context
from .model import LEGEND_ACTIONS

__all__ = [
    "COMMITMENT_LENGTH",
    "MESSAGE_ID_LENGTH",
    "Header",
    "RecordKeys",
    "parse_header",
    "serialize_header",
    "serialize_partial_header",
]

MESSAGE_ID_LENGTH = 32
COMMITMENT_LENGTH = 32
_PREFIX_LENGTH = 2 + MESSAGE_ID_LENGTH
_SUITE_FAMILY = 0x67
_COMMIT_INFO = b"AWS_DBE_COMMIT_KEY"
_DERIVE_INFO = b"AWS_DBE_DERIVE_KEY"
_LEGEND_BYTES = frozenset(LEGEND_ACTIONS)
# Flavor byte -> suite (both flavors exist); a dict lookup instead of DbeSuite.from_id's scan per decrypt.
_SUITE_BY_FLAVOR = {flavor: DbeSuite.from_id((_SUITE_FAMILY << 8) | flavor) for flavor in (0, 1)}
# (KDF hash, key length) per suite, read once per record rather than through the suite's properties.
_KDF_PARAMETERS = {suite: (str(suite.info.kdf_hash), suite.key_length) for suite in DbeSuite}


@dataclass(frozen=True, slots=True, init=False)
class Header:
    """A parsed header. ``raw`` is the whole serialized value, commitment included."""

    version: int
    suite: DbeSuite
    message_id: bytes
    legend: bytes
    stored_context: EncryptionContext
    encrypted_data_keys: tuple[EncryptedDataKey, ...]
    raw: bytes = field(repr=False)

    def __new__(
        cls,
        version: int,
        suite: DbeSuite,
        message_id: bytes,
        legend: bytes,
        stored_context: Mapping[str, str],
        encrypted_data_keys: tuple[EncryptedDataKey, ...],
        raw: bytes,
    ) -> Header:
        # Sealed (values.seal_dataclass); built in one step: a header is parsed for every item read.
        return _build_header(
            cls,
            version,
            suite,
            frozen_field(message_id),
            frozen_field(legend),
            freeze_context(stored_context),
            frozen_field(encrypted_data_keys),
            frozen_field(raw),
        )

    @property
    def commitment(self) -> bytes:
        return self.raw[-COMMITMENT_LENGTH:]


_build_header = seal_dataclass(Header)


class RecordKeys:
    """The per-record keys derived from the data key and message id, each derived once.

    Both the commit key and the field root key are HKDF outputs over the same data key with no salt,
    so they share one HKDF-Extract.
    """

    __slots__ = ("commit_key", "field_root_key", "suite")

    def __init__(self, suite: DbeSuite, data_key: bytes, message_id: bytes) -> None:
        hash_name, key_length = _KDF_PARAMETERS[suite]
        self.suite = suite
        self.commit_key, self.field_root_key = hkdf_many(
            hash_name,
            data_key,
            None,
            (_COMMIT_INFO + message_id, _DERIVE_INFO + message_id),
            key_length,
        )

    def commitment(self, partial_header: bytes) -> bytes:
        hash_name = _KDF_PARAMETERS[self.suite][0]
        return hmac_digest(hash_name, self.commit_key, partial_header)[:COMMITMENT_LENGTH]

    def verify(self, header: Header) -> None:
        """Raise :class:`AuthenticationError` unless the header's commitment matches (constant time)."""
        expected = self.commitment(header.raw[:-COMMITMENT_LENGTH])
        if not hmac.compare_digest(expected, header.commitment):
            raise AuthenticationError("record header commitment does not match the data key")


def serialize_partial_header(
    version: int,
    suite: DbeSuite,
    message_id: bytes,
    legend: bytes,
    stored_context: Mapping[str, str],
    edks: Sequence[EncryptedDataKey],
) -> bytes:
    """The header without its commitment."""
    if len(legend) > 0xFFFF:
        raise MalformedInputError("too many signed attributes for the header legend")
    if not 0 < len(edks) < 256:
        raise MalformedInputError("a record needs between 1 and 255 encrypted data keys")
    parts = [
        bytes((version, suite.id & 0xFF)),
        message_id,
        len(legend).to_bytes(2, "big"),
        legend,
        serialize_context(stored_context),
        bytes((len(edks),)),
    ]
    for edk in edks:
        provider_id = edk.provider_id.encode("utf-8")
        for part in (provider_id, edk.provider_info, edk.ciphertext):
            if len(part) > 0xFFFF:
                raise MalformedInputError("encrypted data key field longer than 65535 bytes")
            parts += (len(part).to_bytes(2, "big"), part)
    return b"".join(parts)


def serialize_header(partial: bytes, keys: RecordKeys) -> bytes:
    """The full header: partial header plus commitment."""
    return partial + keys.commitment(partial)


def parse_header(data: bytes) -> Header:
    """Parse a header value; every length is checked before it is used."""
    data = bytes(data)
    end = len(data) - COMMITMENT_LENGTH
    if end < _PREFIX_LENGTH:
        raise MalformedInputError("record header is too short")
    version = data[0]
    if version not in (1, 2):
        raise MalformedInputError("unsupported record header version")
    flavor = data[1]
    if flavor not in (0, 1):
        raise MalformedInputError("unsupported record header flavor")
    suite = _SUITE_BY_FLAVOR[flavor]
    message_id = data[2:_PREFIX_LENGTH]
    # Lengths are read inline (no helper calls): this runs on every decrypt. Every length is checked
    # against the bytes left before the commitment before it is used.
    pos = _PREFIX_LENGTH
    if end - pos < 2:
        raise MalformedInputError("record header truncated in legend length")
    length = (data[pos] << 8) | data[pos + 1]
    pos += 2
    if length > end - pos:
        raise MalformedInputError("record header truncated in legend")
    legend = data[pos : pos + length]
    pos += length
    if not _LEGEND_BYTES.issuperset(legend):
        raise MalformedInputError("invalid byte in record header legend")

    if end - pos < 2:
        raise MalformedInputError("record header truncated in encryption context count")
    context_start = pos
    count = (data[pos] << 8) | data[pos + 1]
    pos += 2
    context: dict[str, str] = {}
    previous = b""
    for index in range(count):
        pair: list[bytes] = []
        for what in ("context key", "context value"):
            if end - pos < 2:
                raise MalformedInputError(f"record header truncated in {what} length")
            length = (data[pos] << 8) | data[pos + 1]
            pos += 2
            if length > end - pos:
                raise MalformedInputError(f"record header truncated in {what}")
            pair.append(data[pos : pos + length])
            pos += length
        key, value = pair
        # Strictly ascending keys rule out duplicates as well as misordering.
        if index and not previous < key:
            raise MalformedInputError("record header encryption context keys are not strictly ascending")
        previous = key
        context[_utf8(key, "encryption context")] = _utf8(value, "encryption context")

    # Strictly ascending keys: the bytes read are the canonical serialization (empty: none at all).
    stored_context = assemble_context(context, data[context_start:pos]) if count else EMPTY_CONTEXT

    if end - pos < 1:
        raise MalformedInputError("record header truncated in encrypted data key count")
    edk_count = data[pos]
    pos += 1
    if edk_count == 0:
        raise MalformedInputError("record header has no encrypted data keys")
    edks = []
    for _ in range(edk_count):
        fields: list[bytes] = []
        for what in ("provider id", "provider info", "EDK ciphertext"):
            if end - pos < 2:
                raise MalformedInputError(f"record header truncated in {what} length")
            length = (data[pos] << 8) | data[pos + 1]
            pos += 2
            if length > end - pos:
                raise MalformedInputError(f"record header truncated in {what}")
            fields.append(data[pos : pos + length])
            pos += length
        provider_id, provider_info, ciphertext = fields
        edks.append(EncryptedDataKey(_utf8(provider_id, "provider id"), provider_info, ciphertext))
    if pos != end:
        raise MalformedInputError("unexpected bytes before the record header commitment")
    return Header(version, suite, message_id, legend, stored_context, tuple(edks), data)


def _utf8(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedInputError(f"record header {what} is not valid UTF-8") from None
