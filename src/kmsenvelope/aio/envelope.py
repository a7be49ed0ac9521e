""":class:`AsyncEnvelope`: :class:`~kmsenvelope.Envelope` for asyncio services.

Same options, bytes, limits, policies and exceptions as ``Envelope``, whose message code it reuses: it
only awaits the materials (so KMS calls overlap instead of blocking the loop) and, for large messages,
gives the event loop a turn between pieces of the body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from ..envelope import DecryptResult, Envelope
from ..errors import ConfigurationError, MalformedInputError
from ..materials.materials import (
    DecryptionMaterials,
    DecryptionRequest,
    EncryptionMaterials,
    EncryptionRequest,
)
from ..message import body as body_mod
from ..message import footer
from ..message.codec import Reader
from ..message.crypto import HeaderCheck, seal_header
from ..message.header import DecryptLimits, MessageHeader
from ..primitives.aead import AesGcm
from ..primitives.buffers import new_bytes
from ..suites import CommitmentPolicy, Suite
from ..values import freeze_context
from . import streams
from .materials import AnySource, as_async_materials_manager
from .protocols import AsyncMaterialsManager

__all__ = ["INLINE_LIMIT", "PIECE_SIZE", "AsyncEnvelope"]

INLINE_LIMIT = 1 << 20
"""Messages up to this many bytes are processed in one go; larger ones in pieces of :data:`PIECE_SIZE`."""
PIECE_SIZE = 256 * 1024
"""About this much is encrypted, decrypted or hashed between two turns of the event loop (~1 ms)."""


class _NoMaterials:
    """The sync Envelope's materials manager inside :class:`AsyncEnvelope`: never called."""

    def get_encryption_materials(self, request: EncryptionRequest) -> EncryptionMaterials:
        raise ConfigurationError("AsyncEnvelope gets its materials asynchronously")

    def decrypt_materials(self, request: DecryptionRequest) -> DecryptionMaterials:
        raise ConfigurationError("AsyncEnvelope gets its materials asynchronously")


