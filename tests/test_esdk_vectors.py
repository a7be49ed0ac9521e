"""All ESDK decrypt vectors (manifest v4, raw AES/RSA keys) decrypt to the expected plaintext."""

from __future__ import annotations

import base64
import functools
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from kmsenvelope import CommitmentPolicy, Envelope, MultiKeyring, RawAesKeyring, RawRsaKeyring, Suite
from kmsenvelope.materials.cmm import RequiredContextMaterials
from kmsenvelope.materials.protocols import Keyring

from .conftest import ESDK_VECTOR_COUNT, expect_cases, vectors_dir

_PADDING = {
    ("oaep-mgf1", "sha1"): "OAEP-SHA1",
    ("oaep-mgf1", "sha256"): "OAEP-SHA256",
    ("oaep-mgf1", "sha384"): "OAEP-SHA384",
    ("oaep-mgf1", "sha512"): "OAEP-SHA512",
}


def _load_manifest() -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """Read at collection: missing or short vectors are a collection error, never an empty parametrize."""
    root = vectors_dir("esdk")
    manifest = json.loads((root / "manifest.json").read_text())
    keys = json.loads((root / manifest["keys"].removeprefix("file://")).read_text())["keys"]
    expect_cases(list(manifest["tests"]), ESDK_VECTOR_COUNT, f"ESDK vectors in {root}")
    return root, manifest["tests"], keys


ROOT, TESTS, KEYS = _load_manifest()


def _keyring(spec: dict[str, Any]) -> Keyring:
    return _cached_keyring(json.dumps(spec, sort_keys=True))


@functools.cache  # RSA-4096 key validation costs ~100 ms per load
def _cached_keyring(spec_json: str) -> Keyring:
    spec = json.loads(spec_json)
    key = KEYS[spec["key"]]
    if spec["encryption-algorithm"] == "aes":
        return RawAesKeyring(spec["provider-id"], key["key-id"], base64.b64decode(key["material"]))
    padding = (
        "PKCS1"
        if spec["padding-algorithm"] == "pkcs1"
        else _PADDING[(spec["padding-algorithm"], spec["padding-hash"])]
    )
    pem = key["material"].encode()
    if key["type"] == "private":
        return RawRsaKeyring(spec["provider-id"], key["key-id"], private_key=pem, padding=padding)
    return RawRsaKeyring(spec["provider-id"], key["key-id"], public_key=pem, padding=padding)


def _file(uri: str) -> bytes:
    return (ROOT / uri.removeprefix("file://")).read_bytes()


def test_assertions_are_live() -> None:
    """.ci/run also runs this file under ``python -O``: its asserts must still check (pytest rewrites
    them in test modules), or every test below would pass blind."""
    try:
        assert sys.flags.optimize < 0  # always false
    except AssertionError:
        return
    pytest.fail("assert statements are not executed in this test module")


def test_vectors_present() -> None:
    assert vectors_dir("esdk") == ROOT
    assert len(TESTS) == ESDK_VECTOR_COUNT == 99


@pytest.mark.parametrize("name", sorted(TESTS))
def test_vector_decrypts(name: str) -> None:
    test = TESTS[name]
    keyrings = [_keyring(spec) for spec in test["master-keys"]]
    keyring: Keyring = keyrings[0] if len(keyrings) == 1 else MultiKeyring(children=keyrings)
    context = test["encryption-context"]
    source = (
        RequiredContextMaterials(keyring, context.keys())
        if test["cmm"] == "RequiredEncryptionContext"
        else keyring
    )
    envelope = Envelope(source, commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT)
    result = envelope.decrypt_with_header(_file(test["ciphertext"]), context)
    assert result.plaintext == _file(test["result"]["output"]["plaintext"])
    assert int(name[:4], 16) == result.header.suite.id
    assert Suite.from_id(result.header.suite.id) is result.header.suite
    for key, value in context.items():
        assert result.encryption_context[key] == value
