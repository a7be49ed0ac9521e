"""``kmsenvelope inspect`` on the shared ESDK and DB-ESDK conformance vectors (no key needed)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from kmsenvelope import Suite
from kmsenvelope.cli.exits import ExitCode
from kmsenvelope.dynamodb import DEFAULT_SUITE, SIGNING_SUITE

from .conftest import vectors_dir
from .test_cli import aes_key, assert_fails, encrypt_file, run


def _esdk() -> tuple[Path, dict[str, Any], dict[str, Any]]:
    root = vectors_dir("esdk")
    manifest = json.loads((root / "manifest.json").read_text())
    keys = json.loads((root / "keys.json").read_text())["keys"]
    return root, manifest["tests"], keys


def test_inspect_json_on_every_esdk_vector() -> None:
    root, tests, keys = _esdk()
    assert len(tests) == 99
    for name, test in tests.items():
        path = root / test["ciphertext"].removeprefix("file://")
        result = run("inspect", "--json", path)
        assert result.exit_code == 0, (name, result.stderr)
        doc = json.loads(result.stdout)
        assert doc["kind"] == "esdk-message" and doc["encoding"] == "binary"
        header = doc
        assert header["suite_id"] == "0x" + name[:4].upper()
        assert header["version"] == (2 if name[:2] in ("04", "05") else 1)
        assert len(header["message_id"]) == (64 if header["version"] == 2 else 32)
        assert (header["content_type"], header["frame_length"]) == ("framed", 512)
        if test["cmm"] == "Default":
            assert test["encryption-context"].items() <= header["encryption_context"].items()
        if header["signed"]:
            assert "aws-crypto-public-key" in header["encryption_context"]
        expected = {(mk["provider-id"], keys[mk["key"]]["key-id"]) for mk in test["master-keys"]}
        found = {(edk["key_namespace"], edk["key_name"]) for edk in header["encrypted_data_keys"]}
        assert expected & found, (name, expected, found)
        data_key_length = Suite.from_id(int(header["suite_id"], 16)).data_key_length
        for edk in header["encrypted_data_keys"]:
            assert edk["kind"] == ("raw-aes" if edk["key_name"] == "aes-256" else "raw (RSA or other)")
            assert edk["ciphertext_length"] == (data_key_length + 16 if edk["kind"] == "raw-aes" else 512)


def test_inspect_text_and_base64_detection(tmp_path: Path) -> None:
    root, tests, _ = _esdk()
    name = next(n for n in tests if n.startswith("0578"))
    data = (root / tests[name]["ciphertext"].removeprefix("file://")).read_bytes()
    text = run("inspect", "-", input=data)
    assert text.exit_code == 0
    assert "0x0578 AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384" in text.stdout
    assert "\x1b[" not in text.stdout  # plain text when stdout is not a terminal
    encoded = run("inspect", "--json", "-", input=base64.encodebytes(data))
    doc = json.loads(encoded.stdout)
    assert doc["encoding"] == "base64"
    binary = json.loads(run("inspect", "--json", "-", input=data).stdout)
    assert {**doc, "encoding": "binary"} == binary


def test_inspect_shows_cli_key_names(tmp_path: Path) -> None:
    key = aes_key(tmp_path, "ops.key", "--namespace", "team-a")
    message = encrypt_file(tmp_path, key, "-c", "tenant=acme")
    header = json.loads(run("inspect", "--json", message).stdout)
    assert header["encryption_context"] == {"tenant": "acme"}
    [edk] = header["encrypted_data_keys"]
    assert (edk["kind"], edk["key_namespace"], edk["key_name"]) == ("raw-aes", "team-a", "ops")


LEGEND = {"e": "ENCRYPT_AND_SIGN", "s": "SIGN_ONLY", "c": "SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT"}


def _dbesdk_tests() -> list[tuple[str, dict[str, Any]]]:
    root = vectors_dir("dbesdk")
    found = []
    for path in sorted(root.glob("decrypt_java_*.json")):
        tests = json.loads(path.read_text())["tests"]
        found += [(f"{path.name}:{name}", t) for name, t in tests.items() if t["type"] == "positive-decrypt"]
    return found


def test_inspect_dbesdk_items() -> None:
    branch_key_id = json.loads((vectors_dir("dbesdk") / "keys.json").read_text())["keys"][
        "static-branch-key-1"
    ]
    checked, flavors = 0, set()
    for name, test in _dbesdk_tests():
        item = test["encrypted"]
        result = run("inspect", "--json", "-", input=json.dumps({"Item": item}).encode())
        assert result.exit_code == 0, (name, result.stderr)
        doc = json.loads(result.stdout)
        assert doc["kind"] == "dbesdk-item"
        header = doc
        # the manifest's config is the reader's, not the writer's: check the flavor against the footer,
        # which holds one HMAC-SHA384 per EDK plus, for flavor 1, an ECDSA P-384 signature.
        hmacs = 48 * len(header["encrypted_data_keys"])
        assert header["suite"] == {0: DEFAULT_SUITE, 1: SIGNING_SUITE}[header["flavor"]].name, name
        if header["flavor"] == 0:
            assert header["footer_size"] == hmacs, name
        else:
            assert 96 <= header["footer_size"] - hmacs <= 104, name
        assert header["attributes"] == sorted(k for k in item if not k.startswith("aws_dbe_"))
        # one legend entry per signed attribute, in the item's attribute order
        assert 1 <= len(header["legend"]) <= len(header["attributes"]), name
        assert [LEGEND[c] for c in header["legend"]] == header["legend_actions"], name
        [edk] = header["encrypted_data_keys"]
        assert (edk["kind"], edk["branch_key_id"]) == ("aws-kms-hierarchy", branch_key_id["key-id"])
        flavors.add(header["flavor"])
        checked += 1
    assert checked >= 20 and flavors == {0, 1}


def test_inspect_dbesdk_item_text() -> None:
    _, test = _dbesdk_tests()[0]
    result = run("inspect", "-", input=json.dumps(test["encrypted"]).encode())
    assert result.exit_code == 0
    assert "DB-ESDK item header" in result.stdout and "aws-kms-hierarchy" in result.stdout


@pytest.mark.parametrize(
    "data",
    [b"", b"\x02\x04\x78 truncated", b"\x07garbage", b'{"pk": {"S": "no header"}}', b"{not json"],
)
def test_inspect_rejects_what_is_not_a_message(data: bytes) -> None:
    assert_fails(run("inspect", "-", input=data), ExitCode.INVALID_INPUT)


def test_inspect_missing_file(tmp_path: Path) -> None:
    assert_fails(run("inspect", tmp_path / "missing"), ExitCode.FILE)
