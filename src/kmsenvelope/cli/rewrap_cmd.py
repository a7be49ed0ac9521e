"""``kmsenvelope rewrap``: move a message, file or S3 object to other keys without re-encrypting it."""

from __future__ import annotations

import os
import sys

import click

from ..errors import NoUsableKeyError
from ..materials.protocols import Keyring
from ..suites import CommitmentPolicy
from . import keys as keys_mod
from .commands import _explain_missing_context, kms_options, parse_context
from .exits import CliError, ExitCode
from .streams import STDIO, HeadRecorder, atomic_output, open_input

__all__ = ["rewrap"]

_S3 = "s3://"


@click.command()
@click.argument("input_path", metavar="[INPUT|-|s3://BUCKET/KEY]", default=STDIO)
@click.option(
    "-o",
    "--output",
    default=None,
    help="Output file or - for stdout (default: stdout; for s3:// input, the same object replaced).",
)
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
@click.option(
    "--allow-uncommitted", is_flag=True, help="Also rewrap messages of legacy suites without key commitment."
)
@kms_options
def rewrap(
    input_path: str,
    output: str | None,
    keys: tuple[str, ...],
    new_keys: tuple[str, ...],
    keep_old: bool,
    resign: bool,
    context_pairs: tuple[str, ...],
    allow_uncommitted: bool,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
) -> None:
    """Give the message in INPUT (default stdin) new encrypted data keys; its body is copied unchanged.

    The old header is verified first (key commitment, header tag, required context); nothing is
    decrypted. With -o FILE the result replaces FILE only once complete. s3://BUCKET/KEY input is
    rewritten in place, or to -o s3://BUCKET/KEY; large objects keep their body inside S3.
    """
    from ..rewrapping import rewrap_stream

    context = parse_context(context_pairs, "--require-context")
    kms = keys_mod.KmsOptions(region, profile, endpoint_url)
    old = keys_mod.build_keyring(keys, kms, decrypting=True)
    new = keys_mod.build_keyring(new_keys, kms, decrypting=False)
    policy = (
        CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT
        if allow_uncommitted
        else CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    options = {"context": context, "keep_old": keep_old, "resign": resign, "commitment_policy": policy}
    if input_path.startswith(_S3) or (output or "").startswith(_S3):
        _rewrap_s3(input_path, output, old, new, kms, options)
        return
    output = STDIO if output is None else output
    if input_path != STDIO and not os.path.exists(input_path):
        raise CliError(f"input file not found: {input_path}", ExitCode.FILE)
    if output != STDIO and input_path != STDIO and os.path.abspath(output) == os.path.abspath(input_path):
        raise CliError("output file is the input file; write elsewhere", ExitCode.FILE)
    if output == STDIO and sys.stdout.isatty():
        raise CliError("refusing to write binary ciphertext to a terminal; use -o FILE", ExitCode.USAGE)
    with open_input(input_path) as raw_src, atomic_output(output, private=False) as dst:
        # A file is passed as is, so an unsigned body can be copied by the kernel; a pipe is recorded.
        recorder = HeadRecorder(raw_src) if input_path == STDIO else None
        try:
            rewrap_stream(recorder or raw_src, dst, old, new, **options)  # type: ignore[arg-type]
        except NoUsableKeyError:
            if recorder is not None:
                head = recorder.head
            else:
                raw_src.seek(0)
                head = raw_src.read(1 << 20)
            _explain_missing_context(head, context)  # the exit code decrypt gives
            raise


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
    options: dict[str, object],
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
    result = rewrap_object(
        client,
        bucket,
        key,
        old,
        new,
        dest_bucket=dest_bucket,
        dest_key=dest_key,
        **options,  # type: ignore[arg-type]
    )
    click.echo(
        f"rewrapped s3://{bucket}/{key} -> s3://{result.bucket}/{result.key} "
        f"({result.size} bytes, {result.copied_in_s3} copied inside S3)",
        err=True,
    )
