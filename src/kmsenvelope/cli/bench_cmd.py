"""``kmsenvelope bench``: the command, and its report rendered (rich on a TTY, plain text otherwise)."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click

from . import bench as engine
from .bench_run import KEYRINGS, default_config, human_size, run
from .exits import CliError, ExitCode
from .options import parse_suite

__all__ = ["Table", "bench", "parse_size", "render_text", "report_tables"]

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20}
_SIZE = re.compile(r"^\s*(\d+)\s*([a-z]*)\s*$", re.IGNORECASE)
_ORDER = {name: i for i, name in enumerate(engine.IMPLEMENTATIONS)}
NA = "n/a"
WIDTH = 80


def parse_size(text: str) -> int:
    """``64``, ``4k``, ``4KiB``, ``16M``, ``16MiB`` -> bytes (binary multiples)."""
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _UNITS or int(match.group(1)) < 1:
        raise CliError(f"invalid size {text!r}; use e.g. 64, 4KiB, 16MiB", ExitCode.USAGE)
    size = int(match.group(1)) * _UNITS[unit]
    if size > 256 << 20:
        raise CliError(f"size {text!r} is above the 256 MiB limit", ExitCode.USAGE)
    return size


def _num(value: float | None) -> str:
    if value is None:
        return NA
    for suffix, factor in (("M", 1e6), ("k", 1e3)):
        if value >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def _mbs(value: float | None) -> str:
    return NA if value is None else f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


def _times(value: float | None) -> str:
    return NA if value is None else f"{value:.2f}x"


def _pct(value: float | None) -> str:
    return NA if value is None else f"{value * 100:.1f}%"


def _usd(value: float | None) -> str:
    return NA if value is None else f"${value:,.2f}"


@dataclass
class Table:
    """A rendered-agnostic table: title, column headers, string cells, optional footnote."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    text_columns: int = 1
    """How many leading columns hold text (left-aligned); the others are numbers, except ``note``."""
    legend: str = ""
    """What the abbreviations in the table stand for (printed under it)."""


SHORT_NAMES = {
    engine.KMSENVELOPE: "kmsenvelope",
    engine.KMSENVELOPE_INTO: "kmsenvelope, into",
    engine.ESDK: "ESDK",
    engine.KMSENVELOPE_ESDK_FRAMES: "kmsenvelope",
    engine.ESDK_DEFAULT_FRAMES: "ESDK",
    engine.AESGCM_FRESH: "AES-GCM one-shot",
    engine.AESGCM_INTO: "AES-GCM 1-shot, into",
}
"""Table names that fit 80 columns; ``--json`` keeps the full implementation names."""
MESSAGES_LEGEND = (
    "ESDK = aws-encryption-sdk (legacy raw master key API); into = encrypt_into/decrypt_into a reused "
    "buffer; one-shot = one AES-GCM call over the whole payload (no frames); frames = plaintext bytes "
    "per frame (4 KiB is the ESDK's default, 64 KiB kmsenvelope's)."
)
RATIOS_LEGEND = (
    "headline = both libraries at the ESDK's default 4 KiB frames, as ESDK users run today. %ceil = "
    "kmsenvelope *_into against AES-GCM over the same frames into a reused buffer, timed interleaved "
    "under the same conditions."
)


def _label(row: dict[str, Any]) -> str:
    from .bench_ratios import HEADLINE

    frames = human_size(row.get("frame_length") or engine.FRAME_LENGTH)
    return f"headline: {frames}" if row.get("label") == HEADLINE else f"{frames} frames"


def _note(row: dict[str, Any]) -> str:
    return f"{NA}: {row['reason']}" if row.get("status") == engine.NOT_AVAILABLE or row.get("reason") else ""


