"""``kmsenvelope keygen aes|rsa``: local wrapping key files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import click

from . import keys as keys_mod
from .exits import CliError, ExitCode

__all__ = ["keygen"]


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
