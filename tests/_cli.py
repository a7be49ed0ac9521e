"""Helpers for CLI tests that run ``python -m kmsenvelope.cli`` as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from kmsenvelope.cli.keys import KeyFile, generate_aes, write_key_file

SRC = str(Path(__file__).resolve().parents[1] / "src")


def environment(extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """This process's environment with our sources first on the path, plus ``extra`` (None deletes)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH")) if p)
    for name, value in (extra or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def cli(
    *args: str | os.PathLike[str],
    input: bytes | None = None,
    env: Mapping[str, str | None] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI as a subprocess; stdout and stderr are captured as bytes."""
    return subprocess.run(
        [sys.executable, "-m", "kmsenvelope.cli", *(os.fspath(a) for a in args)],
        input=input,
        capture_output=True,
        env=environment(env),
        cwd=cwd,
        timeout=120,
    )


def key_file(directory: Path, name: str = "k", namespace: str = "kmsenvelope") -> tuple[Path, KeyFile]:
    """A raw AES key file written the way ``keygen`` writes it (without a subprocess)."""
    key = generate_aes(namespace, name)
    path = directory / f"{name}.key"
    write_key_file(path, key)
    return path, key


def one_error_line(result: subprocess.CompletedProcess[bytes], code: int) -> str:
    """Assert exit ``code`` with exactly one ``kmsenvelope: error:`` line on stderr; return it."""
    err = result.stderr.decode()
    assert result.returncode == code, (result.returncode, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kmsenvelope: error: "), err
    return lines[0]
