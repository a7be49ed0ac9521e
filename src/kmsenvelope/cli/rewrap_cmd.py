"""``kmsenvelope rewrap``: move a message, file or S3 object to other keys without re-encrypting it."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from ..errors import ConfigurationError, NoUsableKeyError, PolicyError
from ..materials.protocols import Keyring
from ..message.header import DecryptLimits, MessageHeader
from . import keys as keys_mod
from .bulk_run import bulk_options, finish, job_engine
from .commands import _explain_missing_context
from .exits import CliError, ExitCode
from .explain import Replay, check_policy, explain_wrong_key, peek_header
from .file_jobs import replacing
from .options import POLICY_FLAG, kms_options, parse_context, parse_policy, policy_option
from .streams import STDIO, atomic_output, open_input

__all__ = ["rewrap"]

_S3 = "s3://"
NONCE_FLAG = "--allow-header-nonce-reuse"


@click.command()
@click.argument("input_path", metavar="[INPUT|-|s3://BUCKET/KEY|s3://BUCKET/PREFIX/]", default=STDIO)
@click.option(
    "-o",
    "--output",
    default=None,
    help="Output file or - for stdout (default: stdout; for s3:// input, the same object replaced; "
    "for an s3://BUCKET/PREFIX/, s3://DEST-BUCKET/ to write the same keys into another bucket).",
)
@click.option("-f", "--force", is_flag=True, help="Replace an existing output file.")
@click.option(
    "--key",
    "-k",
    "keys",
    multiple=True,
    required=True,
    metavar="KEY",
    help="Key file or AWS KMS key ARN that can decrypt the message. Repeat to try several keys.",
)
@click.option(
    "--to",
    "new_keys",
    multiple=True,
    required=True,
    metavar="KEY",
    help="Key file (a public RSA key will do) or AWS KMS key to wrap the data key under. Repeatable.",
)
@click.option("--keep-old", is_flag=True, help="Keep the old encrypted data keys next to the new ones.")
@click.option(
    "--resign", is_flag=True, help="Signed suites: sign again with a fresh key pair (you sign as a writer)."
)
@click.option(
    "--require-context",
    "-c",
    "context_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Fail unless the message is bound to this context pair. Repeatable.",
)
@policy_option
@click.option(
    "--allow-uncommitted",
    is_flag=True,
    help=f"Also rewrap legacy suites without key commitment (= {POLICY_FLAG} require-encrypt-allow-decrypt).",
)
@click.option(
    NONCE_FLAG,
    "allow_nonce_reuse",
    is_flag=True,
    help="Needed for format version 2 messages (every committing suite, the default 0x0478): their new "
    "header tag reuses the old one's AES-GCM key and nonce, so anyone holding both the old and the new "
    "ciphertext can forge messages under that data key. Pass it only once every copy of the old "
    "ciphertext (backups, S3 versions) is destroyed or unreadable to anyone who can read the new one; "
    "otherwise decrypt and re-encrypt.",
)
@kms_options("AWS region for KMS key ids and aliases, and for S3.")
@bulk_options("objects")
def rewrap(
    input_path: str,
    output: str | None,
    force: bool,
    keys: tuple[str, ...],
    new_keys: tuple[str, ...],
    keep_old: bool,
    resign: bool,
    context_pairs: tuple[str, ...],
    commitment_policy: str | None,
    allow_uncommitted: bool,
    allow_nonce_reuse: bool,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
    dask_address: str | None,
    processes: bool,
    checkpoint: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Give the message in INPUT (default stdin) new encrypted data keys; its body is copied unchanged.

    The old header is verified first (key commitment, header tag, required context); nothing is
    decrypted. Version 2 messages (committing suites) need --allow-header-nonce-reuse: read its help.
    With -o FILE the result replaces FILE only once complete (an existing FILE needs --force).
    s3://BUCKET/KEY input is rewritten in place, or to -o s3://BUCKET/KEY; large objects keep their
    body inside S3. s3://BUCKET/PREFIX/ (a trailing slash) rewraps every message under the prefix as
    a bulk job (--dask, --processes, --checkpoint, --dry-run, --json; see docs/bulk.md); objects that
    are not messages are left alone.
    """
    from ..rewrapping import rewrap_stream

    context = parse_context(context_pairs, "--require-context")
    policy = parse_policy(commitment_policy, allow_uncommitted=allow_uncommitted)
    kms = keys_mod.KmsOptions(region, profile, endpoint_url)
    old = keys_mod.build_keyring(keys, kms, decrypting=True)
    new = keys_mod.build_keyring(new_keys, kms, decrypting=False)
    options: dict[str, Any] = {
        "context": context,
        "keep_old": keep_old,
        "resign": resign,
        "commitment_policy": policy,
        "allow_header_nonce_reuse": allow_nonce_reuse,
    }
    bulk = {"--dask": dask_address, "--processes": processes, "--checkpoint": checkpoint,
            "--dry-run": dry_run, "--json": as_json}  # fmt: skip
    if input_path.startswith(_S3) and input_path.endswith("/"):
        if force:
            raise CliError(
                "--force does not apply to a prefix (rewrapped objects are replaced)", ExitCode.USAGE
            )
        _rewrap_prefix(input_path, output, old, new, kms, options, bulk)
        return
    given_bulk = [flag for flag, value in bulk.items() if value]
    if given_bulk:
        raise CliError(
            f"{given_bulk[0]} needs an s3://BUCKET/PREFIX/ input (with a trailing slash)", ExitCode.USAGE
        )
    if input_path.startswith(_S3) or (output or "").startswith(_S3):
        _rewrap_s3(input_path, output, old, new, kms, options, force=force)
        return
    output = STDIO if output is None else output
    if input_path != STDIO and not os.path.exists(input_path):
        raise CliError(f"input file not found: {input_path}", ExitCode.FILE)
    if output != STDIO and input_path != STDIO and os.path.abspath(output) == os.path.abspath(input_path):
        raise CliError("output file is the input file; write elsewhere", ExitCode.FILE)
    if output != STDIO and not force and os.path.lexists(output):
        raise CliError(f"{output} already exists (use --force to overwrite)", ExitCode.FILE)
    if output == STDIO and sys.stdout.isatty():
        raise CliError("refusing to write binary ciphertext to a terminal; use -o FILE", ExitCode.USAGE)
    given = keys_mod.describe_keys(keys)
    with open_input(input_path) as raw:
        replay = Replay(raw)
        header = peek_header(replay, DecryptLimits(), encoded=False)
        check_policy(header, policy)
        _check_nonce_reuse(header, allow_nonce_reuse)
        src: Any = replay
        if raw.seekable():
            # A regular file is passed itself, so an unsigned body can be copied by the kernel.
            raw.seek(0)
            src = raw
        with atomic_output(output, private=False, overwrite=replacing(output)) as dst:
            try:
                rewrap_stream(src, dst, old, new, **options)
            except NoUsableKeyError as exc:
                _explain_missing_context(header.encryption_context, context)
                raise explain_wrong_key(header, given, exc) from None


