"""AWS integration: KMS key identifiers, regional KMS clients and KMS call accounting.

Nothing here imports boto3; clients are built on first use.
"""

from . import accounting as accounting
from . import arn as arn
from .accounting import KmsCall, KmsStats, stats
from .arn import DiscoveryFilter, KmsArn, is_mrk, mrk_match, parse_arn
from .clients import ClientSupplier, KmsClientSupplier

__all__ = [
    "ClientSupplier",
    "DiscoveryFilter",
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
