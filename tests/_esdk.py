"""Helpers for interop tests against the real ``aws-encryption-sdk`` 4.x package (no mocks).

Two ESDK key APIs are wrapped, both used through ``EncryptionSDKClient.encrypt`` / ``.decrypt``:

* the legacy master-key API: ``RawMasterKey`` + ``WrappingKey``, a ``RawMasterKeyProvider`` subclass;
* the MPL (``aws-cryptographic-material-providers``, installed with ``aws-encryption-sdk[MPL]`` from our
  test extras): ``create_raw_aes_keyring``, ``create_raw_rsa_keyring``, ``create_multi_keyring``,
  ``create_default_cryptographic_materials_manager`` and ``create_required_encryption_context_cmm``.

Keyring namespace == ESDK ``provider_id`` / MPL ``key_namespace``; keyring name == ESDK ``key_id`` /
MPL ``key_name``.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import aws_encryption_sdk
from aws_cryptographic_material_providers.mpl import (  # type: ignore[import-untyped]
    AwsCryptographicMaterialProviders,
)
from aws_cryptographic_material_providers.mpl.config import (  # type: ignore[import-untyped]
    MaterialProvidersConfig,
)
from aws_cryptographic_material_providers.mpl.models import (  # type: ignore[import-untyped]
    AesWrappingAlg,
    CreateDefaultCryptographicMaterialsManagerInput,
    CreateMultiKeyringInput,
    CreateRawAesKeyringInput,
    CreateRawRsaKeyringInput,
    CreateRequiredEncryptionContextCMMInput,
    PaddingScheme,
)
from aws_encryption_sdk.identifiers import Algorithm, EncryptionKeyType, WrappingAlgorithm
from aws_encryption_sdk.identifiers import CommitmentPolicy as EsdkPolicy
from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
from aws_encryption_sdk.key_providers.raw import RawMasterKey, RawMasterKeyProvider
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kmsenvelope import CommitmentPolicy, Suite

__all__ = [
    "PADDINGS",
    "StaticRawKeyProvider",
    "aes_wrapping_key",
    "esdk_aes_key",
    "esdk_decrypt",
    "esdk_encrypt",
    "esdk_rsa_key",
    "generate_rsa_pem",
    "keys_of",
    "mpl_aes_keyring",
    "mpl_multi_keyring",
    "mpl_required_context_cmm",
    "mpl_rsa_keyring",
    "policy_for",
    "random_bytes",
    "rsa_wrapping_key",
]

PADDINGS = ("PKCS1", "OAEP-SHA1", "OAEP-SHA256", "OAEP-SHA384", "OAEP-SHA512")

_AES_WRAPPING: dict[int, WrappingAlgorithm] = {
    16: WrappingAlgorithm.AES_128_GCM_IV12_TAG16_NO_PADDING,
    24: WrappingAlgorithm.AES_192_GCM_IV12_TAG16_NO_PADDING,
    32: WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
}
_RSA_WRAPPING: dict[str, WrappingAlgorithm] = {
    "PKCS1": WrappingAlgorithm.RSA_PKCS1,
    "OAEP-SHA1": WrappingAlgorithm.RSA_OAEP_SHA1_MGF1,
    "OAEP-SHA256": WrappingAlgorithm.RSA_OAEP_SHA256_MGF1,
    "OAEP-SHA384": WrappingAlgorithm.RSA_OAEP_SHA384_MGF1,
    "OAEP-SHA512": WrappingAlgorithm.RSA_OAEP_SHA512_MGF1,
}
_MPL_AES: dict[int, str] = {
    16: AesWrappingAlg.ALG_AES128_GCM_IV12_TAG16,
    24: AesWrappingAlg.ALG_AES192_GCM_IV12_TAG16,
    32: AesWrappingAlg.ALG_AES256_GCM_IV12_TAG16,
}
_MPL_RSA: dict[str, str] = {
    "PKCS1": PaddingScheme.PKCS1,
    "OAEP-SHA1": PaddingScheme.OAEP_SHA1_MGF1,
    "OAEP-SHA256": PaddingScheme.OAEP_SHA256_MGF1,
    "OAEP-SHA384": PaddingScheme.OAEP_SHA384_MGF1,
    "OAEP-SHA512": PaddingScheme.OAEP_SHA512_MGF1,
}


def random_bytes(n: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes (tests must be reproducible); ``seed`` varies the stream."""
    return random.Random(seed * 1_000_003 + n).randbytes(n)


