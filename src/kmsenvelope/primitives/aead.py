"""AES-GCM with 12-byte IVs and 16-byte tags, the only AEAD the formats use."""

from __future__ import annotations

from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import AuthenticationError

IV_LENGTH = 12
TAG_LENGTH = 16

__all__ = ["IV_LENGTH", "TAG_LENGTH", "AesGcm"]


class AesGcm:
    """A keyed AES-GCM; raises :class:`AuthenticationError` on a bad tag. The key is never shown."""

    __slots__ = ("_aead", "encrypt", "encrypt_into")

    encrypt: Callable[[bytes, bytes | memoryview, bytes], bytes]
    """``encrypt(iv, plaintext, aad)``: ciphertext followed by the 16-byte tag."""
    encrypt_into: Callable[[bytes, bytes | memoryview, bytes, memoryview], int]
    """``encrypt_into(iv, plaintext, aad, out)``: write ciphertext || tag into ``out`` (exactly
    ``len(plaintext) + 16`` bytes); returns the number of bytes written."""

    def __init__(self, key: bytes) -> None:
        if len(key) not in (16, 24, 32):
            raise ValueError("AES-GCM key must be 16, 24 or 32 bytes")
        self._aead = aead = AESGCM(key)
        # Encrypting raises nothing to translate, so the bound methods of the cipher are used as they are:
        # no Python frame per call (several per small message).
        self.encrypt = aead.encrypt
        self.encrypt_into = aead.encrypt_into

    def decrypt(self, iv: bytes, ciphertext_and_tag: bytes | memoryview, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(iv, ciphertext_and_tag, aad)
        except InvalidTag:
            raise AuthenticationError("authentication tag did not verify") from None

    def decrypt_into(
        self, iv: bytes, ciphertext_and_tag: bytes | memoryview, aad: bytes, out: memoryview
    ) -> None:
        try:
            self._aead.decrypt_into(iv, ciphertext_and_tag, aad, out)
        except InvalidTag:
            raise AuthenticationError("authentication tag did not verify") from None

    def __repr__(self) -> str:
        return "AesGcm(<key hidden>)"
