"""The values every layer shares: the encryption context and the encrypted data key.

This module sits below both the message format and the materials, so both can use one context type,
one canonical serializer and one parser (``framework/structures.md#encryption-context``):

* :class:`EncryptionContext` is an immutable mapping of ``str`` to ``str``. It is a
  :class:`collections.abc.Mapping`, not a ``dict``, so no dict method (``dict.__setitem__(ctx, ...)``,
  ``ctx |= ...`` and the like) can change it; ``ctx | {...}`` returns a new context.
* :func:`serialize_context` gives the canonical serialization: uint16 pair count, then each pair
  sorted by the UTF-8 bytes of its key, as uint16 length + UTF-8 bytes for key and value; the empty
  context serializes to no bytes. Every message and record this library writes uses it, whatever
  mapping the caller passed.
* :func:`parse_context` reads a serialization. It accepts pairs stored out of order, as the AWS
  Encryption SDK does, but the context it returns serializes canonically: out-of-order bytes are
  never written again. (A message header is authenticated over its bytes as stored, see
  ``message/crypto.py``.)

Nothing here caches across objects: each context carries its own serialization, computed once when
it is built, and nothing one caller holds can be reached by another.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any, TypeVar, final

from .errors import MalformedInputError

__all__ = [
    "EMPTY_CONTEXT",
    "EncryptedDataKey",
    "EncryptionContext",
    "assemble_context",
    "encode_context_field",
    "freeze_context",
    "frozen_field",
    "parse_context",
    "seal_dataclass",
    "serialize_context",
]

_MAX_U16 = 0xFFFF
_u16 = struct.Struct(">H").pack


@final
class EncryptionContext(Mapping[str, str]):
    """An immutable encryption context: non-secret ``str`` pairs bound to a message as AAD.

    Build one from a mapping or from ``(key, value)`` pairs; keys and values must be ``str`` that
    encode to at most 65,535 UTF-8 bytes. It compares equal to any mapping with the same pairs
    (``ctx == {"tenant": "acme"}``), is hashable by content, pickles, and returns new contexts from
    ``ctx | other``. :meth:`serialize` gives its canonical serialization, computed once.
    """

    # _pairs holds a dict no caller can reach: methods read it through the module's slot getter, and
    # the attribute itself only ever yields a read-only proxy (see _seal_slots below).
    __slots__ = ("_pairs", "_serialized")

    _pairs: Mapping[str, str]
    _serialized: bytes | None

    def __new__(cls, pairs: Mapping[str, str] | Iterable[tuple[str, str]] = (), /) -> EncryptionContext:
        items: Iterable[tuple[Any, Any]]
        if pairs.__class__ is dict or isinstance(pairs, Mapping):
            items = pairs.items()
        elif isinstance(pairs, (str, bytes)):
            raise MalformedInputError("an encryption context is built from a mapping or (key, value) pairs")
        else:
            items = pairs
        out: dict[str, str] = {}
        try:
            for key, value in items:
                # Plain short ASCII str (the usual context) needs no further check.
                if not (
                    key.__class__ is str
                    and value.__class__ is str
                    and key.isascii()
                    and value.isascii()
                    and len(key) <= _MAX_U16
                    and len(value) <= _MAX_U16
                ):
                    key, value = _checked_field(key), _checked_field(value)
                out[key] = value
        except (TypeError, ValueError) as exc:
            if isinstance(exc, MalformedInputError):
                raise
            raise MalformedInputError(
                "an encryption context is built from a mapping or (key, value) pairs of str"
            ) from None
        if len(out) > _MAX_U16:
            raise MalformedInputError("encryption context has too many pairs")
        # Validated: serializing cannot fail, so it is left until someone asks (a reproduced
        # context on decrypt often never needs its bytes).
        return _adopt(out, None)

    def __init_subclass__(cls, **kwargs: object) -> None:
        raise TypeError("EncryptionContext cannot be subclassed")

    # -- Mapping -----------------------------------------------------------------------------------

    def __getitem__(self, key: str) -> str:
        return _pairs_of(self)[key]

    def __iter__(self) -> Iterator[str]:
        return iter(_pairs_of(self))

    def __len__(self) -> int:
        return len(_pairs_of(self))

    def __contains__(self, key: object) -> bool:
        return key in _pairs_of(self)

    def get(self, key: str, default: Any = None) -> Any:
        """The value for ``key``, or ``default``."""
        return _pairs_of(self).get(key, default)

    def keys(self) -> KeysView[str]:
        """A read-only view of the keys."""
        return _pairs_of(self).keys()

    def items(self) -> ItemsView[str, str]:
        """A read-only view of the pairs."""
        return _pairs_of(self).items()

    def values(self) -> ValuesView[str]:
        """A read-only view of the values."""
        return _pairs_of(self).values()

    # -- value semantics ---------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if type(other) is EncryptionContext:
            return _pairs_of(self) == _pairs_of(other)
        if isinstance(other, dict):
            return _pairs_of(self) == other
        if isinstance(other, Mapping):
            return _pairs_of(self) == dict(other.items())
        return NotImplemented

    def __hash__(self) -> int:
        # The canonical serialization is one-to-one with the content (and bytes cache their hash).
        return hash(self.serialize())

    def __or__(self, other: Mapping[str, str]) -> EncryptionContext:
        if not isinstance(other, Mapping):
            return NotImplemented
        merged = dict(_pairs_of(self))
        merged.update(other)
        return EncryptionContext(merged)

    def __ror__(self, other: Mapping[str, str]) -> EncryptionContext:
        if not isinstance(other, Mapping):
            return NotImplemented
        merged = dict(other)
        merged.update(_pairs_of(self))
        return EncryptionContext(merged)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("EncryptionContext is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("EncryptionContext is immutable")

    def __reduce__(self) -> tuple[type[EncryptionContext], tuple[dict[str, str]]]:
        return (EncryptionContext, (dict(_pairs_of(self)),))

    def __copy__(self) -> EncryptionContext:
        return self

    def __deepcopy__(self, memo: object) -> EncryptionContext:
        return self

    def __repr__(self) -> str:
        return f"EncryptionContext({dict(_pairs_of(self))!r})"

    # -- serialization -----------------------------------------------------------------------------

    def serialize(self) -> bytes:
        """The canonical serialization (``framework/structures.md#serialization``); empty: ``b""``.

        Computed on first use and kept by this object (a pure function of its immutable pairs).
        """
        serialized = _serialized_of(self)
        if serialized is None:
            serialized = _serialize_pairs(_pairs_of(self))
            _set_serialized(self, serialized)
        return serialized

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> EncryptionContext:
        """Read a serialized context; see :func:`parse_context`."""
        return parse_context(data)


def _seal_slots(cls: type, *names: str) -> tuple[tuple[Any, Any], ...]:
    """Replace the slot descriptors of ``names`` by read-only properties; return (getter, setter) pairs.

    The slots are then written only through the returned setters, by this module's constructors:
    not even ``object.__setattr__`` can change an instance once it is built.
    """
    accessors = []
    for name in names:
        slot = cls.__dict__[name]
        accessors.append((slot.__get__, slot.__set__))
        type.__setattr__(cls, name, property(slot.__get__, doc=f"The {name.strip('_')} (read-only)."))
    return tuple(accessors)


_V = TypeVar("_V")


def seal_dataclass(cls: type[_V]) -> Callable[..., _V]:
    """Seal a ``@dataclass(frozen=True, slots=True, init=False)`` value class; return its builder.

    Instances have no ``__dict__`` (``vars()`` fails), refuse assignment and deletion (the frozen
    dataclass ``__setattr__``), and have no ``__setstate__``; calling ``__init__`` again is
    ``object.__init__`` and changes nothing. The returned ``build(cls, *values)`` (values in field order)
    fills the slots once; the class's ``__new__`` calls it after normalizing its arguments, and must
    take the fields positionally in the same order (pickling rebuilds through it, ``dataclasses.replace``
    through its keywords). Instances are immutable, so copies are the object itself.

    The slots keep their ordinary descriptors, so reading a field costs what reading any attribute
    does; ``object.__setattr__`` can therefore still write a slot, as it can any slotted object. That is
    the boundary (docs/security.md): :class:`EncryptionContext` and :class:`EncryptedDataKey` go further.
    """
    names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    if "__dict__" in cls.__dict__ or tuple(cls.__dict__.get("__slots__", ())) != names:
        raise TypeError(f"{cls.__name__} must be a slotted dataclass whose slots are exactly its fields")
    if "__new__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} must build its instances in __new__")
    setters = [cls.__dict__[name].__set__ for name in names]
    getters = [cls.__dict__[name].__get__ for name in names]
    # dataclass(slots=True) pickles frozen values through __setstate__, which writes any field with
    # object.__setattr__; __reduce__ rebuilds through __new__ instead.
    for name in ("__getstate__", "__setstate__"):
        if name in cls.__dict__:
            type.__delattr__(cls, name)

    def __reduce__(self: Any) -> tuple[type, tuple[Any, ...]]:
        # A read-only view does not pickle; __new__ takes (and copies) the mapping it shows.
        return (
            self.__class__,
            tuple(dict(v) if v.__class__ is MappingProxyType else v for v in (get(self) for get in getters)),
        )

    def __copy__(self: Any) -> Any:
        return self

    def __deepcopy__(self: Any, memo: object) -> Any:
        return self

    for method in (__reduce__, __copy__, __deepcopy__):
        method.__qualname__ = f"{cls.__qualname__}.{method.__name__}"
        type.__setattr__(cls, method.__name__, method)
    # The fast fill: an unsealed twin with the same slot layout takes plain attribute stores (a few
    # instructions each, against a descriptor call per field), then the finished object becomes an
    # instance of the sealed class. The twin is never handed out. Subclasses fill through the setters.
    twin = type(f"_Unsealed{cls.__name__}", (), {"__slots__": names, "__module__": cls.__module__})
    params = ", ".join(f"v{i}" for i in range(len(names)))
    stores = "".join(f"        obj.{name} = v{i}\n" for i, name in enumerate(names))
    calls = "".join(f"    s{i}(obj, v{i})\n" for i in range(len(names)))
    source = (
        f"def build(cls, {params}):\n"
        f"    if cls is sealed:\n        obj = new(twin)\n{stores}"
        "        obj.__class__ = sealed\n        return obj\n"
        f"    obj = new(cls)\n{calls}    return obj\n"
    )
    namespace: dict[str, Any] = {"new": object.__new__, "twin": twin, "sealed": cls}
    namespace.update((f"s{i}", setter) for i, setter in enumerate(setters))
    exec(source, namespace)  # noqa: S102 -- generated from dataclass field names only
    build: Callable[..., _V] = namespace["build"]
    build.__qualname__ = f"{cls.__qualname__}.build"
    return build


def frozen_field(value: Any) -> Any:
    """``value`` in an immutable form for a sealed value's field: a ``bytearray`` or ``memoryview``
    becomes ``bytes``, a ``list`` a ``tuple``, a ``set`` a ``frozenset``; anything else is returned as is.

    A sealed value may be shared between callers, so it must not keep a container its builder can
    still change.
    """
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, set):
        return frozenset(value)
    return value


_context_slots = _seal_slots(EncryptionContext, "_pairs", "_serialized")
_pairs_of: Callable[[EncryptionContext], dict[str, str]] = _context_slots[0][0]
_set_pairs: Callable[[EncryptionContext, dict[str, str]], None] = _context_slots[0][1]
_serialized_of: Callable[[EncryptionContext], bytes | None] = _context_slots[1][0]
_set_serialized: Callable[[EncryptionContext, bytes | None], None] = _context_slots[1][1]
# Even the private attribute yields a read-only view, never the dict itself.
type.__setattr__(
    EncryptionContext,
    "_pairs",
    property(lambda context: MappingProxyType(_pairs_of(context)), doc="The pairs (read-only view)."),
)
_new = object.__new__


def _adopt(pairs: dict[str, str], serialized: bytes | None) -> EncryptionContext:
    """Wrap a dict of checked pairs nobody else holds, with its canonical serialization if known."""
    context: EncryptionContext = _new(EncryptionContext)
    _set_pairs(context, pairs)
    _set_serialized(context, serialized)
    return context


def _exact_str(text: object, error: str = "encryption context keys and values must be str") -> str:
    if text.__class__ is str:
        return text
    if isinstance(text, str):
        # A str subclass could change its hash or comparison later; keep a plain copy.
        return str.__str__(text)
    raise MalformedInputError(error)


def _checked_field(value: object) -> str:
    """A context key or value as an exact ``str`` that serializes (valid Unicode, at most 64 KiB)."""
    text = _exact_str(value)
    if text.isascii():
        if len(text) <= _MAX_U16:
            return text
        raise MalformedInputError("encryption context key or value longer than 65535 bytes")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise MalformedInputError("encryption context must be valid Unicode") from None
    if size > _MAX_U16:
        raise MalformedInputError("encryption context key or value longer than 65535 bytes")
    return text


def _bytes(data: object) -> bytes:
    """An immutable copy of a bytes-like EDK field (a bytearray could change after the key is built)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise MalformedInputError("EDK provider info and ciphertext must be bytes")


def _serialize_pairs(pairs: Mapping[str, str]) -> bytes:
    """The canonical serialization of pairs already checked (exact str, valid Unicode, 64 KiB each)."""
    if not pairs:
        return b""
    encoded = sorted([(k.encode(), v.encode()) for k, v in pairs.items()])
    parts = [_u16(len(encoded))]
    for key, value in encoded:
        parts += (_u16(len(key)), key, _u16(len(value)), value)
    return b"".join(parts)


EMPTY_CONTEXT: EncryptionContext = _adopt({}, b"")
"""The empty context (immutable, so one object serves everyone)."""


def freeze_context(context: Mapping[str, str] | None) -> EncryptionContext:
    """``context`` as an :class:`EncryptionContext`: the same object if it is one, else a validated copy."""
    if context.__class__ is EncryptionContext:
        return context
    if context is None or (context.__class__ is dict and not context):
        return EMPTY_CONTEXT
    if not isinstance(context, Mapping):
        raise MalformedInputError("an encryption context must be a mapping of str to str")
    if not context:
        return EMPTY_CONTEXT
    return EncryptionContext(context)


def serialize_context(context: Mapping[str, str]) -> bytes:
    """The canonical serialization of any mapping (computed once for an :class:`EncryptionContext`).

    The length of the whole is not limited here: a message header checks its own 64 KiB limit, while
    the MPL's keyrings bind longer contexts too.
    """
    if context.__class__ is EncryptionContext:
        return context.serialize()
    if not context:
        return b""
    return freeze_context(context).serialize()


def encode_context_field(text: str) -> bytes:
    """One key or value as serialized: uint16 length, then UTF-8 bytes."""
    if type(text) is not str:
        raise MalformedInputError("encryption context keys and values must be str")
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedInputError("encryption context must be valid Unicode") from None
    if len(raw) > _MAX_U16:
        raise MalformedInputError("encryption context key or value longer than 65535 bytes")
    return len(raw).to_bytes(2, "big") + raw


def assemble_context(pairs: dict[str, str], serialized: bytes) -> EncryptionContext:
    """A context from pairs whose canonical serialization the caller has already built.

    For builders that encode as they go (:class:`~kmsenvelope.materials.context_template.ContextTemplate`):
    the dict must hold exact ``str`` pairs, must not be used by the caller afterwards, and
    ``serialized`` must be :func:`serialize_context` of it. Nothing is checked.
    """
    return _adopt(pairs, serialized)


def parse_context(data: bytes | bytearray | memoryview) -> EncryptionContext:
    """Parse a serialized context (``data`` is all of it).

    Duplicate keys, bad UTF-8, truncation, trailing bytes and a zero pair count are rejected. Pairs
    out of order are accepted, as the AWS Encryption SDK accepts them, but the result serializes
    canonically. Nothing is cached: each call returns a new object holding only what it parsed.
    """
    end = len(data)
    if end == 0:
        return EMPTY_CONTEXT
    buf = bytes(data)
    if end < 2:
        raise MalformedInputError("encryption context too short for its pair count")
    count = (buf[0] << 8) | buf[1]
    if count == 0:
        raise MalformedInputError("encryption context with zero pairs must be empty")
    pos = 2
    out: dict[str, str] = {}
    previous = b""
    ordered = True
    # Lengths read byte by byte: cheaper than int.from_bytes on a slice, and this runs per message.
    try:
        for _ in range(count):
            if pos + 2 > end:
                raise MalformedInputError("encryption context ends inside a key length")
            start = pos + 2
            pos = start + ((buf[pos] << 8) | buf[pos + 1])
            if pos + 2 > end:
                raise MalformedInputError("encryption context ends inside a key")
            raw_key = buf[start:pos]
            start = pos + 2
            pos = start + ((buf[pos] << 8) | buf[pos + 1])
            if pos > end:
                raise MalformedInputError("encryption context ends inside a value")
            key = raw_key.decode()  # UTF-8, strict: the default codec's fast path
            if key in out:
                raise MalformedInputError("duplicate key in encryption context")
            out[key] = buf[start:pos].decode()
            if raw_key < previous:
                ordered = False
            previous = raw_key
    except UnicodeDecodeError:
        raise MalformedInputError("encryption context is not valid UTF-8") from None
    if pos != end:
        raise MalformedInputError("trailing bytes after encryption context")
    # In order (the usual case), the input already is the canonical serialization.
    return _adopt(out, buf if ordered else _serialize_pairs(out))


@final
@dataclass(frozen=True, slots=True, init=False)
class EncryptedDataKey:
    """One wrapped copy of the data key, as serialized in a message header."""

    provider_id: str
    provider_info: bytes
    ciphertext: bytes

    # Built in __new__, not __init__, so calling __init__ again on a key cannot change it.
    def __new__(cls, provider_id: str, provider_info: bytes, ciphertext: bytes) -> EncryptedDataKey:
        edk: EncryptedDataKey = _new(cls)
        if provider_id.__class__ is not str:
            provider_id = _exact_str(provider_id, "an EDK provider id must be str")
        _set_provider_id(edk, provider_id)
        _set_provider_info(edk, provider_info if provider_info.__class__ is bytes else _bytes(provider_info))
        _set_ciphertext(edk, ciphertext if ciphertext.__class__ is bytes else _bytes(ciphertext))
        return edk

    def describe(self) -> str:
        """A short, secret-free description for error messages: provider and printable key info."""
        info = self.provider_info
        try:
            text = info.decode("utf-8")
            printable = text.isprintable()
        except UnicodeDecodeError:
            printable = False
        return f"{self.provider_id} {text if printable else info[:16].hex()}"

    def __reduce__(self) -> tuple[type[EncryptedDataKey], tuple[str, bytes, bytes]]:
        return (EncryptedDataKey, (self.provider_id, self.provider_info, self.ciphertext))


(_, _set_provider_id), (_, _set_provider_info), (_, _set_ciphertext) = _seal_slots(
    EncryptedDataKey, "provider_id", "provider_info", "ciphertext"
)
