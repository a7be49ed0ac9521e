"""Queries and scans over encrypted tables (``ddb-support.md#queryinputforbeacons`` and friends).

Before the call, every operand of ``KeyConditionExpression`` and ``FilterExpression`` that names a
beacon is pointed at its ``aws_dbe_b_`` attribute and the values compared with it are replaced by
their beacon values (under fresh placeholders, so a value used elsewhere keeps its plaintext).
An encrypted attribute without a beacon cannot be searched and is refused. After the call, when a
beacon was used, the original expressions are evaluated on the decrypted items to drop the false
positives that truncated hashes produce, and ``Count`` is corrected.

With :mod:`.partitions`, a Query's key condition is beaconized in the partition it names, and its
filter ``OR``-s its beaconizations in every item partition that query covers; a Scan's, in all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..primitives.kdf import Hmac
from ..structured.model import Action
from . import _parts
from .beacon_keys import query_key_id
from .beacons import CompoundBeacon, SearchInfo, StandardBeacon
from .evaluate import evaluate, item_path
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
    Value,
    parse_condition,
    path_elements,
    placeholders,
)
from .partitions import CountingKeys, PartitionKeys, check_query_partition, or_partitions, take_partition
from .policy import RequestRefusedError
from .styles import PartOnly, is_set

__all__ = ["ReadFilter", "key_condition_beacons", "plan_read"]

_READ_EXPRESSIONS = ("KeyConditionExpression", "FilterExpression")
_EQUALITY = ("=", "<>", "IN")
_SET_QUERY_TYPES = ("S", "N", "B", "SS", "NS", "BS")


class ReadFilter:
    """Re-checks the original query expressions on decrypted items."""

    def __init__(
        self,
        info: SearchInfo,
        expressions: list[Expression],
        names: Mapping[str, str] | None,
        values: Mapping[str, Any] | None,
    ) -> None:
        self._info = info
        self._expressions = expressions
        self._names = names
        self._values = values

    def matches(self, item: Mapping[str, Any]) -> bool:
        """Whether a decrypted item satisfies every original expression."""
        info = self._info

        def resolve(elements: Any) -> Any:
            if len(elements) == 1 and info.beacon(elements[0]) is not None:
                return info.virtual_value(elements[0], item)
            return item_path(item, elements)

        return all(evaluate(e, resolve, self._names, self._values) for e in self._expressions)

    def attributes(self) -> list[str]:
        """The stored top-level attributes the re-check reads (a projection must fetch them too)."""
        out: list[str] = []
        for expression in self._expressions:
            for _node, operand in expression.operands():
                path = operand.path if isinstance(operand, Size) else operand
                if not isinstance(path, Path):
                    continue
                top = path_elements(path.token.text, self._names)[0]
                if isinstance(top, str) and top not in out:
                    out.append(top)
        return out

    def apply(self, response: dict[str, Any]) -> dict[str, Any]:
        """Drop the items that only matched by beacon collision; fix ``Count``."""
        if "Items" in response:
            response["Items"] = [item for item in response["Items"] if self.matches(item)]
            if "Count" in response:
                response["Count"] = len(response["Items"])
        return response


def plan_read(
    actions: Mapping[str, Action], info: SearchInfo | None, request: Mapping[str, Any]
) -> tuple[dict[str, Any], ReadFilter | None]:
    """The request to send and, when beacons were used, the filter for the decrypted results."""
    request, partition = take_partition(request, info.partitions.maximum if info is not None else 1)
    out = dict(request)
    names = request.get("ExpressionAttributeNames")
    values = request.get("ExpressionAttributeValues")
    parsed: dict[str, Expression] = {}
    for field in _READ_EXPRESSIONS:
        text = request.get(field)
        if text is None:
            continue
        if not isinstance(text, str):
            raise RequestRefusedError(f"{field} must be a string on an encrypted table")
        parsed[field] = parse_condition(text)
    key_id = None
    if info is not None and info.key_field is not None:
        key_id = query_key_id(info.key_field, info.key_parts, parsed.values(), names, values)
    rewriter = _Beaconizer(actions, info, names, values, key_id)
    rewriter.partition = partition or 0
    key = parsed.get("KeyConditionExpression")
    if key is not None and rewriter.run(key):
        out["KeyConditionExpression"] = key.text()
    queries = info.partitions.queries(rewriter.used()) if info is not None else 1
    check_query_partition(partition, queries)
    if "FilterExpression" in parsed:
        if not isinstance(request["FilterExpression"], str):
            raise RequestRefusedError("FilterExpression must be a string on an encrypted table")
        spread = info.partitions.item_partitions(rewriter.partition, queries) if info else [0]
        text = _filter_for(rewriter, request["FilterExpression"], spread)
        if text is not None:
            out["FilterExpression"] = text
    if not rewriter.any_changed:
        return out, None
    if request.get("Select") == "COUNT":
        raise RequestRefusedError(
            "Select=COUNT cannot be used with beacons: false positives could not be removed"
        )
    used: set[str] = set()
    was_used: set[str] = set()
    for field in (*_READ_EXPRESSIONS, "ProjectionExpression"):
        used |= placeholders(out.get(field))
        was_used |= placeholders(request.get(field))
    # Drop what the rewrite left unused (DynamoDB rejects it); what the caller sent unused stays.
    keep = used | (set(names or ()) | set(values or ())) - was_used
    out["ExpressionAttributeNames"] = {k: v for k, v in rewriter.names.items() if k in keep}
    out["ExpressionAttributeValues"] = {k: v for k, v in rewriter.values.items() if k in keep}
    for field in ("ExpressionAttributeNames", "ExpressionAttributeValues"):
        if not out[field]:
            del out[field]
    if info is None:
        raise TypeError("the table has no search configuration")
    # Every original expression is re-checked: a beacon in one of them makes the page approximate.
    checks = [parse_condition(request[f]) for f in _READ_EXPRESSIONS if request.get(f) is not None]
    return out, ReadFilter(info, checks, names, values)


def _filter_for(rewriter: _Beaconizer, text: str, spread: list[int]) -> str | None:
    """The filter beaconized in each item partition of ``spread``, ``OR``-ed (``None``: no beacon)."""

    def beaconize(number: int) -> str | None:
        rewriter.partition = number
        expression = parse_condition(text)
        return expression.text() if rewriter.run(expression) else None

    def resolve(alias: str) -> Any:
        return (rewriter.names if alias[0] == "#" else rewriter.values)[alias]

    return or_partitions(beaconize, spread, resolve)


def key_condition_beacons(
    actions: Mapping[str, Action], info: SearchInfo, query: Mapping[str, Any]
) -> set[str]:
    """The standard beacons a Query's KeyConditionExpression hashes (as parts of compound beacons
    too), found with throwaway keys."""
    text = query.get("KeyConditionExpression")
    if not isinstance(text, str):
        return set()
    names, values = query.get("ExpressionAttributeNames"), query.get("ExpressionAttributeValues")
    rewriter = _Beaconizer(actions, info, names, values)
    rewriter.base = CountingKeys(set(info.standard))
    rewriter.run(parse_condition(text))
    return rewriter.used()


class _Beaconizer:
    def __init__(
        self,
        actions: Mapping[str, Action],
        info: SearchInfo | None,
        names: Mapping[str, str] | None,
        values: Mapping[str, Any] | None,
        key_id: str | None = None,
    ) -> None:
        self.actions = actions
        self.key_id = key_id
        self.info = info
        self.original_names = names
        self.original_values = values or {}
        self.names: dict[str, str] = dict(names or {})
        self.values: dict[str, Any] = dict(values or {})
        self.changed = False
        self.any_changed = False
        self.base: dict[str, Hmac] | None = None
        self.partition = 0
        self._keys: dict[int, PartitionKeys] = {}
        self._counter = 0

    def used(self) -> set[str]:
        """The standard beacons hashed so far."""
        return set().union(*(keys.used for keys in self._keys.values()))

    def run(self, expression: Expression) -> bool:
        """Rewrite ``expression`` in place; whether it now uses a beacon."""
        self.changed = False
        self.visit(expression.root)
        self.any_changed = self.any_changed or self.changed
        return self.changed

    def visit(self, node: Node) -> None:
        if isinstance(node, Logical):
            for item in node.items:
                self.visit(item)
        elif isinstance(node, Not):
            self.visit(node.item)
        elif isinstance(node, Compare):
            left, right = self.classify(node.left), self.classify(node.right)
            if left is not None and right is not None:
                raise RequestRefusedError("two beaconized or encrypted operands cannot be compared")
            if left is not None:
                self.rewrite(node.left, left, node.op, [node.right])
            elif right is not None:
                self.rewrite(node.right, right, _mirror(node.op), [node.left])
        elif isinstance(node, Between):
            beacon = self.classify(node.operand)
            self._plain(node.low, node.high)
            if beacon is not None:
                self.rewrite(node.operand, beacon, "BETWEEN", [node.low, node.high])
        elif isinstance(node, In):
            beacon = self.classify(node.operand)
            self._plain(*node.choices)
            if beacon is not None:
                self.rewrite(node.operand, beacon, "IN", node.choices)
        else:
            self.function(node)

    def function(self, node: Function) -> None:
        if node.name in ("attribute_exists", "attribute_not_exists"):
            path = node.args[0]
            beacon = self._beacon_of(path) if isinstance(path, Path) else None
            if beacon is not None:
                if not isinstance(path, Path):
                    raise TypeError("a beacon operand must be an attribute path")
                _refuse_part_only(beacon)  # its attribute never exists: the answer would be wrong
                self._point_at_beacon(path, beacon)
            return
        beacon = self.classify(node.args[0])
        self._plain(*node.args[1:])
        if beacon is None:
            return
        if node.name == "attribute_type":
            raise RequestRefusedError("attribute_type() cannot be used on a beacon")
        self.rewrite(node.args[0], beacon, node.name, node.args[1:])

    def classify(self, operand: Operand) -> StandardBeacon | CompoundBeacon | None:
        """The beacon an operand names; refuses encrypted attributes that have none."""
        if isinstance(operand, Value):
            return None
        path = operand.path if isinstance(operand, Size) else operand
        elements = path_elements(path.token.text, self.original_names)
        top = elements[0]
        beacon = self.info.beacon(top) if self.info is not None and isinstance(top, str) else None
        if isinstance(operand, Size) and (beacon is not None or self._encrypted(top)):
            raise RequestRefusedError(f"size() of encrypted attribute {top!r} cannot be queried")
        if beacon is not None:
            if len(elements) > 1:
                raise RequestRefusedError(f"beacon {top!r} has no nested attributes to query")
            _refuse_part_only(beacon)
            return beacon
        if self._encrypted(top):
            raise RequestRefusedError(
                f"attribute {top!r} is encrypted and has no beacon: it cannot be used in a query or filter"
            )
        return None

    def rewrite(
        self, path: Operand, beacon: StandardBeacon | CompoundBeacon, op: str, operands: list[Operand]
    ) -> None:
        if not isinstance(path, Path) or self.info is None:
            raise TypeError("beacon rewrite needs an attribute path and a search configuration")
        if any(not isinstance(o, Value) for o in operands):
            raise RequestRefusedError(f"beacon {beacon.name!r} can only be compared with values")
        texts = [self._value(o) for o in operands if isinstance(o, Value)]
        if isinstance(beacon, CompoundBeacon) and beacon.is_signed:
            # A signed beacon is a plaintext attribute: the values stay, but must make sense for it.
            for text in texts:
                _parts.query_value(self.info, beacon, _string_of(text, beacon), {}, op in _EQUALITY)
            return
        keys = self._hmac_keys()
        if isinstance(beacon, StandardBeacon):
            allowed = ("=", "IN", "contains") if is_set(beacon.style) else ("=", "IN")
            if op not in allowed:
                raise RequestRefusedError(
                    f"the operation {op!r} cannot be used with standard beacon {beacon.name!r}"
                )
            if is_set(beacon.style) and any(_tag(v) not in _SET_QUERY_TYPES for v in texts):
                raise RequestRefusedError(
                    f"set beacon {beacon.name!r} can only be compared with S, N, B, SS, NS or BS values"
                )
            new = [self.info.query_value(beacon.name, v, keys, op == "contains") for v in texts]
        else:
            strings = [_string_of(v, beacon) for v in texts]
            pieces = strings[0].split(beacon.split)
            if op in ("<", "<=", ">", ">=") and not _parts.less_than_comparable(beacon, pieces):
                raise RequestRefusedError(
                    f"{op!r} on beacon {beacon.name!r} needs a LessThanComparable value"
                )
            if op == "BETWEEN" and not _parts.between_comparable(beacon, strings[0], strings[1]):
                raise RequestRefusedError(f"BETWEEN on beacon {beacon.name!r} needs BetweenComparable bounds")
            equal = op in _EQUALITY
            new = [{"S": _parts.query_value(self.info, beacon, s, keys, equal)} for s in strings]
        self._point_at_beacon(path, beacon)
        for operand, value in zip(operands, new, strict=True):
            if not isinstance(operand, Value):
                raise TypeError("beacon rewrite needs value operands")
            operand.token.text = self._alias(":", value)

    def _point_at_beacon(self, path: Path, beacon: StandardBeacon | CompoundBeacon) -> None:
        if isinstance(beacon, CompoundBeacon) and beacon.is_signed:
            return  # stored under its own name, in plaintext
        path.token.text = self._alias("#", SearchInfo.attribute_name(beacon))
        self.changed = True

    def _alias(self, sigil: str, value: Any) -> str:
        self._counter += 1
        alias = f"{sigil}aws_dbe_b{self._counter}"
        while alias in self.names or alias in self.values:
            self._counter += 1
            alias = f"{sigil}aws_dbe_b{self._counter}"
        (self.names if sigil == "#" else self.values)[alias] = value
        return alias

    def _value(self, operand: Value) -> Any:
        name = operand.token.text
        if name not in self.original_values:
            raise RequestRefusedError(f"{name} is not defined in ExpressionAttributeValues")
        return self.original_values[name]

    def _plain(self, *operands: Operand) -> None:
        for operand in operands:
            if self.classify(operand) is not None:
                raise RequestRefusedError("a beacon can only be compared with values")

    def _beacon_of(self, path: Path) -> StandardBeacon | CompoundBeacon | None:
        top = path_elements(path.token.text, self.original_names)[0]
        if self.info is not None and isinstance(top, str):
            return self.info.beacon(top)
        return None

    def _encrypted(self, name: str | int) -> bool:
        return isinstance(name, str) and self.actions.get(name) is Action.ENCRYPT_AND_SIGN

    def _hmac_keys(self) -> dict[str, Hmac]:
        if self.base is None:
            if self.info is None:
                raise TypeError("the table has no search configuration")
            if self.info.key_field is not None and self.key_id is None:
                # search-config.md#get-beacon-key-for-query: no beacon key id, and a beacon needs one.
                raise RequestRefusedError(
                    f"this query needs a beacon key, but does not name one: pin the tenant with "
                    f"{self.info.key_field} = :value (a MultiKeyBeaconSource is configured)"
                )
            self.base = self.info.hmac_keys(self.key_id)
        keys = self._keys.get(self.partition)
        if keys is None:
            keys = self._keys[self.partition] = PartitionKeys(self.base, self.partition)
        return keys


def _refuse_part_only(beacon: StandardBeacon | CompoundBeacon) -> None:
    if isinstance(beacon, StandardBeacon) and isinstance(beacon.style, PartOnly):
        raise RequestRefusedError(
            f"{beacon.name!r} has a PartOnly beacon: it can only be searched as part of a compound beacon"
        )


def _tag(value: Any) -> str | None:
    return next(iter(value), None) if isinstance(value, Mapping) and len(value) == 1 else None


def _mirror(op: str) -> str:
    return {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)


def _string_of(value: Any, beacon: CompoundBeacon) -> str:
    if not isinstance(value, Mapping) or "S" not in value:
        raise RequestRefusedError(f"compound beacon {beacon.name!r} can only be queried with string values")
    return str(value["S"])
