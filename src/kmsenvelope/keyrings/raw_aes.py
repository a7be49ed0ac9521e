"""The raw AES keyring (ESDK ``framework/raw-aes-keyring.md``).

EDK: provider id = namespace; provider info = key name | tag length in bits (uint32, 128) |
IV length (uint32, 12) | IV; ciphertext = AES-GCM(wrapping key, IV, data key, AAD=serialized context) | tag.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from ..errors import AuthenticationError, ConfigurationError, KmsEnvelopeError, MalformedInputError
from ..materials.materials import DecryptionMaterials, EncryptedDataKey, EncryptionMaterials
from ..primitives.aead import IV_LENGTH, TAG_LENGTH, AesGcm
from ..values import serialize_context
from . import wrapping
from ._util import decrypt_first

__all__ = ["RawAesKeyring"]

_TAG_BITS = (TAG_LENGTH * 8).to_bytes(4, "big")
_IV_LEN = IV_LENGTH.to_bytes(4, "big")


def check_raw_names(namespace: str, name: str) -> tuple[str, bytes]:
    """Validate a raw keyring's namespace and name; returns the namespace and the UTF-8 name."""
    if not isinstance(namespace, str) or not namespace:
        raise ConfigurationError("keyring namespace must be a non-empty string")
    if not isinstance(name, str) or not name:
        raise ConfigurationError("keyring name must be a non-empty string")
    if namespace.startswith("aws-kms"):
        raise ConfigurationError("namespaces starting with 'aws-kms' are reserved for AWS KMS keyrings")
    encoded = name.encode("utf-8")
    if len(namespace.encode("utf-8")) > 0xFFFF or len(encoded) > 0xFFFF - 32:
        raise ConfigurationError("keyring namespace or name is too long")
    return namespace, encoded


class RawAesKeyring:
    """Wraps data keys with an AES-128, -192 or -256 key you hold. Thread-safe."""

    def __init__(self, namespace: str, name: str, key: bytes) -> None:
        self._namespace, self._name = check_raw_names(namespace, name)
        if not isinstance(key, (bytes, bytearray)) or len(key) not in (16, 24, 32):
            raise ConfigurationError("raw AES wrapping key must be 16, 24 or 32 bytes")
        self._aead = AesGcm(bytes(key))
        self._key = bytes(key)  # only for pickling: the AES-GCM object cannot be
        self._info_prefix = self._name + _TAG_BITS + _IV_LEN
        self._info_length = len(self._info_prefix) + IV_LENGTH
        self._described = f"RawAesKeyring({self._namespace!r}, {name!r})"

    @property
    def namespace(self) -> str:
        return self._namespace

    @property
    def name(self) -> str:
        return self._name.decode("utf-8")

    def _wrap(self, key: bytes, context: Mapping[str, str]) -> EncryptedDataKey:
        iv = os.urandom(IV_LENGTH)
        sealed = self._aead.encrypt(iv, key, serialize_context(context))
        return EncryptedDataKey(self._namespace, self._info_prefix + iv, sealed)

    def _unwrap(self, edk: EncryptedDataKey, context: Mapping[str, str]) -> bytes:
        iv = edk.provider_info[len(self._info_prefix) :]
        return self._aead.decrypt(iv, edk.ciphertext, serialize_context(context))

    def _matches(self, edk: EncryptedDataKey) -> bool:
        info = edk.provider_info
        return (
            edk.provider_id == self._namespace
            and len(info) == self._info_length
            and info.startswith(self._info_prefix)
        )

    def on_encrypt(self, materials: EncryptionMaterials) -> EncryptionMaterials:
        """Generate the data key if needed and add this keyring's EDK (see :class:`Keyring`)."""
        return wrapping.on_encrypt(materials, self._wrap)

    def on_decrypt(
        self, materials: DecryptionMaterials, edks: Sequence[EncryptedDataKey]
    ) -> DecryptionMaterials:
        if materials.plaintext_data_key is None:
            # The usual case, flat: the first EDK for this keyring unwraps. Anything else (no EDK for
            # it, a failure) goes through decrypt_first below, which tries every EDK again and reports
            # each one's reason; unwrapping is local and has no side effects, so a retry is harmless.
            for edk in edks:
                if self._matches(edk):
                    if len(edk.ciphertext) >= TAG_LENGTH:
                        try:
                            return wrapping.unwrap_edk(materials, edk, self._unwrap)
                        except KmsEnvelopeError:
                            pass
                    break

        def attempt(edk: EncryptedDataKey) -> DecryptionMaterials:
            if len(edk.ciphertext) < TAG_LENGTH:
                raise MalformedInputError("raw AES EDK ciphertext is too short")
            try:
                return wrapping.unwrap_edk(materials, edk, self._unwrap)
            except AuthenticationError:
                raise AuthenticationError("wrong wrapping key or encryption context") from None

        return decrypt_first(self._described, materials, edks, self._matches, attempt)

    def __reduce__(self) -> tuple[object, ...]:
        # A pickled raw keyring carries its wrapping key: send it only over encrypted channels.
        return (RawAesKeyring, (self._namespace, self.name, self._key))

    def __repr__(self) -> str:
        return f"RawAesKeyring(namespace={self._namespace!r}, name={self.name!r})"
