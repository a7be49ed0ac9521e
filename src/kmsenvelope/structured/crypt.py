"""Per-field keys and nonces, and terminal encryption.

Source: ``structured-encryption/encrypt-path-structure.md`` (calculate cipherkey and nonce, terminal
data encryption); bytes as the reference ``Crypt.dfy``.

The field at position ``i`` among the encrypted fields (sorted by canonical path) uses the first 44 bytes
of the AES-256-CTR keystream of the field root key, started at the counter block
``"AwsDbeField" || 0x2c || uint32(3 * i)``: 32 bytes of key, then 12 bytes of nonce. Field ``i`` owns
counter blocks 3i .. 3i+2, so the keys of all fields are one keystream; it is computed once per record.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import AuthenticationError, MalformedInputError
from .model import BINARY_TYPE, Terminal

__all__ = ["FieldKeys"]

_NONCE_PREFIX = b"AwsDbeField\x2c"
_KEY_LENGTH = 32
_STRIDE = 48  # three AES blocks per field
_TAG_LENGTH = 16
_MAX_FIELDS = (1 << 32) // 3
# The first counter block is the same for every record; a mode object holds only that public value.
_CTR_MODE = modes.CTR(_NONCE_PREFIX + bytes(4))


class FieldKeys:
    """The cipher keys and nonces of every encrypted field of one record."""

    __slots__ = ("_stream",)

    def __init__(self, field_root_key: bytes, count: int) -> None:
        if count >= _MAX_FIELDS:
            raise MalformedInputError("too many encrypted attributes in one record")
        encryptor = Cipher(algorithms.AES(field_root_key), _CTR_MODE).encryptor()
        self._stream = encryptor.update(bytes(_STRIDE * count)) if count else b""

    # AESGCM is used directly (not primitives.aead.AesGcm): these run once per encrypted attribute and
    # the wrapper's extra call and key-length check (always 32 here) are measurable per item.
    def encrypt(self, offset: int, path: bytes, terminal: Terminal) -> Terminal:
        """The stored form of an encrypted terminal: binary, original type id + ciphertext + tag."""
        start = _STRIDE * offset
        stream = self._stream
        cipher = AESGCM(stream[start : start + _KEY_LENGTH])
        nonce = stream[start + _KEY_LENGTH : start + _KEY_LENGTH + 12]
        return Terminal(BINARY_TYPE, terminal.type_id + cipher.encrypt(nonce, terminal.value, path))

    def decrypt(self, offset: int, path: bytes, stored: Terminal) -> Terminal:
        """The plaintext terminal; :class:`~kmsenvelope.errors.AuthenticationError` on a bad tag."""
        value = stored.value
        if stored.type_id != BINARY_TYPE:
            raise MalformedInputError("an encrypted attribute must be stored as binary")
        if len(value) < 2 + _TAG_LENGTH:
            raise MalformedInputError("encrypted attribute value is too short")
        start = _STRIDE * offset
        stream = self._stream
        cipher = AESGCM(stream[start : start + _KEY_LENGTH])
        nonce = stream[start + _KEY_LENGTH : start + _KEY_LENGTH + 12]
        try:
            return Terminal(value[:2], cipher.decrypt(nonce, value[2:], path))
        except InvalidTag:
            raise AuthenticationError("authentication tag did not verify") from None
