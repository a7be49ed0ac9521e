"""The AWS KMS keyring, multi-Region-key aware (``aws-kms-mrk-keyring.md``).

One generator key (``GenerateDataKey``) plus optional additional keys (``Encrypt``), like the MPL's
strict MRK-aware multi-keyring. On decrypt an EDK is tried with a configured key when the two match
under *MRK Match for Decrypt*; ``Decrypt`` is sent with the *configured* key id to that key's region,
so a replica of a multi-Region key decrypts locally what its primary encrypted elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..aws.arn import mrk_match
from ..aws.clients import KmsClientSupplier
from ..aws.requests import KmsRequest, Steps, run
from ..errors import ConfigurationError, EdkFailure, NoUsableKeyError
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
    region_for,
    resolve_supplier,
    response_ciphertext,
    response_key_arn,
)

__all__ = ["KmsKeyring", "KmsKeyringRules"]


class KmsKeyringRules:
    """What the AWS KMS keyring asks KMS and how it checks the answers, without doing any I/O.

    :class:`KmsKeyring` drives these steps with blocking boto3 clients and
    :class:`kmsenvelope.aio.AsyncKmsKeyring` with aiobotocore: one implementation of the MRK rules.
    """

    def __init__(
        self,
        key_id: str,
        additional_key_ids: Sequence[str],
        grant_tokens: Sequence[str],
        supplier: object,
    ) -> None:
        if isinstance(additional_key_ids, str):
            raise ConfigurationError("additional_key_ids must be a sequence of str, not a str")
        keys = (key_id, *additional_key_ids)
        if not key_id:
            raise ConfigurationError("KmsKeyring needs a non-empty key_id")
        self.regions: dict[str, str] = {key: region_for(key, supplier) for key in keys}
        self.key_ids: tuple[str, ...] = tuple(dict.fromkeys(keys))
        self.grant_tokens = check_grant_tokens(grant_tokens)

    def encrypt_steps(self, materials: EncryptionMaterials) -> Steps[EncryptionMaterials]:
        """Generate the data key with the generator (unless present), then wrap it under every key."""
        for key in self.key_ids:
            materials = yield from wrapping.on_encrypt_steps(
                materials, self._wrapper(key), self._generator(key)
            )
        return materials

    def _generator(self, key: str) -> wrapping.GenerateAndWrapSteps:
        region = self.regions[key]

        def generate_and_wrap(
            length: int, context: Mapping[str, str]
        ) -> Steps[tuple[bytes, EncryptedDataKey]]:
            params = {
                "KeyId": key,
                "NumberOfBytes": length,
                "EncryptionContext": dict(context),
                "GrantTokens": list(self.grant_tokens),
            }
            try:
                response = yield KmsRequest("GenerateDataKey", region, key, params)
                arn = response_key_arn(response, "GenerateDataKey")
            except kms_errors() as exc:
                raise _encrypt_failure("GenerateDataKey", key, exc) from exc
            plaintext = response.get("Plaintext")
            if not isinstance(plaintext, bytes):
                raise NoUsableKeyError(f"AWS KMS GenerateDataKey returned no plaintext for {key}")
            blob = response_ciphertext(response, "GenerateDataKey")
            return plaintext, EncryptedDataKey(PROVIDER_ID, arn.encode("utf-8"), blob)

        return generate_and_wrap

    def _wrapper(self, key: str) -> wrapping.WrapSteps:
        region = self.regions[key]

        def wrap(data_key: bytes, context: Mapping[str, str]) -> Steps[EncryptedDataKey]:
            params = {
                "KeyId": key,
                "Plaintext": data_key,
                "EncryptionContext": dict(context),
                "GrantTokens": list(self.grant_tokens),
            }
            try:
                response = yield KmsRequest("Encrypt", region, key, params)
                arn = response_key_arn(response, "Encrypt")
            except kms_errors() as exc:
                raise _encrypt_failure("Encrypt", key, exc) from exc
            blob = response_ciphertext(response, "Encrypt")
            return EncryptedDataKey(PROVIDER_ID, arn.encode("utf-8"), blob)

        return wrap

    def decrypt_steps(
        self, materials: DecryptionMaterials, edks: Sequence[EncryptedDataKey]
    ) -> Steps[DecryptionMaterials]:
        """Recover the data key from the first matching EDK that KMS decrypts."""
        if materials.plaintext_data_key is not None:
            # The MRK keyring spec returns such materials unchanged rather than failing.
            return materials
        failures: dict[int, EdkFailure] = {}
        candidates: list[tuple[int, EncryptedDataKey, str]] = []
        for index, edk in enumerate(edks):
            if edk.provider_id != PROVIDER_ID:
                failures[index] = EdkFailure(
                    edk.provider_id, provider_info_text(edk), "not an AWS KMS data key; skipped"
                )
                continue
            arn_text, _ = edk_key_arn(edk)
            candidates.append((index, edk, arn_text))
            failures[index] = EdkFailure(PROVIDER_ID, arn_text, "does not match any configured KMS key")

        errors = kms_errors()
        for key in self.key_ids:
            region = self.regions[key]
            for index, edk, arn_text in candidates:
                if not mrk_match(key, arn_text):
                    continue

                def unwrap(
                    wrapped: EncryptedDataKey,
                    context: Mapping[str, str],
                    key: str = key,
                    region: str = region,
                ) -> Steps[bytes]:
                    request = decrypt_request(
                        region=region,
                        key_id=key,
                        ciphertext=wrapped.ciphertext,
                        grant_tokens=self.grant_tokens,
                        encryption_context=context,
                    )
                    return (yield from kms_decrypt_steps(request))

                try:
                    return (yield from wrapping.unwrap_edk_steps(materials, edk, unwrap))
                except errors as exc:
                    failures[index] = EdkFailure(PROVIDER_ID, arn_text, f"with {key}: {failure_reason(exc)}")
        raise NoUsableKeyError(
            "AWS KMS keyring could not decrypt any data key", [failures[i] for i in sorted(failures)]
        )


class KmsKeyring:
    """Wraps data keys under one or more AWS KMS keys.

    ``key_id`` is the generator: any KMS identifier (key ARN, key id, alias name or alias ARN). Only
    key ARNs can match EDKs on decrypt; a bare id or alias is used for encryption only and resolved in
    the client supplier's default region. ``additional_key_ids`` each add one more EDK via ``Encrypt``.
    """

    def __init__(
        self,
        key_id: str,
        *,
        additional_key_ids: Sequence[str] = (),
        grant_tokens: Sequence[str] = (),
        client_supplier: KmsClientSupplier | None = None,
    ) -> None:
        self._supplier = resolve_supplier(client_supplier)
        self._rules = KmsKeyringRules(key_id, additional_key_ids, grant_tokens, self._supplier)

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The configured key identifiers, generator first."""
        return self._rules.key_ids

    def __repr__(self) -> str:
        return f"KmsKeyring(key_ids={list(self.key_ids)!r}, grant_tokens={len(self._rules.grant_tokens)})"

    def on_encrypt(self, materials: EncryptionMaterials) -> EncryptionMaterials:
        """Generate the data key with the generator (unless present), then wrap it under every key."""
        return run(self._rules.encrypt_steps(materials), self._perform)

    def on_decrypt(
        self, materials: DecryptionMaterials, edks: Sequence[EncryptedDataKey]
    ) -> DecryptionMaterials:
        """Recover the data key from the first matching EDK that KMS decrypts."""
        return run(self._rules.decrypt_steps(materials, edks), self._perform)

    def _perform(self, request: KmsRequest) -> dict[str, Any]:
        return perform_kms(self._supplier, request)


def _encrypt_failure(operation: str, key: str, exc: BaseException) -> NoUsableKeyError:
    return NoUsableKeyError(
        f"AWS KMS {operation} failed", [EdkFailure(PROVIDER_ID, key, failure_reason(exc))]
    )
