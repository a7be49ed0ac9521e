"""Tables that already hold data: the DB-ESDK's Legacy Config and Plaintext Policy
(``ddb-table-encryption-config.md#legacy-config``, ``#plaintext-policy``).

A table that holds items of the legacy DynamoDB Encryption Client (the ``dynamodb-encryption-sdk``
package) or plaintext items is moved to the new format without downtime (see ``docs/migration.md``):

::

    from dynamodb_encryption_sdk.material_providers.aws_kms import AwsKmsCryptographicMaterialsProvider
    from kmsenvelope.dynamodb import Action, LegacyConfig, LegacyPolicy, TableConfig

    legacy = LegacyConfig(
        AwsKmsCryptographicMaterialsProvider(key_id=old_key_arn),
        actions={"pk": Action.SIGN_ONLY, "sk": Action.SIGN_ONLY, "card": Action.ENCRYPT_AND_SIGN},
        policy=LegacyPolicy.FORBID_LEGACY_ENCRYPT_ALLOW_LEGACY_DECRYPT,
    )
    config = TableConfig("orders", "pk", sort_key="sk", actions=new_actions, keyring=keyring, legacy=legacy)

Legacy items are handed to the legacy library itself (``decrypt_dynamodb_item`` /
``encrypt_dynamodb_item``), which verifies them exactly as it always did; nothing of its format is
re-implemented here. The library is imported only when a :class:`LegacyConfig` is built
(``pip install 'kmsenvelope[legacy]'``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from types import MappingProxyType
from typing import Any

from ..errors import AuthenticationError, ConfigurationError, MalformedInputError, PolicyError
from ..structured.model import RESERVED_PREFIX, Action

__all__ = [
    "DEFAULT_DESCRIPTION_ATTRIBUTE",
    "DEFAULT_SIGNATURE_ATTRIBUTE",
    "INSTALL_HINT",
    "FormatRefusedError",
    "ItemFormat",
    "LegacyConfig",
    "LegacyItemError",
    "LegacyPolicy",
    "PlaintextPolicy",
]

DEFAULT_DESCRIPTION_ATTRIBUTE = "*amzn-ddb-map-desc*"
"""Where the legacy client stores an item's material description."""
DEFAULT_SIGNATURE_ATTRIBUTE = "*amzn-ddb-map-sig*"
"""Where the legacy client stores an item's signature."""
INSTALL_HINT = "pip install 'kmsenvelope[legacy]'"


class PlaintextPolicy(enum.Enum):
    """Whether plaintext items may be written to, or read from, the table
    (``ddb-table-encryption-config.md#plaintext-policy``). Unset means
    ``FORBID_PLAINTEXT_WRITE_FORBID_PLAINTEXT_READ``.

    An item is plaintext when it has neither ``aws_dbe_head`` nor ``aws_dbe_foot``
    (``decrypt-item.md#determining-plaintext-items``). Plaintext items are passed through as they are
    stored: they are not authenticated, and they carry no beacons.
    """

    FORCE_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ = "FORCE_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ"
    """Writes store plaintext; reads pass plaintext items through and decrypt the others."""
    FORBID_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ = "FORBID_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ"
    """Writes encrypt; reads pass plaintext items through and decrypt the others."""
    FORBID_PLAINTEXT_WRITE_FORBID_PLAINTEXT_READ = "FORBID_PLAINTEXT_WRITE_FORBID_PLAINTEXT_READ"
    """Writes encrypt; reads decrypt every item (a plaintext item is an error). The default."""

    @property
    def allows_read(self) -> bool:
        return self is not PlaintextPolicy.FORBID_PLAINTEXT_WRITE_FORBID_PLAINTEXT_READ

    @property
    def forces_write(self) -> bool:
        return self is PlaintextPolicy.FORCE_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ


