"""How the items of one DynamoDB table are encrypted (``ddb-table-encryption-config.md``).

Validation follows the reference item encryptor: the partition and sort keys must be signed
(SIGN_ONLY, or SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT when any attribute uses that action); every
DO_NOTHING attribute must be allowed unsigned, and no signed attribute may be; attribute names
starting with ``aws_dbe_`` belong to the SDK.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from types import MappingProxyType
from typing import Any

from ..errors import ConfigurationError
from ..materials.protocols import Keyring, MaterialsManager
from ..structured.model import RESERVED_PREFIX, Action
from ..suites import DbeSuite
from .legacy import LegacyConfig, PlaintextPolicy, check_table

__all__ = ["DEFAULT_SUITE", "SIGNING_SUITE", "TableConfig"]

DEFAULT_SUITE = DbeSuite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_SYMSIG_HMAC_SHA384
"""Our default: HMAC recipient tags only, no ECDSA signature (0x6700). Much faster to write."""
SIGNING_SUITE = DbeSuite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384_SYMSIG_HMAC_SHA384
"""The DB-ESDK's own default: HMAC tags plus an ECDSA P-384 signature (0x6701)."""

_MAX_NAME_BYTES = 65535
_MAX_KEY_NAME_BYTES = 255


@dataclass(frozen=True)
class TableConfig:
    """The encryption configuration of one table.

    ``actions`` maps attribute names to :class:`~kmsenvelope.structured.Action` (or its name);
    ``keyring`` is a keyring or a materials manager; ``allowed_unsigned`` and
    ``allowed_unsigned_prefix`` name the attributes that may be neither encrypted nor signed.
    ``legacy`` (a :class:`~kmsenvelope.dynamodb.LegacyConfig`) or ``plaintext_policy`` (a
    :class:`~kmsenvelope.dynamodb.PlaintextPolicy`) let the table hold items of the legacy DynamoDB
    Encryption Client or plaintext items while it migrates (``docs/migration.md``); not both at once.
    """

    logical_table_name: str
    partition_key: str
    _: KW_ONLY
    sort_key: str | None = None
    actions: Mapping[str, Action]
    keyring: Keyring | MaterialsManager
    allowed_unsigned: Sequence[str] = ()
    allowed_unsigned_prefix: str | None = None
    suite: DbeSuite | None = None
    beacons: Sequence[Any] = ()
    legacy: LegacyConfig | None = None
    plaintext_policy: PlaintextPolicy | None = None
    _unsigned: frozenset[str] = field(init=False, repr=False, compare=False)
    _search: Any = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        _check_name(self.logical_table_name, "logical_table_name", _MAX_NAME_BYTES)
        _check_name(self.partition_key, "partition_key", _MAX_KEY_NAME_BYTES)
        if self.sort_key is not None:
            _check_name(self.sort_key, "sort_key", _MAX_KEY_NAME_BYTES)
            if self.sort_key == self.partition_key:
                raise ConfigurationError("sort_key must differ from partition_key")
        if not isinstance(self.keyring, (Keyring, MaterialsManager)):
            raise ConfigurationError("keyring must be a keyring or a materials manager")
        if self.suite is not None and not isinstance(self.suite, DbeSuite):
            raise ConfigurationError("suite must be a DbeSuite (a DB-ESDK algorithm suite)")
        if isinstance(self.allowed_unsigned, str):
            raise ConfigurationError("allowed_unsigned must be a sequence of attribute names, not a string")
        unsigned = frozenset(self.allowed_unsigned)
        for name in unsigned:
            _check_name(name, "allowed_unsigned entries", _MAX_NAME_BYTES)
        if self.allowed_unsigned_prefix is not None and not isinstance(self.allowed_unsigned_prefix, str):
            raise ConfigurationError("allowed_unsigned_prefix must be a string")
        if isinstance(self.beacons, str) or not isinstance(self.beacons, Sequence):
            raise ConfigurationError("beacons must be a sequence (see kmsenvelope.dynamodb.beacons)")
        keys = (self.partition_key,) if self.sort_key is None else (self.partition_key, self.sort_key)
        object.__setattr__(self, "plaintext_policy", check_table(self.legacy, self.plaintext_policy, keys))
        object.__setattr__(self, "_unsigned", unsigned)
        object.__setattr__(self, "allowed_unsigned", tuple(sorted(unsigned)))
        object.__setattr__(self, "beacons", tuple(self.beacons))

        if not isinstance(self.actions, Mapping):
            raise ConfigurationError("actions must map attribute names to actions")
        actions: dict[str, Action] = {}
        for name, value in self.actions.items():
            _check_name(name, "attribute names", _MAX_NAME_BYTES)
            try:
                action = Action.coerce(value)
            except ValueError as exc:
                raise ConfigurationError(str(exc)) from None
            if name.startswith(RESERVED_PREFIX):
                raise ConfigurationError(
                    f"attribute {name!r}: names starting with {RESERVED_PREFIX!r} are reserved"
                )
            unsigned_allowed = self.allowed_unsigned_name(name)
            if action is Action.DO_NOTHING and not unsigned_allowed:
                raise ConfigurationError(
                    f"attribute {name!r} is DO_NOTHING but is neither in allowed_unsigned "
                    "nor starts with allowed_unsigned_prefix"
                )
            if action is not Action.DO_NOTHING and unsigned_allowed:
                raise ConfigurationError(f"attribute {name!r} is {action.name} but is also allowed unsigned")
            actions[name] = action
        object.__setattr__(self, "actions", MappingProxyType(actions))

        if self.beacons:
            from .beacons import SearchInfo  # searchable encryption: validation and keys live there

            search = SearchInfo(self, self.beacons)
            object.__setattr__(self, "_search", search)
            # Signed beacons are SIGN_ONLY attributes of their own name (beacons.md#signed-beacons).
            actions.update(search.signed_actions)
        key_action = self.key_action
        for role, key in (("partition", self.partition_key), ("sort", self.sort_key)):
            if key is not None and actions.get(key) is not key_action:
                raise ConfigurationError(f"the {role} key {key!r} must be configured as {key_action.name}")

    @property
    def version(self) -> int:
        """2 when any attribute is SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT, else 1."""
        return 2 if Action.SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT in self.actions.values() else 1

    @property
    def key_action(self) -> Action:
        """The action the partition and sort keys must have."""
        return Action.SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT if self.version == 2 else Action.SIGN_ONLY

    @property
    def effective_suite(self) -> DbeSuite:
        return self.suite if self.suite is not None else DEFAULT_SUITE

    def allowed_unsigned_name(self, name: str) -> bool:
        """Whether ``name`` is outside the signature scope (never authenticated on decrypt)."""
        prefix = self.allowed_unsigned_prefix
        return (
            name in self._unsigned
            or (prefix is not None and name.startswith(prefix))
            or name.startswith(RESERVED_PREFIX)
        )


def _check_name(name: object, what: str, max_bytes: int) -> None:
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"{what} must be non-empty strings")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigurationError(f"{what} must be valid Unicode") from None
    if len(encoded) > max_bytes:
        raise ConfigurationError(f"{what} must be at most {max_bytes} bytes long")