def generate_rsa_pem(bits: int = 2048) -> tuple[bytes, bytes]:
    """A fresh RSA key pair as (private PEM, public PEM). Call once per module: it is slow."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def policy_for(suite: Suite) -> CommitmentPolicy:
    """The strictest policy under which both libraries encrypt with ``suite``."""
    if suite.committing:
        return CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    return CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT


def keys_of(edks: Iterable[Any]) -> set[tuple[str, bytes]]:
    """(provider id, key info) of ESDK ``EncryptedDataKey`` objects."""
    return {(edk.key_provider.provider_id, bytes(edk.key_provider.key_info)) for edk in edks}


def _client(policy: CommitmentPolicy) -> aws_encryption_sdk.EncryptionSDKClient:
    return aws_encryption_sdk.EncryptionSDKClient(commitment_policy=EsdkPolicy[policy.value])


def esdk_encrypt(
    policy: CommitmentPolicy,
    plaintext: bytes,
    *,
    suite: Suite | None = None,
    frame_length: int = 4096,
    context: Mapping[str, str] | None = None,
    **source: Any,
) -> bytes:
    """ESDK encrypt; ``source`` is one of ``key_provider=``, ``keyring=`` or ``materials_manager=``."""
    kwargs: dict[str, Any] = {
        "source": plaintext,
        "frame_length": frame_length,
        "encryption_context": dict(context or {}),
        **source,
    }
    if suite is not None:
        kwargs["algorithm"] = Algorithm.get_by_id(suite.id)
    ciphertext, _header = _client(policy).encrypt(**kwargs)
    return bytes(ciphertext)


def esdk_decrypt(
    policy: CommitmentPolicy, ciphertext: bytes, context: Mapping[str, str] | None = None, **source: Any
) -> tuple[bytes, Any]:
    """ESDK decrypt -> (plaintext, ESDK MessageHeader). ``context`` (MPL only) is the reproduced context."""
    kwargs: dict[str, Any] = {"source": ciphertext, **source}
    if context is not None:
        kwargs["encryption_context"] = dict(context)
    plaintext, header = _client(policy).decrypt(**kwargs)
    return bytes(plaintext), header


# -- legacy master keys ---------------------------------------------------------------------------


def aes_wrapping_key(key: bytes) -> WrappingKey:
    return WrappingKey(
        wrapping_algorithm=_AES_WRAPPING[len(key)],
        wrapping_key=key,
        wrapping_key_type=EncryptionKeyType.SYMMETRIC,
    )


def rsa_wrapping_key(pem: bytes, padding: str, *, private: bool = True) -> WrappingKey:
    return WrappingKey(
        wrapping_algorithm=_RSA_WRAPPING[padding],
        wrapping_key=pem,
        wrapping_key_type=EncryptionKeyType.PRIVATE if private else EncryptionKeyType.PUBLIC,
    )


def esdk_aes_key(namespace: str, name: str, key: bytes) -> RawMasterKey:
    """The legacy master key matching ``RawAesKeyring(namespace, name, key)``."""
    wrapping = aes_wrapping_key(key)
    return RawMasterKey(provider_id=namespace, key_id=name.encode("utf-8"), wrapping_key=wrapping)


def esdk_rsa_key(
    namespace: str, name: str, pem: bytes, padding: str, *, private: bool = True
) -> RawMasterKey:
    """The legacy master key matching ``RawRsaKeyring(namespace, name, ..., padding=padding)``."""
    wrapping = rsa_wrapping_key(pem, padding, private=private)
    return RawMasterKey(provider_id=namespace, key_id=name.encode("utf-8"), wrapping_key=wrapping)


class StaticRawKeyProvider(RawMasterKeyProvider):  # type: ignore[misc]
    """A ``RawMasterKeyProvider`` serving fixed wrapping keys under one provider id (= our namespace)."""

    provider_id: str = ""

    def __init__(self, **kwargs: Any) -> None:  # the ESDK builds the config in __new__
        self._keys: dict[bytes, WrappingKey] = {}

    @classmethod
    def create(cls, namespace: str, keys: Mapping[str, WrappingKey]) -> StaticRawKeyProvider:
        provider = cls()
        provider.provider_id = namespace
        provider._keys = {name.encode("utf-8"): key for name, key in keys.items()}
        provider.add_master_keys_from_list(list(provider._keys))
        return provider

    @classmethod
    def combine(cls, *members: Any) -> StaticRawKeyProvider:
        """A provider that encrypts with every member (the first generates the data key).

        A bare ``MasterKey`` encrypts only with itself even after ``add_master_key_provider``.
        """
        provider = cls.create("combined", {})
        for member in members:
            provider.add_master_key_provider(member)
        return provider

    def _get_raw_key(self, key_id: bytes) -> WrappingKey:
        return self._keys[key_id]


# -- MPL keyrings ---------------------------------------------------------------------------------


@functools.cache
def _mpl() -> AwsCryptographicMaterialProviders:
    return AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())


def mpl_aes_keyring(namespace: str, name: str, key: bytes) -> Any:
    return _mpl().create_raw_aes_keyring(
        CreateRawAesKeyringInput(
            key_namespace=namespace, key_name=name, wrapping_key=key, wrapping_alg=_MPL_AES[len(key)]
        )
    )


def mpl_rsa_keyring(
    namespace: str,
    name: str,
    padding: str,
    *,
    private_pem: bytes | None = None,
    public_pem: bytes | None = None,
) -> Any:
    return _mpl().create_raw_rsa_keyring(
        CreateRawRsaKeyringInput(
            key_namespace=namespace,
            key_name=name,
            padding_scheme=_MPL_RSA[padding],
            public_key=public_pem,
            private_key=private_pem,
        )
    )


def mpl_multi_keyring(generator: Any, children: Sequence[Any]) -> Any:
    return _mpl().create_multi_keyring(
        CreateMultiKeyringInput(generator=generator, child_keyrings=list(children))
    )


def mpl_required_context_cmm(keyring: Any, required_keys: Iterable[str]) -> Any:
    """The MPL ``RequiredEncryptionContextCMM`` over a default CMM for ``keyring``."""
    default = _mpl().create_default_cryptographic_materials_manager(
        CreateDefaultCryptographicMaterialsManagerInput(keyring=keyring)
    )
    return _mpl().create_required_encryption_context_cmm(
        CreateRequiredEncryptionContextCMMInput(
            underlying_cmm=default, required_encryption_context_keys=list(required_keys)
        )
    )
