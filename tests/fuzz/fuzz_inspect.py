"""Fuzz target ``inspect``: ``kmsenvelope inspect``'s implementation, called in-process.

Input: one mode byte (bit 0: ``--base64``), then what the command would read: a binary or base64
ESDK message, or a DB-ESDK item as DynamoDB JSON. :func:`inspect_source` must describe it or raise a
:class:`~kmsenvelope.errors.KmsEnvelopeError` (which the CLI turns into exit code 6); the document it
returns must render as text and as JSON, as the command does.

Seeds: the ESDK vectors and our messages (binary and base64), and the DB-ESDK vectors' encrypted items
as JSON, bare and wrapped in ``{"Item": ...}`` as ``aws dynamodb get-item`` prints them.
"""

from __future__ import annotations

import base64
import io
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``tests.fuzz`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kmsenvelope.cli.inspect import inspect_source, render_text
from kmsenvelope.errors import KmsEnvelopeError
from tests import _dbesdk
from tests.fuzz import _common

TARGET = "inspect"


def seeds() -> list[bytes]:
    out = []
    for index, seed in enumerate(_common.message_seeds()):
        message = seed[1:]
        out.append(b"\x00" + message)
        if index % 4 == 0:
            out.append(b"\x00" + base64.b64encode(message) + b"\n")
            out.append(b"\x01" + base64.encodebytes(message))
    _common.require_vectors("dbesdk")
    for index, (_, test) in enumerate(_dbesdk.manifest_tests()):
        item = test["encrypted"]
        out.append(b"\x00" + json.dumps(item).encode())
        if index % 3 == 0:
            out.append(b"\x00" + json.dumps({"Item": item}, indent=1).encode())
    return out


def TestOneInput(data: bytes) -> None:  # the name atheris and libFuzzer expect
    if not data:
        return
    try:
        doc = inspect_source(io.BytesIO(data[1:]), force_base64=bool(data[0] & 1))
    except KmsEnvelopeError:
        return
    assert doc["kind"] in ("esdk-message", "dbesdk-item")
    render_text(doc)
    json.dumps(doc)


if __name__ == "__main__":
    from tests.fuzz import run

    sys.exit(run.main(["--target", TARGET, *sys.argv[1:]]))
