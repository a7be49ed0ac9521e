"""``kmsenvelope migrate dynamodb TABLE``: run :func:`kmsenvelope.bulk.migrate_table` from the shell.

The table configurations are Python objects named ``MODULE:ATTR`` (a ``TableConfig``, a sequence of
them for ``--source``, or a zero-argument callable returning either), so keyrings and policies are
written once, in code, and shared with the application.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from ..errors import ConfigurationError
from .exits import CliError, ExitCode

__all__ = ["migrate"]


def load_object(spec: str, what: str) -> Any:
    """The object named ``MODULE:ATTR`` (``ATTR`` may be dotted); called if it is a plain function."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise click.BadParameter(f"{what} must be MODULE:ATTR, e.g. myapp.crypto:orders_config")
    if "" not in sys.path:
        sys.path.insert(0, "")  # like `python -m`: modules next to where the command runs
    try:
        value: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(f"{what}: cannot import {module_name!r} ({exc})") from None
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise click.BadParameter(f"{what}: {module_name!r} has no attribute {attribute!r}") from None
    if callable(value) and type(value).__name__ == "function":
        value = value()
    return value


@click.group()
def migrate() -> None:
    """Migrate stored data to new keys or formats (bulk jobs; see docs/bulk.md)."""


@migrate.command("dynamodb")
@click.argument("table")
@click.option(
    "--source",
    "source_spec",
    required=True,
    metavar="MODULE:ATTR",
    help="TableConfig (or a list of them) the items are stored under now.",
)
@click.option(
    "--target",
    "target_spec",
    required=True,
    metavar="MODULE:ATTR",
    help="TableConfig the items must end up under.",
)
@click.option(
    "--segments",
    type=click.IntRange(0, 1_000_000),
    default=0,
    show_default=True,
    help="Parallel scan segments, one task each (0: automatic).",
)
@click.option(
    "--dask",
    "dask_address",
    metavar="ADDRESS",
    default=None,
    help="Run on this Dask scheduler (tcp://host:8786 or tls://...); default: this process.",
)
@click.option("--processes", is_flag=True, help="Run on every local core instead.")
@click.option(
    "--checkpoint", metavar="PATH", default=None, help="Progress file; run again with it to resume."
)
@click.option(
    "--max-items-per-second",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Rate limit for the whole job.",
)
@click.option("--region", default=None, help="AWS region of the table (default: the AWS config's).")
@click.option(
    "--endpoint-url", default=None, help="DynamoDB endpoint override (VPC endpoint, local testing)."
)
@click.option("--dry-run", is_flag=True, help="Read and classify only; estimate the KMS calls and cost.")
@click.option("--verify", is_flag=True, help="Read every written item back and decrypt it under the target.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def dynamodb(
    table: str, source_spec: str, target_spec: str, segments: int, dask_address: str | None, processes: bool,
    checkpoint: str | None, max_items_per_second: float | None, region: str | None, endpoint_url: str | None,
    dry_run: bool, verify: bool, as_json: bool,
) -> None:  # fmt: skip
    """Move every item of TABLE from the --source configuration to the --target one, in place.

    \b
    kmsenvelope migrate dynamodb orders --source app.crypto:OLD --target app.crypto:NEW --dry-run
    kmsenvelope migrate dynamodb orders --source app.crypto:OLD --target app.crypto:NEW \\
        --dask tls://scheduler:8786 --checkpoint orders.ckpt --json
    """
    from ..bulk import migrate_table
    from ..bulk.clients import ClientRecipe

    if dask_address and processes:
        raise CliError("--dask and --processes exclude each other", ExitCode.USAGE)
    source = load_object(source_spec, "--source")
    target = load_object(target_spec, "--target")
    client = ClientRecipe("dynamodb", region, endpoint_url)
    engine: Any = "processes" if processes else None
    dask_client = None
    if dask_address:
        try:
            import distributed
        except ImportError:
            raise CliError("--dask needs Dask: pip install 'kmsenvelope[bulk]'", ExitCode.USAGE) from None
        dask_client = engine = distributed.Client(dask_address)  # type: ignore[no-untyped-call]
    bar = _Progress() if sys.stderr.isatty() else None
    try:
        report = migrate_table(
            client, table, source=source, target=target, segments=segments, engine=engine,
            checkpoint=checkpoint, max_items_per_second=max_items_per_second, dry_run=dry_run, verify=verify,
            on_task_done=bar.advance if bar is not None else None,
        )  # fmt: skip
    except ConfigurationError as exc:
        raise CliError(str(exc), ExitCode.KEY_CONFIG) from None
    finally:
        if bar is not None:
            bar.close()
        if dask_client is not None:
            dask_client.close()  # type: ignore[no-untyped-call]
    if as_json:
        click.echo(report.to_json(indent=2))
    else:
        _summary(report)
    if report.items_failed:
        raise CliError(f"{report.items_failed} items failed (see the report)", ExitCode.INVALID_INPUT)


class _Progress:
    """Segments done and items read so far, on stderr (only when it is a terminal)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import Progress

        self._progress = Progress(console=Console(stderr=True), transient=True)
        self._task = self._progress.add_task("segments done", total=None)
        self._items = 0
        self._progress.start()

    def advance(self, tally: Any) -> None:
        self._items += tally.read
        self._progress.update(self._task, advance=1, description=f"segments done ({self._items} items read)")

    def close(self) -> None:
        self._progress.stop()


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
