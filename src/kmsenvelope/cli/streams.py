"""Input and output streams for the CLI: stdin/stdout or files, atomic output, streaming base64.

File output goes to an unnamed (or, where that is unavailable, a temporary) file in the destination
directory that is linked as the target only when the command succeeds, so a failed, interrupted or
terminated decrypt never leaves partial plaintext behind.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import io
import os
import secrets
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

from ..errors import MalformedInputError

__all__ = [
    "Base64Reader",
    "Base64Writer",
    "Terminated",
    "atomic_output",
    "install_termination_handlers",
    "open_input",
]

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


def portable_mode() -> bool:
    """Whether ``KMSENVELOPE_PORTABLE`` forces the portable path (no Linux-only unnamed files)."""
    return os.environ.get("KMSENVELOPE_PORTABLE", "") not in ("", "0")


def _open_unnamed(directory: Path) -> int | None:
    """An unnamed file in ``directory`` (Linux ``O_TMPFILE``), or None where that is not available.

    An unnamed file has no directory entry until it is linked, so a process killed by any signal
    (SIGKILL included) leaves nothing behind.
    """
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag or portable_mode() or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(directory, flag | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOTSUP):
            return None  # file system or kernel without O_TMPFILE
        raise


def _spare_name(target: Path) -> Path:
    return target.parent / f".{target.name}.{secrets.token_hex(6)}.partial"


def _link(source: str, target: Path) -> None:
    """``link(source, target)``, following ``source`` if it is a ``/proc/self/fd/N`` link.

    ``os.link`` calls plain ``link(2)`` (which links the symlink itself) unless a directory fd is
    given; with one it calls ``linkat(..., AT_SYMLINK_FOLLOW)``, which links the open file.
    """
    dir_fd = os.open(target.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.link(source, target.name, dst_dir_fd=dir_fd, follow_symlinks=True)
    finally:
        os.close(dir_fd)


def _publish(source: str, target: Path, *, overwrite: bool) -> None:
    """Give the finished file at ``source`` (a path, or ``/proc/self/fd/N``) the name ``target``.

    Without ``overwrite`` the final step is ``link``, which fails if ``target`` exists, so a file
    created meanwhile is never replaced.
    """
    if not overwrite:
        _link(source, target)
        return
    if not source.startswith("/proc/"):
        os.replace(source, target)
        return
    # An unnamed file can only be linked to a new name; rename that name over the target.
    for _ in range(64):
        spare = _spare_name(target)
        try:
            _link(source, spare)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 64 collisions of 48 random bits
        raise FileExistsError(17, "File exists", str(spare))
    try:
        os.replace(spare, target)
    finally:
        spare.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_output(path: str, *, private: bool, overwrite: bool = True) -> Iterator[BinaryIO]:
    """Write to ``path`` (or stdout for ``-``) all-or-nothing.

    For a file, data goes to an unnamed file in the destination directory (Linux ``O_TMPFILE``; a
    named ``.NAME.*.partial`` file elsewhere or with ``KMSENVELOPE_PORTABLE=1``), mode 0600, which is
    fsynced and linked as ``path`` only when the block exits normally. On any exception, including
    the :class:`Terminated` that SIGTERM and SIGHUP raise in the CLI, a named temporary file is
    deleted. ``private`` keeps the final file at 0600 (plaintext); otherwise it gets the usual
    ``0666 & ~umask``. Without ``overwrite`` an existing ``path`` is never replaced
    (:class:`FileExistsError`).
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
    if not overwrite and os.path.lexists(target):
        raise FileExistsError(17, "File exists", path)
    fd = _open_unnamed(directory)
    tmp: str | None = None
    if fd is None:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
            if not private:
                os.fchmod(handle.fileno(), 0o666 & ~_umask())
            _publish(tmp or f"/proc/self/fd/{handle.fileno()}", target, overwrite=overwrite)
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


class Terminated(BaseException):
    """Raised by the CLI's SIGTERM/SIGHUP handler so that cleanup runs as for Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


TERMINATION_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def install_termination_handlers() -> None:
    """Turn SIGTERM and SIGHUP into :class:`Terminated` (main thread only), so temporary files go."""
    for signum in TERMINATION_SIGNALS:
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _raise_terminated)


def die_of(signum: int) -> None:
    """After cleanup, end the process by ``signum`` itself, so the parent sees how it ended."""
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


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
