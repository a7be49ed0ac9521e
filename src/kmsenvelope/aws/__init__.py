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
    from .s3_rewrap import S3RewrapResult as S3RewrapResult
    from .s3_rewrap import rewrap_object as rewrap_object

__all__ = [
    "ClientSupplier",
    "DiscoveryFilter",
    "KeyStore",
    "KmsArn",
    "KmsCall",
    "KmsClientSupplier",
    "KmsStats",
    "S3RewrapResult",
    "accounting",
    "arn",
    "is_mrk",
    "mrk_match",
    "parse_arn",
    "rewrap_object",
    "stats",
]


def __getattr__(name: str) -> Any:
    if name == "KeyStore":
        from .branch_key_store import KeyStore

        return KeyStore
    if name in ("rewrap_object", "S3RewrapResult"):  # imports the envelope layer: only when asked
        from . import s3_rewrap

        return getattr(s3_rewrap, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
