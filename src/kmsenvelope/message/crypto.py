"""Sealing and opening a message header: what every encrypt and decrypt path shares.

On encrypt, context keys the materials mark as *required* are kept out of the stored header but
appended, serialized, to the header tag's AAD. On decrypt the same pairs come from the caller.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple

from ..errors import AuthenticationError, ContextMismatchError, MalformedInputError, PolicyError
from ..materials.materials import DecryptionMaterials, EncryptionMaterials
from ..primitives.aead import AesGcm
from ..primitives.kdf import constant_time_equal
from ..suites import Suite
from ..values import EMPTY_CONTEXT, serialize_context
from .header import MessageHeader, serialize_header_body
from .keys import derive_message_keys

__all__ = ["HeaderCheck", "SealedHeader", "check_reproduced_context", "open_header", "seal_header"]

_ZERO_IV = bytes(12)


class SealedHeader(NamedTuple):
    """The serialized header of a new message and the key that encrypts its body (internal: never
    handed to callers; a tuple because one is built per message)."""

    header: bytes
    message_id: bytes
    aead: AesGcm

    def __repr__(self) -> str:
        return f"SealedHeader(header=<{len(self.header)} bytes>, message_id={self.message_id.hex()})"


def split_context(
    context: Mapping[str, str], required_keys: frozenset[str]
) -> tuple[Mapping[str, str], Mapping[str, str]]:
    """(pairs stored in the header, pairs only authenticated)."""
    if not required_keys:
        return context, {}
    stored = {k: v for k, v in context.items() if k not in required_keys}
    authenticated_only = {k: v for k, v in context.items() if k in required_keys}
    return stored, authenticated_only


def seal_header(materials: EncryptionMaterials, frame_length: int) -> SealedHeader:
    suite = materials.suite
    if not isinstance(suite, Suite):
        raise PolicyError("the materials manager returned a suite that is not an ESDK message suite")
    data_key = materials.plaintext_data_key
    if data_key is None:
        raise PolicyError("the materials manager returned no plaintext data key")
    info = suite.info
    version = info.message_version
    message_id = os.urandom(32 if version == 2 else 16)
    key, commitment = derive_message_keys(info, data_key, message_id)
    required = materials.required_context_keys
    if required:
        stored, authenticated_only = split_context(materials.encryption_context, required)
        extra = serialize_context(authenticated_only)
    else:
        stored, extra = materials.encryption_context, b""
    body = serialize_header_body(
        suite, message_id, stored, materials.encrypted_data_keys, frame_length, commitment
    )
    aead = AesGcm(key)
    tag = aead.encrypt(_ZERO_IV, b"", body + extra if extra else body)
    return SealedHeader(body + tag if version == 2 else body + _ZERO_IV + tag, message_id, aead)


def check_reproduced_context(header: MessageHeader, reproduced: Mapping[str, str]) -> None:
    """Every pair the caller requires that the header stores must have the same value."""
    if reproduced is EMPTY_CONTEXT or not reproduced:
        return
    stored = header.encryption_context
    # Set difference of the items views runs in C; usually every reproduced pair is stored as given.
    stored_keys = stored.keys()
    for key, _ in reproduced.items() - stored.items():
        if key in stored_keys:
            raise ContextMismatchError(f"encryption context value for {key!r} does not match the message")


def open_header(header: MessageHeader, materials: DecryptionMaterials) -> AesGcm:
    """Check the key commitment and the header tag; return the body key."""
    data_key = materials.plaintext_data_key
    if data_key is None:
        raise MalformedInputError("decryption materials hold no data key")
    info = header.suite.info
    key, commitment = derive_message_keys(info, data_key, header.message_id)
    if info.committing and not constant_time_equal(commitment, header.commitment):
        raise AuthenticationError("key commitment does not match: wrong data key for this message")
    required = materials.required_context_keys
    if required:
        stored = header.encryption_context
        full = materials.encryption_context
        authenticated_only = {k: full[k] for k in required if k not in stored and k in full}
        extra = serialize_context(authenticated_only)
    else:
        authenticated_only, extra = {}, b""
    aead = AesGcm(key)
    iv = header.header_iv or _ZERO_IV
    try:
        aead.decrypt(iv, header.header_tag, header.body + extra)
    except AuthenticationError:
        if authenticated_only:
            try:
                aead.decrypt(iv, header.header_tag, header.body)
            except AuthenticationError:
                pass
            else:
                # The tag verifies without the caller's extra pairs: the message never bound them.
                raise ContextMismatchError(
                    f"the message does not bind the required context keys {sorted(authenticated_only)}"
                ) from None
        raise AuthenticationError("header authentication failed (wrong key or encryption context)") from None
    return aead


class HeaderCheck:
    """The ``authenticate`` check of a decrypt request for one parsed header (see ``DecryptionRequest``).

    Called by a caching materials manager before it caches fresh materials: raises unless they open the
    header. Remembers the body key of the materials it accepted, so :meth:`open` does not derive it
    twice on a cache miss.
    """

    __slots__ = ("_accepted", "_aead", "header")

    def __init__(self, header: MessageHeader) -> None:
        self.header = header
        self._accepted: DecryptionMaterials | None = None
        self._aead: AesGcm | None = None

    def __call__(self, materials: DecryptionMaterials) -> None:
        aead = open_header(self.header, materials)
        self._accepted, self._aead = materials, aead

    def open(self, materials: DecryptionMaterials) -> AesGcm:
        """The body key, after checking the header against ``materials`` (unless already done)."""
        if materials is self._accepted and self._aead is not None:
            return self._aead
        return open_header(self.header, materials)
