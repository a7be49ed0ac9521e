"""Option parsing shared by ``encrypt`` and ``decrypt``: context, suite, policy, cache, KMS, verbosity."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from ..suites import CommitmentPolicy, Suite
from .exits import CliError, ExitCode

__all__ = [
    "POLICY_NAMES",
    "CacheSpec",
    "configure_logging",
    "kms_options",
    "parse_cache",
    "parse_context",
    "parse_policy",
    "parse_suite",
    "verbosity_options",
]

F = TypeVar("F", bound=Callable[..., Any])

POLICY_NAMES = {
    "forbid-encrypt-allow-decrypt": CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT,
    "require-encrypt-allow-decrypt": CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT,
    "require-encrypt-require-decrypt": CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
}
POLICY_FLAG = "--commitment-policy"


def parse_context(pairs: Sequence[str], option: str) -> dict[str, str]:
    """``KEY=VALUE`` strings as a dict (:class:`CliError` with ``CONTEXT`` if one is malformed)."""
    context: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"{option} expects KEY=VALUE, got {pair!r}", ExitCode.CONTEXT)
        if key in context and context[key] != value:
            raise CliError(f"{option} gives two values for {key!r}", ExitCode.CONTEXT)
        context[key] = value
    return context


def parse_suite(value: str) -> Suite:
    """A suite from its hex id (``0x0478``, ``0478``) or its name."""
    text = value.strip()
    for suite in Suite:
        if text.upper() == suite.name:
            return suite
    try:
        return Suite.from_id(int(text.removeprefix("0x").removeprefix("0X"), 16))
    except ValueError:
        names = ", ".join(f"0x{s.id:04X}" for s in Suite)
        raise CliError(f"unknown suite {value!r}; choose one of {names}", ExitCode.USAGE) from None


def parse_policy(value: str | None, *, allow_uncommitted: bool = False) -> CommitmentPolicy:
    """The ``--commitment-policy`` value (default: require commitment both ways)."""
    if value is None:
        if allow_uncommitted:
            return CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT
        return CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    policy = POLICY_NAMES[value]
    if allow_uncommitted and policy.decrypt_requires_commitment:
        raise CliError(
            f"--allow-uncommitted contradicts {POLICY_FLAG} {value}; give one of them", ExitCode.USAGE
        )
    return policy


def policy_name(policy: CommitmentPolicy) -> str:
    """The CLI spelling of ``policy``."""
    return next(name for name, value in POLICY_NAMES.items() if value is policy)


def policy_option(func: F) -> F:
    """Add ``--commitment-policy``."""
    return click.option(
        POLICY_FLAG,
        "commitment_policy",
        type=click.Choice(list(POLICY_NAMES)),
        metavar="POLICY",
        default=None,
        help="forbid-encrypt-allow-decrypt (needed to write legacy suites), require-encrypt-allow-decrypt "
        "(also reads legacy messages) or require-encrypt-require-decrypt (the default).",
    )(func)


@dataclass(frozen=True)
class CacheSpec:
    """``--cache max_age=SECONDS,max_messages=N``: how long and for how many messages a data key is reused."""

    max_age: float
    max_messages: int


def parse_cache(value: str | None) -> CacheSpec | None:
    """Parse ``--cache``; ``max_age`` is required, ``max_messages`` defaults to 2**32."""
    if value is None:
        return None
    fields: dict[str, str] = {}
    for part in value.split(","):
        name, sep, text = part.strip().partition("=")
        if not sep or name not in ("max_age", "max_messages") or name in fields:
            raise CliError(f"--cache expects max_age=SECONDS[,max_messages=N], got {value!r}", ExitCode.USAGE)
        fields[name] = text
    if "max_age" not in fields:
        raise CliError("--cache needs max_age=SECONDS", ExitCode.USAGE)
    try:
        max_age = float(fields["max_age"])
        max_messages = int(fields.get("max_messages", str(2**32)))
    except ValueError:
        raise CliError(f"--cache: not a number in {value!r}", ExitCode.USAGE) from None
    if not (max_age > 0 and max_age < float("inf")) or not 1 <= max_messages <= 2**32:
        raise CliError("--cache: max_age must be > 0 and max_messages between 1 and 2**32", ExitCode.USAGE)
    return CacheSpec(max_age, max_messages)


def kms_options(region_help: str) -> Callable[[F], F]:
    """Add ``--region``, ``--profile`` and ``--endpoint-url`` (``region_help`` is command-specific)."""

    def decorate(func: F) -> F:
        func = click.option(
            "--endpoint-url",
            help="AWS KMS endpoint (VPC endpoint, local KMS). AWS_ENDPOINT_URL_KMS and AWS_ENDPOINT_URL "
            "are honoured when it is not given.",
        )(func)
        func = click.option("--profile", help="AWS shared-config profile for KMS.")(func)
        func = click.option("--region", help=region_help)(func)
        return func

    return decorate


def verbosity_options(func: F) -> F:
    """Add ``-v/--verbose`` (repeatable) and ``-q/--quiet``."""
    func = click.option("-q", "--quiet", is_flag=True, help="Print errors only.")(func)
    func = click.option(
        "-v",
        "--verbose",
        count=True,
        help="-v: what is done, KMS calls, suite, frame length, timings; -vv: each KMS call. "
        "Never key material or plaintext.",
    )(func)
    return func


LOGGER_NAME = "kmsenvelope"


def configure_logging(verbose: int, quiet: bool) -> None:
    """Send ``kmsenvelope`` log records to stderr at the level ``-v``/``-vv``/``-q`` ask for."""
    if verbose and quiet:
        raise CliError("-v and -q contradict each other; give one of them", ExitCode.USAGE)
    level = logging.ERROR if quiet else {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        if getattr(handler, "_kmsenvelope_cli", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("kmsenvelope: %(message)s"))
    handler._kmsenvelope_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
