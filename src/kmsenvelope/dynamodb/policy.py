"""What the encrypted DynamoDB clients refuse, always before any request is sent
(``ddb-sdk-integration.md``, ``ddb-support.md#testconditionexpression``).

On an encrypted table: PartiQL statements; the legacy parameters (``Expected``, ``AttributesToGet``,
``ScanFilter``, ``QueryFilter``, ``KeyConditions``, ``AttributeUpdates``, ``ConditionalOperator``);
condition expressions that read an ENCRYPT_AND_SIGN attribute (the server only sees ciphertext;
``attribute_exists``/``attribute_not_exists`` are fine); update expressions that touch anything but
attributes allowed unsigned (any other change would break the item's signature); items that carry
attributes named ``aws_dbe_...``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from ..errors import PolicyError
from ..structured.model import RESERVED_PREFIX, Action
from .expressions import Function, Path, Size, parse_condition, path_elements, update_attributes

__all__ = [
    "LEGACY_PARAMETERS",
    "RequestRefusedError",
    "check_condition",
    "check_legacy",
    "check_update",
    "check_writable",
    "partiql_tables",
]

LEGACY_PARAMETERS = (
    "Expected",
    "AttributesToGet",
    "ScanFilter",
    "QueryFilter",
    "KeyConditions",
    "AttributeUpdates",
    "ConditionalOperator",
)
_PARTIQL_TOKEN = re.compile(r"'(?:[^']|'')*'|\"((?:[^\"]|\"\")*)\"|([A-Za-z_][A-Za-z0-9_.\-]*)")


class RequestRefusedError(PolicyError):
    """A DynamoDB request that an encrypted table cannot serve safely; nothing was sent."""


def check_legacy(table: str, params: Mapping[str, Any]) -> None:
    """Refuse the legacy (pre-expression) parameters."""
    present = [name for name in LEGACY_PARAMETERS if name in params]
    if present:
        raise RequestRefusedError(
            f"table {table!r} is encrypted: legacy parameter {present[0]} is not supported; "
            "use expressions (ConditionExpression, ProjectionExpression, ...)"
        )


def check_condition(
    table: str, actions: Mapping[str, Action], text: object, names: Mapping[str, str] | None
) -> None:
    """Refuse a condition expression that reads an encrypted attribute."""
    if text is None:
        return
    if not isinstance(text, str):
        raise RequestRefusedError("ConditionExpression must be a string on an encrypted table")
    expression = parse_condition(text)
    for node, operand in expression.operands():
        if isinstance(node, Function) and node.name in ("attribute_exists", "attribute_not_exists"):
            continue
        path = operand.path if isinstance(operand, Size) else operand
        if not isinstance(path, Path):
            continue
        top = path_elements(path.token.text, names)[0]
        if isinstance(top, str) and actions.get(top) is Action.ENCRYPT_AND_SIGN:
            raise RequestRefusedError(
                f"table {table!r}: condition expressions cannot read encrypted attribute {top!r}"
            )


def check_update(
    table: str, unsigned: Any, text: object, names: Mapping[str, str] | None, keys: Collection[str]
) -> None:
    """Refuse an update expression touching anything but attributes allowed unsigned.

    ``unsigned(name)`` says whether an attribute is outside the signature (the table config's
    ``allowed_unsigned_name``).
    """
    if text is None:
        raise RequestRefusedError(f"table {table!r} is encrypted: update_item needs an UpdateExpression")
    if not isinstance(text, str):
        raise RequestRefusedError("UpdateExpression must be a string")
    for name in update_attributes(text, names):
        if name in keys or name.startswith(RESERVED_PREFIX) or not unsigned(name):
            raise RequestRefusedError(
                f"table {table!r} is encrypted: update expressions may only touch attributes allowed "
                f"unsigned; {name!r} is signed or reserved (write the whole item with put_item instead)"
            )


def check_writable(table: str, item: Mapping[str, Any], forbidden: Collection[str] = ()) -> None:
    """Refuse items carrying reserved (``aws_dbe_``) attributes or compound beacon names."""
    if not isinstance(item, Mapping):
        raise RequestRefusedError("an item must be a mapping")
    for name in item:
        if name.startswith(RESERVED_PREFIX) or name in forbidden:
            raise RequestRefusedError(f"table {table!r}: attribute {name!r} is reserved for the encryption")


def partiql_tables(statement: object, tables: Collection[str]) -> list[str]:
    """The configured tables a PartiQL statement names (quoted or bare identifiers)."""
    if not isinstance(statement, str):
        return []
    found = []
    for match in _PARTIQL_TOKEN.finditer(statement):
        quoted, bare = match.groups()
        name = quoted.replace('""', '"') if quoted is not None else bare
        if name is None:
            continue
        for candidate in (name, name.split(".")[0]):
            if candidate in tables and candidate not in found:
                found.append(candidate)
    return found
