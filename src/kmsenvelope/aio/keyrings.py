"""Async AWS KMS keyrings: the rules of :class:`~kmsenvelope.KmsKeyring` and
:class:`~kmsenvelope.KmsDiscoveryKeyring` (the very same sans-IO code), with aiobotocore I/O."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..aws.arn import DiscoveryFilter
from ..aws.requests import KmsRequest
from ..errors import ConfigurationError
from ..keyrings.kms import KmsKeyringRules
from ..keyrings.kms_discovery import KmsDiscoveryRules, discovery_encrypt_refusal
from ..materials.materials import DecryptionMaterials, EncryptedDataKey, EncryptionMaterials
from ._drive import perform_kms, run_async
from .clients import AsyncClientSupplier

__all__ = ["AsyncKmsDiscoveryKeyring", "AsyncKmsKeyring"]


def _check_supplier(client_supplier: object) -> Any:
    if not callable(client_supplier):
        raise ConfigurationError(
            "client_supplier must be an AsyncClientSupplier (async region -> KMS client)"
        )
    return client_supplier


class AsyncKmsKeyring:
    """:class:`~kmsenvelope.KmsKeyring` for asyncio: same MRK rules, EDKs, errors and accounting.

    ``client_supplier`` is an :class:`AsyncClientSupplier` (or any ``async (region) -> aiobotocore
    KMS client`` callable with an optional ``default_region``). Use it with
    :class:`~kmsenvelope.aio.AsyncEnvelope`.
    """

    def __init__(
        self,
        key_arn: str,
        *,
        additional_key_ids: Sequence[str] = (),
        client_supplier: AsyncClientSupplier | Any,
        grant_tokens: Sequence[str] = (),
    ) -> None:
        self._supplier = _check_supplier(client_supplier)
        self._rules = KmsKeyringRules(key_arn, additional_key_ids, grant_tokens, self._supplier)

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The configured key identifiers, generator first."""
        return self._rules.key_ids

    async def on_encrypt(self, materials: EncryptionMaterials) -> EncryptionMaterials:
        """Generate the data key with the generator (unless present), then wrap it under every key."""
        return await run_async(self._rules.encrypt_steps(materials), self._perform)

    async def on_decrypt(
        self, materials: DecryptionMaterials, edks: Sequence[EncryptedDataKey]
    ) -> DecryptionMaterials:
        """Recover the data key from the first matching EDK that KMS decrypts."""
        return await run_async(self._rules.decrypt_steps(materials, edks), self._perform)

    async def _perform(self, request: KmsRequest) -> dict[str, Any]:
        return await perform_kms(self._supplier, request)

    def __repr__(self) -> str:
        return (
            f"AsyncKmsKeyring(key_ids={list(self.key_ids)!r}, grant_tokens={len(self._rules.grant_tokens)})"
        )


class AsyncKmsDiscoveryKeyring:
    """:class:`~kmsenvelope.KmsDiscoveryKeyring` for asyncio: decrypt-only, calls KMS in ``region`` only."""

    def __init__(
        self,
        region: str,
        *,
        discovery_filter: DiscoveryFilter | None = None,
        client_supplier: AsyncClientSupplier | Any,
        grant_tokens: Sequence[str] = (),
    ) -> None:
        self._rules = KmsDiscoveryRules(region, discovery_filter, grant_tokens)
        self._supplier = _check_supplier(client_supplier)

    @property
    def region(self) -> str:
        """The region whose KMS this keyring calls."""
        return self._rules.region

    async def on_encrypt(self, materials: EncryptionMaterials) -> EncryptionMaterials:
        """Always fails: a discovery keyring has no key to encrypt with."""
        raise discovery_encrypt_refusal()

    async def on_decrypt(
        self, materials: DecryptionMaterials, edks: Sequence[EncryptedDataKey]
    ) -> DecryptionMaterials:
        """Recover the data key from the first acceptable EDK that KMS decrypts in this region."""
        return await run_async(self._rules.decrypt_steps(materials, edks), self._perform)

    async def _perform(self, request: KmsRequest) -> dict[str, Any]:
        return await perform_kms(self._supplier, request)

    def __repr__(self) -> str:
        return (
            f"AsyncKmsDiscoveryKeyring(region={self.region!r}, "
            f"discovery_filter={self._rules.discovery_filter!r})"
        )
