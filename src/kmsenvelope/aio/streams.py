"""Streaming encrypt and decrypt over objects with async ``read(n)`` / ``write(data)``.

The frame crypto is the sync streams' (:func:`~kmsenvelope.message.stream.seal_frame`,
:func:`~kmsenvelope.message.stream.open_frame`); only reading and writing are awaited. Release rules are
the sync ones: a frame reaches ``dst`` only after its tag verifies, and for signed suites nothing reaches
it before the signature verifies (frames wait in a private spool) unless ``release_unverified=True``.
A ``dst`` given as a path is written to a temporary file beside it and renamed into place only on
success: a failure or a cancellation leaves no file behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import MalformedInputError, PolicyError
from ..message import body as body_mod
from ..message import footer
from ..message.codec import TruncatedInputError
from ..message.crypto import seal_header
from ..message.header import DecryptLimits, MessageHeader, parse_header
from ..message.stream import (
    HEADER_FIRST_READ,
    SPOOL_MEMORY_LIMIT,
    grow_to,
    growth_steps,
    header_so_far,
    seal_frame,
    wipe,
)
from ..primitives.aead import AesGcm
from ..primitives.ecdsa import Verifier
from ..values import freeze_context

if TYPE_CHECKING:
    from .envelope import AsyncEnvelope

__all__ = ["AsyncReader", "AsyncWriter", "decrypt_stream", "encrypt_stream"]

# Give the event loop a turn after about this much work even if the streams never suspend.
_YIELD_EVERY = 1 << 20


class AsyncReader(Protocol):
    """Anything with ``async read(n) -> bytes`` (``b""`` at end of input)."""

    async def read(self, n: int = -1, /) -> bytes: ...


class AsyncWriter(Protocol):
    """Anything with ``async write(data)``."""

    async def write(self, data: bytes, /) -> Any: ...


async def _read(src: Any, n: int) -> bytes:
    data = src.read(n)
    if inspect.isawaitable(data):
        data = await data
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("src.read() must return bytes")
    if len(data) > n >= 0:  # checked before the bytes are copied anywhere
        raise TypeError(f"src.read({n}) returned more than {n} bytes")
    return bytes(data)


async def _write(dst: Any, data: bytes) -> None:
    result = dst.write(data)
    if inspect.isawaitable(result):
        await result


async def _read_full(src: Any, view: memoryview) -> int:
    filled = 0
    while filled < len(view):
        chunk = await _read(src, len(view) - filled)
        if not chunk:
            break
        view[filled : filled + len(chunk)] = chunk
        filled += len(chunk)
    return filled


class _Ticker:
    """Counts work and hands the loop a turn every ``_YIELD_EVERY`` bytes."""

    def __init__(self) -> None:
        self._work = 0

    async def add(self, n: int) -> None:
        self._work += n
        if self._work >= _YIELD_EVERY:
            self._work = 0
            await asyncio.sleep(0)


class _PathSink:
    """A file written under a temporary name and renamed to ``path`` only by :meth:`commit`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(self._path))
        # mkstemp creates the file 0600: plaintext is never readable by others, even briefly.
        fd, self._temp = tempfile.mkstemp(dir=directory, prefix=".kmsenvelope-", suffix=".part")
        self._file = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def commit(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._temp, self._path)

    def discard(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._temp)


async def _into_path(
    path: str | os.PathLike[str], work: Callable[[_PathSink], Awaitable[MessageHeader]]
) -> MessageHeader:
    """``work(sink)`` into a temporary file renamed to ``path`` once it succeeded.

    Any failure, a cancellation or a failed rename included, removes the temporary file.
    """
    sink = _PathSink(path)
    try:
        header = await work(sink)
        sink.commit()
    except BaseException:
        sink.discard()
        raise
    return header


def _is_path(dst: object) -> bool:
    return isinstance(dst, (str, os.PathLike))


async def encrypt_stream(
    envelope: AsyncEnvelope, src: Any, dst: Any, context: Mapping[str, str] | None
) -> MessageHeader:
    """Encrypt ``src`` to ``dst`` (async writer or path) frame by frame."""
    if _is_path(dst):
        return await _into_path(dst, lambda sink: _encrypt(envelope, src, sink, context))
    return await _encrypt(envelope, src, dst, context)


