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
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, BinaryIO

from ..errors import MalformedInputError, PolicyError
from ..primitives.aead import AesGcm
from ..primitives.ecdsa import Signer, Verifier
from ..values import freeze_context
from . import body as body_mod
from . import footer
from .codec import TruncatedInputError
from .crypto import SealedHeader, seal_header
from .header import DecryptLimits, MessageHeader, parse_header

if TYPE_CHECKING:
    from ..envelope import Envelope

__all__ = [
    "GROW_STEP",
    "HEADER_FIRST_READ",
    "SPOOL_MEMORY_LIMIT",
    "decrypt_stream",
    "encrypt_stream",
    "grow_to",
    "growth_steps",
    "header_so_far",
    "open_frame",
    "seal_frame",
    "wipe",
]

SPOOL_MEMORY_LIMIT = 8 * 1024 * 1024
_MARKER = b"\xff\xff\xff\xff"
# A length read from the stream is only a claim: buffers grow by at most this much past the bytes that
# have actually arrived, so a short message cannot make us allocate the length it declares.
GROW_STEP = 1 << 20


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


def seal_frame(
    sealed: SealedHeader, sequence: int, plain: memoryview, have: int, final: bool, out: memoryview
) -> memoryview:
    """Seal frame ``sequence`` (``plain[:have]``; a regular frame takes all of ``plain``) into ``out``.

    Returns the view of ``out`` holding the serialized frame. Shared by the sync and async streams.
    """
    seq = sequence.to_bytes(4, "big")
    iv = body_mod.frame_iv(sequence)
    if not final:
        frame_length = len(plain)
        aad = sealed.message_id + body_mod.FRAME_STRING + seq + frame_length.to_bytes(8, "big")
        out[:4] = seq
        out[4:16] = iv
        sealed.aead.encrypt_into(iv, plain, aad, out[16 : 16 + frame_length + 16])
        return out[: body_mod.REGULAR_OVERHEAD + frame_length]
    aad = body_mod.frame_aad(sealed.message_id, body_mod.FINAL_FRAME_STRING, sequence, have)
    out[:4] = _MARKER
    out[4:8] = seq
    out[8:20] = iv
    out[20:24] = have.to_bytes(4, "big")
    sealed.aead.encrypt_into(iv, plain[:have], aad, out[24 : 24 + have + 16])
    return out[: body_mod.FINAL_OVERHEAD + have]


def encrypt_stream(
    envelope: Envelope, src: BinaryIO, dst: BinaryIO, context: Mapping[str, str] | None
) -> MessageHeader:
    frame_length = envelope.frame_length
    materials = envelope.encryption_materials(context, None)
    sealed = seal_header(materials, frame_length)
    signer = None
    if materials.signing_key is not None:
        hash_name = materials.suite.info.signature_hash
        if hash_name is None:
            raise PolicyError(f"signing suite {materials.suite.name} names no signature hash")
        signer = Signer(materials.signing_key, hash_name)
        signer.update(sealed.header)
    dst.write(sealed.header)

    # Two plaintext buffers: a frame is final only once we know no byte follows it.
    current = bytearray(frame_length)
    ahead = bytearray(frame_length)
    out = bytearray(frame_length + body_mod.FINAL_OVERHEAD)
    have = _read_full(src, memoryview(current))
    sequence = 1
    while True:
        more = _read_full(src, memoryview(ahead)) if have == frame_length else 0
        with memoryview(out) as view, memoryview(current) as plain:
            frame = seal_frame(sealed, sequence, plain, have, not more, view)
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

    def read_growing(self, buf: bytearray, n: int, what: str) -> None:
        """Fill ``buf[:n]`` with the next ``n`` bytes, growing ``buf`` only as they arrive.

        Where each step goes is :func:`growth_steps`, shared with the async streams.
        """
        if self._budget is not None and n > self._budget:  # refused before reading, as readinto_exact does
            raise PolicyError("message exceeds the configured max_message_size")
        for start, end in growth_steps(len(buf), n):
            grow_to(buf, end)
            with memoryview(buf) as view:
                self.readinto_exact(view[start:end], what)

    def at_end(self) -> bool:
        return not self._pending and not self._src.read(1)


HEADER_FIRST_READ = 1024


def header_so_far(buffer: bytearray, got_more: bool, want: int, limits: DecryptLimits) -> MessageHeader | int:
    """The header parsed from the bytes read so far, or how many bytes to read next.

    Shared by the sync and async readers (only the read differs). Raises when the input ended inside the
    header or the header outgrew ``limits.max_header_size``.
    """
    try:
        return parse_header(buffer, limits)
    except TruncatedInputError:
        if not got_more:
            raise
        if len(buffer) > limits.max_header_size:
            raise PolicyError(f"message header exceeds the limit of {limits.max_header_size} bytes") from None
        return min(want * 2, 1 << 20)


