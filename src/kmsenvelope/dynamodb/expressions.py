"""DynamoDB expressions: tokenize, parse, find the attributes they read, rewrite tokens, serialize.

Covers the grammar of ``ConditionExpression``, ``FilterExpression`` and ``KeyConditionExpression``
(comparators, ``BETWEEN``, ``IN``, ``AND``/``OR``/``NOT``, parentheses and the functions
``attribute_exists``, ``attribute_not_exists``, ``attribute_type``, ``begins_with``, ``contains`` and
``size``), and enough of ``UpdateExpression`` to list the attributes it touches. A document path
(``a.b[2].#c``) is one token. The parse tree keeps the tokens, so a rewrite edits token text in place
and :meth:`Expression.text` serializes the result. Evaluation lives in :mod:`.evaluate`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from ..errors import MalformedInputError

__all__ = [
    "Between",
    "Compare",
    "Expression",
    "Function",
    "In",
    "Logical",
    "Not",
    "Operand",
    "Path",
    "Size",
    "Token",
    "Value",
    "parse_condition",
    "path_elements",
    "placeholders",
    "update_attributes",
]

_NAME = r"(?:\#[A-Za-z0-9_]+|[A-Za-z_][A-Za-z0-9_]*)"
_TOKEN = re.compile(
    rf"\s*(?:(?P<path>{_NAME}(?:\.{_NAME}|\[\s*[0-9]+\s*\])*)"
    r"|(?P<value>:[A-Za-z0-9_]+)|(?P<op><>|<=|>=|=|<|>)|(?P<punct>[(),+\-]))"
)
_ELEMENT = re.compile(rf"\.?({_NAME})|\[\s*([0-9]+)\s*\]")
_PLACEHOLDER = re.compile(r"[#:][A-Za-z0-9_]+")
_KEYWORDS = frozenset({"and", "or", "not", "between", "in"})
_BOOLEAN_FUNCTIONS = frozenset(
    {"attribute_exists", "attribute_not_exists", "attribute_type", "begins_with", "contains"}
)
_UPDATE_WORDS = frozenset({"set", "remove", "add", "delete", "if_not_exists", "list_append"})
COMPARATORS = frozenset({"=", "<>", "<", "<=", ">", ">="})


@dataclass
class Token:
    """One lexical token; ``kind`` is path, value, op, punct, keyword or function."""

    kind: str
    text: str


def tokenize(text: str) -> list[Token]:
    """The tokens of an expression; :class:`MalformedInputError` on anything unrecognized."""
    if not isinstance(text, str):
        raise MalformedInputError("expressions must be strings")
    tokens: list[Token] = []
    pos, end = 0, len(text.rstrip())
    while pos < end:
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise MalformedInputError(f"cannot parse the expression at character {pos}")
        kind = match.lastgroup or ""
        raw = match.group(kind)
        pos = match.end()
        if kind == "path" and raw.lower() in _KEYWORDS:
            tokens.append(Token("keyword", raw.upper()))
        elif kind == "path" and (raw.lower() in _BOOLEAN_FUNCTIONS or raw.lower() == "size"):
            tokens.append(Token("function", raw.lower()))
        else:
            tokens.append(Token(kind, raw))
    return tokens


def path_elements(path: str, names: Mapping[str, str] | None) -> list[str | int]:
    """The document path ``path`` as names and list indexes, ``#placeholders`` resolved."""
    elements: list[str | int] = []
    for match in _ELEMENT.finditer(path):
        name, index = match.groups()
        if index is not None:
            elements.append(int(index))
        elif name.startswith("#"):
            if names is None or name not in names:
                raise MalformedInputError(f"{name} is not defined in ExpressionAttributeNames")
            elements.append(names[name])
        else:
            elements.append(name)
    return elements


def placeholders(text: str | None) -> set[str]:
    """Every ``#name`` and ``:value`` placeholder an expression uses."""
    return set(_PLACEHOLDER.findall(text)) if text else set()


# -- the parse tree ------------------------------------------------------------------------------


@dataclass
class Path:
    """A document path operand."""

    token: Token


@dataclass
class Value:
    """A ``:placeholder`` operand."""

    token: Token


@dataclass
class Size:
    """``size(path)``."""

    path: Path


Operand = Path | Value | Size


@dataclass
class Compare:
    op: str
    left: Operand
    right: Operand


@dataclass
class Between:
    operand: Operand
    low: Operand
    high: Operand


@dataclass
class In:
    operand: Operand
    choices: list[Operand]


@dataclass
class Function:
    """A boolean function: attribute_exists, attribute_not_exists, attribute_type, begins_with, contains."""

    name: str
    args: list[Operand]


@dataclass
class Logical:
    op: str  # AND or OR
    items: list[Node]