def _check_nonce_reuse(header: MessageHeader, allowed: bool) -> None:
    """The library's refusal, worded with the CLI flag (before any key is used)."""
    if header.version == 2 and not allowed:
        raise CliError(
            f"this is a format version 2 message (suite 0x{header.suite.id:04X}): rewrapping it reuses its "
            "header tag's AES-GCM key and nonce, so anyone who can read both the old and the new "
            "ciphertext can forge messages under its data key. Pass "
            f"{NONCE_FLAG} only once every copy of the old ciphertext is destroyed or unreadable to "
            "anyone who can read the new one; otherwise decrypt and re-encrypt",
            ExitCode.POLICY,
        )


def _split_s3(url: str) -> tuple[str, str]:
    bucket, _, key = url[len(_S3) :].partition("/")
    if not bucket or not key:
        raise CliError(f"expected s3://BUCKET/KEY, got {url!r}", ExitCode.USAGE)
    return bucket, key


def _rewrap_s3(
    input_path: str,
    output: str | None,
    old: Keyring,
    new: Keyring,
    kms: keys_mod.KmsOptions,
    options: dict[str, Any],
    *,
    force: bool,
) -> None:
    if not input_path.startswith(_S3):
        raise CliError("-o s3://... needs s3:// input", ExitCode.USAGE)
    bucket, key = _split_s3(input_path)
    dest_bucket, dest_key = _split_s3(output) if output is not None else (bucket, key)
    if output is not None and not output.startswith(_S3):
        raise CliError("s3:// input needs s3:// output (or none, to replace the object)", ExitCode.USAGE)
    import boto3.session

    from ..aws.s3_rewrap import rewrap_object

    session = boto3.session.Session(profile_name=kms.profile, region_name=kms.region)
    client = session.client("s3", endpoint_url=kms.endpoint_url)
    if (dest_bucket, dest_key) != (bucket, key) and not force and _exists(client, dest_bucket, dest_key):
        raise CliError(f"{output} already exists (use --force to overwrite)", ExitCode.FILE)
    try:
        result = rewrap_object(
            client, bucket, key, old, new, dest_bucket=dest_bucket, dest_key=dest_key, **options
        )
    except PolicyError as exc:
        if "allow_header_nonce_reuse" not in str(exc):
            raise
        # The object's header is only read inside rewrap_object; say it with the CLI's flag.
        raise CliError(
            str(exc).replace("allow_header_nonce_reuse=True", NONCE_FLAG), ExitCode.POLICY
        ) from None
    click.echo(
        f"rewrapped s3://{bucket}/{key} -> s3://{result.bucket}/{result.key} "
        f"({result.size} bytes, {result.copied_in_s3} copied inside S3)",
        err=True,
    )


