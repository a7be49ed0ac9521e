"""``kmsenvelope inspect``: show a message header (or a DB-ESDK item header) without any key."""

from __future__ import annotations

import base64
import binascii
import json
import sys
from typing import Any, BinaryIO

import click

from ..errors import MalformedInputError
from ..message.codec import TruncatedInputError
from ..message.header import DecryptLimits, MessageHeader, parse_header
from .exits import CliError, ExitCode
from .streams import STDIO, base64_input, open_input

__all__ = ["describe_edk", "describe_header", "inspect", "read_header"]

_RAW_AES_INFO_TAIL = (128).to_bytes(4, "big") + (12).to_bytes(4, "big")
_MAX_JSON_ITEM = 64 << 20


class _Prefixed:
    """A reader that yields ``head`` and then the rest of ``src``."""

    def __init__(self, head: bytes, src: BinaryIO) -> None:
        self._head = head
        self._src = src

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0:
                data, self._head = self._head + self._src.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._src.read(n)


def read_header(src: Any, limits: DecryptLimits | None = None) -> MessageHeader:
    """Read just enough of ``src`` (anything with ``read(n)``) to parse an ESDK message header."""
    limits = limits or DecryptLimits()
    buffer = bytearray()
    want = 1024
    while True:
        chunk = src.read(want)
        buffer += chunk
        try:
            return parse_header(buffer, limits)
        except TruncatedInputError:
            if not chunk:
                if not buffer:
                    raise MalformedInputError("input is empty") from None
                raise
            want = min(want * 2, 1 << 20)


def describe_edk(provider_id: str, provider_info: bytes, ciphertext_length: int) -> dict[str, Any]:
    """What can be told about one encrypted data key without a key: its kind and the key it names."""
    text: str | None
    try:
        text = provider_info.decode("utf-8")
        if not text.isprintable():
            text = None
    except UnicodeDecodeError:
        text = None
    entry: dict[str, Any] = {"provider_id": provider_id}
    if provider_id == "aws-kms-hierarchy":
        entry.update(kind="aws-kms-hierarchy", branch_key_id=text)
    elif provider_id.startswith("aws-kms"):
        entry.update(kind=provider_id, key_arn=text)
    elif len(provider_info) >= 20 and provider_info[-20:-12] == _RAW_AES_INFO_TAIL:
        try:
            name: str | None = provider_info[:-20].decode("utf-8")
        except UnicodeDecodeError:
            name = None
        entry.update(kind="raw-aes", key_namespace=provider_id, key_name=name)
    else:
        entry.update(kind="raw (RSA or other)", key_namespace=provider_id, key_name=text)
    if text is None and entry["kind"] != "raw-aes":
        entry["provider_info_hex"] = provider_info.hex()
    entry["ciphertext_length"] = ciphertext_length
    return entry


def describe_header(header: MessageHeader) -> dict[str, Any]:
    """The header as a JSON-friendly dict, EDKs described by :func:`describe_edk`."""
    doc = header.to_dict()
    doc["encrypted_data_keys"] = [
        describe_edk(edk.provider_id, edk.provider_info, len(edk.ciphertext))
        for edk in header.encrypted_data_keys
    ]
    doc["signed"] = header.suite.signing
    doc["key_commitment"] = header.suite.committing
    return doc


_FLAVORS = {0: "HMAC-SHA384 symmetric signatures", 1: "HMAC-SHA384 plus ECDSA P-384 signature"}


def _binary_attribute(item: dict[str, Any], name: str) -> bytes:
    value = item.get(name)
    if not isinstance(value, dict) or not isinstance(value.get("B"), str):
        raise MalformedInputError(f"attribute {name} is not a binary (B) value")
    try:
        return base64.b64decode(value["B"], validate=True)
    except (binascii.Error, ValueError):
        raise MalformedInputError(f"attribute {name} is not valid base64") from None


def describe_dbesdk_item(item: dict[str, Any]) -> dict[str, Any]:
    """The ``aws_dbe_head`` of a DynamoDB-JSON item, parsed by :func:`kmsenvelope.structured.parse_header`."""
    from ..structured import FOOTER_FIELD, HEADER_FIELD, RESERVED_PREFIX, parse_header
    from ..structured.model import LEGEND_ACTIONS

    header = parse_header(_binary_attribute(item, HEADER_FIELD))
    flavor = header.suite.id & 0xFF
    footer = _binary_attribute(item, FOOTER_FIELD) if FOOTER_FIELD in item else None
    return {
        "version": header.version,
        "flavor": flavor,
        "flavor_description": _FLAVORS.get(flavor, "unknown"),
        "suite": header.suite.name,
        "suite_id": f"0x{header.suite.id:04X}",
        "message_id": header.message_id.hex(),
        "legend": header.legend.decode("ascii"),
        "legend_actions": [LEGEND_ACTIONS[byte].name for byte in header.legend],
        "encryption_context": dict(header.stored_context),
        "encrypted_data_keys": [
            describe_edk(edk.provider_id, edk.provider_info, len(edk.ciphertext))
            for edk in header.encrypted_data_keys
        ],
        "header_size": len(header.raw),
        "footer_size": None if footer is None else len(footer),
        "attributes": sorted(name for name in item if not name.startswith(RESERVED_PREFIX)),
    }