def report_tables(report: dict[str, Any]) -> list[Table]:
    """The report as tables, in display order."""
    tables: list[Table] = []
    messages = sorted(
        report.get("messages", []), key=lambda r: (r["size"], r["suite"] or "", _ORDER[r["implementation"]])
    )
    if messages:
        tables.append(
            Table(
                "Messages: raw AES-256 keyring, context of 2 pairs (MB = 10^6 bytes)",
                [
                    "size",
                    "suite",
                    "implementation",
                    "frames",
                    "enc/s",
                    "enc MB/s",
                    "dec/s",
                    "dec MB/s",
                    "note",
                ],
                [
                    [
                        human_size(r["size"]),
                        r["suite"] or "-",
                        SHORT_NAMES.get(r["implementation"], r["implementation"]),
                        human_size(r["frame_length"]) if r.get("frame_length") else "-",
                        _num(r["encrypt_ops_per_s"]),
                        _mbs(r["encrypt_mb_per_s"]),
                        _num(r["decrypt_ops_per_s"]),
                        _mbs(r["decrypt_mb_per_s"]),
                        _note(r),
                    ]
                    for r in messages
                ],
                text_columns=4,
                legend=MESSAGES_LEGEND,
            )
        )
    ratios = report.get("ratios", [])
    if ratios:
        tables.append(
            Table(
                "Ratios: kmsenvelope vs aws-encryption-sdk (x faster); share of AES-GCM ceiling",
                ["size", "suite", "comparison", "enc xESDK", "dec xESDK", "enc %ceil", "dec %ceil", "note"],
                [
                    [
                        human_size(r["size"]),
                        r["suite"],
                        _label(r),
                        _times(r["vs_esdk_encrypt"]),
                        _times(r["vs_esdk_decrypt"]),
                        _pct(r["of_ceiling_encrypt"]),
                        _pct(r["of_ceiling_decrypt"]),
                        _note(r),
                    ]
                    for r in ratios
                ],
                text_columns=3,
                legend=RATIOS_LEGEND,
            )
        )
    items = report.get("dynamodb", [])
    if items:
        tables.append(
            Table(
                "DynamoDB items",
                ["configuration", "enc items/s", "dec items/s", "note"],
                [
                    [
                        r["configuration"],
                        _num(r["encrypt_items_per_s"]),
                        _num(r["decrypt_items_per_s"]),
                        _note(r),
                    ]
                    for r in items
                ],
            )
        )
    kms = report.get("kms", [])
    if kms:
        tables.append(
            Table(
                "AWS KMS requests per message and cost per million messages ($0.03 per 10,000 requests; "
                "ops/s on the local KMS)",
                ["configuration", "calls/enc", "calls/dec", "$/1M msgs", "enc/s", "dec/s", "note"],
                [
                    [
                        r["configuration"],
                        _num(r["encrypt_calls_per_message"]),
                        _num(r["decrypt_calls_per_message"]),
                        _usd(r["total_usd_per_million_messages"]),
                        _num(r["encrypt_ops_per_s"]),
                        _num(r["decrypt_ops_per_s"]),
                        _note(r),
                    ]
                    for r in kms
                ],
                legend="$/1M msgs: encrypting and decrypting a million messages (--json has each direction).",
            )
        )
    return tables


def _banner(report: dict[str, Any]) -> list[str]:
    """Title, elapsed time, machine and versions, wrapped to 80 columns."""
    machine, versions = report["machine"], report["versions"]
    libs = ", ".join(
        f"{name} {version or 'not installed'}"
        for name, version in versions.items()
        if name in ("kmsenvelope", "aws-encryption-sdk", "cryptography")
    )
    title = f"kmsenvelope bench{' --quick' if report['config']['quick'] else ''}"
    lines = [f"{title} (elapsed {report['elapsed_s']:.1f} s)"]
    lines += textwrap.wrap(
        f"machine: {machine['platform']}, {machine['cpu_count']} CPUs, Python {machine['python']}, "
        f"{machine['openssl']}",
        WIDTH,
        subsequent_indent="  ",
    )
    lines += textwrap.wrap(f"versions: {libs}", WIDTH, subsequent_indent="  ")
    return lines


def _without_empty_notes(tables: list[Table]) -> list[Table]:
    out = []
    for table in tables:
        keep = [i for i, h in enumerate(table.headers) if h != "note" or any(row[i] for row in table.rows)]
        rows = [[row[i] for i in keep] for row in table.rows]
        out.append(
            Table(table.title, [table.headers[i] for i in keep], rows, table.text_columns, table.legend)
        )
    return out


def _left(table: Table, header: str) -> bool:
    return header == "note" or table.headers.index(header) < table.text_columns


def _wrap_widest_text_column(table: Table, widths: list[int]) -> tuple[int, int]:
    """(column, width) to wrap so a row fits :data:`WIDTH`; (-1, 0) when it already fits."""
    total = sum(widths) + 2 * (len(widths) - 1)
    if total <= WIDTH:
        return -1, 0
    text = [i for i, h in enumerate(table.headers) if i < table.text_columns]
    if not text:
        return -1, 0
    column = max(text, key=lambda i: widths[i])
    return column, max(12, widths[column] - (total - WIDTH))


