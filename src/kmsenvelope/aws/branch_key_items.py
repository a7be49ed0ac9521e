"""The branch key store's record format: attribute names, and reading and writing its DynamoDB items.

Source: ``framework/branch-key-store.md`` ("Record Format", hierarchy version 1). See
:mod:`kmsenvelope.aws.branch_key_store` for the table layout and the store itself.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, NoReturn

from ..errors import ConfigurationError, KeyStoreError
from .arn import parse_arn
from .key_store import check_branch_key_version

# Attribute names, which are also the AWS KMS encryption context keys ("Record Format").
BRANCH_KEY_ID = "branch-key-id"
TYPE = "type"
CREATE_TIME = "create-time"
HIERARCHY_VERSION = "hierarchy-version"
TABLE_NAME = "tablename"
KMS_ARN = "kms-arn"
ENC = "enc"
VERSION = "version"

ACTIVE_TYPE = "branch:ACTIVE"
"""``type`` of the item holding the active branch key version."""
VERSION_TYPE_PREFIX = "branch:version:"
"""``type`` of a version item is this prefix plus the version UUID."""
BEACON_TYPE = "beacon:ACTIVE"
"""``type`` of the beacon key item."""
CUSTOM_CONTEXT_PREFIX = "aws-crypto-ec:"
"""Prefix of custom encryption context pairs, in items and in the AWS KMS encryption context."""

HIERARCHY_V1 = "1"
_MAX_CIPHERTEXT = 6144  # AWS KMS CiphertextType


def parse_item(
    item: Mapping[str, Any] | None,
    branch_key_id: str,
    item_type: str,
    *,
    table: str,
    kms_arn: str,
    logical_name: str,
) -> tuple[dict[str, str], bytes]:
    """The item's AWS KMS encryption context and ``enc``, after every check of the record format."""
    where = f"branch key {branch_key_id!r} item {item_type!r} in table {table!r}"
    if not item:
        missing = {ACTIVE_TYPE: "the branch key", BEACON_TYPE: "its beacon key"}.get(
            item_type, "this version of the branch key"
        )
        raise KeyStoreError(f"no item for {where}: {missing} does not exist in this key store")

    def malformed(reason: str) -> NoReturn:
        raise KeyStoreError(f"malformed {where}: {reason}")

    context: dict[str, str] = {}
    enc: bytes | None = None
    for name, value in item.items():
        kind, raw = _single_value(value)
        if name == ENC:
            if kind != "B" or not isinstance(raw, bytes) or not 1 <= len(raw) <= _MAX_CIPHERTEXT:
                malformed("'enc' must be a binary KMS ciphertext")
            enc = raw
        elif name == TABLE_NAME:
            malformed("'tablename' is not stored in items (it is the logical key store name)")
        elif name == HIERARCHY_VERSION:
            if kind != "N" or not isinstance(raw, str):
                malformed("'hierarchy-version' must be a number")
            if raw != HIERARCHY_V1:
                malformed(f"hierarchy-version {raw!r} is not supported (only 1)")
            context[name] = raw
        elif kind != "S" or not isinstance(raw, str):
            malformed(f"attribute {name!r} must be a string")
        else:
            context[name] = raw
    for required in (BRANCH_KEY_ID, TYPE, CREATE_TIME, HIERARCHY_VERSION, KMS_ARN):
        if required not in context:
            malformed(f"attribute {required!r} is missing")
    if enc is None:
        malformed("attribute 'enc' is missing")
    if context[BRANCH_KEY_ID] != branch_key_id:
        malformed("its branch-key-id is not the requested one")
    if context[TYPE] != item_type:
        malformed(f"its type is {context[TYPE]!r}")
    if item_type == ACTIVE_TYPE:
        version = context.get(VERSION)
        if version is None or not version.startswith(VERSION_TYPE_PREFIX):
            malformed("an ACTIVE item needs version = 'branch:version:<uuid>'")
        try:
            check_branch_key_version(version[len(VERSION_TYPE_PREFIX) :])
        except KeyStoreError as exc:
            malformed(f"its version: {exc}")
    elif VERSION in context:
        malformed("only the ACTIVE item has a 'version' attribute")
    stored_arn = context[KMS_ARN]
    try:
        valid_arn = parse_arn(stored_arn).resource_type == "key"
    except ConfigurationError:
        valid_arn = False
    if not valid_arn:
        malformed("its kms-arn is not an AWS KMS key ARN")
    if stored_arn != kms_arn:
        raise KeyStoreError(
            f"{where} is protected by KMS key {stored_arn}, not by this key store's KMS key "
            f"{kms_arn}; use a KeyStore configured with that key"
        )
    context[TABLE_NAME] = logical_name
    return context, enc


def check_id(branch_key_id: str) -> None:
    if not isinstance(branch_key_id, str) or not branch_key_id:
        raise KeyStoreError("branch key id must be a non-empty string")


def check_custom_context(context: Mapping[str, str] | None) -> dict[str, str]:
    if context is None:
        return {}
    if not isinstance(context, Mapping):
        raise KeyStoreError("encryption_context must be a mapping of str to str")
    out: dict[str, str] = {}
    for key, value in context.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise KeyStoreError("encryption context keys must be non-empty str and values str")
        out[key] = value
    return out


def custom_context(context: Mapping[str, str]) -> dict[str, str]:
    n = len(CUSTOM_CONTEXT_PREFIX)
    return {k[n:]: v for k, v in context.items() if k.startswith(CUSTOM_CONTEXT_PREFIX)}


def active_context(decrypt_only: Mapping[str, str]) -> dict[str, str]:
    return {**decrypt_only, VERSION: decrypt_only[TYPE], TYPE: ACTIVE_TYPE}


def timestamp() -> str:
    """Now, in ISO 8601 UTC with microseconds: ``YYYY-MM-DDTHH:mm:ss.ssssssZ``."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_item(context: Mapping[str, str], enc: bytes) -> dict[str, Any]:
    """The DynamoDB item for a key: its encryption context without ``tablename``, plus ``enc``."""
    item: dict[str, Any] = {}
    for name, value in context.items():
        if name == TABLE_NAME:
            continue
        item[name] = {"N": value} if name == HIERARCHY_VERSION else {"S": value}
    item[ENC] = {"B": enc}
    return item


def _single_value(value: Any) -> tuple[str, Any]:
    if isinstance(value, Mapping) and len(value) == 1:
        ((kind, raw),) = value.items()
        return str(kind), raw
    return "", None
