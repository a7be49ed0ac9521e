"""The name-dependent part of encrypting or decrypting a record, computed once per set of names.

Canonical paths, their sort order, the header legend and which fields are encrypted depend only on the
table name and the attribute names and actions, not on the values. Callers that see the same attribute
names over and over (the DynamoDB item encryptor) build a layout once and pass it with every record.
Layouts are immutable, so they can be shared between threads.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from ..errors import MalformedInputError
from ..materials.bounded_cache import BoundedCache
from .context import canonical_path
from .model import Action

__all__ = [
    "LEGENDS_PER_LAYOUT",
    "DecryptLayout",
    "EncryptLayout",
    "decrypt_layout",
    "decrypt_layout_size",
    "encrypt_layout",
    "encrypt_layout_size",
    "legend_plan_size",
]


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
    plans: BoundedCache[bytes, tuple[Any, ...]]
    """What each header legend seen with these fields means: filled by the decryptor, and only with
    legends of records that authenticated. At most ``LEGENDS_PER_LAYOUT`` entries of
    :func:`legend_plan_size` bytes each."""


LEGENDS_PER_LAYOUT = 4
"""Records with one set of attribute names normally share one legend; a configuration change adds one."""


def legend_plan_size(fields: int) -> int:
    """A generous estimate of the bytes of one legend and its plan, for a layout of ``fields`` fields.

    The plan is three tuples over the fields (one of ``(path, name, encrypted?)`` triples) whose paths
    and names are shared with the layout; the legend is ``fields`` bytes.
    """
    return 4 * _TUPLE_BYTES + fields * (_TRIPLE_BYTES + 4 * _POINTER) + sys.getsizeof(b"") + fields


_POINTER = 8
_TUPLE_BYTES = sys.getsizeof(())
_TRIPLE_BYTES = sys.getsizeof((0, 0, 0))


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
    fields = tuple(sorted((canonical_path(table_name, name), name) for name in names))
    most = LEGENDS_PER_LAYOUT * legend_plan_size(len(fields))
    return DecryptLayout(fields, BoundedCache(LEGENDS_PER_LAYOUT, most, most))


def decrypt_layout_size(layout: DecryptLayout) -> int:
    """A generous estimate of the bytes ``layout`` holds, counting its legend cache as full."""
    size = _TUPLE_BYTES + layout.plans.max_bytes + 512  # the cache object itself
    for path, _name in layout.fields:  # names belong to the caller's key (counted there)
        size += _POINTER + sys.getsizeof((path, _name)) + sys.getsizeof(path)
    return size


def encrypt_layout_size(layout: EncryptLayout) -> int:
    """A generous estimate of the bytes ``layout`` holds (names are counted by the caller's key)."""
    count = len(layout.signed)
    size = 4 * _TUPLE_BYTES + sys.getsizeof(layout.legend) + sys.getsizeof(dict(layout.actions))
    for path, _name, _action in layout.signed:
        size += 4 * _POINTER + _TRIPLE_BYTES + sys.getsizeof(path)
    return size + 2 * count * _POINTER
