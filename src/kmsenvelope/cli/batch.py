"""What ``encrypt``/``decrypt`` process: one input or a directory tree, overwrite rules, summary, metadata.

Each file is all-or-nothing (see :func:`.streams.atomic_output`). With ``-r`` a failing file does not
stop the others; a summary names every failure and the command exits with the first failure's code.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import click

from .exits import CliError, ExitCode, error_for
from .streams import STDIO

__all__ = ["Job", "MetadataSink", "Overwrite", "plan_jobs", "run_jobs"]

log = logging.getLogger("kmsenvelope.cli")

DEFAULT_SUFFIX = ".encrypted"
DECRYPTED_SUFFIX = ".decrypted"


@dataclass(frozen=True)
class Job:
    """One input and the output it is written to (``-`` for stdin / stdout)."""

    source: str
    target: str


def _is_dir_target(output: str) -> bool:
    return output != STDIO and (output.endswith(("/", os.sep)) or os.path.isdir(output))


def output_name(name: str, *, encrypting: bool, suffix: str | None) -> str:
    """The output file name for input ``name``: add the suffix on encrypt, remove it on decrypt."""
    if encrypting:
        return name + (DEFAULT_SUFFIX if suffix is None else suffix)
    if suffix is None:
        suffix = DEFAULT_SUFFIX
    if suffix and name.endswith(suffix) and len(name) > len(suffix):
        return name[: -len(suffix)]
    return name + DECRYPTED_SUFFIX


def _walk(root: Path) -> Iterator[Path]:
    """Regular files under ``root`` in a stable order; symbolic links are not followed."""
    for directory, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(directory) / name
            if path.is_symlink():
                log.warning("skipped symbolic link %s", path)
                continue
            if path.is_file():
                yield path


def plan_jobs(
    input_path: str, output: str, *, recursive: bool, encrypting: bool, suffix: str | None
) -> list[Job]:
    """The (input, output) pairs a command works on."""
    if not recursive:
        if suffix is not None and not _is_dir_target(output):
            raise CliError("--suffix applies with -r or an output directory (-o DIR/)", ExitCode.USAGE)
        if _is_dir_target(output):
            if input_path == STDIO:
                raise CliError("reading stdin needs an output file, not a directory", ExitCode.USAGE)
            if os.path.isdir(input_path):
                raise CliError(f"{input_path} is a directory: add -r to process it", ExitCode.USAGE)
            name = output_name(Path(input_path).name, encrypting=encrypting, suffix=suffix)
            if not os.path.isdir(output):
                raise FileNotFoundError(2, "No such file or directory", output)
            return [Job(input_path, os.path.join(output, name))]
        if input_path != STDIO and os.path.isdir(input_path):
            raise CliError(f"{input_path} is a directory: add -r to process it", ExitCode.USAGE)
        return [Job(input_path, output)]
    if input_path == STDIO or not os.path.isdir(input_path):
        raise CliError("-r needs an input directory", ExitCode.USAGE)
    if output == STDIO:
        raise CliError("-r needs an output directory: -o DIR", ExitCode.USAGE)
    root, out_root = Path(input_path).resolve(), Path(output).resolve()
    if out_root == root or root in out_root.parents:
        raise CliError("the output directory may not be inside the input directory", ExitCode.USAGE)
    if out_root.exists() and not out_root.is_dir():
        raise CliError(f"-r needs an output directory; {output} is a file", ExitCode.FILE)
    jobs = []
    for path in _walk(Path(input_path)):
        relative = path.relative_to(input_path)
        name = output_name(relative.name, encrypting=encrypting, suffix=suffix)
        jobs.append(Job(str(path), str(Path(output) / relative.parent / name)))
    return jobs


@dataclass(frozen=True)
class Overwrite:
    """How an existing output file is treated: refused (exit 3), replaced (``--force``), or asked about."""

    force: bool = False
    interactive: bool = False

    def allows(self, target: str) -> bool:
        """True to write ``target``; False to skip it; :class:`CliError` (``FILE``) when refused."""
        if target == STDIO or not os.path.lexists(target):
            return True
        if self.force:
            return True
        if self.interactive:
            return _ask(f"kmsenvelope: overwrite {target}? [y/N] ")
        raise CliError(f"{target} already exists (use --force to overwrite)", ExitCode.FILE)


def _ask(prompt: str) -> bool:
    """Ask on the controlling terminal (stdin may be carrying data); no terminal means no."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | getattr(os, "O_NOCTTY", 0))
    except OSError:
        raise CliError(
            "--interactive needs a terminal to ask on (use --force, or remove the file)", ExitCode.FILE
        ) from None
    try:
        os.write(fd, prompt.encode("utf-8", "replace"))
        answer = b""
        while not answer.endswith(b"\n") and len(answer) < 256:
            chunk = os.read(fd, 256)
            if not chunk:
                break
            answer += chunk
    finally:
        os.close(fd)
    return answer.strip().lower() in (b"y", b"yes")


class MetadataSink:
    """``--metadata-output FILE|-``: one JSON object per processed file, one per line."""

    def __init__(self, destination: str | None) -> None:
        self._handle: IO[str] | None = None
        self._owned = False
        if destination == STDIO:
            self._handle = sys.stdout
        elif destination is not None:
            self._handle = open(destination, "a", encoding="utf-8")  # noqa: SIM115
            self._owned = True

    @property
    def active(self) -> bool:
        """Whether records are written anywhere."""
        return self._handle is not None

    def write(self, record: dict[str, Any]) -> None:
        """Write one record as one line."""
        if self._handle is not None:
            self._handle.write(json.dumps(record, sort_keys=False) + "\n")
            self._handle.flush()

    def close(self) -> None:
        """Close the file (never stdout)."""
        if self._owned and self._handle is not None:
            self._handle.close()
        self._handle = None


@dataclass
class Summary:
    """What happened to each file of a run."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, CliError]] = field(default_factory=list)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def run_jobs(
    jobs: list[Job], work: Callable[[Job], None], overwrite: Overwrite, *, verb: str, batch: bool
) -> None:
    """Run ``work`` on each job. Single jobs raise; with ``batch``, failures are collected and summarised."""
    summary = Summary()
    for job in jobs:
        try:
            if not overwrite.allows(job.target):
                log.warning("skipped %s: %s exists", job.source, job.target)
                summary.skipped.append(job.source)
                continue
            work(job)
            summary.done.append(job.source)
        except Exception as exc:
            if not batch:
                raise
            mapped = error_for(exc) or CliError(f"unexpected {type(exc).__name__}: {exc}", ExitCode.INTERNAL)
            click.echo(f"kmsenvelope: failed: {job.source}: {mapped.format_message()}", err=True)
            summary.failed.append((job.source, mapped))
    if not batch:
        return
    line = f"{_plural(len(summary.done), 'file')} {verb}"
    if summary.skipped:
        line += f", {len(summary.skipped)} skipped"
    if summary.failed:
        first = summary.failed[0][1]
        raise CliError(f"{line}, {len(summary.failed)} failed (first failure's exit code)", first.code)
    if log.isEnabledFor(logging.WARNING):  # the summary is shown unless -q
        click.echo(f"kmsenvelope: {line}", err=True)
