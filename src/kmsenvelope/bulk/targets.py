"""What a job's source and target configurations are, in a form that travels to workers, and how an
item's state is told from its header alone.

``TableConfig`` and ``LegacyConfig`` hold read-only mappings, which do not pickle; a
:class:`ConfigRecipe` holds their constructor arguments as plain values and rebuilds them on the worker.
The keyrings inside travel as they pickle themselves (see ``docs/bulk.md``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError
from ..materials.materials import EncryptedDataKey
from ..materials.protocols import Keyring

__all__ = ["ConfigRecipe", "edk_fingerprint", "fingerprints", "target_fingerprints"]

_RAW_AES_INFO_TAIL = b"\x00\x00\x00\x80\x00\x00\x00\x0c"  # tag bits 128, IV length 12
_HIERARCHY = "aws-kms-hierarchy"
_PROBE_TABLE = "kmsenvelope-bulk-probe"


def edk_fingerprint(edk: EncryptedDataKey, intermediate: bool = False) -> tuple[Any, ...]:
    """What identifies the wrapping key of an EDK, without the parts that change per message.

    ``intermediate``: the EDK is of a DB-ESDK suite (intermediate key wrapping), whose ciphertext starts
    with the sealed data key.
    """
    info = edk.provider_info
    if len(info) > 20 and info[-20:-12] == _RAW_AES_INFO_TAIL:
        return (edk.provider_id, info[:-12])  # raw AES: key name, minus the random IV
    if edk.provider_id == _HIERARCHY:
        start = (48 if intermediate else 0) + 28  # [wrapped data key] || salt || IV || version
        return (edk.provider_id, info, edk.ciphertext[start : start + 16])
    return (edk.provider_id, info)  # KMS: key ARN; raw RSA: key name


def fingerprints(edks: Iterable[EncryptedDataKey], intermediate: bool) -> frozenset[tuple[Any, ...]]:
    return frozenset(edk_fingerprint(edk, intermediate) for edk in edks)


@dataclass(frozen=True)
class ConfigRecipe:
    """A ``TableConfig``'s constructor arguments, as plain picklable values."""

    arguments: tuple[tuple[str, Any], ...]
    legacy: tuple[tuple[str, Any], ...] | None

    @classmethod
    def of(cls, config: Any) -> ConfigRecipe:
        from ..dynamodb.config import TableConfig

        if not isinstance(config, TableConfig):
            raise ConfigurationError("source and target must be kmsenvelope.dynamodb.TableConfig")
        arguments = {
            "logical_table_name": config.logical_table_name,
            "partition_key": config.partition_key,
            "sort_key": config.sort_key,
            "actions": {name: action.name for name, action in config.actions.items()
                        if name not in _signed_beacon_names(config)},
            "keyring": config.keyring,
            "allowed_unsigned": tuple(config.allowed_unsigned),
            "allowed_unsigned_prefix": config.allowed_unsigned_prefix,
            "suite": config.effective_suite,
            "beacons": tuple(config.beacons),
            "plaintext_policy": config.plaintext_policy,
        }  # fmt: skip
        legacy = None
        if config.legacy is not None:
            old = config.legacy
            legacy = (
                ("materials_provider", old.materials_provider),
                ("actions", {name: action.name for name, action in old.actions.items()}),
                ("policy", old.policy),
                ("material_description_attribute", old.material_description_attribute),
                ("signature_attribute", old.signature_attribute),
            )
        return cls(tuple(arguments.items()), legacy)

    def build(self) -> Any:
        """The ``TableConfig`` again."""
        from ..dynamodb.config import TableConfig
        from ..dynamodb.legacy import LegacyConfig

        arguments = dict(self.arguments)
        if self.legacy is not None:
            legacy = dict(self.legacy)
            provider, actions, policy = (
                legacy.pop("materials_provider"),
                legacy.pop("actions"),
                legacy.pop("policy"),
            )
            arguments["legacy"] = LegacyConfig(provider, actions, policy, **legacy)
        name, key = arguments.pop("logical_table_name"), arguments.pop("partition_key")
        return TableConfig(name, key, **arguments)

    def same_except_keyring(self, other: ConfigRecipe) -> bool:
        """Whether items of one decrypt under the other once only their keys are rewrapped."""
        mine = {k: v for k, v in self.arguments if k not in ("keyring", "plaintext_policy")}
        theirs = {k: v for k, v in other.arguments if k not in ("keyring", "plaintext_policy")}
        try:
            return bool(mine == theirs)
        except Exception:  # beacons without equality: not provably the same
            return False


def _signed_beacon_names(config: Any) -> frozenset[str]:
    search = getattr(config, "_search", None)
    signed = getattr(search, "signed_actions", None) or {}
    return frozenset(signed)


def target_fingerprints(config: Any) -> frozenset[tuple[Any, ...]]:
    """The EDK fingerprints that items written under ``config`` carry, found by sealing a throwaway
    record with its keyring (one key generation: one KMS call for a KMS keyring)."""
    from ..materials.cmm import as_materials_manager
    from ..structured.encrypt import encrypt_record
    from ..structured.model import Action, Terminal

    manager = as_materials_manager(config.keyring)
    probe = encrypt_record(
        _PROBE_TABLE, {"probe": Terminal(b"\x00\x01", b"")}, {"probe": Action.SIGN_ONLY}, manager,
        config.effective_suite, {"aws-crypto-table-name": _PROBE_TABLE}, {"aws-crypto-table-name"},
    )  # fmt: skip
    return fingerprints(probe.header.encrypted_data_keys, True)


def can_rewrap_to(target: Any) -> bool:
    """Whether the target keyring can wrap an existing data key (a keyring, not a materials manager)."""
    return isinstance(target.keyring, Keyring)
