"""Encryption contexts with fixed keys, built once per record with new values.

A DynamoDB table's item context always has the same keys (table, partition and sort key names, the key
values), and only the key values change from item to item. :class:`ContextTemplate` validates, sorts
and encodes everything fixed once; :meth:`ContextTemplate.build` then gives the frozen context with its
canonical serialization (``framework/structures.md#serialization``, the AAD keyrings bind) already
attached, so neither the materials manager nor the keyrings validate, copy or sort it again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..errors import ConfigurationError, MalformedInputError
from ..values import EncryptionContext, assemble_context, encode_context_field

__all__ = ["ContextTemplate"]

_MAX_FIELD = 0xFFFF


class ContextTemplate:
    """Contexts holding the pairs ``fixed`` plus one value for each of ``variable_keys``."""

    __slots__ = ("_fixed", "_segments", "_variable_keys")

    def __init__(self, fixed: Mapping[str, str], variable_keys: Sequence[str]) -> None:
        variable_keys = tuple(variable_keys)
        keys = [*fixed, *variable_keys]
        if len(set(keys)) != len(keys):
            raise ConfigurationError("a context template needs distinct keys")
        # (UTF-8 key, encoded pair or variable index), sorted by the key's UTF-8 bytes as the format says.
        entries: list[tuple[bytes, bytes | int]] = []
        try:
            for key, value in fixed.items():
                encoded_key = encode_context_field(key)
                entries.append((encoded_key[2:], encoded_key + encode_context_field(value)))
            for index, key in enumerate(variable_keys):
                entries.append((encode_context_field(key)[2:], index))
        except MalformedInputError as exc:
            raise ConfigurationError(str(exc)) from None
        entries.sort(key=lambda entry: entry[0])
        # Runs of fixed pairs are joined into one constant; variable pairs keep their encoded key.
        segments: list[bytes | tuple[bytes, int]] = [len(keys).to_bytes(2, "big")]
        for raw_key, what in entries:
            if isinstance(what, bytes):
                last = segments[-1]
                if isinstance(last, bytes):
                    segments[-1] = last + what
                else:
                    segments.append(what)
            else:
                segments.append((len(raw_key).to_bytes(2, "big") + raw_key, what))
        self._fixed = dict(fixed)
        self._variable_keys = variable_keys
        self._segments = tuple(segments)

    @property
    def keys(self) -> tuple[str, ...]:
        return (*self._fixed, *self._variable_keys)

    def build(self, values: Sequence[str]) -> EncryptionContext:
        """The frozen context: ``fixed`` plus ``zip(variable_keys, values)``, serialized as
        :func:`~kmsenvelope.keyrings.wrapping.encryption_context_aad` would serialize it."""
        encoded = []
        for value in values:
            if value.__class__ is not str:
                raise MalformedInputError("encryption context keys and values must be str")
            try:
                encoded.append(value.encode("utf-8"))
            except UnicodeEncodeError:
                raise MalformedInputError("encryption context must be valid Unicode") from None
        return self._assemble(values, encoded)

    def build_ascii(self, values: Sequence[bytes]) -> EncryptionContext:
        """:meth:`build` for values given as ASCII bytes (such as base64), which need no re-encoding."""
        try:
            text = [value.decode("ascii") for value in values]
        except (UnicodeDecodeError, AttributeError):
            raise MalformedInputError("build_ascii takes ASCII bytes values") from None
        return self._assemble(text, values)

    def _assemble(self, values: Sequence[str], encoded: Sequence[bytes]) -> EncryptionContext:
        if len(values) != len(self._variable_keys):
            raise MalformedInputError("a context needs one value per variable template key")
        parts: list[bytes] = []
        for segment in self._segments:
            if isinstance(segment, bytes):
                parts.append(segment)
                continue
            encoded_key, index = segment
            raw = encoded[index]
            if len(raw) > _MAX_FIELD:
                raise MalformedInputError("encryption context key or value longer than 65535 bytes")
            parts += (encoded_key, len(raw).to_bytes(2, "big"), raw)
        pairs = self._fixed.copy()
        for key, value in zip(self._variable_keys, values, strict=True):
            pairs[key] = value
        return assemble_context(pairs, b"".join(parts))

    def __repr__(self) -> str:
        return f"ContextTemplate(keys={list(self.keys)!r})"
