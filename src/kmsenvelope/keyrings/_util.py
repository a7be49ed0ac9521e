"""Helpers shared by keyrings: trying each EDK and collecting secret-free failure reasons."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..errors import EdkFailure, KmsEnvelopeError, NoUsableKeyError
from ..materials.materials import DecryptionMaterials, EncryptedDataKey

__all__ = ["decrypt_first", "edk_failure"]


def edk_failure(edk: EncryptedDataKey, reason: str) -> EdkFailure:
    provider_id, _, info = edk.describe().partition(" ")
    return EdkFailure(provider_id, info, reason)


def decrypt_first(
    keyring_name: str,
    materials: DecryptionMaterials,
    edks: Sequence[EncryptedDataKey],
    matches: Callable[[EncryptedDataKey], bool],
    attempt: Callable[[EncryptedDataKey], DecryptionMaterials],
) -> DecryptionMaterials:
    """Try each matching EDK in order; the first success wins, otherwise list every reason."""
    if materials.plaintext_data_key is not None:
        return materials
    failures: list[EdkFailure] = []
    for edk in edks:
        if not matches(edk):
            failures.append(edk_failure(edk, f"not for {keyring_name}"))
            continue
        try:
            return attempt(edk)
        except KmsEnvelopeError as exc:
            failures.append(edk_failure(edk, f"{keyring_name}: {type(exc).__name__}: {exc}"))
    raise NoUsableKeyError(f"{keyring_name} could not decrypt any encrypted data key", failures)
