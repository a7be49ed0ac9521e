"""The raw RSA keyring (ESDK ``framework/raw-rsa-keyring.md``).

EDK: provider id = namespace; provider info = key name; ciphertext = RSA-encrypt(public key, data key).
The encryption context is not bound by RSA wrapping; the message header authenticates it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from ..errors import AuthenticationError, ConfigurationError, NoUsableKeyError
from ..materials.materials import DecryptionMaterials, EncryptedDataKey, EncryptionMaterials
from . import wrapping
from ._util import decrypt_first
from .raw_aes import check_raw_names

__all__ = ["PADDINGS", "RawRsaKeyring"]

_OAEP_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "OAEP-SHA1": hashes.SHA1,
    "OAEP-SHA256": hashes.SHA256,
    "OAEP-SHA384": hashes.SHA384,
    "OAEP-SHA512": hashes.SHA512,
}
PADDINGS = ("PKCS1", *_OAEP_HASHES)


def make_padding(name: str) -> rsa_padding.AsymmetricPadding:
    """The ``cryptography`` padding for one of :data:`PADDINGS`."""
    if name == "PKCS1":
        return rsa_padding.PKCS1v15()
    hash_type = _OAEP_HASHES.get(name)
    if hash_type is None:
        raise ConfigurationError(f"unknown RSA padding {name!r}; choose one of {', '.join(PADDINGS)}")
    return rsa_padding.OAEP(mgf=rsa_padding.MGF1(hash_type()), algorithm=hash_type(), label=None)


class RawRsaKeyring:
    """Wraps data keys with an RSA key pair you hold (PEM). With only a public key it can only encrypt."""

    def __init__(
        self,
        namespace: str,
        name: str,
        *,
        private_key: bytes | None = None,
        public_key: bytes | None = None,
        padding: str = "OAEP-SHA256",
    ) -> None:
        self._namespace, name_bytes = check_raw_names(namespace, name)
        self._name = name_bytes
        self._padding_name = padding
        self._padding = make_padding(padding)
        self._private: RSAPrivateKey | None = None
        self._public: RSAPublicKey | None = None
        # Only for pickling (the cryptography key objects cannot be): the PEM given, private key included.
        self._pems = (private_key, public_key)
        if private_key is None and public_key is None:
            raise ConfigurationError("RawRsaKeyring needs a private key, a public key, or both")
        if private_key is not None:
            try:
                loaded = serialization.load_pem_private_key(private_key, password=None)
            except (ValueError, TypeError):
                raise ConfigurationError("private_key is not an unencrypted PEM private key") from None
            if not isinstance(loaded, RSAPrivateKey):
                raise ConfigurationError("private_key is not an RSA key")
            self._private = loaded
            self._public = loaded.public_key()
        if public_key is not None:
            try:
                loaded_pub = serialization.load_pem_public_key(public_key)
            except (ValueError, TypeError):
                raise ConfigurationError("public_key is not a PEM public key") from None
            if not isinstance(loaded_pub, RSAPublicKey):
                raise ConfigurationError("public_key is not an RSA key")
            if self._public is not None and self._public.public_numbers() != loaded_pub.public_numbers():
                raise ConfigurationError("public_key does not belong to private_key")
            self._public = loaded_pub

    def _wrap(self, key: bytes, context: Mapping[str, str]) -> EncryptedDataKey:
        if self._public is None:
            raise ConfigurationError("this RawRsaKeyring has no public key")
        return EncryptedDataKey(self._namespace, self._name, self._public.encrypt(key, self._padding))

    def _unwrap(self, edk: EncryptedDataKey, context: Mapping[str, str]) -> bytes:
        if self._private is None:
            raise NoUsableKeyError("this RawRsaKeyring has no private key and cannot decrypt")
        try:
            return self._private.decrypt(edk.ciphertext, self._padding)
        except ValueError:
            raise AuthenticationError("RSA decryption failed (wrong key or padding)") from None

    def on_encrypt(self, materials: EncryptionMaterials) -> EncryptionMaterials:
        """Generate the data key if needed and add this keyring's EDK (see :class:`Keyring`)."""
        return wrapping.on_encrypt(materials, self._wrap)

    def on_decrypt(
        self, materials: DecryptionMaterials, edks: Sequence[EncryptedDataKey]
    ) -> DecryptionMaterials:
        label = f"RawRsaKeyring({self._namespace!r}, {self._name.decode()!r})"
        if self._private is None:
            if materials.plaintext_data_key is not None:
                return materials
            raise NoUsableKeyError(f"{label} has no private key and cannot decrypt")

        def matches(edk: EncryptedDataKey) -> bool:
            return edk.provider_id == self._namespace and edk.provider_info == self._name

        return decrypt_first(
            label, materials, edks, matches, lambda edk: wrapping.unwrap_edk(materials, edk, self._unwrap)
        )

    def __reduce__(self) -> tuple[object, ...]:
        # A pickled raw keyring carries its private key: send it only over encrypted channels.
        private_key, public_key = self._pems
        arguments = {"private_key": private_key, "public_key": public_key, "padding": self._padding_name}
        return (_rebuild, (self._namespace, self._name.decode("utf-8"), arguments))

    def __repr__(self) -> str:
        return (
            f"RawRsaKeyring(namespace={self._namespace!r}, name={self._name.decode()!r}, "
            f"padding={self._padding_name!r}, can_decrypt={self._private is not None})"
        )


def _rebuild(namespace: str, name: str, arguments: dict[str, object]) -> RawRsaKeyring:
    return RawRsaKeyring(namespace, name, **arguments)  # type: ignore[arg-type]