def _rewrap_prefix(
    input_path: str,
    output: str | None,
    old: Keyring,
    new: Keyring,
    kms: keys_mod.KmsOptions,
    options: dict[str, Any],
    bulk: dict[str, Any],
) -> None:
    """``rewrap s3://BUCKET/PREFIX/``: :func:`kmsenvelope.bulk.rewrap_objects` over the prefix."""
    bucket, _, prefix = input_path[len(_S3) :].partition("/")
    if not bucket:
        raise CliError(f"expected s3://BUCKET/PREFIX/, got {input_path!r}", ExitCode.USAGE)
    dest_bucket = None
    if output is not None:
        dest_bucket, _, dest_key = (
            output[len(_S3) :].partition("/") if output.startswith(_S3) else ("", "", "")
        )
        if not dest_bucket or dest_key:
            raise CliError(
                "a prefix is rewritten in place, or to -o s3://DEST-BUCKET/ (same keys)", ExitCode.USAGE
            )
    import boto3.session

    from ..bulk import rewrap_objects

    session = boto3.session.Session(profile_name=kms.profile, region_name=kms.region)
    client = session.client("s3", endpoint_url=kms.endpoint_url)
    context = options["context"]
    with job_engine(bulk["--dask"], bulk["--processes"]) as engine:
        try:
            report = rewrap_objects(
                client, bucket, prefix, old=old, new=new, dest_bucket=dest_bucket, engine=engine,
                checkpoint=bulk["--checkpoint"], dry_run=bulk["--dry-run"], context=context or None,
                resign=options["resign"], keep_old=options["keep_old"],
                commitment_policy=options["commitment_policy"],
                allow_header_nonce_reuse=options["allow_header_nonce_reuse"],
            )  # fmt: skip
        except ConfigurationError as exc:
            raise CliError(str(exc), ExitCode.KEY_CONFIG) from None
    finish(report, bulk["--json"])


def _exists(client: Any, bucket: str, key: str) -> bool:
    import botocore.exceptions

    try:
        client.head_object(Bucket=bucket, Key=key)
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True
