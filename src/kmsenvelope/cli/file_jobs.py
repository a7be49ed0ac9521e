"""Per-file plumbing of ``encrypt``/``decrypt``: shared options, byte counting, cache, reports, metadata."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click

from .batch import Job, MetadataSink, Overwrite
from .exits import CliError, ExitCode
from .options import CacheSpec, verbosity_options
from .streams import STDIO

__all__ = [
    "Counting",
    "KnownLength",
    "check_job",
    "io_options",
    "kms_calls",
    "make_parent",
    "metadata_sink",
    "overwrite_rule",
    "record",
    "replacing",
    "report",
    "with_cache",
]

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("kmsenvelope.cli")


def io_options(func: F) -> F:
    """Input, output, overwrite, directory, metadata, cache and verbosity options."""
    options = [
        click.argument("input_path", metavar="[INPUT|-]", default=STDIO),
        click.option(
            "-o",
            "--output",
            default=STDIO,
            show_default=True,
            help="Output file, - for stdout, or a directory (DIR/ or an existing one).",
        ),
        click.option("--base64", "use_base64", is_flag=True, help="Ciphertext is base64 text, not binary."),
        click.option(
            "-r", "--recursive", is_flag=True, help="INPUT is a directory: process its tree into -o DIR."
        ),
        click.option(
            "--suffix",
            default=None,
            help="Output name suffix with -r or -o DIR/ (default .encrypted, added on encrypt and "
            "removed on decrypt; '' for none).",
        ),
        click.option("-f", "--force", is_flag=True, help="Replace existing output files."),
        click.option(
            "-i", "--interactive", is_flag=True, help="Ask on the terminal before replacing a file."
        ),
        click.option(
            "--metadata-output",
            metavar="FILE|-",
            default=None,
            help="Append one JSON line per file (the fields of inspect --json, plus input, output, bytes).",
        ),
        click.option(
            "--cache",
            "cache_spec",
            metavar="max_age=SECONDS[,max_messages=N]",
            default=None,
            help="Reuse data keys across files (CachingMaterials): fewer KMS calls for many files.",
        ),
        verbosity_options,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def check_job(job: Job) -> None:
    if job.source != STDIO and not os.path.exists(job.source):
        raise CliError(f"input file not found: {job.source}", ExitCode.FILE)
    if (
        job.target != STDIO
        and job.source != STDIO
        and os.path.abspath(job.target) == os.path.abspath(job.source)
    ):
        raise CliError("output file is the input file; write elsewhere", ExitCode.FILE)


class Counting:
    """Counts bytes through a reader or writer; a reader past ``limit`` bytes is an error."""

    def __init__(self, stream: Any, limit: int | None = None, name: str = "") -> None:
        self._stream = stream
        self._limit = limit
        self._name = name
        self.count = 0

    def _seen(self, n: int) -> int:
        self.count += n
        if self._limit is not None and self.count > self._limit:
            raise CliError(f"{self._name} grew while it was being encrypted", ExitCode.FILE)
        return n

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self._seen(len(data))
        return bytes(data)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._stream.read(len(view))
        view[: len(data)] = data
        return self._seen(len(data))

    def write(self, data: Any) -> int:
        self._stream.write(data)
        return self._seen(len(memoryview(data).cast("B")))

    def flush(self) -> None:
        flush = getattr(self._stream, "flush", None)
        if flush is not None:
            flush()


class KnownLength:
    """Passes the input's size on, so :class:`CachingMaterials` may serve a streamed file (spec: the
    cache is bypassed when the plaintext length is unknown). The reader enforces that size."""

    def __init__(self, inner: Any, length: int) -> None:
        self._inner = inner
        self._length = length

    def get_encryption_materials(self, request: Any) -> Any:
        return self._inner.get_encryption_materials(
            dataclasses.replace(request, max_plaintext_length=self._length)
        )

    def decrypt_materials(self, request: Any) -> Any:
        return self._inner.decrypt_materials(request)


def with_cache(keyring: Any, spec: CacheSpec | None) -> Any:
    if spec is None:
        return keyring
    from .. import CachingMaterials

    return CachingMaterials(keyring, max_age=spec.max_age, max_messages=spec.max_messages)


def kms_calls() -> int:
    from .. import stats

    return stats().calls


def report(
    verb: str, job: Job, doc: Mapping[str, Any], counts: tuple[int, int], started: float, kms: int
) -> None:
    calls = kms_calls() - kms
    log.info(
        "%s %s -> %s: suite %s, frame length %s, %d bytes in, %d bytes out, %d KMS call%s, %.1f ms",
        verb,
        "stdin" if job.source == STDIO else job.source,
        "stdout" if job.target == STDIO else job.target,
        doc["suite_id"],
        doc["frame_length"],
        counts[0],
        counts[1],
        calls,
        "" if calls == 1 else "s",
        (time.perf_counter() - started) * 1000,
    )


def record(
    doc: dict[str, Any], job: Job, operation: str, encoding: str, counts: tuple[int, int]
) -> dict[str, Any]:
    return {
        "operation": operation,
        "input": job.source,
        "output": job.target,
        "kind": "esdk-message",
        "encoding": encoding,
        **doc,
        "bytes_in": counts[0],
        "bytes_out": counts[1],
    }


def overwrite_rule(force: bool, interactive: bool) -> Overwrite:
    if force and interactive:
        raise CliError("--force and --interactive contradict each other; give one of them", ExitCode.USAGE)
    return Overwrite(force=force, interactive=interactive)


def replacing(target: str) -> bool:
    # Called once Overwrite.allows() said yes: an existing target may be replaced, a new one may not
    # appear meanwhile (the file is then linked without replacing).
    return target != STDIO and os.path.lexists(target)


def metadata_sink(destination: str | None, jobs: list[Job]) -> MetadataSink:
    if destination == STDIO and any(job.target == STDIO for job in jobs):
        raise CliError("--metadata-output - needs the data output in a file (-o FILE)", ExitCode.USAGE)
    return MetadataSink(destination)


def make_parent(target: str, batch: bool) -> None:
    if batch:
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