class AsyncEnvelope:
    """Encrypts and decrypts ESDK messages from asyncio code.

    ``source`` is an async keyring (:class:`~kmsenvelope.aio.AsyncKmsKeyring`, ...), an async materials
    manager (:class:`~kmsenvelope.aio.AsyncCachingMaterials`), or a sync keyring or materials manager that
    does no I/O (raw AES, raw RSA, multi-keyrings of those), which is called inline. The keyword options
    are :class:`~kmsenvelope.Envelope`'s, with the same defaults and checks.
    """

    def __init__(
        self,
        source: AnySource,
        *,
        suite: Suite | None = None,
        frame_length: int | None = None,
        commitment_policy: CommitmentPolicy = CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
        max_encrypted_data_keys: int | None = None,
        limits: DecryptLimits | None = None,
    ) -> None:
        self._cmm = as_async_materials_manager(source)
        self._envelope = Envelope(
            _NoMaterials(),
            suite=suite,
            frame_length=frame_length,
            commitment_policy=commitment_policy,
            max_encrypted_data_keys=max_encrypted_data_keys,
            limits=limits,
        )

    @property
    def suite(self) -> Suite:
        """The suite new messages are written with."""
        return self._envelope.suite

    @property
    def frame_length(self) -> int:
        """Plaintext bytes per frame."""
        return self._envelope.frame_length

    @property
    def commitment_policy(self) -> CommitmentPolicy:
        """The key commitment policy."""
        return self._envelope.commitment_policy

    @property
    def limits(self) -> DecryptLimits:
        """The decrypt limits."""
        return self._envelope.limits

    @property
    def materials_manager(self) -> AsyncMaterialsManager:
        """The async materials manager this envelope gets its materials from."""
        return self._cmm

    # -- materials -------------------------------------------------------------------------------

    async def encryption_materials(
        self, context: Mapping[str, str] | None, plaintext_length: int | None
    ) -> EncryptionMaterials:
        """Materials for one message, checked exactly as ``Envelope.encryption_materials`` does."""
        request = self._envelope.encryption_request(context, plaintext_length)
        return self._envelope.check_encryption_materials(await self._cmm.get_encryption_materials(request))

    async def decryption_materials(
        self, header: MessageHeader, reproduced: Mapping[str, str]
    ) -> DecryptionMaterials:
        """Materials for a parsed header, after the commitment policy and reproduced context checks."""
        return (await self.open(header, reproduced))[0]

    async def open(
        self, header: MessageHeader, reproduced: Mapping[str, str]
    ) -> tuple[DecryptionMaterials, AesGcm]:
        """Materials for a parsed header and its verified body key (``Envelope.open``, awaited).

        A caching manager caches the materials only once they have opened this header.
        """
        check = HeaderCheck(header)
        request = self._envelope.decryption_request(header, reproduced, check)
        materials = await self._cmm.decrypt_materials(request)
        return materials, check.open(materials)

    # -- encrypt -------------------------------------------------------------------------------

    async def encrypt(
        self, plaintext: bytes | bytearray | memoryview, context: Mapping[str, str] | None = None
    ) -> bytes:
        """Encrypt ``plaintext`` into one ESDK message bound to ``context``."""
        view = memoryview(plaintext)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        materials = await self.encryption_materials(context, len(view))
        if len(view) <= INLINE_LIMIT:
            return self._envelope.encrypt_with_materials(view, materials)
        return await self._encrypt_in_pieces(view, materials)

    async def _encrypt_in_pieces(self, view: memoryview, materials: EncryptionMaterials) -> bytes:
        frame_length = self.frame_length
        sealed = seal_header(materials, frame_length)
        header = sealed.header
        layout = body_mod.FrameLayout(len(view), frame_length)
        body_end = len(header) + layout.body_length
        signing = materials.signing_key is not None
        fresh = None if signing else new_bytes(body_end)
        if fresh is not None:
            result, dest = fresh
        else:
            scratch = bytearray(body_end)
            result, dest = b"", memoryview(scratch)
        signer = footer.signer_for(materials) if signing else None
        per_piece = max(1, PIECE_SIZE // frame_length)
        with dest:
            dest[: len(header)] = header
            pos = len(header)
            regular_bytes = layout.regular * frame_length
            src = 0
            sequence = 1
            while True:
                final = src + per_piece * frame_length >= regular_bytes
                end = len(view) if final else src + per_piece * frame_length
                written = body_mod.encrypt_framed_into(
                    sealed.aead,
                    sealed.message_id,
                    view[src:end],
                    frame_length,
                    dest[pos:],
                    first_sequence=sequence,
                    final=final,
                )
                sequence += (end - src) // frame_length
                pos += written
                src = end
                await asyncio.sleep(0)
                if final:
                    break
            if signer is not None:
                for start in range(0, body_end, PIECE_SIZE):
                    signer.update(dest[start : min(body_end, start + PIECE_SIZE)])
                    await asyncio.sleep(0)
        if fresh is not None:
            return result
        # Signed (or no in-place bytes): the footer's length is known only now; copy piece by piece.
        tail = footer.finish(signer) if signer is not None else b""
        final_bytes = new_bytes(body_end + len(tail))
        if final_bytes is None:
            return bytes(scratch) + tail
        result, out = final_bytes
        with out:
            for start in range(0, body_end, PIECE_SIZE * 4):
                stop = min(body_end, start + PIECE_SIZE * 4)
                out[start:stop] = scratch[start:stop]
                await asyncio.sleep(0)
            out[body_end:] = tail
        return result

    # -- decrypt -------------------------------------------------------------------------------

    async def decrypt(
        self, ciphertext: bytes | bytearray | memoryview, context: Mapping[str, str] | None = None
    ) -> bytes:
        """Decrypt one message; every pair in ``context`` must be bound to it."""
        return (await self._decrypt(ciphertext, context))[0]

    async def decrypt_with_header(
        self, ciphertext: bytes | bytearray | memoryview, context: Mapping[str, str] | None = None
    ) -> DecryptResult:
        """Decrypt one message and return the plaintext with its parsed header."""
        plaintext, header, materials = await self._decrypt(ciphertext, context)
        return DecryptResult(plaintext, header, materials.encryption_context)

    async def _decrypt(
        self, ciphertext: bytes | bytearray | memoryview, context: Mapping[str, str] | None
    ) -> tuple[bytes, MessageHeader, DecryptionMaterials]:
        envelope = self._envelope
        data, header = envelope.parse_message(ciphertext)
        materials, aead = await self.open(header, freeze_context(context))
        reader = Reader(data, header.size)
        if len(data) <= INLINE_LIMIT or not header.framed:
            return envelope.decrypt_opened(data, header, materials, aead, reader), header, materials
        try:
            return await self._decrypt_in_pieces(data, header, materials, aead, reader), header, materials
        except MemoryError:
            # Every frame is found in ``data`` before the plaintext is allocated (never larger than the
            # input), so this message really is too big for this process: a size limit, as in Envelope.
            raise body_mod.allocation_failure() from None

    async def _decrypt_in_pieces(
        self,
        data: memoryview,
        header: MessageHeader,
        materials: DecryptionMaterials,
        aead: Any,
        reader: Reader,
    ) -> bytes:
        frames, total = body_mod.scan_framed(reader, header.frame_length)
        await asyncio.sleep(0)
        if header.suite.signing:
            verifier = footer.verifier_for(materials)
            signature = footer.read_signature(reader)
            signed_end = reader.pos - 2 - len(signature)
            for start in range(0, signed_end, PIECE_SIZE):
                verifier.update(data[start : min(signed_end, start + PIECE_SIZE)])
                await asyncio.sleep(0)
            verifier.verify(signature)
        if reader.remaining:
            raise MalformedInputError(f"{reader.remaining} unexpected bytes after the end of the message")
        fresh = new_bytes(total)
        if fresh is not None:
            plaintext, dest = fresh
        else:
            scratch = bytearray(total)
            plaintext, dest = b"", memoryview(scratch)
        per_piece = max(1, PIECE_SIZE // max(1, header.frame_length))
        with dest:
            pos = 0
            for first in range(0, len(frames), per_piece):
                piece = frames[first : first + per_piece]
                size = sum(frame[2] for frame in piece)
                body_mod.decrypt_framed_into(
                    aead,
                    header.message_id,
                    data,
                    piece,
                    dest[pos : pos + size],
                    ends_with_final=first + per_piece >= len(frames),
                )
                pos += size
                await asyncio.sleep(0)
        if fresh is None:
            plaintext = bytes(scratch)
        return plaintext

    def parse_header(self, data: bytes | bytearray | memoryview) -> MessageHeader:
        """Parse (without verifying or decrypting) the header at the start of ``data``."""
        return self._envelope.parse_header(data)

    # -- streaming -----------------------------------------------------------------------------

    async def encrypt_stream(
        self, src: Any, dst: Any, context: Mapping[str, str] | None = None
    ) -> MessageHeader:
        """Encrypt ``src`` (async ``read``) to ``dst`` (async ``write``, or a path) frame by frame."""
        return await streams.encrypt_stream(self, src, dst, context)

    async def decrypt_stream(
        self,
        src: Any,
        dst: Any,
        context: Mapping[str, str] | None = None,
        *,
        release_unverified: bool = False,
    ) -> MessageHeader:
        """Decrypt ``src`` to ``dst`` (async ``write``, or a path written atomically).

        Each frame reaches ``dst`` only after its tag verifies; for signed suites nothing does before the
        signature verifies, unless ``release_unverified=True``. Cancelling it releases nothing more.
        """
        return await streams.decrypt_stream(self, src, dst, context, release_unverified=release_unverified)

    def __repr__(self) -> str:
        return (
            f"AsyncEnvelope(suite={self.suite.name}, frame_length={self.frame_length}, "
            f"commitment_policy={self.commitment_policy.value}, source={self._cmm!r})"
        )
