"""Streaming encrypt and decrypt over binary file objects, in memory bounded by the frame length.

Decrypt releases plaintext only once it is authenticated:

* each frame is written only after its GCM tag verifies;
* for signed suites, nothing is written until the footer signature verifies. Verified frames wait in a
  :class:`tempfile.SpooledTemporaryFile` (memory up to ``SPOOL_MEMORY_LIMIT``, then a private 0600
  temporary file that is deleted afterwards) -- unless the caller passes ``release_unverified=True``.

A failure after some frames were written (an unsigned stream cut short, say) raises, and the caller
must discard what ``dst`` received; the CLI writes to a temporary file and renames it only on success.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, BinaryIO

from ..errors import MalformedInputError, PolicyError
from ..primitives.aead import AesGcm
from ..primitives.ecdsa import Signer, Verifier
from ..values import freeze_context
from . import body as body_mod
from . import footer
from .codec import TruncatedInputError
from .crypto import seal_header
from .header import DecryptLimits, MessageHeader, parse_header

if TYPE_CHECKING:
    from ..envelope import Envelope

__all__ = ["SPOOL_MEMORY_LIMIT", "decrypt_stream", "encrypt_stream"]

SPOOL_MEMORY_LIMIT = 8 * 1024 * 1024
_MARKER = b"\xff\xff\xff\xff"


def _read_full(src: BinaryIO, view: memoryview) -> int:
    """Fill ``view`` from ``src``; returns how many bytes were read (fewer only at end of input)."""
    filled = 0
    size = len(view)
    while filled < size:
        readinto = getattr(src, "readinto", None)
        if readinto is not None:
            got = readinto(view[filled:])
        else:
            chunk = src.read(size - filled)
            got = len(chunk)
            view[filled : filled + got] = chunk
        if not got:
            break
        filled += got
    return filled


def encrypt_stream(
    envelope: Envelope, src: BinaryIO, dst: BinaryIO, context: Mapping[str, str] | None
) -> MessageHeader:
    frame_length = envelope.frame_length
    materials = envelope.encryption_materials(context, None)
    sealed = seal_header(materials, frame_length)
    signer = None
    if materials.signing_key is not None:
        hash_name = materials.suite.info.signature_hash
        assert hash_name is not None
        signer = Signer(materials.signing_key, hash_name)
        signer.update(sealed.header)
    dst.write(sealed.header)

    # Two plaintext buffers: a frame is final only once we know no byte follows it.
    current = bytearray(frame_length)
    ahead = bytearray(frame_length)
    out = bytearray(frame_length + body_mod.FINAL_OVERHEAD)
    have = _read_full(src, memoryview(current))
    sequence = 1
    prefix = sealed.message_id + body_mod.FRAME_STRING
    while True:
        more = _read_full(src, memoryview(ahead)) if have == frame_length else 0
        with memoryview(out) as view, memoryview(current) as plain:
            seq = sequence.to_bytes(4, "big")
            iv = body_mod.frame_iv(sequence)
            if more:
                aad = prefix + seq + frame_length.to_bytes(8, "big")
                view[:4] = seq
                view[4:16] = iv
                sealed.aead.encrypt_into(iv, plain, aad, view[16 : 16 + frame_length + 16])
                frame = view[: body_mod.REGULAR_OVERHEAD + frame_length]
            else:
                aad = body_mod.frame_aad(sealed.message_id, body_mod.FINAL_FRAME_STRING, sequence, have)
                view[:4] = _MARKER
                view[4:8] = seq
                view[8:20] = iv
                view[20:24] = have.to_bytes(4, "big")
                sealed.aead.encrypt_into(iv, plain[:have], aad, view[24 : 24 + have + 16])
                frame = view[: body_mod.FINAL_OVERHEAD + have]
            if signer is not None:
                signer.update(frame)
            dst.write(frame)
            del frame
        if not more:
            break
        current, ahead = ahead, current
        have = more
        sequence += 1
        if sequence > body_mod.MAX_FRAMES:
            raise MalformedInputError("input needs more frames than the format allows")
    if signer is not None:
        signature = signer.finalize()
        dst.write(len(signature).to_bytes(2, "big") + signature)
    return parse_header(sealed.header, DecryptLimits(max_frame_length=max(frame_length, 1)))


class _Input:
    """Exact reads from a stream, feeding every byte read to an optional verifier.

    ``budget`` is how many more bytes the message may have (``DecryptLimits.max_message_size``).
    """

    def __init__(self, src: BinaryIO, pending: bytes, budget: int | None) -> None:
        self._src = src
        self._pending = pending
        self._budget = budget
        self.verifier: Verifier | None = None

    def read_exact(self, n: int, what: str) -> bytes:
        buf = bytearray(n)
        self.readinto_exact(memoryview(buf), what)
        return bytes(buf)

    def readinto_exact(self, view: memoryview, what: str) -> None:
        n = len(view)
        if self._budget is not None:
            if n > self._budget:
                raise PolicyError("message exceeds the configured max_message_size")
            self._budget -= n
        take = min(n, len(self._pending))
        if take:
            view[:take] = self._pending[:take]
            self._pending = self._pending[take:]
        if take < n and _read_full(self._src, view[take:]) != n - take:
            raise TruncatedInputError(f"truncated input: stream ended inside the {what}")
        if self.verifier is not None:
            self.verifier.update(view)

    def at_end(self) -> bool:
        return not self._pending and not self._src.read(1)


def _read_header(src: BinaryIO, limits: DecryptLimits) -> tuple[MessageHeader, bytes]:
    buffer = bytearray()
    want = 1024
    while True:
        chunk = src.read(want)
        buffer += chunk
        try:
            header = parse_header(buffer, limits)
        except TruncatedInputError:
            if not chunk:
                raise
            if len(buffer) > limits.max_header_size:
                raise PolicyError(
                    f"message header exceeds the limit of {limits.max_header_size} bytes"
                ) from None
            want = min(want * 2, 1 << 20)
            continue
        return header, bytes(buffer)


def decrypt_stream(
    envelope: Envelope,
    src: BinaryIO,
    dst: BinaryIO,
    context: Mapping[str, str] | None,
    *,
    release_unverified: bool,
) -> MessageHeader:
    limits = envelope.limits
    header, raw = _read_header(src, limits)
    budget = None
    if limits.max_message_size is not None:
        if header.size > limits.max_message_size:
            raise PolicyError("message exceeds the configured max_message_size")
        budget = limits.max_message_size - header.size
    materials, aead = envelope.open(header, freeze_context(context))
    source = _Input(src, raw[header.size :], budget)
    signed = header.suite.signing
    if signed:
        source.verifier = footer.verifier_for(materials)
        source.verifier.update(raw[: header.size])
    sink: BinaryIO
    spool = None
    if signed and not release_unverified:
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_LIMIT, mode="w+b")  # noqa: SIM115
        sink = spool  # type: ignore[assignment]
    else:
        sink = dst
    try:
        if header.framed:
            _decrypt_frames(header, aead, source, sink)
        else:
            _decrypt_non_framed(header, aead, source, sink, limits)
        if signed:
            verifier = source.verifier
            assert verifier is not None
            source.verifier = None
            length = int.from_bytes(source.read_exact(2, "signature length"), "big")
            if length == 0 or length > footer.MAX_SIGNATURE_LENGTH:
                raise MalformedInputError(f"invalid signature length {length}")
            verifier.verify(source.read_exact(length, "signature"))
        if not source.at_end():
            raise MalformedInputError("unexpected bytes after the end of the message")
        if spool is not None:
            spool.seek(0)
            shutil.copyfileobj(spool, dst, 1 << 20)
    finally:
        if spool is not None:
            spool.close()
    return header


def _decrypt_frames(header: MessageHeader, aead: AesGcm, source: _Input, sink: BinaryIO) -> None:
    # Buffers grow to the frames actually received, not to the declared frame length.
    sealed = bytearray()
    plain = bytearray()
    try:
        _frames_loop(header, aead, source, sink, sealed, plain)
    finally:
        # The last frame's plaintext would otherwise linger in a buffer we own.
        plain[:] = bytes(len(plain))


def _frames_loop(
    header: MessageHeader, aead: AesGcm, source: _Input, sink: BinaryIO, sealed: bytearray, plain: bytearray
) -> None:
    frame_length = header.frame_length
    sequence = 1
    while True:
        marker = int.from_bytes(source.read_exact(4, "frame sequence number"), "big")
        final = marker == body_mod.FINAL_FRAME_MARKER
        if final:
            marker = int.from_bytes(source.read_exact(4, "final frame sequence number"), "big")
        if marker != sequence:
            raise MalformedInputError("frame is out of sequence")
        iv = source.read_exact(body_mod.IV, "frame IV")
        length = frame_length
        if final:
            length = int.from_bytes(source.read_exact(4, "final frame length"), "big")
            if length > frame_length:
                raise MalformedInputError("final frame is longer than the frame length")
        if len(sealed) < length + body_mod.TAG:
            plain[:] = bytes(len(plain))
            sealed[:] = bytes(length + body_mod.TAG)
            plain[:] = bytes(length)
        with memoryview(sealed) as sealed_view, memoryview(plain) as plain_view:
            source.readinto_exact(sealed_view[: length + body_mod.TAG], "frame")
            content = body_mod.FINAL_FRAME_STRING if final else body_mod.FRAME_STRING
            aad = body_mod.frame_aad(header.message_id, content, sequence, length)
            aead.decrypt_into(iv, sealed_view[: length + body_mod.TAG], aad, plain_view[:length])
            sink.write(plain_view[:length])
        if final:
            return
        sequence += 1
        if sequence > body_mod.MAX_FRAMES:
            raise MalformedInputError("too many frames")


def _decrypt_non_framed(
    header: MessageHeader, aead: AesGcm, source: _Input, sink: BinaryIO, limits: DecryptLimits
) -> None:
    iv = source.read_exact(body_mod.IV, "body IV")
    length = int.from_bytes(source.read_exact(8, "body length"), "big")
    if length > limits.max_frame_length:
        raise PolicyError(
            f"non-framed body of {length} bytes exceeds the streaming limit {limits.max_frame_length}"
        )
    sealed = source.read_exact(length + body_mod.TAG, "body ciphertext")
    aad = body_mod.frame_aad(header.message_id, body_mod.SINGLE_BLOCK_STRING, 1, length)
    sink.write(aead.decrypt(iv, sealed, aad))
