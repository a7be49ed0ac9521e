"""Per-field keys and nonces, terminal encryption, and the canonical hash written alongside.

Source: ``structured-encryption/encrypt-path-structure.md`` (calculate cipherkey and nonce, terminal
data encryption) and ``footer.md`` (canonical hash); bytes as the reference ``Crypt.dfy``.

The field at position ``i`` among the encrypted fields (sorted by canonical path) uses the first 44 bytes
of the AES-256-CTR keystream of the field root key, started at the counter block
``"AwsDbeField" || 0x2c || uint32(3 * i)``: 32 bytes of key, then 12 bytes of nonce. Field ``i`` owns
counter blocks 3i .. 3i+2, so the keys of all fields are one keystream; it is computed once per record.

These loops run once per item; they address the keystream by offset and call ``AESGCM`` directly (not
``primitives.aead.AesGcm``) because per-field wrapper calls are measurable at DynamoDB item rates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import AuthenticationError, MalformedInputError
from ..primitives.ctr import aes_ctr_keystream
from .model import BINARY_TYPE, Action, Terminal

__all__ = ["decrypt_fields", "encrypt_fields"]

_NONCE_PREFIX = b"AwsDbeField\x2c"
_KEY_LENGTH = 32
_NONCE_END = _KEY_LENGTH + 12
_STRIDE = 48  # three AES blocks per field
_TAG_LENGTH = 16
_MAX_FIELDS = (1 << 32) // 3
# The first counter block is the same for every record; a mode object holds only that public value.
_CTR_MODE = modes.CTR(_NONCE_PREFIX + bytes(4))
_ENCRYPT = Action.ENCRYPT_AND_SIGN
_new_terminal = tuple.__new__  # Terminal is a NamedTuple; this skips its Python-level __new__ frame
# Canonical hash field markers (footer.md): encrypted fields hash their stored bytes, others type + value.
ENCRYPTED_MARK = b"ENCRYPTED"
PLAINTEXT_MARK = b"PLAINTEXT"


def _keystream(field_root_key: bytes, count: int) -> bytes:
    if count >= _MAX_FIELDS:
        raise MalformedInputError("too many encrypted attributes in one record")
    return aes_ctr_keystream(field_root_key, _CTR_MODE, _STRIDE * count) if count else b""


def encrypt_fields(
    field_root_key: bytes,
    signed: Sequence[tuple[bytes, str, Action]],
    record: Mapping[str, Terminal],
    out: dict[str, Terminal],
    header: bytes,
    context: bytes,
) -> bytes:
    """Encrypt the ENCRYPT_AND_SIGN fields of ``record`` into ``out``; return the canonical hash.

    ``signed`` is (canonical path, name, action) in canonical-path order; ``context`` is the serialized
    encryption context. The hash is computed in the same pass as the encryption (one buffer, one
    SHA-384 update); :func:`~kmsenvelope.structured.footer.canonical_hash` computes the same value from
    stored fields on decrypt.
    """
    count = 0
    for entry in signed:
        if entry[2] is _ENCRYPT:
            count += 1
    stream = _keystream(field_root_key, count)
    parts = [header, len(context).to_bytes(8, "big"), context]
    start = 0
    for path, name, action in signed:
        type_id, value = record[name]
        if action is _ENCRYPT:
            cipher = AESGCM(stream[start : start + _KEY_LENGTH])
            ciphertext = cipher.encrypt(stream[start + _KEY_LENGTH : start + _NONCE_END], value, path)
            start += _STRIDE
            stored = type_id + ciphertext
            out[name] = _new_terminal(Terminal, (BINARY_TYPE, stored))
            parts += (path, len(ciphertext).to_bytes(8, "big"), ENCRYPTED_MARK, stored)
        else:
            parts += (path, len(value).to_bytes(8, "big"), PLAINTEXT_MARK, type_id, value)
    return hashlib.sha384(b"".join(parts)).digest()


def decrypt_fields(
    field_root_key: bytes, encrypted: Sequence[tuple[bytes, str]], record: Mapping[str, Terminal]
) -> dict[str, Terminal]:
    """The plaintext terminals of the encrypted fields, given as (canonical path, name) in path order.

    Call only after the record's footer has verified: a bad tag raises
    :class:`~kmsenvelope.errors.AuthenticationError`.
    """
    stream = _keystream(field_root_key, len(encrypted))
    out: dict[str, Terminal] = {}
    start = 0
    for path, name in encrypted:
        out[name] = _decrypt_one(stream, start, path, record[name])
        start += _STRIDE
    return out


def _decrypt_one(stream: bytes, start: int, path: bytes, stored: Terminal) -> Terminal:
    type_id, value = stored
    if type_id != BINARY_TYPE:
        raise MalformedInputError("an encrypted attribute must be stored as binary")
    if len(value) < 2 + _TAG_LENGTH:
        raise MalformedInputError("encrypted attribute value is too short")
    cipher = AESGCM(stream[start : start + _KEY_LENGTH])
    try:
        plaintext = cipher.decrypt(stream[start + _KEY_LENGTH : start + _NONCE_END], value[2:], path)
    except InvalidTag:
        raise AuthenticationError("authentication tag did not verify") from None
    return _new_terminal(Terminal, (value[:2], plaintext))
