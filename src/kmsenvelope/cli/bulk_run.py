"""What the bulk commands (``migrate dynamodb``, ``rewrap s3://bucket/prefix/``) share: the engine
options, the progress bar, the summary or JSON report, and the exit status of a finished job."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from .. import errors
from .exits import CliError, ExitCode

__all__ = ["Progress", "bulk_options", "finish", "job_engine", "progress_bar"]

F = TypeVar("F", bound=Callable[..., Any])


def bulk_options(unit: str) -> Callable[[F], F]:
    """Add ``--dask``, ``--processes``, ``--checkpoint``, ``--dry-run`` and ``--json``."""

    def decorate(func: F) -> F:
        func = click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")(func)
        func = click.option(
            "--dry-run",
            is_flag=True,
            help=f"Read and classify the {unit} only; estimate the KMS calls and cost.",
        )(func)
        func = click.option(
            "--checkpoint", metavar="PATH", default=None, help="Progress file; run again with it to resume."
        )(func)
        func = click.option("--processes", is_flag=True, help="Run on every local core instead.")(func)
        func = click.option(
            "--dask",
            "dask_address",
            metavar="ADDRESS",
            default=None,
            help="Run on this Dask scheduler (tcp://host:8786 or tls://...); default: this process.",
        )(func)
        return func

    return decorate


@contextmanager
def job_engine(dask_address: str | None, processes: bool) -> Iterator[Any]:
    """The ``engine=`` of a bulk job for these options; a Dask client is closed afterwards."""
    if dask_address and processes:
        raise CliError("--dask and --processes exclude each other", ExitCode.USAGE)
    if not dask_address:
        yield "processes" if processes else None
        return
    try:
        import distributed
    except ImportError:
        raise CliError("--dask needs Dask: pip install 'kmsenvelope[bulk]'", ExitCode.USAGE) from None
    client = distributed.Client(dask_address)  # type: ignore[no-untyped-call]
    try:
        yield client
    finally:
        client.close()  # type: ignore[no-untyped-call]


class Progress:
    """Tasks done and items read so far, on stderr."""

    def __init__(self, unit: str) -> None:
        from rich.console import Console
        from rich.progress import Progress as RichProgress

        self._unit = unit
        self._progress = RichProgress(console=Console(stderr=True), transient=True)
        self._task = self._progress.add_task(f"{unit} done", total=None)
        self._items = 0
        self._progress.start()

    def advance(self, tally: Any) -> None:
        self._items += tally.read
        self._progress.update(
            self._task, advance=1, description=f"{self._unit} done ({self._items} items read)"
        )

    def close(self) -> None:
        self._progress.stop()


@contextmanager
def progress_bar(unit: str) -> Iterator[Progress | None]:
    """A :class:`Progress` when stderr is a terminal, else ``None``; stopped afterwards."""
    bar = Progress(unit) if sys.stderr.isatty() else None
    try:
        yield bar
    finally:
        if bar is not None:
            bar.close()


def finish(report: Any, as_json: bool) -> None:
    """Print the report (a summary, or its JSON) and fail with the code of its first failure, if any.

    A failure's reason starts with the name of the kmsenvelope error behind it; the exit status is the
    one the single-message commands give that error (e.g. 8 for a policy refusal), and 6 (invalid
    input) for anything else.
    """
    if as_json:
        click.echo(report.to_json(indent=2))
    else:
        _summary(report)
    if report.items_failed:
        code = failure_code(report.failures[0].reason)
        raise CliError(f"{report.items_failed} items failed (see the report)", code)


def failure_code(reason: str) -> ExitCode:
    """The exit code for a job failure whose reason is ``"ErrorName: message"``."""
    error = getattr(errors, reason.partition(":")[0], None)
    if not isinstance(error, type):
        return ExitCode.INVALID_INPUT
    if issubclass(error, errors.ContextMismatchError):
        return ExitCode.CONTEXT
    if issubclass(error, errors.NoUsableKeyError):
        return ExitCode.NO_USABLE_KEY
    if issubclass(error, errors.PolicyError):
        return ExitCode.CONTEXT if "encryption context" in reason else ExitCode.POLICY
    return ExitCode.INVALID_INPUT


def _summary(report: Any) -> None:
    verb = "would be" if report.dry_run else "were"
    click.echo(
        f"{report.items_read} items read in {report.elapsed_seconds:.1f} s "
        f"({report.items_per_second:.0f}/s): "
        f"{report.items_skipped} already done, {report.items_rewrapped} {verb} rewrapped, "
        f"{report.items_reencrypted} {verb} re-encrypted, {report.items_written} written, "
        f"{report.items_failed} failed"
    )
    formats = ", ".join(f"{n} {kind}" for kind, n in report.formats.items())
    click.echo(f"formats: {formats or 'none'}; KMS calls {report.kms_calls}; retries {report.retries}; "
               f"throttled {report.throttling_events}; conflicts {report.conflicts}")  # fmt: skip
    if report.dry_run:
        click.echo(f"estimate: {report.estimated_kms_calls} KMS calls, ${report.estimated_kms_cost_usd:.2f}")
    for failure in report.failures[:20]:
        click.echo(f"failed {failure.key}: {failure.reason}", err=True)
