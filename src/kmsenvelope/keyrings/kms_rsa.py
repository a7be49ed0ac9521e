"""The AWS KMS RSA keyring (``aws-kms-rsa-keyring.md``; the MPL's ``AwsKmsRsaKeyring``).

Encryption is offline: the data key is RSA-OAEP-encrypted locally with the KMS key's public key, so
encrypting needs neither AWS credentials nor a KMS client. The RSA plaintext is
``SHA-384(canonical encryption context) || data key``, which binds the context to the EDK because
asymmetric KMS keys take no encryption context. Decryption calls KMS ``Decrypt`` with the configured key
and padding, then checks the context digest.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric import rsa

from ..aws.arn import is_alias, mrk_match, parse_arn, validate_identifier
from ..aws.clients import KmsClientSupplier
from ..errors import AuthenticationError, ConfigurationError, EdkFailure, NoUsableKeyError, PolicyError
from ..materials.materials import DecryptionMaterials, EncryptedDataKey, EncryptionMaterials
from ..values import serialize_context
from . import wrapping
from .kms_common import (
    RSA_PROVIDER_ID,
    check_grant_tokens,
    edk_key_arn,
    failure_reason,
    kms_decrypt,
    kms_errors,
    provider_info_text,
    resolve_supplier,
)

__all__ = ["KmsRsaKeyring", "encryption_context_digest"]

_PADDINGS = {"RSAES_OAEP_SHA_1": hashes.SHA1, "RSAES_OAEP_SHA_256": hashes.SHA256}
_MIN_MODULUS_BITS = 2048
_DIGEST_LENGTH = 48


def encryption_context_digest(context: Mapping[str, str]) -> bytes:
    """SHA-384 of the canonical context serialization (:func:`kmsenvelope.values.serialize_context`).

    An empty context serializes to no bytes at all (not a zero count), as in the MPL.
    """
    return hashlib.sha384(serialize_context(context)).digest()


class KmsRsaKeyring:
    """Wraps data keys for an asymmetric RSA KMS key (``ENCRYPT_DECRYPT`` usage).

    ``public_key`` is the key's PEM (``GetPublicKey`` returns DER, which is accepted too); without it
    the keyring can only decrypt. ``padding`` is ``RSAES_OAEP_SHA_256`` or ``RSAES_OAEP_SHA_1``.
    """

    def __init__(
        self,
        key_id: str,
        *,
        public_key: bytes | None = None,
        padding: str = "RSAES_OAEP_SHA_256",
        grant_tokens: Sequence[str] = (),
        client_supplier: KmsClientSupplier | None = None,
    ) -> None:
        validate_identifier(key_id)
        if is_alias(key_id):
            raise ConfigurationError("KmsRsaKeyring needs a KMS key identifier, not an alias")
        if padding not in _PADDINGS:
            raise ConfigurationError(f"padding must be one of {sorted(_PADDINGS)}")
        self._key_id = key_id
        self._padding_name = padding
        self._public_key = _load_public_key(public_key) if public_key is not None else None
        self._grant_tokens = check_grant_tokens(grant_tokens)
        # Resolving the supplier builds no client; one is only made on the first decrypt.
        self._supplier = resolve_supplier(client_supplier)

    @property
    def key_id(self) -> str:
        """The configured KMS key identifier (written as the EDK's provider info)."""
        return self._key_id

    def __repr__(self) -> str:
        return (
            f"KmsRsaKeyring(key_id={self._key_id!r}, padding={self._padding_name!r}, "
            f"can_encrypt={self._public_key is not None})"
        )

    def _oaep(self) -> asym_padding.OAEP:
        algorithm = _PADDINGS[self._padding_name]
        return asym_padding.OAEP(mgf=asym_padding.MGF1(algorithm()), algorithm=algorithm(), label=None)

    def on_encrypt(self, materials: EncryptionMaterials) -> EncryptionMaterials:
        """Generate the data key locally if needed and RSA-encrypt it with the public key."""
        public_key = self._public_key
        if public_key is None:
            raise ConfigurationError("KmsRsaKeyring without a public key cannot encrypt")
        _refuse_signing(materials.suite.signing)

        def wrap(data_key: bytes, context: Mapping[str, str]) -> EncryptedDataKey:
            ciphertext = public_key.encrypt(encryption_context_digest(context) + data_key, self._oaep())
            return EncryptedDataKey(RSA_PROVIDER_ID, self._key_id.encode("utf-8"), ciphertext)

        return wrapping.on_encrypt(materials, wrap)

    def on_decrypt(
        self, materials: DecryptionMaterials, edks: Sequence[EncryptedDataKey]
    ) -> DecryptionMaterials:
        """Decrypt a matching EDK through KMS and check its encryption context digest."""
        if materials.plaintext_data_key is not None:
            raise PolicyError("decryption materials already hold a data key")
        if not self._key_id.startswith("arn:") or parse_arn(self._key_id).resource_type != "key":
            raise ConfigurationError("KmsRsaKeyring needs a key ARN to decrypt")
        _refuse_signing(materials.suite.signing)
        region = parse_arn(self._key_id).region

        failures: list[EdkFailure] = []
        candidates: list[tuple[EncryptedDataKey, str]] = []
        for edk in edks:
            if edk.provider_id != RSA_PROVIDER_ID:
                failures.append(
                    EdkFailure(
                        edk.provider_id, provider_info_text(edk), "not an AWS KMS RSA data key; skipped"
                    )
                )
                continue
            arn_text, _ = edk_key_arn(edk)
            if mrk_match(self._key_id, arn_text):
                candidates.append((edk, arn_text))
            else:
                failures.append(
                    EdkFailure(RSA_PROVIDER_ID, arn_text, "does not match the configured KMS key")
                )

        def unwrap(wrapped: EncryptedDataKey, context: Mapping[str, str]) -> bytes:
            plaintext = kms_decrypt(
                self._supplier(region),
                region=region,
                key_id=self._key_id,
                ciphertext=wrapped.ciphertext,
                grant_tokens=self._grant_tokens,
                encryption_algorithm=self._padding_name,
            )
            if not hmac.compare_digest(plaintext[:_DIGEST_LENGTH], encryption_context_digest(context)):
                raise AuthenticationError("encryption context digest does not match the data key's")
            return plaintext[_DIGEST_LENGTH:]

        errors = kms_errors()
        for edk, arn_text in candidates:
            try:
                return wrapping.unwrap_edk(materials, edk, unwrap)
            except errors as exc:
                failures.append(EdkFailure(RSA_PROVIDER_ID, arn_text, failure_reason(exc)))
        raise NoUsableKeyError("AWS KMS RSA keyring could not decrypt any data key", failures)


def _refuse_signing(signing: bool) -> None:
    if signing:
        # With a public wrapping key anyone can re-wrap a data key under a new context, so an
        # asymmetric signature would not bind the message to its author; the MPL forbids the combination.
        raise PolicyError("KmsRsaKeyring cannot be used with an algorithm suite with asymmetric signing")


def _load_public_key(data: bytes) -> rsa.RSAPublicKey:
    if not isinstance(data, (bytes, bytearray)):
        raise ConfigurationError("public_key must be PEM (or DER) bytes")
    try:
        if bytes(data).lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(bytes(data))
        else:
            key = serialization.load_der_public_key(bytes(data))
    except ValueError:
        raise ConfigurationError("public_key is not a valid PEM or DER public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ConfigurationError("public_key is not an RSA public key")
    if key.key_size < _MIN_MODULUS_BITS:
        raise ConfigurationError(f"RSA public key must be at least {_MIN_MODULUS_BITS} bits")
    return key
