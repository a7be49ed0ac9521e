"""``kmsenvelope encrypt``, ``decrypt`` and ``keygen``."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import KmsEnvelopeError, NoUsableKeyError
from ..suites import CommitmentPolicy, Suite
from . import keys as keys_mod
from .exits import CliError, ExitCode
from .streams import STDIO, Base64Writer, HeadRecorder, atomic_output, base64_input, open_input

__all__ = ["decrypt", "encrypt", "keygen", "parse_context", "parse_suite"]

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_SUITE = "0x0478"


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


def kms_options(func: F) -> F:
    """Add ``--region``, ``--profile`` and ``--endpoint-url``."""
    func = click.option("--endpoint-url", help="AWS KMS endpoint (VPC endpoint, local KMS).")(func)
    func = click.option("--profile", help="AWS shared-config profile for KMS.")(func)
    func = click.option("--region", help="AWS region for aliases, bare key ids and --discovery.")(func)
    return func


def io_options(func: F) -> F:
    """Add ``INPUT``, ``-o/--output`` and ``--base64``."""
    func = click.option(
        "--base64", "use_base64", is_flag=True, help="Ciphertext is base64 text, not binary."
    )(func)
    func = click.option(
        "-o", "--output", default=STDIO, show_default=True, help="Output file, or - for stdout."
    )(func)
    func = click.argument("input_path", metavar="[INPUT|-]", default=STDIO)(func)
    return func


def _check_paths(input_path: str, output: str) -> None:
    if input_path != STDIO and not os.path.exists(input_path):
        raise CliError(f"input file not found: {input_path}", ExitCode.FILE)
    if output != STDIO and input_path != STDIO and os.path.abspath(output) == os.path.abspath(input_path):
        raise CliError("output file is the input file; write elsewhere", ExitCode.FILE)


@click.command()
@io_options
@click.option(
    "--key",
    "-k",
    "keys",
    multiple=True,
    required=True,
    metavar="KEY",
    help="Key file from keygen, or AWS KMS key ARN / alias / id. Repeat to wrap under several keys.",
)
@click.option(
    "--context",
    "-c",
    "context_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Encryption context pair (authenticated, stored in clear). Repeatable.",
)
@click.option("--suite", default=DEFAULT_SUITE, show_default=True, help="Algorithm suite id or name.")
@click.option(
    "--frame-length",
    type=click.IntRange(1, 2**31 - 1),
    default=65536,
    show_default=True,
    help="Plaintext bytes per frame.",
)
@kms_options
def encrypt(
    input_path: str,
    output: str,
    use_base64: bool,
    keys: tuple[str, ...],
    context_pairs: tuple[str, ...],
    suite: str,
    frame_length: int,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
) -> None:
    """Encrypt INPUT (default stdin) into an AWS Encryption SDK message."""
    from ..envelope import Envelope

    context = parse_context(context_pairs, "--context")
    chosen = parse_suite(suite)
    _check_paths(input_path, output)
    if output == STDIO and not use_base64 and sys.stdout.isatty():
        raise CliError(
            "refusing to write binary ciphertext to a terminal; use -o FILE or --base64", ExitCode.USAGE
        )
    keyring = keys_mod.build_keyring(
        keys, keys_mod.KmsOptions(region, profile, endpoint_url), decrypting=False
    )
    policy = (
        CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
        if chosen.committing
        else CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT
    )
    envelope = Envelope(keyring, suite=chosen, frame_length=frame_length, commitment_policy=policy)
    with open_input(input_path) as src, atomic_output(output, private=False) as dst:
        if use_base64:
            encoder = Base64Writer(dst)
            envelope.encrypt_stream(src, encoder, context)  # type: ignore[arg-type]
            encoder.finish()
        else:
            envelope.encrypt_stream(src, dst, context)


@click.command()
@io_options
@click.option(
    "--key",
    "-k",
    "keys",
    multiple=True,
    metavar="KEY",
    help="Key file, or AWS KMS key ARN. Repeat to try several keys.",
)
@click.option(
    "--require-context",
    "-c",
    "context_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Fail unless the message is bound to this context pair. Repeatable.",
)
@click.option("--discovery", is_flag=True, help="Decrypt with any AWS KMS key you may use (in --region).")
@click.option(
    "--discovery-account",
    "discovery_accounts",
    multiple=True,
    metavar="ACCOUNT",
    help="With --discovery: only trust KMS keys of this AWS account. Repeatable.",
)
@click.option("--discovery-partition", default="aws", show_default=True, help="With --discovery-account.")
@click.option(
    "--allow-uncommitted", is_flag=True, help="Also decrypt messages of legacy suites without key commitment."
)
@click.option(
    "--max-encrypted-data-keys",
    type=click.IntRange(1, 65535),
    default=None,
    help="Refuse messages carrying more encrypted data keys.",
)
@kms_options
def decrypt(
    input_path: str,
    output: str,
    use_base64: bool,
    keys: tuple[str, ...],
    context_pairs: tuple[str, ...],
    discovery: bool,
    discovery_accounts: tuple[str, ...],
    discovery_partition: str,
    allow_uncommitted: bool,
    max_encrypted_data_keys: int | None,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
) -> None:
    """Decrypt an AWS Encryption SDK message from INPUT (default stdin).

    With -o FILE, plaintext goes to a temporary file that replaces FILE only once the whole message
    has been authenticated. To stdout, each frame is written once its tag verifies (signed suites:
    only after the signature verifies); if decryption then fails, the exit status is non-zero and
    what was written must be discarded.
    """
    from ..envelope import Envelope

    required = parse_context(context_pairs, "--require-context")
    _check_paths(input_path, output)
    keyring = keys_mod.build_keyring(
        keys,
        keys_mod.KmsOptions(region, profile, endpoint_url),
        decrypting=True,
        discovery=discovery,
        discovery_accounts=discovery_accounts,
        discovery_partition=discovery_partition,
    )
    policy = (
        CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT
        if allow_uncommitted
        else CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    envelope = Envelope(keyring, commitment_policy=policy, max_encrypted_data_keys=max_encrypted_data_keys)
    with open_input(input_path) as raw_src, atomic_output(output, private=True) as dst:
        src = HeadRecorder(base64_input(raw_src) if use_base64 else raw_src)
        try:
            envelope.decrypt_stream(src, dst, required)  # type: ignore[arg-type]
        except NoUsableKeyError:
            _explain_missing_context(src.head, required)
            raise


def _explain_missing_context(head: bytes, required: dict[str, str]) -> None:
    """Turn "no usable key" into a context error when required pairs are not stored in the message.

    Such pairs are authenticated as required context (ESDK required-encryption-context semantics), so a
    pair the message was never bound to makes every data key fail to unwrap.
    """
    if not required:
        return
    from ..message.header import DecryptLimits, parse_header

    try:
        stored = parse_header(head, DecryptLimits()).encryption_context
    except KmsEnvelopeError:
        return
    missing = sorted(key for key in required if key not in stored)
    if missing:
        raise CliError(
            f"the message does not store encryption context key(s) {', '.join(map(repr, missing))}: they are "
            "not bound to it (or are required context this key cannot verify)",
            ExitCode.CONTEXT,
        )


@click.group()
def keygen() -> None:
    """Create a local wrapping key file (mode 0600)."""


def _key_name(keyfile: str, name: str | None) -> str:
    if name:
        return name
    stem = Path(keyfile).name.removesuffix(".json").removesuffix(".key")
    return stem or "key"


def _refuse_existing(paths: Sequence[str], force: bool) -> None:
    if force:
        return
    for path in paths:
        if os.path.lexists(path):
            raise CliError(f"{path} already exists (use --force to overwrite)", ExitCode.FILE)


def _check_dir(keyfile: str) -> None:
    parent = Path(keyfile).parent
    if not parent.is_dir():
        raise CliError(f"directory not found: {parent}", ExitCode.FILE)


_NAME_HELP = "Key name written into each message (default: the file name without .key or .json)."
_NS_HELP = "Key namespace (provider id) written into each message."


@keygen.command("aes")
@click.argument("keyfile")
@click.option("--bits", type=click.Choice(["128", "192", "256"]), default="256", show_default=True)
@click.option("--namespace", default=keys_mod.DEFAULT_NAMESPACE, show_default=True, help=_NS_HELP)
@click.option("--name", default=None, help=_NAME_HELP)
@click.option("--force", is_flag=True, help="Overwrite an existing key file.")
def keygen_aes(keyfile: str, bits: str, namespace: str, name: str | None, force: bool) -> None:
    """Create a raw AES wrapping key in KEYFILE."""
    _check_dir(keyfile)
    _refuse_existing([keyfile], force)
    key = keys_mod.generate_aes(namespace, _key_name(keyfile, name), int(bits))
    key.keyring()  # validates namespace and name before anything is written
    keys_mod.write_key_file(keyfile, key, force=force)
    click.echo(f"wrote {key.type} key {key.namespace}/{key.name} ({key.bits} bits) to {keyfile}")


@keygen.command("rsa")
@click.argument("keyfile")
@click.option("--bits", type=click.Choice(["2048", "3072", "4096"]), default="3072", show_default=True)
@click.option(
    "--padding",
    default="OAEP-SHA256",
    show_default=True,
    type=click.Choice(["OAEP-SHA1", "OAEP-SHA256", "OAEP-SHA384", "OAEP-SHA512", "PKCS1"]),
)
@click.option("--namespace", default=keys_mod.DEFAULT_NAMESPACE, show_default=True, help=_NS_HELP)
@click.option("--name", default=None, help=_NAME_HELP)
@click.option("--force", is_flag=True, help="Overwrite existing key files.")
def keygen_rsa(keyfile: str, bits: str, padding: str, namespace: str, name: str | None, force: bool) -> None:
    """Create an RSA key pair: private key in KEYFILE, public key in KEYFILE.pub."""
    public_path = keyfile + ".pub"
    _check_dir(keyfile)
    _refuse_existing([keyfile, public_path], force)
    private, public = keys_mod.generate_rsa(namespace, _key_name(keyfile, name), int(bits), padding)
    private.keyring()
    keys_mod.write_key_file(keyfile, private, force=force)
    keys_mod.write_key_file(public_path, public, force=force)
    click.echo(f"wrote {private.type} key {private.namespace}/{private.name} ({bits} bits) to {keyfile}")
    click.echo(f"wrote {public.type} key to {public_path}")
