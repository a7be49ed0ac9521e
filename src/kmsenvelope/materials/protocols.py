"""The two pluggable interfaces: keyrings and materials managers (CMMs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from .materials import (
    AnySuite,
    DecryptionMaterials,
    DecryptionRequest,
    EncryptedDataKey,
    EncryptionMaterials,
    EncryptionRequest,
)

__all__ = ["Keyring", "MaterialsManager", "RecordKeyring"]


@runtime_checkable
class Keyring(Protocol):
    """Generates, wraps and unwraps data keys (ESDK ``framework/keyring-interface.md``).

    ``on_encrypt`` returns materials that hold a data key and at least one more EDK than it was
    given: it generates the data key when the input has none. ``on_decrypt`` returns materials
    with the data key recovered from one of ``edks``, or raises :class:`~kmsenvelope.errors.NoUsableKeyError`
    listing why each EDK failed. Implementations must be safe to share between threads.
    """

    def on_encrypt(self, materials: EncryptionMaterials) -> EncryptionMaterials:
        """Return ``materials`` with a data key (generated if absent) and this keyring's EDK added."""
        ...

    def on_decrypt(
        self, materials: DecryptionMaterials, edks: Sequence[EncryptedDataKey]
    ) -> DecryptionMaterials:
        """Return ``materials`` with the data key recovered from one of ``edks``."""
        ...


@runtime_checkable
class MaterialsManager(Protocol):
    """Builds materials for one message (ESDK ``framework/cmm-interface.md``)."""

    def get_encryption_materials(self, request: EncryptionRequest) -> EncryptionMaterials:
        """Materials (suite, context, data key, EDKs, signing key) to encrypt one message."""
        ...

    def decrypt_materials(self, request: DecryptionRequest) -> DecryptionMaterials:
        """Materials (data key, verification key) to decrypt one message with the given header."""
        ...


@runtime_checkable
class RecordKeyring(Keyring, Protocol):
    """A keyring that can also serve DB-ESDK records (intermediate key wrapping) without materials.

    Optional. :class:`~kmsenvelope.materials.cmm.DefaultMaterials` calls these instead of
    ``on_encrypt`` / ``on_decrypt`` for unsigned DB-ESDK suites; they must give exactly what those
    would have added: a fresh data key, one EDK and its symmetric signing key, and back.
    """

    def fresh_record_key(
        self, suite: AnySuite, context: Mapping[str, str]
    ) -> tuple[bytes, EncryptedDataKey, bytes]:
        """(new data key, its EDK, the EDK's symmetric signing key) under the frozen ``context``."""
        ...

    def open_record_key(
        self, suite: AnySuite, context: Mapping[str, str], edks: Sequence[EncryptedDataKey]
    ) -> tuple[bytes, bytes]:
        """(data key, symmetric signing key) from one of ``edks``, or :class:`NoUsableKeyError`."""
        ...
