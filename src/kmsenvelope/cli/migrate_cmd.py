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
from .bulk_run import bulk_options, finish, job_engine, progress_bar
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
    "--max-items-per-second",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Rate limit for the whole job.",
)
@click.option("--region", default=None, help="AWS region of the table (default: the AWS config's).")
@click.option(
    "--endpoint-url", default=None, help="DynamoDB endpoint override (VPC endpoint, local testing)."
)
@click.option("--verify", is_flag=True, help="Read every written item back and decrypt it under the target.")
@bulk_options("items")
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

    source = load_object(source_spec, "--source")
    target = load_object(target_spec, "--target")
    client = ClientRecipe("dynamodb", region, endpoint_url)
    with job_engine(dask_address, processes) as engine, progress_bar("segments") as bar:
        try:
            report = migrate_table(
                client, table, source=source, target=target, segments=segments, engine=engine,
                checkpoint=checkpoint, max_items_per_second=max_items_per_second, dry_run=dry_run,
                verify=verify, on_task_done=bar.advance if bar is not None else None,
            )  # fmt: skip
        except ConfigurationError as exc:
            raise CliError(str(exc), ExitCode.KEY_CONFIG) from None
    finish(report, as_json)
