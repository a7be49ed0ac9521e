"""Copy a message body from one regular file to another without passing it through Python.

Used by the streaming rewrap of unsigned messages: the frame headers are read with ``pread`` to check
the body's structure and find its end (sequence numbers, lengths, nothing after the last frame), then
the bytes move inside the kernel (``copy_file_range``, else ``sendfile``, else ``pread``/``write``).
Only plain file objects qualify (``FileIO``, ``BufferedReader``/``Writer``/``Random``): a wrapper that
transforms bytes (gzip, say) may expose the ``fileno()`` of the file beneath it.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from typing import BinaryIO

from ..errors import MalformedInputError, PolicyError
from . import body as body_mod
from .codec import TruncatedInputError
from .header import MessageHeader

__all__ = ["ZERO_COPY", "copy_body_between_files", "files_qualify"]

ZERO_COPY = True
"""Set to False to force the portable read-and-write copy everywhere (tests cover both)."""

_PLAIN = (io.FileIO, io.BufferedReader, io.BufferedWriter, io.BufferedRandom)
_FALLBACK_ERRNOS = {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF, errno.ESPIPE}
_CHUNK = 1 << 20


def files_qualify(src: object, dst: object) -> bool:
    """Whether ``src`` is a plain regular file and ``dst`` a plain file object (file, pipe, socket)."""
    if not ZERO_COPY or not isinstance(src, _PLAIN) or not isinstance(dst, _PLAIN):
        return False
    try:
        return stat.S_ISREG(os.fstat(src.fileno()).st_mode) and dst.fileno() >= 0
    except (OSError, ValueError):
        return False


def copy_body_between_files(
    header: MessageHeader, src: BinaryIO, dst: BinaryIO, start: int, max_message_size: int | None
) -> int:
    """Check the body of ``src`` at offset ``start``, copy it to ``dst``'s current end; return its length.

    ``dst`` must already hold everything before the body (it is flushed first). Raises before copying
    anything if the body is truncated, out of sequence, or followed by other bytes.
    """
    fd = src.fileno()
    size = os.fstat(fd).st_size
    if max_message_size is not None and size > max_message_size:
        raise PolicyError("message exceeds the configured max_message_size")
    end = _body_end(header, fd, start, size)
    if end != size:
        raise MalformedInputError("unexpected bytes after the end of the message")
    dst.flush()
    _copy(fd, dst.fileno(), start, end)
    src.seek(end)
    if dst.seekable():
        # The buffered object must learn where the descriptor now is.
        dst.seek(os.lseek(dst.fileno(), 0, os.SEEK_CUR))
    return end - start


def _pread(fd: int, n: int, offset: int, what: str) -> bytes:
    data = os.pread(fd, n, offset)
    if len(data) != n:
        raise TruncatedInputError(f"truncated input: stream ended inside the {what}")
    return data


def _body_end(header: MessageHeader, fd: int, pos: int, size: int) -> int:
    if not header.framed:
        length = int.from_bytes(_pread(fd, 8, pos + body_mod.IV, "body length"), "big")
        if length > body_mod.MAX_NON_FRAMED_LENGTH:
            raise MalformedInputError("non-framed body is longer than the format allows")
        end = pos + body_mod.IV + 8 + length + body_mod.TAG
    else:
        frame_length = header.frame_length
        sequence = 1
        while True:
            marker = int.from_bytes(_pread(fd, 4, pos, "frame sequence number"), "big")
            if marker == body_mod.FINAL_FRAME_MARKER:
                tail = _pread(fd, 4 + body_mod.IV + 4, pos + 4, "final frame header")
                if int.from_bytes(tail[:4], "big") != sequence:
                    raise MalformedInputError("frame is out of sequence")
                length = int.from_bytes(tail[-4:], "big")
                if length > frame_length:
                    raise MalformedInputError("final frame is longer than the frame length")
                end = pos + 8 + body_mod.IV + 4 + length + body_mod.TAG
                break
            if marker != sequence:
                raise MalformedInputError("frame is out of sequence")
            pos += 4 + body_mod.IV + frame_length + body_mod.TAG
            if pos > size:
                raise TruncatedInputError("truncated input: stream ended inside the frame")
            sequence += 1
            if sequence > body_mod.MAX_FRAMES:
                raise MalformedInputError("too many frames")
    if end > size:
        raise TruncatedInputError("truncated input: stream ended inside the frame")
    return end


def _copy(in_fd: int, out_fd: int, offset: int, end: int) -> None:
    methods = [m for m in ("copy_file_range", "sendfile") if hasattr(os, m)] + ["pread"]
    while offset < end:
        count = min(end - offset, 1 << 30)
        method = methods[0]
        try:
            if method == "copy_file_range":
                done = os.copy_file_range(in_fd, out_fd, count, offset)
            elif method == "sendfile":
                done = os.sendfile(out_fd, in_fd, offset, count)
            else:
                data = os.pread(in_fd, min(count, _CHUNK), offset)
                done = len(data)
                view = memoryview(data)
                while view:
                    view = view[os.write(out_fd, view) :]
        except OSError as exc:
            # The call copied nothing: try the next way (cross-device, pipes, old kernels).
            if exc.errno in _FALLBACK_ERRNOS and method != "pread":
                methods.pop(0)
                continue
            raise
        if done == 0:
            raise TruncatedInputError("truncated input: the file shrank while it was copied")
        offset += done
