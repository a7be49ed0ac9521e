"""AWS integration: KMS key identifiers, regional KMS clients, KMS call accounting, the branch key store.

Nothing here imports boto3; clients are built on first use. :class:`KeyStore` (the DynamoDB branch key
store) is loaded on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import accounting as accounting
from . import arn as arn
from .accounting import KmsCall, KmsStats, stats
from .arn import DiscoveryFilter, KmsArn, is_mrk, mrk_match, parse_arn
from .clients import ClientSupplier, KmsClientSupplier

if TYPE_CHECKING:
    from .branch_key_store import KeyStore as KeyStore

__all__ = [
    "ClientSupplier",
    "DiscoveryFilter",
    "KeyStore",
    "KmsArn",
    "KmsCall",
    "KmsClientSupplier",
    "KmsStats",
    "accounting",
    "arn",
    "is_mrk",
    "mrk_match",
    "parse_arn",
    "stats",
]


def __getattr__(name: str) -> Any:
    if name == "KeyStore":
        from .branch_key_store import KeyStore

        return KeyStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
