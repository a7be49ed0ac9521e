"""The AWS KMS MRK-aware discovery keyring (``aws-kms-mrk-discovery-keyring.md``).

Decrypt-only. It trusts the key ARN stored in each EDK, limited by an optional
:class:`~kmsenvelope.aws.arn.DiscoveryFilter`, and calls KMS only in its own region: a multi-Region key
EDK from another region is decrypted with the same key's replica here; a single-Region key from another
region is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..aws.arn import DiscoveryFilter
from ..aws.clients import KmsClientSupplier
from ..aws.requests import KmsRequest, Steps, run
from ..errors import ConfigurationError, EdkFailure, NoUsableKeyError, PolicyError
from ..materials.materials import DecryptionMaterials, EncryptedDataKey, EncryptionMaterials
from . import wrapping
from .kms_common import (
    PROVIDER_ID,
    check_grant_tokens,
    decrypt_request,
    edk_key_arn,
    failure_reason,
    kms_decrypt_steps,
    kms_errors,
    perform_kms,
    provider_info_text,
    resolve_supplier,
)

__all__ = ["KmsDiscoveryKeyring", "KmsDiscoveryRules"]


class KmsDiscoveryRules:
    """The discovery keyring's rules (which EDKs to try, with which key id, in which region), sans I/O.

    Shared by :class:`KmsDiscoveryKeyring` and :class:`kmsenvelope.aio.AsyncKmsDiscoveryKeyring`.
    """

    def __init__(
        self, region: str, discovery_filter: DiscoveryFilter | None, grant_tokens: Sequence[str]
    ) -> None:
        if not isinstance(region, str) or not region:
            raise ConfigurationError("KmsDiscoveryKeyring needs a non-empty region")
        if discovery_filter is not None and not isinstance(discovery_filter, DiscoveryFilter):
            raise ConfigurationError("discovery_filter must be a DiscoveryFilter")
        self.region = region
        self.discovery_filter = discovery_filter
        self.grant_tokens = check_grant_tokens(grant_tokens)

    def decrypt_steps(
        self, materials: DecryptionMaterials, edks: Sequence[EncryptedDataKey]
    ) -> Steps[DecryptionMaterials]:
        """Recover the data key from the first acceptable EDK that KMS decrypts in this region."""
        if materials.plaintext_data_key is not None:
            raise PolicyError("decryption materials already hold a data key")
        failures: list[EdkFailure] = []
        errors = kms_errors()
        region = self.region
        for edk in edks:
            if edk.provider_id != PROVIDER_ID:
                failures.append(
                    EdkFailure(edk.provider_id, provider_info_text(edk), "not an AWS KMS data key; skipped")
                )
                continue
            arn_text, arn = edk_key_arn(edk)
            rejection = self.discovery_filter.rejection(arn) if self.discovery_filter is not None else None
            if rejection is None and not arn.is_mrk and arn.region != region:
                rejection = f"single-Region key in {arn.region}, this keyring decrypts in {region}"
            if rejection is not None:
                failures.append(EdkFailure(PROVIDER_ID, arn_text, f"filtered out: {rejection}"))
                continue
            # An MRK is addressed in this keyring's region: its replica here shares the key material.
            key_id = str(arn.with_region(region)) if arn.is_mrk else arn_text

            def unwrap(
                wrapped: EncryptedDataKey, context: Mapping[str, str], key_id: str = key_id
            ) -> Steps[bytes]:
                request = decrypt_request(
                    region=region,
                    key_id=key_id,
                    ciphertext=wrapped.ciphertext,
                    grant_tokens=self.grant_tokens,
                    encryption_context=context,
                    pinned_region=True,
                )
                return (yield from kms_decrypt_steps(request))

            try:
                return (yield from wrapping.unwrap_edk_steps(materials, edk, unwrap))
            except errors as exc:
                failures.append(EdkFailure(PROVIDER_ID, arn_text, failure_reason(exc)))
        raise NoUsableKeyError("AWS KMS discovery keyring could not decrypt any data key", failures)


def discovery_encrypt_refusal() -> PolicyError:
    """Why a discovery keyring cannot encrypt."""
    return PolicyError("KmsDiscoveryKeyring is decrypt-only; use KmsKeyring to encrypt")


class KmsDiscoveryKeyring:
    """Decrypts any AWS KMS EDK whose key this caller may use in ``region``."""

    def __init__(
        self,
        region: str,
        *,
        discovery_filter: DiscoveryFilter | None = None,
        grant_tokens: Sequence[str] = (),
        client_supplier: KmsClientSupplier | None = None,
    ) -> None:
        self._rules = KmsDiscoveryRules(region, discovery_filter, grant_tokens)
        self._supplier = resolve_supplier(client_supplier)

    @property
    def region(self) -> str:
        """The region whose KMS this keyring calls."""
        return self._rules.region

    def __repr__(self) -> str:
        return (
            f"KmsDiscoveryKeyring(region={self.region!r}, discovery_filter={self._rules.discovery_filter!r})"
        )

    def on_encrypt(self, materials: EncryptionMaterials) -> EncryptionMaterials:
        """Always fails: a discovery keyring has no key to encrypt with."""
        raise discovery_encrypt_refusal()

    def on_decrypt(
        self, materials: DecryptionMaterials, edks: Sequence[EncryptedDataKey]
    ) -> DecryptionMaterials:
        """Recover the data key from the first acceptable EDK that KMS decrypts in this region."""
        return run(self._rules.decrypt_steps(materials, edks), self._perform)

    def _perform(self, request: KmsRequest) -> dict[str, Any]:
        return perform_kms(self._supplier, request)