@dataclass
class Not:
    item: Node


Node = Compare | Between | In | Function | Logical | Not


@dataclass
class Expression:
    """A parsed condition: its tree and the tokens the tree points into."""

    root: Node
    tokens: list[Token] = field(repr=False)

    def text(self) -> str:
        """The expression as DynamoDB text, with any rewritten tokens."""
        out: list[str] = []
        previous: Token | None = None
        for token in self.tokens:
            tight = previous is not None and (
                token.text in (")", ",")
                or previous.text == "("
                or (token.text == "(" and previous.kind == "function")
            )
            if out and not tight:
                out.append(" ")
            out.append(token.text)
            previous = token
        return "".join(out)

    def operands(self) -> Iterator[tuple[Node, Operand]]:
        """Every operand with the node it belongs to, depth first."""
        yield from _operands(self.root)


def _operands(node: Node) -> Iterator[tuple[Node, Operand]]:
    if isinstance(node, Logical):
        for item in node.items:
            yield from _operands(item)
    elif isinstance(node, Not):
        yield from _operands(node.item)
    elif isinstance(node, Compare):
        yield from ((node, node.left), (node, node.right))
    elif isinstance(node, Between):
        yield from ((node, node.operand), (node, node.low), (node, node.high))
    elif isinstance(node, In):
        yield node, node.operand
        for choice in node.choices:
            yield node, choice
    else:
        for arg in node.args:
            yield node, arg


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self, offset: int = 0) -> Token | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self, text: str | None = None, kind: str | None = None) -> Token:
        token = self.peek()
        if token is None or (text is not None and token.text != text) or (kind and token.kind != kind):
            raise MalformedInputError(f"invalid expression: expected {text or kind} at token {self.pos + 1}")
        self.pos += 1
        return token

    def condition(self) -> Node:
        items = [self.conjunction()]
        while self._is_keyword("OR"):
            self.pos += 1
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else Logical("OR", items)

    def conjunction(self) -> Node:
        items = [self.negation()]
        while self._is_keyword("AND"):
            self.pos += 1
            items.append(self.negation())
        return items[0] if len(items) == 1 else Logical("AND", items)

    def negation(self) -> Node:
        if self._is_keyword("NOT"):
            self.pos += 1
            return Not(self.negation())
        return self.primary()

    def primary(self) -> Node:
        token = self.peek()
        if token is not None and token.text == "(":
            self.pos += 1
            node = self.condition()
            self.take(")")
            return node
        if token is not None and token.kind == "function" and token.text != "size":
            self.pos += 1
            self.take("(")
            args = [self.operand()]
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.pos += 1
                args.append(self.operand())
            self.take(")")
            return Function(token.text, args)
        left = self.operand()
        token = self.peek()
        if token is not None and token.kind == "op":
            self.pos += 1
            return Compare(token.text, left, self.operand())
        if self._is_keyword("BETWEEN"):
            self.pos += 1
            low = self.operand()
            self.take("AND")
            return Between(left, low, self.operand())
        if self._is_keyword("IN"):
            self.pos += 1
            self.take("(")
            choices = [self.operand()]
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.pos += 1
                choices.append(self.operand())
            self.take(")")
            return In(left, choices)
        raise MalformedInputError(f"invalid expression: expected a comparison at token {self.pos + 1}")

    def operand(self) -> Operand:
        token = self.peek()
        if token is None:
            raise MalformedInputError("invalid expression: it ends too early")
        if token.kind == "path":
            self.pos += 1
            return Path(token)
        if token.kind == "value":
            self.pos += 1
            return Value(token)
        if token.kind == "function" and token.text == "size":
            self.pos += 1
            self.take("(")
            path = Path(self.take(kind="path"))
            self.take(")")
            return Size(path)
        raise MalformedInputError(f"invalid expression: unexpected {token.text!r} at token {self.pos + 1}")

    def _is_keyword(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "keyword" and token.text == word


def parse_condition(text: str) -> Expression:
    """Parse a condition, filter or key condition expression."""
    tokens = tokenize(text)
    if not tokens:
        raise MalformedInputError("empty expression")
    parser = _Parser(tokens)
    root = parser.condition()
    if parser.pos != len(tokens):
        raise MalformedInputError(f"invalid expression: unexpected token {parser.pos + 1}")
    return Expression(root, tokens)


def update_attributes(text: str, names: Mapping[str, str] | None) -> list[str]:
    """The top-level attribute names an ``UpdateExpression`` writes or reads."""
    out: list[str] = []
    for token in tokenize(text):
        if token.kind == "path" and token.text.lower() not in _UPDATE_WORDS:
            first = path_elements(token.text, names)[0]
            if isinstance(first, str):
                out.append(first)
    return out