async def _encrypt(
    envelope: AsyncEnvelope, src: Any, dst: Any, context: Mapping[str, str] | None
) -> MessageHeader:
    frame_length = envelope.frame_length
    materials = await envelope.encryption_materials(context, None)
    sealed = seal_header(materials, frame_length)
    signer = None
    if materials.signing_key is not None:
        signer = footer.signer_for(materials)
        signer.update(sealed.header)
    await _write(dst, sealed.header)
    current = bytearray(frame_length)
    ahead = bytearray(frame_length)
    out = bytearray(frame_length + body_mod.FINAL_OVERHEAD)
    ticker = _Ticker()
    have = await _read_full(src, memoryview(current))
    sequence = 1
    try:
        while True:
            more = await _read_full(src, memoryview(ahead)) if have == frame_length else 0
            with memoryview(out) as view, memoryview(current) as plain:
                frame = seal_frame(sealed, sequence, plain, have, not more, view)
                if signer is not None:
                    signer.update(frame)
                data = bytes(frame)
                del frame
            await _write(dst, data)
            written = len(data)
            del data  # before the next frame is sealed
            await ticker.add(written)
            if not more:
                break
            current, ahead = ahead, current
            have = more
            sequence += 1
            if sequence > body_mod.MAX_FRAMES:
                raise MalformedInputError("input needs more frames than the format allows")
    finally:
        wipe(current)
        wipe(ahead)
    if signer is not None:
        signature = signer.finalize()
        await _write(dst, len(signature).to_bytes(2, "big") + signature)
    return parse_header(sealed.header, DecryptLimits(max_frame_length=max(frame_length, 1)))


class _Input:
    """Exact async reads, each byte fed to an optional verifier, within a message size budget."""

    def __init__(self, src: Any, pending: bytes, budget: int | None) -> None:
        self._src = src
        self._pending = pending
        self._budget = budget
        self.verifier: Verifier | None = None

    async def read_exact(self, n: int, what: str) -> bytes:
        buf = bytearray(n)
        await self.readinto_exact(memoryview(buf), what)
        return bytes(buf)

    async def readinto_exact(self, view: memoryview, what: str) -> None:
        n = len(view)
        if self._budget is not None:
            if n > self._budget:
                raise PolicyError("message exceeds the configured max_message_size")
            self._budget -= n
        take = min(n, len(self._pending))
        if take:
            view[:take] = self._pending[:take]
            self._pending = self._pending[take:]
        if take < n and await _read_full(self._src, view[take:]) != n - take:
            raise TruncatedInputError(f"truncated input: stream ended inside the {what}")
        if self.verifier is not None:
            self.verifier.update(view)

    async def read_growing(self, buf: bytearray, n: int, what: str) -> None:
        """Fill ``buf[:n]`` with the next ``n`` bytes, growing ``buf`` only as they arrive (the sync rule)."""
        if self._budget is not None and n > self._budget:  # refused before reading any of it
            raise PolicyError("message exceeds the configured max_message_size")
        for start, end in growth_steps(len(buf), n):
            grow_to(buf, end)
            with memoryview(buf) as view:
                await self.readinto_exact(view[start:end], what)

    async def at_end(self) -> bool:
        return not self._pending and not await _read(self._src, 1)


async def _read_header(src: Any, limits: DecryptLimits) -> tuple[MessageHeader, bytes]:
    buffer = bytearray()
    want = HEADER_FIRST_READ
    while True:
        chunk = await _read(src, want)
        buffer += chunk
        found = header_so_far(buffer, bool(chunk), want, limits)
        if isinstance(found, int):
            want = found
            continue
        return found, bytes(buffer)


async def decrypt_stream(
    envelope: AsyncEnvelope,
    src: Any,
    dst: Any,
    context: Mapping[str, str] | None,
    *,
    release_unverified: bool,
) -> MessageHeader:
    """Decrypt ``src`` to ``dst`` (async writer or path), releasing only authenticated plaintext."""
    if _is_path(dst):
        return await _into_path(dst, lambda sink: _decrypt(envelope, src, sink, context, release_unverified))
    return await _decrypt(envelope, src, dst, context, release_unverified)


