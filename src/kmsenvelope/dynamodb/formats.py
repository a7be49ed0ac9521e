"""Which format a stored item is in, and what the table's legacy config and plaintext policy do with it
(``decrypt-item.md#behavior``, ``encrypt-item.md#behavior``).

Detection is the spec's: a legacy item has both the material description and the signature attribute;
a plaintext item has neither ``aws_dbe_head`` nor ``aws_dbe_foot``; anything else goes to the new-format
decryption, which authenticates it or fails. Where the spec leaves an item ambiguous, the decision is
to refuse it rather than guess (each case is tested in ``tests/test_dynamodb_legacy_hostile.py``):

* both formats' attributes (legacy description/signature and ``aws_dbe_head``/``aws_dbe_foot``) on a
  table with a legacy config: refused, whatever the policy (neither writer ever produces that);
* only one of the legacy description/signature attributes on a table with a legacy config (a legacy
  item whose signature was removed is *not* taken for plaintext): refused;
* a "plaintext" item carrying the legacy client's default description or signature attribute, on a
  table whose plaintext policy allows plaintext reads: refused (it is a legacy item with a part
  removed; passing its ciphertext through as plaintext would hide that);
* only one of ``aws_dbe_head``/``aws_dbe_foot``: not plaintext, so the new-format decryption fails on
  the missing one (as the reference implementation does);
* a new-format item with *both* removed is, by the spec's definition, plaintext: a table that allows
  plaintext reads passes it through as ``ItemFormat.PLAINTEXT`` (unauthenticated, as every plaintext
  item is, and never reported as verified); any other table refuses it.

Legacy items always go to the legacy library, which verifies the signature before decrypting; anything
it raises becomes a ``LegacyItemError`` with the library's exception as its cause.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import KmsEnvelopeError, MalformedInputError
from ..structured.model import FOOTER_FIELD, HEADER_FIELD, RESERVED_PREFIX
from .config import TableConfig
from .legacy import (
    DEFAULT_DESCRIPTION_ATTRIBUTE,
    DEFAULT_SIGNATURE_ATTRIBUTE,
    FormatRefusedError,
    ItemFormat,
    LegacyItemError,
    PlaintextPolicy,
)
from .projection import _names_used

__all__ = ["FormatRouter", "LegacyCodec", "fetch_whole_items", "read_needs"]

_LEGACY_DEFAULTS = (DEFAULT_DESCRIPTION_ATTRIBUTE, DEFAULT_SIGNATURE_ATTRIBUTE)
Item = Mapping[str, Any]


class FormatRouter:
    """Sends each item to the new-format encryptor, the legacy library or straight through."""

    def __init__(
        self,
        config: TableConfig,
        decrypt_new: Callable[[Item], dict[str, Any]],
        encrypt_new: Callable[[Item], dict[str, Any]],
    ) -> None:
        self._table = config.logical_table_name
        self._keys = tuple(k for k in (config.partition_key, config.sort_key) if k is not None)
        self._legacy = config.legacy
        policy = config.plaintext_policy
        self._plaintext = policy or PlaintextPolicy.FORBID_PLAINTEXT_WRITE_FORBID_PLAINTEXT_READ
        self._plaintext_name = (
            self._plaintext.name if policy is not None else f"{self._plaintext.name} (the default)"
        )
        self._decrypt_new = decrypt_new
        self._encrypt_new = encrypt_new
        # Tables with neither setting (or no forced write format checks) go straight to the encryptor.
        self._plain_new_writes = self._legacy is None and not self._plaintext.forces_write
        self._codec: LegacyCodec | None = None
        self._names: tuple[str, str] = _LEGACY_DEFAULTS
        if self._legacy is not None:
            self._names = (self._legacy.material_description_attribute, self._legacy.signature_attribute)
            if self._legacy.policy.allows_decrypt:
                self._codec = LegacyCodec(config)

    @property
    def legacy_attributes(self) -> tuple[str, str]:
        """The legacy description and signature attribute names this table detects."""
        return self._names

    def decrypt(self, item: Item) -> tuple[dict[str, Any], ItemFormat]:
        """The plaintext of a stored item and the format it was read in."""
        if type(item) is not dict and not isinstance(item, Mapping):
            raise MalformedInputError("an item must be a mapping of attribute names to attribute values")
        legacy = self._legacy
        if legacy is not None:
            desc, sig = self._names
            has_desc, has_sig = desc in item, sig in item
            if has_desc or has_sig:
                self._check_keys(item)
                if not (has_desc and has_sig):
                    where = self._where(item)
                    missing = sig if has_desc else desc
                    raise FormatRefusedError(
                        f"{where} has a legacy {'description' if has_desc else 'signature'} attribute but no "
                        f"{missing!r}: a legacy item with a part removed is refused, not read as plaintext"
                    )
                if HEADER_FIELD in item or FOOTER_FIELD in item:
                    where = self._where(item)
                    raise FormatRefusedError(
                        f"{where} carries both the legacy attributes ({desc!r}, {sig!r}) and aws_dbe_head/"
                        "aws_dbe_foot: no writer produces that, so it is refused"
                    )
                if self._codec is None:
                    where = self._where(item)
                    raise FormatRefusedError(
                        f"{where} is a legacy item and the legacy policy {legacy.policy.name} forbids "
                        "reading legacy items"
                    )
                return self._codec.decrypt(item, self._where), ItemFormat.LEGACY
        if HEADER_FIELD not in item and FOOTER_FIELD not in item:
            self._check_keys(item)
            if not self._plaintext.allows_read:
                raise FormatRefusedError(
                    f"{self._where(item)} is plaintext (no aws_dbe_head/aws_dbe_foot) and the plaintext "
                    f"policy {self._plaintext_name} forbids reading plaintext items"
                )
            for name in _LEGACY_DEFAULTS:
                if name in item:
                    raise FormatRefusedError(
                        f"{self._where(item)} has no aws_dbe_head/aws_dbe_foot but carries the legacy "
                        f"attribute {name!r}: an incomplete legacy item is refused, not passed through as "
                        "plaintext"
                    )
            return dict(item), ItemFormat.PLAINTEXT
        return self._decrypt_new(item), ItemFormat.NEW

    def encrypt(self, item: Item) -> dict[str, Any]:
        """The stored form of a plaintext item under the table's write policy."""
        if self._plain_new_writes:
            return self._encrypt_new(item)
        if not isinstance(item, Mapping):
            raise MalformedInputError("an item must be a mapping of attribute names to attribute values")
        legacy = self._legacy
        if legacy is not None:
            if legacy.policy.forces_encrypt:
                self._check_keys(item)
                codec = self._codec
                if codec is None:  # FORCE_LEGACY_ENCRYPT allows decrypt, so the codec exists
                    raise TypeError("forced legacy encryption without a legacy codec")
                return codec.encrypt(item)
            self._refuse_legacy_names(item, self._names)
        elif self._plaintext.forces_write:
            self._check_keys(item)
            for name in item:
                if name.startswith(RESERVED_PREFIX):
                    raise MalformedInputError(
                        f"attribute {name!r} is reserved: a plaintext item cannot carry it"
                    )
            self._refuse_legacy_names(item, _LEGACY_DEFAULTS)
            return dict(item)
        return self._encrypt_new(item)

    def detect(self, item: Item) -> ItemFormat:
        """The format ``item`` claims to be in (nothing is verified; refusals are not checked)."""
        if not isinstance(item, Mapping):
            raise MalformedInputError("an item must be a mapping of attribute names to attribute values")
        if self._legacy is not None and all(name in item for name in self._names):
            return ItemFormat.LEGACY
        if HEADER_FIELD not in item and FOOTER_FIELD not in item:
            return ItemFormat.PLAINTEXT
        return ItemFormat.NEW

    @staticmethod
    def _refuse_legacy_names(item: Item, names: tuple[str, str]) -> None:
        for name in names:
            if name in item:
                raise MalformedInputError(
                    f"attribute {name!r} is the legacy format's own: an item written with it would read "
                    "back as a legacy item"
                )

    def _check_keys(self, item: Item) -> None:
        for key in self._keys:
            if key not in item:
                raise MalformedInputError(f"the item has no {key!r} key attribute")

    def _where(self, item: Item) -> str:
        self._check_keys(item)
        key = ", ".join(f"{name}={_scalar(item[name])}" for name in self._keys)
        return f"item ({key}) of table {self._table!r}"


