"""The ``kmsenvelope`` command line: keygen, encrypt, decrypt, inspect and bench.

Needs the ``cli`` extra (click, rich). Nothing in the library imports this package, and rich is imported
only where output is rendered, so ``import kmsenvelope`` stays fast.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import click

from .exits import EXIT_CODE_EPILOG, CliError, ExitCode, debug_enabled, error_for

__all__ = ["cli", "main"]


# Bare ``kmsenvelope`` or ``kmsenvelope keygen`` shows the help (click >= 8.2 signals that as a usage error).
_SHOWS_HELP: tuple[type[BaseException], ...] = tuple(
    t for t in (getattr(click.exceptions, "NoArgsIsHelpError", None),) if isinstance(t, type)
)


def _usage(exc: click.UsageError) -> click.ClickException:
    """A click usage error as one line, naming the command's --help."""
    if isinstance(exc, _SHOWS_HELP):
        return exc
    command = exc.ctx.command_path if exc.ctx is not None else "kmsenvelope"
    return CliError(f"{exc.format_message()} (see '{command} --help')", ExitCode.USAGE)


class _Group(click.Group):
    """A group whose commands turn expected library and OS errors into one-line errors and exit codes."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            raise _usage(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _usage(exc) from None
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            raise CliError("interrupted", ExitCode.INTERRUPTED) from None
        except Exception as exc:
            mapped = error_for(exc)
            if mapped is not None:
                raise mapped from None
            if debug_enabled():
                traceback.print_exc()
            raise CliError(
                f"unexpected {type(exc).__name__}: {exc} (set KMSENVELOPE_DEBUG=1 for a traceback)",
                ExitCode.INTERNAL,
            ) from None


def _version() -> str:
    from .. import __version__

    return __version__


@click.group(cls=_Group, epilog=EXIT_CODE_EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), prog_name="kmsenvelope")
def cli() -> None:
    """Client-side envelope encryption, byte-compatible with the AWS Encryption SDK.

    \b
    kmsenvelope keygen aes backup.key
    kmsenvelope encrypt --key backup.key --context purpose=backup data.tar -o data.tar.enc
    kmsenvelope decrypt --key backup.key --require-context purpose=backup data.tar.enc -o data.tar
    kmsenvelope inspect data.tar.enc
    kmsenvelope encrypt -r --key backup.key photos/ -o encrypted/
    kmsenvelope bench --quick
    kmsenvelope local-aws          (a local AWS KMS to try --key arn:... without an account)
    """


def _register() -> None:
    from .bench_cmd import bench
    from .commands import decrypt, encrypt
    from .inspect import inspect
    from .keygen_cmd import keygen
    from .local_aws_cmd import local_aws
    from .migrate_cmd import migrate
    from .rewrap_cmd import rewrap

    for command in (keygen, encrypt, decrypt, inspect, bench, rewrap, migrate, local_aws):
        command.epilog = EXIT_CODE_EPILOG
        cli.add_command(command)


_register()


def _quiet_stdout_flush() -> None:
    """Flush stdout; if the reader has gone, point it at /dev/null so exit does not complain again."""
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line (the ``kmsenvelope`` console script)."""
    from .streams import Terminated, die_of, install_termination_handlers

    install_termination_handlers()
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="kmsenvelope")
    except Terminated as exc:
        # Temporary files are gone by now (context managers ran); end as the signal would have.
        _quiet_stdout_flush()
        die_of(exc.signum)
    except KeyboardInterrupt:  # pragma: no cover - outside a command
        click.echo("kmsenvelope: error: interrupted", err=True)
        sys.exit(int(ExitCode.INTERRUPTED))
    finally:
        _quiet_stdout_flush()