async def _decrypt(
    envelope: AsyncEnvelope, src: Any, dst: Any, context: Mapping[str, str] | None, release_unverified: bool
) -> MessageHeader:
    limits = envelope.limits
    header, raw = await _read_header(src, limits)
    budget = None
    if limits.max_message_size is not None:
        if header.size > limits.max_message_size:
            raise PolicyError("message exceeds the configured max_message_size")
        budget = limits.max_message_size - header.size
    materials, aead = await envelope.open(header, freeze_context(context))
    source = _Input(src, raw[header.size :], budget)
    verifier = None
    if header.suite.signing:
        verifier = footer.verifier_for(materials)
        verifier.update(raw[: header.size])
    source.verifier = verifier
    spool = None
    if verifier is not None and not release_unverified:
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_LIMIT, mode="w+b")  # noqa: SIM115
    sink = spool if spool is not None else dst
    try:
        try:
            if header.framed:
                await _decrypt_frames(header, aead, source, sink)
            else:
                await _decrypt_non_framed(header, aead, source, sink, limits)
        except MemoryError:
            # Buffers only grow as bytes arrive, so this frame really is too big for this process.
            raise body_mod.allocation_failure() from None
        if verifier is not None:
            source.verifier = None  # the signature itself is not signed
            length = int.from_bytes(await source.read_exact(2, "signature length"), "big")
            if length == 0 or length > footer.MAX_SIGNATURE_LENGTH:
                raise MalformedInputError(f"invalid signature length {length}")
            verifier.verify(await source.read_exact(length, "signature"))
        if not await source.at_end():
            raise MalformedInputError("unexpected bytes after the end of the message")
        if spool is not None:
            spool.seek(0)
            while chunk := spool.read(1 << 20):
                await _write(dst, chunk)
    finally:
        if spool is not None:
            spool.close()
    return header


async def _decrypt_frames(header: MessageHeader, aead: AesGcm, source: _Input, sink: Any) -> None:
    # One buffer, grown to the frames that actually arrive, not to the declared frame length. Each frame's
    # plaintext is a fresh ``bytes`` handed to the writer (which may keep it after write() returns), so
    # no plaintext stays in a buffer of ours.
    sealed = bytearray()
    ticker = _Ticker()
    frame_length = header.frame_length
    sequence = 1
    while True:
        marker = int.from_bytes(await source.read_exact(4, "frame sequence number"), "big")
        final = marker == body_mod.FINAL_FRAME_MARKER
        if final:
            marker = int.from_bytes(await source.read_exact(4, "final frame sequence number"), "big")
        if marker != sequence:
            raise MalformedInputError("frame is out of sequence")
        iv = await source.read_exact(body_mod.IV, "frame IV")
        length = frame_length
        if final:
            length = int.from_bytes(await source.read_exact(4, "final frame length"), "big")
            if length > frame_length:
                raise MalformedInputError("final frame is longer than the frame length")
        size = length + body_mod.TAG
        if len(sealed) >= size:  # the usual case after the first frame: read straight in
            with memoryview(sealed) as view:
                await source.readinto_exact(view[:size], "frame")
        else:  # a length read from the stream is only a claim: grow as the frame arrives
            await source.read_growing(sealed, size, "frame")
        content = body_mod.FINAL_FRAME_STRING if final else body_mod.FRAME_STRING
        aad = body_mod.frame_aad(header.message_id, content, sequence, length)
        with memoryview(sealed) as view:
            data = aead.decrypt(iv, view[:size], aad)
        await _write(sink, data)
        del data  # before the next frame's plaintext exists: at most one frame of plaintext at a time
        await ticker.add(length)
        if final:
            return
        sequence += 1
        if sequence > body_mod.MAX_FRAMES:
            raise MalformedInputError("too many frames")


async def _decrypt_non_framed(
    header: MessageHeader, aead: AesGcm, source: _Input, sink: Any, limits: DecryptLimits
) -> None:
    iv = await source.read_exact(body_mod.IV, "body IV")
    length = int.from_bytes(await source.read_exact(8, "body length"), "big")
    if length > limits.max_frame_length:
        raise PolicyError(
            f"non-framed body of {length} bytes exceeds the streaming limit {limits.max_frame_length}"
        )
    sealed = bytearray()
    await source.read_growing(sealed, length + body_mod.TAG, "body ciphertext")
    aad = body_mod.frame_aad(header.message_id, body_mod.SINGLE_BLOCK_STRING, 1, length)
    with memoryview(sealed) as view:
        plaintext = aead.decrypt(iv, view, aad)
    await _write(sink, plaintext)