def _scalar(value: object) -> str:
    if isinstance(value, Mapping) and len(value) == 1:
        value = next(iter(value.values()))
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class LegacyCodec:
    """The legacy library's ``decrypt_dynamodb_item``/``encrypt_dynamodb_item`` with this table's
    crypto config: the logical table name and key names (as the reference implementations build the
    legacy encryption context), the legacy actions, and each item bound through ``with_item`` exactly
    as the legacy ``EncryptedClient`` does."""

    def __init__(self, config: TableConfig) -> None:
        legacy = config.legacy
        if legacy is None:
            raise TypeError("a legacy codec needs a table config with a legacy config")
        from dynamodb_encryption_sdk.encrypted import CryptoConfig
        from dynamodb_encryption_sdk.encrypted.item import decrypt_dynamodb_item, encrypt_dynamodb_item
        from dynamodb_encryption_sdk.exceptions import DynamodbEncryptionSdkError
        from dynamodb_encryption_sdk.identifiers import CryptoAction
        from dynamodb_encryption_sdk.structures import AttributeActions, EncryptionContext

        actions = {name: CryptoAction[action.name] for name, action in legacy.actions.items()}
        for key in (config.partition_key, config.sort_key):
            if key is not None:
                actions.setdefault(key, CryptoAction.SIGN_ONLY)
        self._crypto = CryptoConfig(
            materials_provider=legacy.provider,
            encryption_context=EncryptionContext(
                table_name=config.logical_table_name,
                partition_key_name=config.partition_key,
                sort_key_name=config.sort_key,
            ),
            attribute_actions=AttributeActions(
                default_action=CryptoAction.ENCRYPT_AND_SIGN, attribute_actions=actions
            ),
        )
        self._decrypt = decrypt_dynamodb_item
        self._encrypt = encrypt_dynamodb_item
        self._library_error = DynamodbEncryptionSdkError
        # The Python legacy library only knows the default names: custom ones are renamed around it
        # (neither name is part of what its signature covers).
        self._renames = tuple(
            (custom, default)
            for custom, default in zip(
                (legacy.material_description_attribute, legacy.signature_attribute),
                _LEGACY_DEFAULTS,
                strict=True,
            )
            if custom != default
        )
        self._all_names = tuple({*_LEGACY_DEFAULTS, *(custom for custom, _ in self._renames)})

    def decrypt(self, item: Item, where: Callable[[Item], str]) -> dict[str, Any]:
        """The legacy library's decryption of ``item`` (which it verifies first); ``where(item)`` names
        the item in errors."""
        stored = dict(item)  # the library pops its attributes off the dict it is given
        for custom, default in self._renames:
            if default in stored:
                raise FormatRefusedError(
                    f"{where} carries {default!r} besides its legacy attribute {custom!r}"
                )
            stored[default] = stored.pop(custom)
        try:
            return dict(self._decrypt(stored, self._crypto.with_item(stored)))
        except Exception as exc:  # the library's, or from the crypto/KMS calls underneath it
            raise LegacyItemError(
                f"{where(item)}: the legacy DynamoDB Encryption Client could not verify and decrypt it "
                f"({self._describe(exc)})"
            ) from exc

    def encrypt(self, item: Item) -> dict[str, Any]:
        """The legacy library's encryption of ``item``, under the table's custom names if any."""
        plain = dict(item)
        for name in self._all_names:
            if name in plain:
                raise MalformedInputError(f"attribute {name!r} is reserved by the legacy format")
        try:
            out = dict(self._encrypt(plain, self._crypto.with_item(plain)))
        except Exception as exc:
            raise KmsEnvelopeError(
                f"the legacy DynamoDB Encryption Client could not encrypt the item ({self._describe(exc)})"
            ) from exc
        for custom, default in self._renames:
            out[custom] = out.pop(default)
        return out

    def _describe(self, exc: Exception) -> str:
        # The library's own messages name attributes and algorithms, never values; others may quote
        # anything, so only their type is shown (the exception itself is chained).
        if isinstance(exc, self._library_error) and str(exc):
            return f"{type(exc).__name__}: {exc}"
        return type(exc).__name__


def read_needs(config: TableConfig) -> tuple[str, ...]:
    """Attributes a projected read must fetch so the item's format is detected correctly."""
    if config.legacy is not None:
        return (config.legacy.material_description_attribute, config.legacy.signature_attribute)
    if config.plaintext_policy is not None and config.plaintext_policy.allows_read:
        return _LEGACY_DEFAULTS
    return ()


def fetch_whole_items(request: Mapping[str, Any]) -> dict[str, Any]:
    """``request`` without its ``ProjectionExpression``: a legacy item only verifies whole (attributes
    not named in the legacy actions are signed too), so the projection is applied after decryption."""
    out = dict(request)
    if out.pop("ProjectionExpression", None) is None:
        return out
    if out.get("Select") == "SPECIFIC_ATTRIBUTES":
        del out["Select"]
    names = out.get("ExpressionAttributeNames")
    if isinstance(names, Mapping):
        used = _names_used(out)
        kept = {alias: name for alias, name in names.items() if alias in used}
        if kept:
            out["ExpressionAttributeNames"] = kept
        else:
            del out["ExpressionAttributeNames"]
    return out
