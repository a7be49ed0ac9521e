"""Evaluate a parsed DynamoDB condition against a (decrypted) item, as the DynamoDB server would.

Used to drop the false positives of beacon queries: the server matched truncated hashes, the client
re-checks the original expression on the plaintext. Values are low-level DynamoDB JSON. Semantics
follow DynamoDB: ordering comparisons only between two S (UTF-8 byte order), two N (numeric) or two B
(byte order); a comparison with a missing attribute is false except ``<>``; sets compare as sets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from ..errors import MalformedInputError
from .expressions import (
    Between,
    Compare,
    Expression,
    Function,
    In,
    Logical,
    Node,
    Not,
    Operand,
    Path,
    Size,
    path_elements,
)

__all__ = ["Resolver", "evaluate", "item_path"]

AttributeValue = Mapping[str, Any]
Resolver = Callable[[Sequence[str | int]], "AttributeValue | None"]
"""Maps a resolved document path to the value it designates in the item (``None``: absent)."""

_ORDERED = ("S", "N", "B")


def item_path(item: Mapping[str, AttributeValue], elements: Sequence[str | int]) -> AttributeValue | None:
    """The value at a document path inside a DynamoDB JSON item, or ``None``."""
    value: Any = item.get(elements[0]) if isinstance(elements[0], str) else None
    for element in elements[1:]:
        if value is None:
            return None
        if isinstance(element, int):
            entries = value.get("L")
            value = entries[element] if isinstance(entries, list) and element < len(entries) else None
        else:
            members = value.get("M")
            value = members.get(element) if isinstance(members, Mapping) else None
    return value  # type: ignore[no-any-return]


def evaluate(
    expression: Expression,
    resolve: Resolver,
    names: Mapping[str, str] | None,
    values: Mapping[str, AttributeValue] | None,
) -> bool:
    """Whether the item behind ``resolve`` satisfies ``expression``."""
    return _Evaluator(resolve, names, values or {}).node(expression.root)


class _Evaluator:
    def __init__(
        self, resolve: Resolver, names: Mapping[str, str] | None, values: Mapping[str, AttributeValue]
    ) -> None:
        self.resolve = resolve
        self.names = names
        self.values = values

    def node(self, node: Node) -> bool:
        if isinstance(node, Logical):
            if node.op == "AND":
                return all(self.node(item) for item in node.items)
            return any(self.node(item) for item in node.items)
        if isinstance(node, Not):
            return not self.node(node.item)
        if isinstance(node, Compare):
            return _compare(node.op, self.operand(node.left), self.operand(node.right))
        if isinstance(node, Between):
            value = self.operand(node.operand)
            return _compare(">=", value, self.operand(node.low)) and _compare(
                "<=", value, self.operand(node.high)
            )
        if isinstance(node, In):
            value = self.operand(node.operand)
            return any(_compare("=", value, self.operand(choice)) for choice in node.choices)
        return self.function(node)

    def function(self, node: Function) -> bool:
        args = node.args
        if node.name in ("attribute_exists", "attribute_not_exists"):
            exists = self.operand(args[0]) is not None
            return exists if node.name == "attribute_exists" else not exists
        if len(args) != 2:
            raise MalformedInputError(f"{node.name} takes two operands")
        value, other = self.operand(args[0]), self.operand(args[1])
        if value is None or other is None:
            return False
        if node.name == "attribute_type":
            return other.get("S") == _type_of(value)
        if node.name == "begins_with":
            tag = _type_of(value)
            return tag in ("S", "B") and _type_of(other) == tag and _raw(value).startswith(_raw(other))
        return _contains(value, other)

    def operand(self, operand: Operand) -> AttributeValue | None:
        if isinstance(operand, Path):
            return self.resolve(path_elements(operand.token.text, self.names))
        if isinstance(operand, Size):
            value = self.resolve(path_elements(operand.path.token.text, self.names))
            return None if value is None else {"N": str(_size(value))}
        name = operand.token.text
        if name not in self.values:
            raise MalformedInputError(f"{name} is not defined in ExpressionAttributeValues")
        return self.values[name]


def _type_of(value: AttributeValue) -> str:
    return next(iter(value))


def _raw(value: AttributeValue) -> Any:
    tag = _type_of(value)
    inner = value[tag]
    if tag == "S":
        return inner.encode("utf-8")
    if tag == "B":
        return bytes(inner)
    if tag == "N":
        return Decimal(inner)
    return inner


def _size(value: AttributeValue) -> int:
    tag = _type_of(value)
    inner = value[tag]
    if tag == "S":
        return len(inner.encode("utf-8"))
    if tag == "B":
        return len(bytes(inner))
    if tag in ("SS", "NS", "BS", "L", "M"):
        return len(inner)
    raise MalformedInputError(f"size() does not apply to {tag} values")


def _compare(op: str, left: AttributeValue | None, right: AttributeValue | None) -> bool:
    if left is None or right is None:
        # A missing attribute equals nothing, so it differs from everything.
        return op == "<>"
    if op == "=":
        return _equal(left, right)
    if op == "<>":
        return not _equal(left, right)
    tag = _type_of(left)
    if tag not in _ORDERED or _type_of(right) != tag:
        return False
    a, b = _raw(left), _raw(right)
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def _equal(left: AttributeValue, right: AttributeValue) -> bool:
    tag = _type_of(left)
    if _type_of(right) != tag:
        return False
    a, b = left[tag], right[tag]
    if tag in ("S", "N", "B"):
        return bool(_raw(left) == _raw(right))
    if tag == "SS":
        return set(a) == set(b)
    if tag == "NS":
        return {Decimal(x) for x in a} == {Decimal(x) for x in b}
    if tag == "BS":
        return {bytes(x) for x in a} == {bytes(x) for x in b}
    if tag == "L":
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if tag == "M":
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _contains(container: AttributeValue, member: AttributeValue) -> bool:
    tag = _type_of(container)
    other = _type_of(member)
    inner = container[tag]
    if tag == "S":
        return other == "S" and member["S"] in inner
    if tag == "B":
        return other == "B" and bytes(member["B"]) in bytes(inner)
    if tag in ("SS", "NS", "BS"):
        return other == tag[0] and any(_equal({other: entry}, member) for entry in inner)
    if tag == "L":
        return any(_equal(entry, member) for entry in inner)
    return False
