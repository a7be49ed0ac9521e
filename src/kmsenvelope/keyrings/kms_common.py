"""Pieces shared by the AWS KMS keyrings: EDK filtering, KMS error reasons, the Decrypt call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..aws.accounting import call_kms
from ..aws.arn import KmsArn, parse_arn, validate_identifier
from ..aws.clients import ClientSupplier, KmsClientSupplier, default_region_of
from ..aws.kms_errors import check_grant_tokens, failure_reason, kms_errors
from ..aws.requests import KmsRequest, KmsResponseError, Steps, check_client_region
from ..errors import ConfigurationError, EdkFailure, NoUsableKeyError
from ..materials.materials import EncryptedDataKey

__all__ = [
    "PROVIDER_ID",
    "RSA_PROVIDER_ID",
    "KmsResponseError",
    "check_decrypt_response",
    "check_grant_tokens",
    "decrypt_request",
    "edk_key_arn",
    "failure_reason",
    "kms_decrypt_steps",
    "kms_errors",
    "perform_kms",
    "provider_info_text",
    "region_for",
    "resolve_supplier",
]

PROVIDER_ID = "aws-kms"
RSA_PROVIDER_ID = "aws-kms-rsa"


def resolve_supplier(client_supplier: KmsClientSupplier | None) -> KmsClientSupplier:
    if client_supplier is None:
        return ClientSupplier()
    if not callable(client_supplier):
        raise ConfigurationError("client_supplier must be a callable region -> KMS client")
    return client_supplier


def region_for(key_id: str, supplier: object) -> str:
    """The region whose client serves ``key_id``: the ARN's, else the supplier's default region."""
    validate_identifier(key_id)
    if key_id.startswith("arn:"):
        return parse_arn(key_id).region
    region = default_region_of(supplier)
    if region is None:
        raise ConfigurationError(
            f"key identifier {key_id!r} has no region; use a key ARN or a client supplier whose "
            "session has a default region"
        )
    return region


def provider_info_text(edk: EncryptedDataKey) -> str:
    """The EDK's provider info as text for error messages (hex prefix if not printable UTF-8)."""
    return edk.describe().partition(" ")[2]


def edk_key_arn(edk: EncryptedDataKey) -> tuple[str, KmsArn]:
    """The key ARN stored in a KMS EDK's provider info.

    The KMS keyring specs say OnDecrypt MUST fail (not skip) when a provider-id match carries provider
    info that is not a valid key ARN, so this raises :class:`NoUsableKeyError` at once.
    """
    try:
        text = edk.provider_info.decode("utf-8")
        arn = parse_arn(text)
        if arn.resource_type != "key":
            raise ConfigurationError("resource type is not 'key'")
    except (UnicodeDecodeError, ConfigurationError) as exc:
        failure = EdkFailure(
            edk.provider_id, provider_info_text(edk), f"provider info is not a valid AWS KMS key ARN ({exc})"
        )
        raise NoUsableKeyError("malformed AWS KMS encrypted data key", [failure]) from None
    return text, arn


def kms_decrypt(
    client: Any,
    *,
    region: str,
    key_id: str,
    ciphertext: bytes,
    grant_tokens: Sequence[str],
    encryption_context: Mapping[str, str] | None = None,
    encryption_algorithm: str | None = None,
) -> bytes:
    """KMS Decrypt with ``KeyId=key_id``; the response must name exactly that key."""
    request = decrypt_request(
        region=region,
        key_id=key_id,
        ciphertext=ciphertext,
        grant_tokens=grant_tokens,
        encryption_context=encryption_context,
        encryption_algorithm=encryption_algorithm,
    )
    response = call_kms(client, request.operation, region=region, key_id=key_id, **request.params)
    return check_decrypt_response(response, key_id)


def decrypt_request(
    *,
    region: str,
    key_id: str,
    ciphertext: bytes,
    grant_tokens: Sequence[str],
    encryption_context: Mapping[str, str] | None = None,
    encryption_algorithm: str | None = None,
    pinned_region: bool = False,
) -> KmsRequest:
    """The KMS Decrypt request for one wrapped key, sent with ``KeyId=key_id``."""
    params: dict[str, Any] = {
        "KeyId": key_id,
        "CiphertextBlob": ciphertext,
        "GrantTokens": list(grant_tokens),
    }
    if encryption_context is not None:
        params["EncryptionContext"] = dict(encryption_context)
    if encryption_algorithm is not None:
        params["EncryptionAlgorithm"] = encryption_algorithm
    return KmsRequest("Decrypt", region, key_id, params, pinned_region)


def check_decrypt_response(response: Mapping[str, Any], key_id: str) -> bytes:
    """The plaintext of a KMS Decrypt response, which must name exactly the requested key."""
    answered = response.get("KeyId")
    if answered != key_id:
        raise KmsResponseError(f"AWS KMS Decrypt answered for key {answered!r}, not the requested key")
    plaintext = response.get("Plaintext")
    if not isinstance(plaintext, bytes):
        raise KmsResponseError("AWS KMS Decrypt returned no plaintext")
    return plaintext


def kms_decrypt_steps(request: KmsRequest) -> Steps[bytes]:
    """Sans-IO KMS Decrypt: ask ``request`` (from :func:`decrypt_request`), check the answer."""
    response = yield request
    return check_decrypt_response(response, request.key_id)


def perform_kms(supplier: KmsClientSupplier, request: KmsRequest) -> dict[str, Any]:
    """Send one KMS request with a blocking client from ``supplier`` (the sync keyrings' driver)."""
    client = check_client_region(supplier(request.region), request)
    return call_kms(client, request.operation, region=request.region, key_id=request.key_id, **request.params)


def response_ciphertext(response: Mapping[str, Any], operation: str) -> bytes:
    """The ``CiphertextBlob`` of a GenerateDataKey/Encrypt response, which must be non-empty bytes."""
    blob = response.get("CiphertextBlob")
    if not isinstance(blob, bytes) or not blob:
        raise KmsResponseError(f"AWS KMS {operation} returned no CiphertextBlob")
    return blob


def response_key_arn(response: Mapping[str, Any], operation: str) -> str:
    """The ``KeyId`` of a GenerateDataKey/Encrypt response, which must be a valid key ARN."""
    key_id = response.get("KeyId")
    try:
        if not isinstance(key_id, str) or parse_arn(key_id).resource_type != "key":
            raise ConfigurationError("not a key ARN")
    except ConfigurationError:
        raise KmsResponseError(
            f"AWS KMS {operation} returned KeyId {key_id!r}, which is not a key ARN"
        ) from None
    return key_id