class LegacyPolicy(enum.Enum):
    """How items of the legacy DynamoDB Encryption Client are treated
    (``ddb-table-encryption-config.md#legacy-policy``).

    An item is a legacy item when it has both the material description and the signature attribute
    (``decrypt-item.md#determining-legacy-items``).
    """

    FORCE_LEGACY_ENCRYPT_ALLOW_LEGACY_DECRYPT = "FORCE_LEGACY_ENCRYPT_ALLOW_LEGACY_DECRYPT"
    """Writes use the legacy format; legacy items are decrypted by the legacy library."""
    FORBID_LEGACY_ENCRYPT_ALLOW_LEGACY_DECRYPT = "FORBID_LEGACY_ENCRYPT_ALLOW_LEGACY_DECRYPT"
    """Writes use the new format; legacy items are decrypted by the legacy library."""
    FORBID_LEGACY_ENCRYPT_FORBID_LEGACY_DECRYPT = "FORBID_LEGACY_ENCRYPT_FORBID_LEGACY_DECRYPT"
    """Writes use the new format; reading a legacy item is an error."""

    @property
    def allows_decrypt(self) -> bool:
        return self is not LegacyPolicy.FORBID_LEGACY_ENCRYPT_FORBID_LEGACY_DECRYPT

    @property
    def forces_encrypt(self) -> bool:
        return self is LegacyPolicy.FORCE_LEGACY_ENCRYPT_ALLOW_LEGACY_DECRYPT


class ItemFormat(enum.Enum):
    """What :meth:`ItemEncryptor.decrypt_item_with_format` read."""

    NEW = "new"
    """A DB-ESDK item (``aws_dbe_head``/``aws_dbe_foot``), decrypted and verified."""
    LEGACY = "legacy"
    """A legacy DynamoDB Encryption Client item, decrypted and verified by the legacy library."""
    PLAINTEXT = "plaintext"
    """A plaintext item, passed through unauthenticated because the plaintext policy allows it."""


class FormatRefusedError(PolicyError, MalformedInputError):
    """A stored item is in a format the table's policy does not accept (a plaintext item under
    ``FORBID_..._FORBID_PLAINTEXT_READ``, a legacy item under ``FORBID_LEGACY_DECRYPT``), or its
    format cannot be told apart safely (both formats' attributes, half of a legacy item)."""


class LegacyItemError(AuthenticationError):
    """The legacy library could not decrypt or verify a legacy item (its exception is the cause)."""


def _legacy_library() -> Any:
    try:
        from dynamodb_encryption_sdk import material_providers
    except ImportError:
        raise ConfigurationError(
            "a legacy policy needs the legacy DynamoDB Encryption Client (dynamodb-encryption-sdk), "
            f"which is not installed: {INSTALL_HINT}"
        ) from None
    return material_providers


def _resolve_provider(value: object) -> Any:
    """A legacy materials provider, or the provider of a legacy EncryptedClient/Table/Resource."""
    provider_type = _legacy_library().CryptographicMaterialsProvider
    if isinstance(value, provider_type):
        return value
    from dynamodb_encryption_sdk.encrypted.client import EncryptedClient
    from dynamodb_encryption_sdk.encrypted.resource import EncryptedResource
    from dynamodb_encryption_sdk.encrypted.table import EncryptedTable

    if isinstance(value, (EncryptedClient, EncryptedTable, EncryptedResource)):
        # Those classes keep their provider in an attrs field with no public accessor.
        provider = getattr(value, "_materials_provider", None)
        if isinstance(provider, provider_type):
            return provider
    raise ConfigurationError(
        "materials_provider must be a dynamodb-encryption-sdk materials provider (static, wrapped, "
        "AWS KMS, most recent) or one of its EncryptedClient/EncryptedTable/EncryptedResource"
    )


