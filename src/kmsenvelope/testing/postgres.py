"""A throwaway PostgreSQL server for tests: ``with postgres() as dsn: ...``.

``postgres()`` runs ``initdb`` and ``pg_ctl`` (found on ``PATH`` or under ``/usr/lib/postgresql/*/bin``)
in a fresh temporary directory, listens on 127.0.0.1 at a free port and yields a SQLAlchemy URL
(``postgresql+psycopg://postgres@127.0.0.1:<port>/postgres``). On exit the server is stopped and the
directory removed. When ``KMSENVELOPE_TEST_DSN`` is set, its value is yielded instead and nothing is
started or stopped.

PostgreSQL refuses to run as root, so when we are root the directory is handed to the ``postgres``
OS user (created as a system account if it is missing) and every server command runs as that user.

Nested or concurrent ``postgres()`` blocks in one process share one server (reference counted), so a
session-scoped fixture and a module that opens its own block do not start two servers.
The pytest plugin exposes it as the session-scoped fixture ``kmsenvelope_postgres``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pwd  # POSIX only: imported where used

__all__ = ["DSN_ENV", "PostgresError", "postgres"]

DSN_ENV = "KMSENVELOPE_TEST_DSN"
"""Environment variable holding a DSN to use instead of starting a server."""

_SERVER_USER = "postgres"
_START_TIMEOUT = 60
# Durability is worthless for a throwaway server; these settings make DDL and commits much faster.
_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "50",
    "shared_buffers": "64MB",
}


class PostgresError(RuntimeError):
    """The test server could not be initialized, started or stopped."""


@dataclass
class _Server:
    directory: Path
    data: Path
    port: int
    user: str | None
    refs: int = 0

    @property
    def dsn(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"


_lock = threading.Lock()
_shared: _Server | None = None


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    # Debian and Ubuntu keep the server tools off PATH.
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    raise PostgresError(f"{name} not found: install the PostgreSQL server or set {DSN_ENV}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(args: list[str], user: str | None, *, timeout: float = _START_TIMEOUT) -> None:
    try:
        subprocess.run(  # noqa: S603 - fixed argument lists, no shell
            args,
            check=True,
            capture_output=True,
            timeout=timeout,
            user=user,
            env={**os.environ, "LC_ALL": "C"},
            cwd="/",
        )
    except subprocess.CalledProcessError as exc:
        output = (exc.stderr or b"").decode("utf-8", "replace").strip()[-2000:]
        raise PostgresError(f"{Path(args[0]).name} failed ({exc.returncode}): {output}") from None
    except subprocess.TimeoutExpired:
        raise PostgresError(f"{Path(args[0]).name} timed out after {timeout} s") from None


def _server_account(user: str) -> pwd.struct_passwd:
    """The OS account the server runs as; created (a system account, no login) if it is missing."""
    import pwd

    try:
        return pwd.getpwnam(user)
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is not None:
        # Test containers often lack the account; as root we may create it, as the brief for CI says.
        subprocess.run(  # noqa: S603 - fixed argument list
            [useradd, "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
            capture_output=True, timeout=30, check=False,
        )
    try:
        return pwd.getpwnam(user)
    except KeyError:
        raise PostgresError(
            f"running as root needs an OS user {user!r} to run PostgreSQL (e.g. useradd -r {user})"
        ) from None


def _start() -> _Server:
    user = _SERVER_USER if os.geteuid() == 0 else None
    directory = Path(tempfile.mkdtemp(prefix="kmsenvelope-pg-"))
    data = directory / "data"
    try:
        if user is not None:
            entry = _server_account(user)
            os.chown(directory, entry.pw_uid, entry.pw_gid)
        directory.chmod(0o700)
        _run(
            [_binary("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
            user,
        )
        with (data / "postgresql.conf").open("a") as conf:
            for key, value in _SETTINGS.items():
                conf.write(f"{key} = {value}\n")
            conf.write("listen_addresses = '127.0.0.1'\n")
            conf.write(f"unix_socket_directories = '{directory}'\n")
        # A port can be taken between probing and binding; retry with a new one.
        last: PostgresError | None = None
        for _ in range(3):
            port = _free_port()
            try:
                _run(
                    [_binary("pg_ctl"), "-D", str(data), "-l", str(directory / "server.log"), "-w",
                     "-t", str(_START_TIMEOUT), "-o", f"-p {port}", "start"],
                    user,
                    timeout=_START_TIMEOUT + 5,
                )
                return _Server(directory, data, port, user)
            except PostgresError as exc:
                last = exc
        if last is None:
            raise RuntimeError("PostgreSQL did not start and reported no error")
        raise last
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


def _stop(server: _Server) -> None:
    try:
        # Immediate shutdown: nothing on a throwaway server needs a clean checkpoint.
        _run([_binary("pg_ctl"), "-D", str(server.data), "-m", "immediate", "-w", "stop"], server.user)
    finally:
        shutil.rmtree(server.directory, ignore_errors=True)


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """Yield a SQLAlchemy URL of a PostgreSQL database that exists for the duration of the block.

    Honours ``KMSENVELOPE_TEST_DSN``. Tests should create (and drop) their own tables.
    """
    global _shared
    env = os.environ.get(DSN_ENV)
    if env:
        yield env
        return
    with _lock:
        if _shared is None:
            _shared = _start()
        server = _shared
        server.refs += 1
    try:
        yield server.dsn
    finally:
        with _lock:
            server.refs -= 1
            if server.refs == 0:
                _shared = None
                _stop(server)