def _read_header(src: BinaryIO, limits: DecryptLimits) -> tuple[MessageHeader, bytes]:
    buffer = bytearray()
    want = HEADER_FIRST_READ
    while True:
        chunk = src.read(want)
        buffer += chunk
        found = header_so_far(buffer, bool(chunk), want, limits)
        if isinstance(found, int):
            want = found
            continue
        return found, bytes(buffer)


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
        try:
            if header.framed:
                _decrypt_frames(header, aead, source, sink)
            else:
                _decrypt_non_framed(header, aead, source, sink, limits)
        except MemoryError:
            # Buffers only grow as bytes arrive, so this is a frame that really is too big for this
            # process: a size limit, refused like one.
            raise body_mod.allocation_failure() from None
        if signed:
            verifier = source.verifier
            if verifier is None:
                raise MalformedInputError("signed message without a signature verifier")
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
        wipe(plain)


def growth_steps(have: int, n: int) -> Iterator[tuple[int, int]]:
    """Where the next ``n`` bytes go in a buffer now ``have`` bytes long, growing it only as they arrive.

    Yields ``(start, end)`` ranges to fill in order; the caller grows the buffer to ``end`` (:func:`grow_to`)
    just before filling each. What the buffer already holds is filled in place first; beyond that it grows
    by at most :data:`GROW_STEP` at a time, each step filled before the next is allocated, so a stream that
    ends early has cost at most what it delivered plus one step. Shared by the sync and async streams:
    only the read differs.
    """
    if have:
        yield 0, min(have, n)
    while have < n:
        end = min(n, have + GROW_STEP)
        yield have, end
        have = end


def grow_to(buf: bytearray, size: int) -> None:
    """Lengthen ``buf`` with zeros to ``size`` bytes (never shortens it)."""
    if len(buf) < size:
        buf.extend(bytes(size - len(buf)))


def _fit_plaintext(plain: bytearray, sealed: bytearray, length: int) -> None:
    """Make ``plain`` hold at least ``length`` bytes, once a frame of that length has arrived in ``sealed``.

    The frame has arrived, so room for its plaintext is no longer a claim. ``plain`` is zeroed first:
    growing may move the buffer and free the old block. It grows from the ciphertext buffer (overwritten
    by the decrypt) rather than from a fresh zero buffer, which would be one more frame-sized temporary.
    """
    if len(plain) < length:
        if plain:
            wipe(plain)
        with memoryview(sealed) as grow:
            plain.extend(grow[len(plain) : length])


def wipe(buf: bytearray) -> None:
    """Zero ``buf`` in place; above one GROW_STEP in steps, since ``buf[:] = bytes(n)`` costs two n-byte
    temporaries (the zeros, and the copy bytearray slice assignment makes of anything not a bytearray)."""
    size = len(buf)
    if size <= GROW_STEP:  # the usual frame: one small temporary is cheaper than the loop
        buf[:] = bytes(size)
        return
    with memoryview(bytes(GROW_STEP)) as zeros, memoryview(buf) as view:
        for start in range(0, size, GROW_STEP):
            end = min(start + GROW_STEP, size)
            view[start:end] = zeros[: end - start]


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
        size = length + body_mod.TAG
        if len(sealed) >= size:  # the usual case after the first frame: read straight in
            with memoryview(sealed) as view:
                source.readinto_exact(view[:size], "frame")
        else:
            source.read_growing(sealed, size, "frame")
        _fit_plaintext(plain, sealed, length)
        with memoryview(sealed) as sealed_view, memoryview(plain) as plain_view:
            sink.write(open_frame(header, aead, sequence, final, iv, sealed_view, plain_view, length))
        if final:
            return
        sequence += 1
        if sequence > body_mod.MAX_FRAMES:
            raise MalformedInputError("too many frames")


def open_frame(
    header: MessageHeader,
    aead: AesGcm,
    sequence: int,
    final: bool,
    iv: bytes,
    sealed: memoryview,
    plain: memoryview,
    length: int,
) -> memoryview:
    """Authenticate and decrypt one frame of ``length`` bytes into ``plain``; returns the plaintext view."""
    content = body_mod.FINAL_FRAME_STRING if final else body_mod.FRAME_STRING
    aad = body_mod.frame_aad(header.message_id, content, sequence, length)
    aead.decrypt_into(iv, sealed[: length + body_mod.TAG], aad, plain[:length])
    return plain[:length]


def _decrypt_non_framed(
    header: MessageHeader, aead: AesGcm, source: _Input, sink: BinaryIO, limits: DecryptLimits
) -> None:
    iv = source.read_exact(body_mod.IV, "body IV")
    length = int.from_bytes(source.read_exact(8, "body length"), "big")
    if length > limits.max_frame_length:
        raise PolicyError(
            f"non-framed body of {length} bytes exceeds the streaming limit {limits.max_frame_length}"
        )
    sealed = bytearray()
    source.read_growing(sealed, length + body_mod.TAG, "body ciphertext")
    aad = body_mod.frame_aad(header.message_id, body_mod.SINGLE_BLOCK_STRING, 1, length)
    with memoryview(sealed) as view:
        sink.write(aead.decrypt(iv, view, aad))
