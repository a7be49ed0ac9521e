"""Rough KMS request counts per item, for dry-run estimates (``docs/bulk.md`` explains the model)."""

from __future__ import annotations

from typing import Any

__all__ = ["kms_calls_per_item"]


def _encrypt_calls(keyring: Any) -> int:
    """KMS requests to wrap one data key: one per KMS key (GenerateDataKey or Encrypt)."""
    from ..keyrings.kms import KmsKeyring
    from ..keyrings.multi import MultiKeyring

    if isinstance(keyring, KmsKeyring):
        return len(keyring.key_ids)
    if isinstance(keyring, MultiKeyring):
        members = [m for m in (keyring.generator, *keyring.children) if m is not None]
        return sum(_encrypt_calls(m) for m in members)
    # Raw keyrings make none; a hierarchical keyring's branch key is cached (a few calls per TTL);
    # materials managers are not looked into.
    return 0


def _decrypt_calls(keyring: Any) -> int:
    """KMS requests to unwrap one data key: one Decrypt when the first usable key is a KMS key."""
    from ..keyrings.kms import KmsKeyring
    from ..keyrings.kms_discovery import KmsDiscoveryKeyring
    from ..keyrings.multi import MultiKeyring

    if isinstance(keyring, (KmsKeyring, KmsDiscoveryKeyring)):
        return 1
    if isinstance(keyring, MultiKeyring):
        members = [m for m in (keyring.generator, *keyring.children) if m is not None]
        return min((_decrypt_calls(m) for m in members), default=0)
    return 0


def _legacy_decrypt_calls(config: Any) -> int:
    legacy = config.legacy
    if legacy is None:
        return 0
    return 1 if "Kms" in type(legacy.provider).__name__ else 0


def kms_calls_per_item(source: Any, target: Any) -> tuple[tuple[str, int], ...]:
    """(what happens to an item, KMS requests it takes) for rewrap and each source format."""
    wrap = _encrypt_calls(target.keyring)
    unwrap = _decrypt_calls(source.keyring)
    return (
        ("rewrap", unwrap + wrap),
        ("new", unwrap + wrap),
        ("legacy", _legacy_decrypt_calls(source) + wrap),
        ("plaintext", wrap),
    )
