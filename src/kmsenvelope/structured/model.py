"""The values structured encryption works on: crypto actions, terminals and the parsed header.

Source: aws/aws-database-encryption-sdk-dynamodb ``specification/structured-encryption/structures.md``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from ..materials.materials import EncryptedDataKey
from ..suites import DbeSuite
from ..values import freeze_context, seal_dataclass

__all__ = [
    "BINARY_TYPE",
    "FOOTER_FIELD",
    "HEADER_FIELD",
    "RESERVED_PREFIX",
    "Action",
    "ParsedHeader",
    "Terminal",
]

HEADER_FIELD = "aws_dbe_head"
FOOTER_FIELD = "aws_dbe_foot"
RESERVED_PREFIX = "aws_dbe_"
"""Attribute names starting with this are the SDK's own (header, footer, beacons)."""

BINARY_TYPE = b"\xff\xff"
"""Type id of binary terminals; also the stored type of every encrypted terminal."""


class Action(enum.Enum):
    """What encryption does with one attribute (``structures.md#crypto-action``)."""

    ENCRYPT_AND_SIGN = "ENCRYPT_AND_SIGN"
    """Encrypted, and covered by the signatures."""
    SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT = "SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT"
    """Stored in plaintext, signed, and bound into the encryption context seen by the keyring."""
    SIGN_ONLY = "SIGN_ONLY"
    """Stored in plaintext and covered by the signatures."""
    DO_NOTHING = "DO_NOTHING"
    """Neither encrypted nor signed."""

    __hash__ = object.__hash__  # identity, like its equality; Enum's own hash is a Python call

    @property
    def signed(self) -> bool:
        return self is not Action.DO_NOTHING

    @property
    def legend(self) -> int:
        """The header legend byte of a signed action."""
        return _LEGEND[self]

    @classmethod
    def coerce(cls, value: Action | str) -> Action:
        """Accept an :class:`Action` or its name."""
        if isinstance(value, Action):
            return value
        if isinstance(value, str):
            try:
                return cls[value]
            except KeyError:
                pass
        raise ValueError(f"unknown crypto action {value!r}")


LEGEND_ENCRYPT = 0x65  # "e"
LEGEND_SIGN = 0x73  # "s"
LEGEND_CONTEXT = 0x63  # "c"
_LEGEND = {
    Action.ENCRYPT_AND_SIGN: LEGEND_ENCRYPT,
    Action.SIGN_ONLY: LEGEND_SIGN,
    Action.SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT: LEGEND_CONTEXT,
}
LEGEND_ACTIONS = {byte: action for action, byte in _LEGEND.items()}


class Terminal(NamedTuple):
    """A typed leaf value: a two-byte type id and the serialized value."""

    type_id: bytes
    value: bytes


@dataclass(frozen=True, slots=True, init=False)
class ParsedHeader:
    """What a record's header says, once its commitment and footer have been verified.

    ``actions`` covers the signed attributes only; ``stored_context`` is the encryption context kept in
    the header, ``encryption_context`` the full one the keyring saw (stored plus reproduced pairs).
    """

    version: int
    suite: DbeSuite
    actions: Mapping[str, Action]
    encrypted_data_keys: tuple[EncryptedDataKey, ...]
    stored_context: Mapping[str, str]
    encryption_context: Mapping[str, str]

    def __new__(
        cls,
        version: int,
        suite: DbeSuite,
        actions: Mapping[str, Action],
        encrypted_data_keys: tuple[EncryptedDataKey, ...],
        stored_context: Mapping[str, str],
        encryption_context: Mapping[str, str],
    ) -> ParsedHeader:
        # Sealed (values.seal_dataclass). The actions are a read-only view: the layout's own, or a copy.
        if actions.__class__ is not MappingProxyType:
            actions = MappingProxyType(dict(actions))
        return _build_parsed_header(
            cls,
            version,
            suite,
            actions,
            tuple(encrypted_data_keys),
            freeze_context(stored_context),
            freeze_context(encryption_context),
        )


_build_parsed_header = seal_dataclass(ParsedHeader)
