"""The async counterparts of :mod:`kmsenvelope.materials.protocols`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ..materials.materials import (
    DecryptionMaterials,
    DecryptionRequest,
    EncryptedDataKey,
    EncryptionMaterials,
    EncryptionRequest,
)

__all__ = ["AsyncKeyring", "AsyncMaterialsManager"]


@runtime_checkable
class AsyncKeyring(Protocol):
    """A keyring whose ``on_encrypt`` / ``on_decrypt`` are coroutines (same contract as ``Keyring``)."""

    async def on_encrypt(self, materials: EncryptionMaterials) -> EncryptionMaterials:
        """Return ``materials`` with a data key (generated if absent) and this keyring's EDK added."""
        ...

    async def on_decrypt(
        self, materials: DecryptionMaterials, edks: Sequence[EncryptedDataKey]
    ) -> DecryptionMaterials:
        """Return ``materials`` with the data key recovered from one of ``edks``."""
        ...


@runtime_checkable
class AsyncMaterialsManager(Protocol):
    """A materials manager whose two operations are coroutines (same contract as ``MaterialsManager``)."""

    async def get_encryption_materials(self, request: EncryptionRequest) -> EncryptionMaterials:
        """Materials to encrypt one message."""
        ...

    async def decrypt_materials(self, request: DecryptionRequest) -> DecryptionMaterials:
        """Materials to decrypt one message with the given header."""
        ...
