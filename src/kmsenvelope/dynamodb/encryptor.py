"""Encrypt and decrypt whole DynamoDB items (``encrypt-item.md``, ``decrypt-item.md``).

The item's encryption context is bound to the table and key: ``aws-crypto-table-name``,
``aws-crypto-partition-name`` (and ``aws-crypto-sort-name``), plus, for version 1 configurations, the
key values themselves as ``aws-crypto-attr.<name>``. Version 2 (any SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT
attribute) binds the key values through the record's own context instead. None of these pairs is
stored: decrypt rebuilds them from the item, so an item moved under another key or table fails.
"""

from __future__ import annotations

import binascii
import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ..errors import ConfigurationError, MalformedInputError, PolicyError
from ..materials.bounded_cache import BoundedCache, size_of_strings
from ..materials.cmm import as_materials_manager
from ..materials.context_template import ContextTemplate
from ..materials.protocols import Keyring
from ..structured.context import ATTR_PREFIX
from ..structured.decrypt import DecryptedRecord, decrypt_record
from ..structured.encrypt import SealedRecord, seal_record
from ..structured.layout import (
    DecryptLayout,
    EncryptLayout,
    decrypt_layout,
    decrypt_layout_size,
    encrypt_layout,
    encrypt_layout_size,
)
from ..structured.model import FOOTER_FIELD, HEADER_FIELD, RESERVED_PREFIX, Action, ParsedHeader, Terminal
from .attributes import deserialize, serialize
from .config import TableConfig
from .formats import FormatRouter
from .legacy import ItemFormat

__all__ = ["MAX_ATTRIBUTES", "ItemEncryptor"]

MAX_ATTRIBUTES = 100
"""Most attributes an item may have (not counting ``aws_dbe_`` ones), as in the reference encryptor."""

_TABLE_NAME = "aws-crypto-table-name"
_PARTITION_NAME = "aws-crypto-partition-name"
_SORT_NAME = "aws-crypto-sort-name"

Item = Mapping[str, Mapping[str, Any]]
_EncryptPlan = tuple[Mapping[str, Action], EncryptLayout]
_DecryptPlan = tuple[tuple[str, ...], DecryptLayout]

PLAN_CACHE_ENTRIES = 256
PLAN_CACHE_BYTES = 8 << 20
"""Bounds of each of an encryptor's two plan caches (encrypt, decrypt): entries, estimated bytes.

A plan is kept per distinct tuple of attribute names; one larger than a quarter of the bytes is not
kept (it is rebuilt each time). Least recently used plans are evicted first."""


