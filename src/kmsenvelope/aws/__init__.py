"""AWS integration: KMS key identifiers, regional KMS clients, KMS call accounting, S3 object rewrap.

Nothing here imports boto3; clients are built on first use, and names are loaded on first access.
What users construct lives at the top level: ``kmsenvelope.DiscoveryFilter``, ``kmsenvelope.KeyStore``
(the DynamoDB branch key store), ``kmsenvelope.stats()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

# To export a name, add one line to each of __all__, _EXPORTS and the TYPE_CHECKING block (see _lazy.py).
__all__ = [
    "ClientSupplier",
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
]

_EXPORTS = {
    "ClientSupplier": ".clients",
    "KmsArn": ".arn",
    "KmsCall": ".accounting",
    "KmsClientSupplier": ".clients",
    "KmsStats": ".accounting",
    "is_mrk": ".arn",
    "mrk_match": ".arn",
    "parse_arn": ".arn",
    "rewrap_object": ".s3_rewrap",
    "S3RewrapResult": ".s3_rewrap",
}

if TYPE_CHECKING:
    from . import accounting as accounting
    from . import arn as arn
    from .accounting import KmsCall as KmsCall
    from .accounting import KmsStats as KmsStats
    from .arn import KmsArn as KmsArn
    from .arn import is_mrk as is_mrk
    from .arn import mrk_match as mrk_match
    from .arn import parse_arn as parse_arn
    from .clients import ClientSupplier as ClientSupplier
    from .clients import KmsClientSupplier as KmsClientSupplier
    from .s3_rewrap import S3RewrapResult as S3RewrapResult
    from .s3_rewrap import rewrap_object as rewrap_object
else:
    __getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS, submodules=("accounting", "arn"))
