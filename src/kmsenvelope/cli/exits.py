"""Exit codes of the ``kmsenvelope`` command and the mapping from exceptions to them.

Every failure the CLI expects ends in one line on stderr (``kmsenvelope: error: ...``) and one of the
codes below; no traceback is printed (set ``KMSENVELOPE_DEBUG=1`` to get one for a bug report).
"""

from __future__ import annotations

import enum
import os
from typing import IO, Any

import click

from .. import errors

__all__ = ["EXIT_CODE_EPILOG", "CliError", "ExitCode", "error_for", "exit_code_table"]


class ExitCode(enum.IntEnum):
    """The process exit status of each kind of failure."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    FILE = 3
    KEY_CONFIG = 4
    NO_USABLE_KEY = 5
    INVALID_INPUT = 6
    CONTEXT = 7
    POLICY = 8
    AWS = 9
    INTERRUPTED = 130


_MEANING: dict[ExitCode, str] = {
    ExitCode.OK: "success",
    ExitCode.INTERNAL: "unexpected internal error (a bug: please report it)",
    ExitCode.USAGE: "usage error: unknown option, bad option value, missing argument",
    ExitCode.FILE: "file error: input, output or key file missing or unreadable, or output exists",
    ExitCode.KEY_CONFIG: "invalid key file or key identifier, or a public key used to decrypt",
    ExitCode.NO_USABLE_KEY: "wrong key: no given key can decrypt (or encrypt) the data key, or KMS refused",
    ExitCode.INVALID_INPUT: "tampered or malformed input: authentication failed or not a valid message",
    ExitCode.CONTEXT: "encryption context: required pair missing or different, bad KEY=VALUE, reserved key",
    ExitCode.POLICY: "refused by policy: commitment policy, EDK limit, size limit",
    ExitCode.AWS: "AWS configuration: unknown profile, no credentials, endpoint unreachable",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
}


def exit_code_table() -> list[tuple[int, str]]:
    """``(code, meaning)`` for every exit code, in order."""
    return [(int(code), meaning) for code, meaning in _MEANING.items()]


EXIT_CODE_EPILOG = "\b\nExit codes:\n" + "\n".join(
    f"  {code:>3}  {meaning}" for code, meaning in exit_code_table()
)


class CliError(click.ClickException):
    """A failure reported as one line on stderr with a specific exit code."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(_one_line(message))
        self.code = code
        # click declares exit_code as a ClassVar; each instance needs its own status.
        setattr(self, "exit_code", int(code))  # noqa: B010

    def show(self, file: IO[Any] | None = None) -> None:
        """Print ``kmsenvelope: error: ...`` on stderr."""
        click.echo(f"kmsenvelope: error: {self.format_message()}", file=file, err=file is None)


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _is_boto_error(exc: BaseException) -> bool:
    module = type(exc).__module__
    return module.startswith(("botocore", "boto3"))


# botocore errors that mean "AWS could not be reached as configured", not "this key refused".
_AWS_CONFIGURATION_ERRORS = (
    "NoCredentialsError",
    "PartialCredentialsError",
    "CredentialRetrievalError",
    "ProfileNotFound",
    "NoRegionError",
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
)


def _aws_configuration_failure(exc: errors.NoUsableKeyError) -> bool:
    """True when every key failed because AWS itself was unreachable or unconfigured."""
    reasons = [failure.reason for failure in exc.failures] or [str(exc)]
    return all(
        any(f"({name})" in reason or name in reason for name in _AWS_CONFIGURATION_ERRORS)
        for reason in reasons
    )


def error_for(exc: BaseException) -> CliError | None:
    """The :class:`CliError` an expected exception maps to, or None for an unexpected one."""
    if isinstance(exc, CliError):
        return exc
    code: ExitCode | None = None
    message = str(exc) or type(exc).__name__
    if isinstance(exc, errors.ContextMismatchError):
        code = ExitCode.CONTEXT
    elif isinstance(exc, errors.NoUsableKeyError):
        code = ExitCode.AWS if _aws_configuration_failure(exc) else ExitCode.NO_USABLE_KEY
    elif isinstance(exc, (errors.AuthenticationError, errors.MalformedInputError)):
        code = ExitCode.INVALID_INPUT
        if isinstance(exc, errors.AuthenticationError):
            message = f"input failed authentication (tampered, or not made with this key): {message}"
    elif isinstance(exc, errors.ConfigurationError):
        code = ExitCode.KEY_CONFIG
    elif isinstance(exc, errors.PolicyError):
        code = ExitCode.CONTEXT if "encryption context" in message else ExitCode.POLICY
    elif isinstance(exc, errors.KmsEnvelopeError):
        code = ExitCode.INTERNAL
    elif isinstance(exc, BrokenPipeError):
        code, message = ExitCode.FILE, "output closed before everything was written (broken pipe)"
    elif isinstance(exc, FileNotFoundError):
        code, message = ExitCode.FILE, f"no such file or directory: {exc.filename}"
    elif isinstance(exc, FileExistsError):
        code, message = ExitCode.FILE, f"{exc.filename} already exists (use --force to overwrite)"
    elif isinstance(exc, IsADirectoryError):
        code, message = ExitCode.FILE, f"is a directory: {exc.filename}"
    elif isinstance(exc, PermissionError):
        code, message = ExitCode.FILE, f"permission denied: {exc.filename}"
    elif isinstance(exc, OSError):
        code = ExitCode.FILE
        message = f"{exc.strerror or type(exc).__name__}: {exc.filename}" if exc.filename else message
    elif _is_boto_error(exc):
        code = ExitCode.AWS
    if code is None:
        return None
    return CliError(message, code)


def debug_enabled() -> bool:
    """Whether ``KMSENVELOPE_DEBUG`` asks for tracebacks on unexpected errors."""
    return os.environ.get("KMSENVELOPE_DEBUG", "") not in ("", "0")