def render_text(report: dict[str, Any]) -> str:
    """The report as plain aligned text, at most 80 columns wide (long names wrap, notes become footnotes)."""
    out = _banner(report)
    for table in _without_empty_notes(report_tables(report)):
        notes: list[str] = []
        if "note" in table.headers:
            index = table.headers.index("note")
            for row in table.rows:
                if row[index]:
                    notes.append(row[index])
                    row[index] = f"[{len(notes)}]"
        headers, rows = table.headers, table.rows
        widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
        wrap_at, wrap_width = _wrap_widest_text_column(table, widths)
        if wrap_at >= 0:
            widths[wrap_at] = wrap_width
        out += ["", *textwrap.wrap(table.title, WIDTH, break_on_hyphens=False)]
        for line in [headers, *rows]:
            cells = [
                textwrap.wrap(cell, wrap_width, break_on_hyphens=False) or [""] if i == wrap_at else [cell]
                for i, cell in enumerate(line)
            ]
            for depth in range(max(len(c) for c in cells)):
                parts = [
                    (c[depth] if depth < len(c) else "").ljust(width)
                    if _left(table, header)
                    else (c[depth] if depth < len(c) else "").rjust(width)
                    for c, width, header in zip(cells, widths, headers, strict=True)
                ]
                out.append("  ".join(parts).rstrip())
        for number, note in enumerate(notes, 1):
            out += textwrap.wrap(f"[{number}] {note}", WIDTH, subsequent_indent="    ")
        if table.legend:
            out += textwrap.wrap(table.legend, WIDTH, break_on_hyphens=False)
    return "\n".join(out)


def _render_rich(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    console = Console()
    console.print(Text("\n".join(_banner(report)), style="bold"))
    for table in _without_empty_notes(report_tables(report)):
        rich_table = RichTable(title=table.title, title_justify="left")
        for header in table.headers:
            rich_table.add_column(
                header, justify="left" if _left(table, header) else "right", overflow="fold"
            )
        for row in table.rows:
            rich_table.add_row(*(Text(cell, style="dim" if cell.startswith(NA) else "") for cell in row))
        console.print(rich_table)
        if table.legend:
            console.print(Text(table.legend, style="dim"))


@contextmanager
def _progress(total: int) -> Iterator[Callable[[str], None] | None]:
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description:<48}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("bench", total=total)
        first = True

        def step(label: str) -> None:
            nonlocal first
            if not first:
                progress.advance(task)
            first = False
            progress.update(task, description=label)

        yield step


def _split(values: Sequence[str]) -> list[str]:
    return [part for value in values for part in value.split(",") if part.strip()]


@click.command("bench")
@click.option("--quick", is_flag=True, help="Fewer sizes, shorter timings (about 20 s).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (machine, versions, rows).")
@click.option(
    "--size", "sizes", multiple=True, metavar="SIZE", help="Payload size, e.g. 64, 4KiB, 16MiB. Repeatable."
)
@click.option(
    "--suite", "suites", multiple=True, metavar="SUITE", help="Suite id or name (default 0x0478). Repeatable."
)
@click.option(
    "--keyring",
    "keyrings",
    multiple=True,
    type=click.Choice(KEYRINGS),
    help="raw-aes: message throughput and DynamoDB items; kms: KMS calls and cost. Repeatable.",
)
@click.option(
    "--min-time",
    type=click.FloatRange(0.001, 60),
    default=None,
    help="Seconds of timing per measured operation (default 0.3, --quick 0.05).",
)
def bench_command(
    quick: bool,
    as_json: bool,
    sizes: tuple[str, ...],
    suites: tuple[str, ...],
    keyrings: tuple[str, ...],
    min_time: float | None,
) -> None:
    """Measure kmsenvelope against aws-encryption-sdk and the AES-GCM ceiling, on local keys only.

    Needs no AWS account: messages use an embedded raw AES key; KMS rows use the local KMS.
    Rows that cannot be measured in this build say "not available" and why.
    """
    config = default_config(
        quick=quick,
        sizes=[parse_size(s) for s in _split(sizes)],
        suites=[parse_suite(s) for s in _split(suites)],
        keyrings=keyrings,
    )
    if min_time is not None:
        from dataclasses import replace

        config = replace(config, min_time=min_time)
    with _progress(config.steps()) as step:
        report = run(config, step)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    elif sys.stdout.isatty():
        _render_rich(report)
    else:
        click.echo(render_text(report))


bench = bench_command
