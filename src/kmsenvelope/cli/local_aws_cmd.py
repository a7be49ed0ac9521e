"""``kmsenvelope local-aws``: a local AWS (KMS, DynamoDB, S3 on moto) to try the CLI without an account."""

from __future__ import annotations

import sys
import threading

import click

__all__ = ["environment_lines", "local_aws"]


def environment_lines(endpoint_url: str, region: str, key_arn: str | None) -> list[str]:
    """The ``NAME=value`` lines that point the CLI and boto3 at a local AWS endpoint."""
    lines = [
        f"AWS_ENDPOINT_URL={endpoint_url}",
        "AWS_ACCESS_KEY_ID=testing",
        "AWS_SECRET_ACCESS_KEY=testing",
        f"AWS_DEFAULT_REGION={region}",
    ]
    if key_arn is not None:
        lines.append(f"KMSENVELOPE_KEY_ARN={key_arn}")
    return lines


@click.command("local-aws")
@click.option("--no-key", is_flag=True, help="Do not create a KMS key.")
@click.option("--export", "export", is_flag=True, help="Prefix each line with 'export ' (for sh).")
def local_aws(no_key: bool, export: bool) -> None:
    """Run a local AWS (moto) until Ctrl-C, and print the environment that points at it.

    \b
    kmsenvelope local-aws --export > local.env &     # then: . ./local.env
    kmsenvelope encrypt --key "$KMSENVELOPE_KEY_ARN" data -o data.enc
    kmsenvelope decrypt --key "$KMSENVELOPE_KEY_ARN" data.enc -o data.out

    The CLI and boto3 honour AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_KMS, which wins for KMS) when
    --endpoint-url is not given. Needs the testing extra (moto). Nothing is kept after it stops.
    """
    try:
        from ..testing import local_aws as start
    except ImportError as exc:  # moto is an optional (test) dependency
        from .exits import CliError, ExitCode

        raise CliError(
            f"local-aws needs moto: pip install 'kmsenvelope[cli,testing]' ({exc})", ExitCode.USAGE
        ) from None
    with start() as aws:
        key_arn = None if no_key else aws.create_key(description="kmsenvelope local-aws")
        for line in environment_lines(aws.endpoint_url, aws.region, key_arn):
            click.echo(("export " if export else "") + line)
        click.echo("# local AWS running; Ctrl-C to stop", err=True)
        sys.stdout.flush()
        threading.Event().wait()  # until Ctrl-C (KeyboardInterrupt) or SIGTERM/SIGHUP (Terminated)
