"""The name-dependent part of encrypting or decrypting a record, computed once per set of names.

Canonical paths, their sort order, the header legend and which fields are encrypted depend only on the
table name and the attribute names and actions, not on the values. Callers that see the same attribute
names over and over (the DynamoDB item encryptor) build a layout once and pass it with every record.
Layouts are immutable, so they can be shared between threads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from ..errors import MalformedInputError
from .context import canonical_path
from .model import Action

__all__ = ["DecryptLayout", "EncryptLayout", "decrypt_layout", "encrypt_layout"]


class EncryptLayout(NamedTuple):
    signed: tuple[tuple[bytes, str, Action], ...]
    """(canonical path, name, action) of every signed attribute, in canonical-path order."""
    legend: bytes
    encrypted: tuple[str, ...]
    """ENCRYPT_AND_SIGN attributes."""
    context_names: tuple[str, ...]
    """SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT attributes."""
    actions: Mapping[str, Action]
    """Read-only name -> action of the signed attributes, in canonical-path order (for the header)."""


class DecryptLayout(NamedTuple):
    fields: tuple[tuple[bytes, str], ...]
    """(canonical path, name) of every attribute in signature scope, in canonical-path order."""
    plans: dict[bytes, tuple[Any, ...]]
    """What each header legend seen with these fields means (filled by the decryptor; public values)."""


def encrypt_layout(table_name: str, actions: Mapping[str, Action]) -> EncryptLayout:
    """The layout of a record with these attributes; DO_NOTHING ones are left out."""
    signed = sorted(
        (canonical_path(table_name, name), name, action)
        for name, action in actions.items()
        if action is not Action.DO_NOTHING
    )
    if not signed:
        raise MalformedInputError("at least one attribute must be signed")
    return EncryptLayout(
        tuple(signed),
        bytes(action.legend for _, _, action in signed),
        tuple(name for _, name, action in signed if action is Action.ENCRYPT_AND_SIGN),
        tuple(name for _, name, action in signed if action is Action.SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT),
        MappingProxyType({name: action for _, name, action in signed}),
    )


def decrypt_layout(table_name: str, names: Iterable[str]) -> DecryptLayout:
    """The layout of a stored record whose signature scope is ``names``."""
    return DecryptLayout(tuple(sorted((canonical_path(table_name, name), name) for name in names)), {})