def _dbesdk_item(data: bytes) -> dict[str, Any]:
    try:
        item = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: JSON nested deeper than the interpreter's recursion limit.
        raise MalformedInputError("input starts like JSON but is not valid JSON") from None
    if isinstance(item, dict) and isinstance(item.get("Item"), dict):
        item = item["Item"]
    if not isinstance(item, dict) or "aws_dbe_head" not in item:
        raise MalformedInputError("JSON input is not a DynamoDB item with an aws_dbe_head attribute")
    return {"encoding": "dynamodb-json", **describe_dbesdk_item(item)}


def _looks_base64(head: bytes) -> bool:
    sample = b"".join(head.split())[:64]
    if len(sample) < 4:
        return False
    try:
        base64.b64decode(sample[: len(sample) - len(sample) % 4], validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def inspect_source(src: BinaryIO, *, force_base64: bool = False) -> dict[str, Any]:
    """Describe the ESDK message or DB-ESDK item read from ``src`` (binary, base64 or JSON).

    One flat dict: ``kind``, ``encoding``, then the header fields (:meth:`MessageHeader.to_dict` for ESDK).
    """
    head = src.read(4096)
    stripped = head.lstrip()
    if not force_base64 and stripped.startswith(b"{"):
        data = head + src.read(_MAX_JSON_ITEM)
        return {"kind": "dbesdk-item", **_dbesdk_item(data)}
    stream: Any = _Prefixed(head, src)
    encoding = "binary"
    if force_base64 or (head[:1] not in (b"\x01", b"\x02") and _looks_base64(head)):
        stream = base64_input(stream)
        encoding = "base64"
    header = read_header(stream)
    return {"kind": "esdk-message", "encoding": encoding, **describe_header(header)}


@click.command()
@click.argument("input_path", metavar="[INPUT|-]", default=STDIO)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--base64", "use_base64", is_flag=True, help="Input is base64 text (detected automatically).")
def inspect(input_path: str, as_json: bool, use_base64: bool) -> None:
    """Show the header of an ESDK message, or of a DB-ESDK item (JSON), without any key (default: stdin).

    Shows the format version, suite, message id, encryption context, each encrypted data key
    (provider id and the KMS key ARN or raw key name), content type and frame length. Nothing is
    decrypted or authenticated: the header is shown as written.
    """
    if input_path == STDIO and sys.stdin.isatty():
        raise CliError("give INPUT, or pipe a message in (kmsenvelope inspect < FILE)", ExitCode.USAGE)
    if input_path != STDIO and not _exists(input_path):
        raise CliError(f"input file not found: {input_path}", ExitCode.FILE)
    with open_input(input_path) as src:
        doc = inspect_source(src, force_base64=use_base64)
    if as_json:
        click.echo(json.dumps(doc, indent=2, sort_keys=False))
    elif sys.stdout.isatty():
        _render_rich(doc)
    else:
        click.echo(render_text(doc))


def _exists(path: str) -> bool:
    import os

    return os.path.exists(path)


def _edk_lines(edk: dict[str, Any]) -> list[tuple[str, str]]:
    return [(k.replace("_", " "), "" if v is None else str(v)) for k, v in edk.items()]


def _fields(doc: dict[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    """Title and ``(name, value)`` lines shared by the text and rich renderings."""
    header = doc
    if doc["kind"] == "dbesdk-item":
        title = "DB-ESDK item header (aws_dbe_head)"
        fields = [
            ("version", str(header["version"])),
            ("flavor", f"{header['flavor']} ({header['flavor_description']})"),
            ("suite", f"{header['suite_id']} {header['suite']}"),
            ("message id", header["message_id"]),
            ("legend", f"{header['legend']} ({', '.join(header['legend_actions'])})"),
            ("header size", str(header["header_size"])),
            ("footer size", str(header["footer_size"])),
            ("attributes", ", ".join(header["attributes"])),
        ]
    else:
        title = f"ESDK message ({doc['encoding']})"
        fields = [
            ("version", str(header["version"])),
            ("suite", f"{header['suite_id']} {header['suite']}"),
            ("signed", "yes" if header["signed"] else "no"),
            ("key commitment", "yes" if header["key_commitment"] else "no"),
            ("message id", header["message_id"]),
            ("content type", str(header["content_type"])),
            ("frame length", str(header["frame_length"])),
            ("header size", str(header["header_size"])),
        ]
    return title, fields


def render_text(doc: dict[str, Any]) -> str:
    """Plain-text rendering of an :func:`inspect_source` document."""
    title, fields = _fields(doc)
    header = doc
    lines = [title, *(f"  {name:<16}{value}" for name, value in fields)]
    context = header["encryption_context"]
    lines.append(f"  encryption context ({len(context)} {'pair' if len(context) == 1 else 'pairs'})")
    lines += [f"    {key} = {value}" for key, value in context.items()]
    edks = header["encrypted_data_keys"]
    lines.append(f"  encrypted data keys ({len(edks)})")
    for index, edk in enumerate(edks, 1):
        lines.append(f"    [{index}]")
        lines += [f"      {name:<20}{value}" for name, value in _edk_lines(edk)]
    return "\n".join(lines)


def _render_rich(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    title, rows = _fields(doc)
    header = doc
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    context = header["encryption_context"]
    rows.append(("encryption context", "\n".join(f"{k} = {v}" for k, v in context.items()) or "(empty)"))
    for index, edk in enumerate(header["encrypted_data_keys"], 1):
        rows.append((f"EDK {index}", "\n".join(f"{k}: {v}" for k, v in _edk_lines(edk))))
    for name, value in rows:
        table.add_row(Text(name), Text(value))  # Text: values are data, never rich markup
    Console().print(table)
