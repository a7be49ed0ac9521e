"""The multi-keyring (ESDK ``framework/multi-keyring.md``): one generator plus children.

Encrypt: the generator makes the data key, every child adds its own EDK, so any one of them can
decrypt. Decrypt: the generator, then each child in order, until one recovers the data key.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ConfigurationError, EdkFailure, KmsEnvelopeError, NoUsableKeyError, PolicyError
from ..materials.materials import DecryptionMaterials, EncryptedDataKey, EncryptionMaterials
from ..materials.protocols import Keyring

__all__ = ["MultiKeyring", "as_wrapping_keyring"]


class MultiKeyring:
    """Combines keyrings so a message can be decrypted by any of them. Thread-safe if its children are."""

    def __init__(self, generator: Keyring | None = None, children: Sequence[Keyring] = ()) -> None:
        children = tuple(children)
        if generator is None and not children:
            raise ConfigurationError("MultiKeyring needs a generator or at least one child")
        for keyring in (generator, *children):
            if keyring is not None and not isinstance(keyring, Keyring):
                raise ConfigurationError(f"{keyring!r} is not a keyring")
        self._generator = generator
        self._children = children

    @property
    def generator(self) -> Keyring | None:
        return self._generator

    @property
    def children(self) -> tuple[Keyring, ...]:
        return self._children

    def on_encrypt(self, materials: EncryptionMaterials) -> EncryptionMaterials:
        """Generate the data key if needed and add this keyring's EDK (see :class:`Keyring`)."""
        if self._generator is not None:
            if materials.plaintext_data_key is not None:
                raise PolicyError(
                    "MultiKeyring with a generator received materials that already hold a data key"
                )
            materials = self._generator.on_encrypt(materials)
            if materials.plaintext_data_key is None:
                raise NoUsableKeyError("the generator keyring produced no data key")
        elif materials.plaintext_data_key is None:
            raise NoUsableKeyError("MultiKeyring without a generator needs materials that hold a data key")
        for child in self._children:
            materials = child.on_encrypt(materials)
        return materials

    def on_decrypt(
        self, materials: DecryptionMaterials, edks: Sequence[EncryptedDataKey]
    ) -> DecryptionMaterials:
        if materials.plaintext_data_key is not None:
            return materials
        failures: list[EdkFailure] = []
        for keyring in (self._generator, *self._children):
            if keyring is None:
                continue
            try:
                return keyring.on_decrypt(materials, edks)
            except NoUsableKeyError as exc:
                failures.extend(exc.failures)
            except KmsEnvelopeError as exc:
                # A failing child must not stop the others (multi-keyring spec, OnDecrypt).
                failures.append(EdkFailure(type(keyring).__name__, "", f"{type(exc).__name__}: {exc}"))
        raise NoUsableKeyError("no keyring in the MultiKeyring could decrypt a data key", failures)

    def __repr__(self) -> str:
        return f"MultiKeyring(generator={self._generator!r}, children={list(self._children)!r})"


def as_wrapping_keyring(keyring: Keyring) -> Keyring:
    """``keyring`` with every multi-keyring generator demoted to a child, for wrapping an existing data key.

    A generator must refuse materials that already hold a data key (multi-keyring spec, OnEncrypt); a
    rewrap has one, and wants every keyring it was given to wrap it.
    """
    if isinstance(keyring, MultiKeyring) and keyring.generator is not None:
        members = (keyring.generator, *keyring.children)
        return MultiKeyring(None, [as_wrapping_keyring(member) for member in members])
    return keyring
