"""Bulk jobs over whole tables and prefixes: migrate or re-encrypt DynamoDB tables, rewrap S3 objects.

::

    from kmsenvelope.bulk import migrate_table

    report = migrate_table(boto3.client("dynamodb"), "orders", source=old_config, target=new_config,
                           engine=dask_client, checkpoint="orders.ckpt")
    print(report.to_json())

Jobs run in the calling process (``engine=None``), on every local core (``"processes"``) or on a
Dask cluster (a ``dask.distributed.Client``); see ``docs/bulk.md``. Names load lazily: importing this
package imports neither Dask nor boto3.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "JobReport": ".report",
    "Failure": ".report",
    "TaskTally": ".report",
    "Checkpoint": ".checkpoint",
    "FileCheckpoint": ".checkpoint",
    "DynamoDbCheckpoint": ".checkpoint",
    "ClientRecipe": ".clients",
    "migrate_table": ".dynamodb_job",
    "SegmentTask": ".dynamodb_task",
    "migrate_segment": ".dynamodb_task",
    "rewrap_objects": ".s3",
    "PageTask": ".s3",
    "rewrap_page": ".s3",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .checkpoint import Checkpoint as Checkpoint
    from .checkpoint import DynamoDbCheckpoint as DynamoDbCheckpoint
    from .checkpoint import FileCheckpoint as FileCheckpoint
    from .clients import ClientRecipe as ClientRecipe
    from .dynamodb_job import migrate_table as migrate_table
    from .dynamodb_task import SegmentTask as SegmentTask
    from .dynamodb_task import migrate_segment as migrate_segment
    from .report import Failure as Failure
    from .report import JobReport as JobReport
    from .report import TaskTally as TaskTally
    from .s3 import PageTask as PageTask
    from .s3 import rewrap_objects as rewrap_objects
    from .s3 import rewrap_page as rewrap_page


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kmsenvelope.bulk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
