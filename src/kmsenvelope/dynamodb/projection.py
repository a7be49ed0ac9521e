"""``ProjectionExpression`` on encrypted tables: fetch what decryption needs, return what was asked.

An encrypted item only decrypts when the response holds ``aws_dbe_head``, ``aws_dbe_foot`` and every
signed attribute, and the server cannot look inside an ENCRYPT_AND_SIGN attribute (``address.zip``
of ciphertext is nothing). So the request sent to DynamoDB asks for the *top-level* attributes of the
caller's paths plus everything decryption (and the beacon false-positive filter) needs, and after
decryption :meth:`Projection.apply` cuts the plaintext item down with DynamoDB's own projection rules:

* ``a.b`` gives ``{"a": {"M": {"b": ...}}}`` and ``l[3]`` gives ``{"l": {"L": [...]}}``; several
  paths into one map or list merge, list elements keep their index order and are packed together;
* a path that is missing, or that goes through a value of the wrong type, contributes nothing (an
  attribute left with nothing is omitted);
* paths that overlap (``a`` and ``a.b``, or the same path twice) or conflict (``a.b`` and ``a[0]``)
  are refused, as DynamoDB refuses them.

Added attributes always go through placeholders (so reserved words and special characters are fine):
one the caller already uses for that name, or a fresh ``#aws_dbe_p<n>``. The caller's own top-level
names are sent as the caller wrote them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Union

from ..errors import MalformedInputError
from .expressions import path_elements, placeholders, tokenize

__all__ = ["Projection", "parse_projection", "plan_projection", "project"]

PathElements = tuple[str | int, ...]
_Tree = dict[str | int, Union["_Tree", None]]
"""Projected paths merged: ``None`` stands for "the whole value"."""

_EXPRESSION_FIELDS = (
    "ProjectionExpression",
    "KeyConditionExpression",
    "FilterExpression",
    "ConditionExpression",
)
_TOP = re.compile(r"\#?[A-Za-z0-9_]+")


@dataclass(frozen=True)
class Projection:
    """A parsed ``ProjectionExpression``: its resolved paths and how each top-level name was written."""

    paths: tuple[PathElements, ...]
    tops: tuple[tuple[str, str], ...]
    """``(attribute name, its text in the caller's expression)``, in the caller's order."""
    tree: _Tree

    def apply(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """The parts of a (decrypted) DynamoDB JSON item the projection names."""
        return _project_item(item, self.tree)


def parse_projection(text: object, names: Mapping[str, str] | None) -> Projection:
    """Parse and validate a ``ProjectionExpression`` (placeholders resolved through ``names``)."""
    if not isinstance(text, str):
        raise MalformedInputError("ProjectionExpression must be a string")
    tokens = tokenize(text)
    if not tokens:
        raise MalformedInputError("ProjectionExpression cannot be empty")
    paths: list[PathElements] = []
    tops: list[tuple[str, str]] = []
    for index, token in enumerate(tokens):
        if index % 2 == 1:
            if token.text != ",":
                raise MalformedInputError(f"ProjectionExpression: expected ',' at token {index + 1}")
            continue
        if token.kind != "path":
            raise MalformedInputError(
                f"ProjectionExpression: {token.text!r} is not an attribute path (reserved words must go "
                "through ExpressionAttributeNames)"
            )
        elements = tuple(path_elements(token.text, names))
        paths.append(elements)
        top = _TOP.match(token.text)
        if top is None or not isinstance(elements[0], str):
            raise MalformedInputError(
                f"ProjectionExpression: {token.text!r} does not start with an attribute name"
            )
        tops.append((elements[0], top.group(0)))
    if len(tokens) % 2 == 0:
        raise MalformedInputError("ProjectionExpression cannot end with ','")
    return Projection(tuple(paths), tuple(tops), _tree(paths))


def project(
    item: Mapping[str, Any], expression: str, names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``item`` cut down to ``expression`` as DynamoDB would return it."""
    return parse_projection(expression, names).apply(item)


def plan_projection(
    request: Mapping[str, Any], needed: Iterable[str]
) -> tuple[dict[str, Any], Projection | None]:
    """The request to send (projection widened by ``needed``) and the projection to apply afterwards.

    Without a ``ProjectionExpression`` the request is returned as is (a copy) with ``None``.
    """
    out = dict(request)
    if "ProjectionExpression" not in request:
        return out, None
    select = request.get("Select")
    if select not in (None, "SPECIFIC_ATTRIBUTES"):
        raise MalformedInputError(
            f"Select={select} cannot be combined with a ProjectionExpression (DynamoDB only accepts "
            "SPECIFIC_ATTRIBUTES with one)"
        )
    given = request.get("ExpressionAttributeNames")
    if given is not None and not isinstance(given, Mapping):
        raise MalformedInputError("ExpressionAttributeNames must be a mapping")
    projection = parse_projection(request["ProjectionExpression"], given)
    names = dict(given or {})
    before = _names_used(request)
    parts: list[str] = []
    seen: set[str] = set()
    for name, text in projection.tops:
        if name not in seen:
            seen.add(name)
            parts.append(text)
    reusable = {name: alias for alias, name in names.items() if alias in before}
    counter = 0
    for name in needed:
        if name in seen:
            continue
        seen.add(name)
        alias = reusable.get(name)
        if alias is None:
            counter += 1
            while f"#aws_dbe_p{counter}" in names:
                counter += 1
            alias = f"#aws_dbe_p{counter}"
            names[alias] = name
        parts.append(alias)
    out["ProjectionExpression"] = ", ".join(parts)
    # DynamoDB rejects unused names: drop those only our rewrite left unused (e.g. ``a.#nested``).
    for alias in before - _names_used(out):
        names.pop(alias, None)
    if names:
        out["ExpressionAttributeNames"] = names
    else:
        out.pop("ExpressionAttributeNames", None)
    return out, projection


def _names_used(request: Mapping[str, Any]) -> set[str]:
    used: set[str] = set()
    for field in _EXPRESSION_FIELDS:
        text = request.get(field)
        if isinstance(text, str):
            used |= {p for p in placeholders(text) if p.startswith("#")}
    return used


def _tree(paths: list[PathElements]) -> _Tree:
    root: _Tree = {}
    missing: Any = object()
    for path in paths:
        node = root
        for depth, element in enumerate(path):
            if node and isinstance(element, int) != isinstance(next(iter(node)), int):
                raise MalformedInputError(
                    f"ProjectionExpression: two document paths conflict with each other: {_show(path)}"
                )
            child = node.get(element, missing)
            if child is None or (depth == len(path) - 1 and child is not missing):
                raise MalformedInputError(
                    f"ProjectionExpression: two document paths overlap with each other: {_show(path)}"
                )
            if depth == len(path) - 1:
                node[element] = None
            else:
                if child is missing:
                    child = node[element] = {}
                node = child
    return root


def _show(path: PathElements) -> str:
    return "".join(f"[{e}]" if isinstance(e, int) else f".{e}" for e in path).lstrip(".")


def _project_item(item: Mapping[str, Any], tree: _Tree) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, sub in tree.items():
        if isinstance(name, str) and name in item:
            value = _select(item[name], sub)
            if value is not None:
                out[name] = value
    return out


def _select(value: Any, tree: _Tree | None) -> Any:
    if tree is None:
        return value
    if not isinstance(value, Mapping):
        return None
    if isinstance(next(iter(tree)), str):
        members = value.get("M")
        if not isinstance(members, Mapping):
            return None
        projected = _project_item(members, tree)
        return {"M": projected} if projected else None
    entries = value.get("L")
    if not isinstance(entries, list):
        return None
    picked = []
    for index in sorted(i for i in tree if isinstance(i, int)):
        if index < len(entries):
            element = _select(entries[index], tree[index])
            if element is not None:
                picked.append(element)
    return {"L": picked} if picked else None
