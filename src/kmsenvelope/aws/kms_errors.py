"""Reasons and checks shared by everything that calls AWS KMS (keyrings and the branch key store)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..errors import ConfigurationError, KmsEnvelopeError
from .accounting import attempts_of, error_code

__all__ = ["check_grant_tokens", "failure_reason", "kms_errors"]


def check_grant_tokens(grant_tokens: Sequence[str]) -> tuple[str, ...]:
    """Validate grant tokens: a sequence (not a str) of non-empty strings."""
    if isinstance(grant_tokens, str):
        raise ConfigurationError("grant_tokens must be a sequence of str, not a str")
    tokens = tuple(grant_tokens)
    if any(not isinstance(t, str) or not t for t in tokens):
        raise ConfigurationError("grant tokens must be non-empty str")
    return tokens


def kms_errors() -> tuple[type[BaseException], ...]:
    """Exceptions a KMS attempt may raise that are collected as per-EDK failures."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError, KmsEnvelopeError)


_REASONS: Mapping[str, str] = {
    "AccessDeniedException": "access denied by AWS KMS",
    "DisabledException": "the KMS key is disabled",
    "NotFoundException": "the KMS key was not found",
    "KMSInvalidStateException": "the KMS key is not usable in its current state (e.g. pending deletion)",
    "InvalidCiphertextException": "AWS KMS rejected the ciphertext or encryption context",
    "IncorrectKeyException": "the ciphertext belongs to a different KMS key",
    "InvalidKeyUsageException": "the KMS key's usage or algorithm does not allow this operation",
    "InvalidGrantTokenException": "a grant token was rejected",
    "KeyUnavailableException": "the KMS key is temporarily unavailable",
    "NoCredentialsError": "no AWS credentials were found",
    "EndpointConnectionError": "could not connect to the AWS KMS endpoint",
    "ConnectTimeoutError": "connecting to AWS KMS timed out",
    "ReadTimeoutError": "AWS KMS did not answer before the read timeout",
}
_THROTTLING = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "LimitExceededException"}
)
_TRANSIENT = frozenset({"KMSInternalException", "DependencyTimeoutException", "ServiceUnavailableException"})


def failure_reason(exc: BaseException) -> str:
    """A short, secret-free explanation of why a KMS attempt failed."""
    if isinstance(exc, KmsEnvelopeError):
        return str(exc)
    code = error_code(exc)
    attempts = attempts_of(exc)
    if code in _THROTTLING:
        return f"throttled by AWS KMS; gave up after {attempts} attempts ({code})"
    if code in _TRANSIENT:
        return f"AWS KMS unavailable after {attempts} attempts ({code})"
    known = _REASONS.get(code)
    if known is not None:
        return f"{known} ({code})"
    response = getattr(exc, "response", None)
    message = response.get("Error", {}).get("Message", "") if isinstance(response, dict) else ""
    return f"{code}: {str(message)[:200]}" if message else code
