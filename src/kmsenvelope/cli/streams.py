"""Input and output streams for the CLI: stdin/stdout or files, atomic output, streaming base64.

File output goes to a temporary file in the destination directory that is renamed over the target only
when the command succeeds, so a failed decrypt never leaves partial plaintext behind.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

from ..errors import MalformedInputError

__all__ = ["Base64Reader", "Base64Writer", "HeadRecorder", "atomic_output", "open_input"]

STDIO = "-"
_CHUNK = 1 << 16


@contextlib.contextmanager
def open_input(path: str) -> Iterator[BinaryIO]:
    """The input file, or stdin for ``-``."""
    if path == STDIO:
        yield cast(BinaryIO, sys.stdin.buffer)
        return
    if os.path.isdir(path):
        raise IsADirectoryError(21, "Is a directory", path)
    with open(path, "rb") as handle:
        yield handle


def _umask() -> int:
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: str, *, private: bool) -> Iterator[BinaryIO]:
    """Write to ``path`` (or stdout for ``-``) all-or-nothing.

    For a file, data goes to a temporary file next to it (mode 0600), fsynced and renamed over ``path``
    when the block exits normally, and deleted otherwise. ``private`` keeps the final file at 0600
    (plaintext); otherwise it gets the usual ``0666 & ~umask``.
    """
    if path == STDIO:
        out = cast(BinaryIO, sys.stdout.buffer)
        yield out
        out.flush()
        return
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(21, "Is a directory", path)
    directory = target.parent
    if not directory.is_dir():
        raise FileNotFoundError(2, "No such file or directory", str(directory))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
            if not private:
                os.fchmod(handle.fileno(), 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Base64Writer(io.RawIOBase):
    """Writes base64 of everything written to it onto ``dst``; :meth:`finish` adds the tail and a newline."""

    def __init__(self, dst: BinaryIO) -> None:
        super().__init__()
        self._dst = dst
        self._pending = b""

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = self._pending + bytes(data)
        usable = len(chunk) - len(chunk) % 3
        if usable:
            self._dst.write(base64.b64encode(chunk[:usable]))
        self._pending = chunk[usable:]
        return len(data)

    def finish(self) -> None:
        """Encode the last partial group and end the line."""
        self._dst.write(base64.b64encode(self._pending) + b"\n")
        self._pending = b""


class Base64Reader(io.RawIOBase):
    """Decodes base64 text from ``src`` as it is read; whitespace is ignored, anything else is an error."""

    def __init__(self, src: BinaryIO) -> None:
        super().__init__()
        self._src = src
        self._text = b""
        self._decoded = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        while not self._decoded and not self._eof:
            self._fill()
        n = min(len(view), len(self._decoded))
        view[:n] = self._decoded[:n]
        self._decoded = self._decoded[n:]
        return n

    def _fill(self) -> None:
        chunk = self._src.read(_CHUNK)
        if not chunk:
            self._eof = True
            usable = self._text
            self._text = b""
        else:
            self._text += b"".join(chunk.split())
            cut = len(self._text) - len(self._text) % 4
            usable, self._text = self._text[:cut], self._text[cut:]
        if not usable:
            if self._eof and self._text:
                raise MalformedInputError("base64 input is truncated")
            return
        try:
            self._decoded += base64.b64decode(usable, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedInputError("input is not valid base64") from None


def base64_input(src: BinaryIO) -> BinaryIO:
    """A buffered reader decoding base64 from ``src``."""
    return cast(BinaryIO, io.BufferedReader(Base64Reader(src), _CHUNK))


class HeadRecorder:
    """Passes reads through to ``src`` and keeps a copy of the first ``limit`` bytes (the header)."""

    def __init__(self, src: BinaryIO, limit: int = 1 << 20) -> None:
        self._src = src
        self._limit = limit
        self._head = bytearray()

    @property
    def head(self) -> bytes:
        """The bytes recorded so far (at most ``limit``)."""
        return bytes(self._head)

    def _keep(self, data: bytes | memoryview) -> None:
        room = self._limit - len(self._head)
        if room > 0:
            self._head += data[:room]

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        self._keep(data)
        return data

    def readinto(self, buffer: memoryview) -> int:
        view = memoryview(buffer).cast("B")
        data = self._src.read(len(view))
        view[: len(data)] = data
        self._keep(data)
        return len(data)