class ItemEncryptor:
    """Encrypts and decrypts items of one table according to a :class:`TableConfig`.

    ``encrypt_item`` / ``decrypt_item`` work on low-level DynamoDB JSON (``{"S": "..."}``, binary values
    as ``bytes``); ``encrypt_python_item`` / ``decrypt_python_item`` on boto3 resource-style values.
    Safe to share between threads if the keyring is.
    """

    def __init__(self, config: TableConfig) -> None:
        if not isinstance(config, TableConfig):
            raise ConfigurationError("ItemEncryptor needs a TableConfig")
        self._config = config
        self._manager = as_materials_manager(config.keyring)
        self._table = config.logical_table_name
        self._keys = (
            (config.partition_key,) if config.sort_key is None else (config.partition_key, config.sort_key)
        )
        self._actions = dict(config.actions)
        self._context_attributes = tuple(
            name
            for name, action in self._actions.items()
            if action is Action.SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT
        )
        self._version = config.version
        self._suite = config.effective_suite
        self._encrypt_plans: BoundedCache[tuple[str, ...], _EncryptPlan] = BoundedCache(
            PLAN_CACHE_ENTRIES, PLAN_CACHE_BYTES
        )
        self._decrypt_plans: BoundedCache[tuple[str, ...], _DecryptPlan] = BoundedCache(
            PLAN_CACHE_ENTRIES, PLAN_CACHE_BYTES
        )
        self._serializer: Any = None
        self._deserializer: Any = None
        self._search = config._search  # beacons (kmsenvelope.dynamodb.beacons), None without
        # The base context (encrypt-item.md): table and key names always, the key values for version 1.
        # None of it is stored in the header, so all of it is required on decrypt.
        fixed = {_TABLE_NAME: self._table, _PARTITION_NAME: config.partition_key}
        if config.sort_key is not None:
            fixed[_SORT_NAME] = config.sort_key
        self._fixed_context = fixed
        self._v2_required = frozenset(fixed)
        self._v1_required = self._v2_required | {ATTR_PREFIX + key for key in self._keys}
        # Version 1 contexts are never extended later, so they are built frozen and pre-serialized.
        self._v1_template = ContextTemplate(fixed, [ATTR_PREFIX + key for key in self._keys])
        # Legacy config and plaintext policy (kmsenvelope.dynamodb.formats): which path each item takes.
        self._formats = FormatRouter(config, self._decrypt_new, self._encrypt_new)

    @property
    def config(self) -> TableConfig:
        return self._config

    def encrypt_item(self, item: Item) -> dict[str, Any]:
        """The encrypted form of ``item``, with its ``aws_dbe_head`` and ``aws_dbe_foot`` attributes.

        Under ``LegacyPolicy.FORCE_LEGACY_ENCRYPT_ALLOW_LEGACY_DECRYPT`` the legacy library's format
        instead; under ``PlaintextPolicy.FORCE_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ`` the item itself.
        """
        return self._formats.encrypt(item)

    def encrypt_item_with_header(self, item: Item) -> tuple[dict[str, Any], ParsedHeader]:
        """Like :meth:`encrypt_item`, also returning what was written into the header.

        Refused when the table's policy writes legacy or plaintext items (they have no header).
        """
        self._require_new_writes()
        out, sealed = self._encrypt(item)
        return out, sealed.written.parsed()

    def _encrypt_new(self, item: Item) -> dict[str, Any]:
        return self._encrypt(item)[0]

    def _decrypt_new(self, item: Item) -> dict[str, Any]:
        return self._decrypt(item)[0]

    def _encrypt(self, item: Item) -> tuple[dict[str, Any], SealedRecord]:
        if self._search is not None:
            item = self._search.add_signed_beacons(item)  # signed beacons are signed: add them first
        actions, layout = self._encrypt_plan(item)
        record = {name: serialize(item[name]) for name in actions}
        context, required = self._base_context(self._version, record)
        sealed = seal_record(record, self._manager, self._suite, context, required, layout)
        out = dict(item)
        for name, terminal in sealed.encrypted.items():
            out[name] = {"B": terminal.value}
        out[HEADER_FIELD] = {"B": sealed.header}
        out[FOOTER_FIELD] = {"B": sealed.footer}
        if self._search is not None:
            self._search.add_beacons(item, out)
        return out, sealed

    def decrypt_item(self, item: Item) -> dict[str, Any]:
        """The plaintext item; raises unless every signed attribute authenticates.

        With a legacy config or plaintext policy, legacy items are decrypted (and verified) by the legacy
        library and plaintext items passed through, as the policy allows; :meth:`decrypt_item_with_format`
        also says which happened.
        """
        return self._formats.decrypt(item)[0]

    def decrypt_item_with_format(self, item: Item) -> tuple[dict[str, Any], ItemFormat]:
        """Like :meth:`decrypt_item`, also returning the :class:`~kmsenvelope.dynamodb.ItemFormat` read:
        ``NEW`` and ``LEGACY`` items were verified, ``PLAINTEXT`` ones were passed through unauthenticated.
        """
        return self._formats.decrypt(item)

    def decrypt_item_with_header(self, item: Item) -> tuple[dict[str, Any], ParsedHeader]:
        """Like :meth:`decrypt_item`, also returning the verified header (actions, suite, EDKs, context).

        Only new-format items have a header: legacy and plaintext items are refused here.
        """
        if self._formats.detect(item) is not ItemFormat.NEW:
            raise MalformedInputError(
                "the item is a legacy or plaintext item: it has no header (use decrypt_item_with_format)"
            )
        out, result = self._decrypt(item)
        return out, result.header

    def _require_new_writes(self) -> None:
        config = self._config
        legacy = config.legacy is not None and config.legacy.policy.forces_encrypt
        if legacy or (config.plaintext_policy is not None and config.plaintext_policy.forces_write):
            raise PolicyError("this table's policy writes legacy or plaintext items, which have no header")

    def _decrypt(self, item: Item) -> tuple[dict[str, Any], DecryptedRecord]:
        (names, layout), new_plan = self._decrypt_plan(item)
        header = _binary(item, HEADER_FIELD)
        footer = _binary(item, FOOTER_FIELD)
        if not header:
            raise MalformedInputError("empty item header")
        record = {name: serialize(item[name]) for name in names}
        # The header's first byte is the record version, which decides the base context.
        if header[0] not in (1, 2):
            raise MalformedInputError("unsupported item header version")
        context, required = self._base_context(header[0], record)
        result = decrypt_record(self._table, record, header, footer, self._manager, context, required, layout)
        if new_plan is not None:
            self._keep_decrypt_plan(new_plan, (names, layout))
        out = {name: value for name, value in item.items() if name != HEADER_FIELD and name != FOOTER_FIELD}
        for name, terminal in result.record.items():
            out[name] = deserialize(terminal)
        if self._search is not None:
            out = self._search.strip(out)
        return out, result

    def rewrap_item(
        self, item: Item, new: Keyring, *, keep_old: bool = False, resign: bool = False
    ) -> dict[str, Any]:
        """``item`` with its data key wrapped by ``new``: new EDKs in ``aws_dbe_head``, new recipient
        tags (and signature, with ``resign=True``) in ``aws_dbe_foot``, every other attribute as it was.

        The item is verified first with this encryptor's keyring, as :meth:`decrypt_item` verifies it;
        nothing is decrypted. Signed suites need ``resign=True``. See ``docs/rewrap.md``.
        """
        from ..structured.rewrap import rewrap_record

        (names, layout), new_plan = self._decrypt_plan(item)
        header, footer = _binary(item, HEADER_FIELD), _binary(item, FOOTER_FIELD)
        if not header or header[0] not in (1, 2):
            raise MalformedInputError("unsupported item header version")
        record = {name: serialize(item[name]) for name in names}
        context, required = self._base_context(header[0], record)
        new_header, new_footer = rewrap_record(
            self._table, record, header, footer, self._manager, context, required, new,
            keep_old=keep_old, resign=resign, layout=layout,
        )  # fmt: skip
        if new_plan is not None:  # kept only now that the item authenticated, as decrypt does
            self._keep_decrypt_plan(new_plan, (names, layout))
        return {**item, HEADER_FIELD: {"B": new_header}, FOOTER_FIELD: {"B": new_footer}}

    def encrypt_python_item(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """:meth:`encrypt_item` for boto3 resource-style values (``Decimal``, ``set``, ``Binary``...)."""
        return self._from_client(self.encrypt_item(self._to_client(item)))

    def decrypt_python_item(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """:meth:`decrypt_item` for boto3 resource-style items."""
        return self._from_client(self.decrypt_item(self._to_client(item)))

    def _to_client(self, item: Mapping[str, Any]) -> dict[str, Any]:
        serializer = self._converters()[0]
        if not isinstance(item, Mapping):
            raise MalformedInputError("an item must be a mapping of attribute names to values")
        out = {}
        for name, value in item.items():
            try:
                out[name] = serializer.serialize(value)
            except (TypeError, ValueError):
                # boto3's message quotes the value, which may be a secret: name only the type.
                raise MalformedInputError(
                    f"attribute {name!r}: a {type(value).__name__} cannot be stored in DynamoDB"
                ) from None
        return out

    def _from_client(self, item: Mapping[str, Any]) -> dict[str, Any]:
        deserializer = self._converters()[1]
        return {name: deserializer.deserialize(value) for name, value in item.items()}

    def _converters(self) -> tuple[Any, Any]:
        if self._serializer is None:
            # boto3 is imported only by the callers who need resource-style values.
            from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

            self._deserializer = TypeDeserializer()
            self._serializer = TypeSerializer()
        return self._serializer, self._deserializer

    # Everything about an item that depends only on its attribute names (and their order) is worked out
    # once per distinct tuple of names: which attributes are signed, their actions, canonical paths and
    # order. Plans are immutable. An encrypt plan is kept once built (it comes from the caller's own
    # item); a decrypt plan only once an item with those names has authenticated, since the names of a
    # stored item are whatever its writer chose. Both caches are bounded in bytes (PLAN_CACHE_BYTES);
    # threads at worst build the same plan twice.
    def _encrypt_plan(self, item: Item) -> _EncryptPlan:
        if type(item) is not dict and not isinstance(item, Mapping):
            raise MalformedInputError("an item must be a mapping of attribute names to attribute values")
        names = tuple(item)
        plan = self._encrypt_plans.get(names)
        if plan is None:
            plan = self._build_encrypt_plan(item)
            # Names, the layout, and the action mapping (the size of a dict of the same keys).
            size = size_of_strings(names) + encrypt_layout_size(plan[1]) + sys.getsizeof(dict(plan[0]))
            self._encrypt_plans.put(names, plan, size)
        return plan

    def _build_encrypt_plan(self, item: Item) -> tuple[Mapping[str, Action], EncryptLayout]:
        self._check_item(item, encrypting=True)
        for name in self._context_attributes:
            if name not in item:
                raise MalformedInputError(
                    f"attribute {name!r} (SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT) is missing"
                )
        actions: dict[str, Action] = {}
        for name in item:
            action = self._actions.get(name)
            if action is None:
                if name in (HEADER_FIELD, FOOTER_FIELD):
                    raise MalformedInputError(f"the item already has an {name!r} attribute")
                if not self._is_unsigned(name):
                    raise PolicyError(
                        f"attribute {name!r} has no configured action and is not allowed unsigned"
                    )
                continue
            if action is not Action.DO_NOTHING:
                actions[name] = action
        return MappingProxyType(actions), encrypt_layout(self._table, actions)

    def _decrypt_plan(self, item: Item) -> tuple[_DecryptPlan, tuple[str, ...] | None]:
        """The plan for ``item``'s names, and the key to keep it under once the item authenticates
        (None when it was already kept)."""
        if type(item) is not dict and not isinstance(item, Mapping):
            raise MalformedInputError("an item must be a mapping of attribute names to attribute values")
        key = tuple(item)
        plan = self._decrypt_plans.get(key)
        if plan is not None:
            return plan, None
        self._check_item(item, encrypting=False)
        names = tuple(name for name in item if not self._is_unsigned(name))
        return (names, decrypt_layout(self._table, names)), key

    def _keep_decrypt_plan(self, key: tuple[str, ...], plan: _DecryptPlan) -> None:
        names, layout = plan
        # The key holds the names; the plan's own tuple of signed names only points at them.
        size = size_of_strings(key) + size_of_strings(()) + 8 * len(names) + decrypt_layout_size(layout)
        self._decrypt_plans.put(key, plan, size)

    def _is_unsigned(self, name: str) -> bool:
        # Not cached: it runs only while building a plan, and names come from unauthenticated items.
        return self._config.allowed_unsigned_name(name)

    def _check_item(self, item: Item, *, encrypting: bool) -> None:
        if not isinstance(item, Mapping):
            raise MalformedInputError("an item must be a mapping of attribute names to attribute values")
        count = len(item) if encrypting else sum(1 for name in item if not name.startswith(RESERVED_PREFIX))
        if count > MAX_ATTRIBUTES:
            raise MalformedInputError(f"items may have at most {MAX_ATTRIBUTES} attributes")
        for key in self._keys:
            if key not in item:
                raise MalformedInputError(f"the item has no {key!r} key attribute")

    def _base_context(
        self, version: int, record: Mapping[str, Terminal]
    ) -> tuple[Mapping[str, str], frozenset[str]]:
        if version == 1:
            # Base64 of type id + value (encode_terminal), kept as bytes for the serialized context.
            values = []
            for key in self._keys:
                type_id, value = record[key]
                values.append(binascii.b2a_base64(type_id + value, newline=False))
            return self._v1_template.build_ascii(values), self._v1_required
        # Version 2: the record's context attributes are added to a copy of this later.
        return dict(self._fixed_context), self._v2_required

    def __repr__(self) -> str:
        return f"ItemEncryptor(table={self._table!r}, suite={self._suite!r})"


def _binary(item: Item, name: str) -> bytes:
    value = item.get(name)
    if value is None:
        raise MalformedInputError(f"the item has no {name!r} attribute: it is not an encrypted item")
    if (type(value) is not dict and not isinstance(value, Mapping)) or len(value) != 1 or "B" not in value:
        raise MalformedInputError(f"the {name!r} attribute must be binary")
    raw = value["B"]
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise MalformedInputError(f"the {name!r} attribute must be binary")
    return bytes(raw)
