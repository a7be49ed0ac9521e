"""Shared helpers for the DB-ESDK tests: vector loading, the manifests' JSON item notation, and
semantic comparison of DynamoDB items (numbers as numbers, sets as sets)."""

from __future__ import annotations

import base64
import decimal
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kmsenvelope.aws.key_store import StaticBranchKeyStore
from kmsenvelope.dynamodb import SIGNING_SUITE, TableConfig
from kmsenvelope.keyrings.hierarchical import HierarchicalKeyring
from kmsenvelope.suites import DbeSuite

from .conftest import DBESDK_VECTOR_COUNT, VECTORS, expect_cases, vectors_dir

DBESDK = VECTORS / "dbesdk"
MANIFESTS = ("decrypt_java_32.json", "decrypt_java_33.json", "decrypt_java_43.json")

# Table defaults of the manifests (TestVectors/dafny/DDBEncryption/src/JsonConfig.dfy).
TABLE_NAME = "GazelleVectorTable"
PARTITION_KEY = "RecNum"
SUITES = {
    "ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY_SYMSIG_HMAC_SHA384": (
        DbeSuite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_SYMSIG_HMAC_SHA384
    ),
    "ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384_SYMSIG_HMAC_SHA384": SIGNING_SUITE,
}


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def manifest_tests() -> list[tuple[str, dict[str, Any]]]:
    """(``file:test``, test) for every test of every decrypt manifest.

    Fails (a collection error when called at import) unless all 33 are there: a parametrized test must
    never be left with nothing to collect.
    """
    root = vectors_dir("dbesdk")
    out: list[tuple[str, dict[str, Any]]] = []
    for name in MANIFESTS:
        for test_id, test in load_json(root / name)["tests"].items():
            out.append((f"{name.removesuffix('.json')}:{test_id}", test))
    expect_cases(out, DBESDK_VECTOR_COUNT, f"DB-ESDK decrypt vectors in {root}")
    return out


def static_store() -> StaticBranchKeyStore:
    key = load_json(DBESDK / "keys.json")["keys"]["static-branch-key-1"]
    return StaticBranchKeyStore(
        key["key-id"],
        key["branchKeyVersion"],
        base64.b64decode(key["branchKey"]),
        base64.b64decode(key["beaconKey"]),
    )


def vector_keyring() -> HierarchicalKeyring:
    store = static_store()
    return HierarchicalKeyring(store, branch_key_id=store.branch_key_id)


def vector_config(config: Mapping[str, Any], keyring: Any) -> TableConfig:
    """A table config from a manifest ``config``, with the manifests' table defaults."""
    return TableConfig(
        TABLE_NAME,
        PARTITION_KEY,
        actions=config["attributeActionsOnEncrypt"],
        keyring=keyring,
        allowed_unsigned=config.get("allowedUnsignedAttributes", ()),
        suite=SUITES[
            config.get(
                "algorithmSuiteId", "ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384_SYMSIG_HMAC_SHA384"
            )
        ],
    )


def ddb_json(value: Any) -> dict[str, Any]:
    """A wire-format DynamoDB JSON attribute value (binary as base64) to a client value (binary as bytes)."""
    ((tag, inner),) = value.items()
    if tag == "B":
        return {"B": base64.b64decode(inner)}
    if tag == "BS":
        return {"BS": [base64.b64decode(entry) for entry in inner]}
    if tag == "L":
        return {"L": [ddb_json(entry) for entry in inner]}
    if tag == "M":
        return {"M": {key: ddb_json(entry) for key, entry in inner.items()}}
    return dict(value)


def ddb_item(item: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: ddb_json(value) for name, value in item.items()}


def notation(value: Any) -> dict[str, Any]:
    """The manifests' JSON item notation (``JsonItem.dfy``) to a client attribute value."""
    if isinstance(value, bool):
        raise ValueError("bare booleans are not part of the notation")
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (int, float)):
        return {"N": str(value)}
    ((tag, inner),) = value.items()
    if tag == "L":
        return {"L": [notation(entry) for entry in inner]}
    if tag == "M":
        return {"M": {key: notation(entry) for key, entry in inner.items()}}
    if tag == "NS":
        return {"NS": [str(entry) for entry in inner]}
    if tag == "NULL":
        return {"NULL": True}
    return ddb_json(value)


def notation_item(item: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: notation(value) for name, value in item.items()}


def semantic(value: Mapping[str, Any]) -> Any:
    """A comparable form of an attribute value: numbers as Decimals, sets as frozensets."""
    ((tag, inner),) = value.items()
    if tag == "N":
        return ("N", decimal.Decimal(inner))
    if tag == "NS":
        return ("NS", frozenset(decimal.Decimal(entry) for entry in inner))
    if tag in ("SS", "BS"):
        return (tag, frozenset(bytes(entry) if tag == "BS" else entry for entry in inner))
    if tag == "B":
        return ("B", bytes(inner))
    if tag == "L":
        return ("L", tuple(semantic(entry) for entry in inner))
    if tag == "M":
        return ("M", frozenset((key, semantic(entry)) for key, entry in inner.items()))
    return (tag, inner)


def semantic_item(item: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {name: semantic(value) for name, value in item.items()}