@dataclass(frozen=True)
class LegacyConfig:
    """How this table's legacy items are read, and whether new items are still written in that format.

    ``materials_provider``: the legacy library's provider the items were written with (or one of its
    ``EncryptedClient``/``EncryptedTable``/``EncryptedResource``, whose provider is used).
    ``actions``: what the legacy items' attributes were (:class:`Action` or its name; no
    SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT). Attributes not named are ENCRYPT_AND_SIGN, as in the
    legacy library's ``AttributeActions`` default; the table's partition and sort keys default to
    SIGN_ONLY (the legacy client did the same for every index key, so name GSI/LSI keys SIGN_ONLY).
    ``material_description_attribute`` / ``signature_attribute``: the names the items use (the Java
    client allows custom names; the Python client always wrote the defaults).
    """

    materials_provider: Any = field(repr=False)
    actions: Mapping[str, Action]
    policy: LegacyPolicy
    _: KW_ONLY
    material_description_attribute: str = DEFAULT_DESCRIPTION_ATTRIBUTE
    signature_attribute: str = DEFAULT_SIGNATURE_ATTRIBUTE
    _provider: Any = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.policy, LegacyPolicy):
            try:
                object.__setattr__(self, "policy", LegacyPolicy[self.policy])
            except (KeyError, TypeError):
                raise ConfigurationError("policy must be a LegacyPolicy") from None
        names = (self.material_description_attribute, self.signature_attribute)
        for name in names:
            if not isinstance(name, str) or not name or len(name.encode("utf-8", "replace")) > 65535:
                raise ConfigurationError("the legacy attribute names must be non-empty strings")
            if name.startswith(RESERVED_PREFIX):
                raise ConfigurationError(f"legacy attribute name {name!r} starts with {RESERVED_PREFIX!r}")
        if names[0] == names[1]:
            raise ConfigurationError("material_description_attribute and signature_attribute must differ")
        if not isinstance(self.actions, Mapping):
            raise ConfigurationError("actions must map attribute names to actions")
        actions: dict[str, Action] = {}
        for name, value in self.actions.items():
            if not isinstance(name, str) or not name:
                raise ConfigurationError("legacy attribute names must be non-empty strings")
            try:
                action = Action.coerce(value)
            except ValueError as exc:
                raise ConfigurationError(str(exc)) from None
            if action is Action.SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT:
                raise ConfigurationError(
                    f"legacy attribute {name!r}: the legacy format has no "
                    "SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT"
                )
            if name in names or name in (DEFAULT_DESCRIPTION_ATTRIBUTE, DEFAULT_SIGNATURE_ATTRIBUTE):
                raise ConfigurationError(f"{name!r} is the legacy format's own attribute: it takes no action")
            if name.startswith(RESERVED_PREFIX):
                raise ConfigurationError(f"legacy attribute {name!r} starts with {RESERVED_PREFIX!r}")
            actions[name] = action
        object.__setattr__(self, "actions", MappingProxyType(actions))
        object.__setattr__(self, "_provider", _resolve_provider(self.materials_provider))

    @property
    def provider(self) -> Any:
        """The legacy materials provider items are decrypted (and, when forced, encrypted) with."""
        return self._provider

    def __repr__(self) -> str:
        return (
            f"LegacyConfig(provider={type(self._provider).__name__}, policy={self.policy.name}, "
            f"actions={dict(self.actions)!r})"
        )


def check_table(legacy: object, plaintext_policy: object, keys: tuple[str, ...]) -> Any:
    """TableConfig's checks of its ``legacy`` and ``plaintext_policy``; returns the coerced policy."""
    if legacy is not None and plaintext_policy is not None:
        raise ConfigurationError(
            "a table cannot have both a legacy config and a plaintext policy "
            "(ddb-table-encryption-config.md#structure): migrate one starting point at a time"
        )
    if legacy is not None:
        if not isinstance(legacy, LegacyConfig):
            raise ConfigurationError("legacy must be a LegacyConfig")
        for key in keys:
            if legacy.actions.get(key) is Action.ENCRYPT_AND_SIGN:
                raise ConfigurationError(
                    f"legacy actions: the key attribute {key!r} cannot be ENCRYPT_AND_SIGN"
                )
    if plaintext_policy is None or isinstance(plaintext_policy, PlaintextPolicy):
        return plaintext_policy
    try:
        return PlaintextPolicy[plaintext_policy]  # type: ignore[misc]
    except (KeyError, TypeError):
        raise ConfigurationError("plaintext_policy must be a PlaintextPolicy") from None
