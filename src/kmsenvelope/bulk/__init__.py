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

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

# To export a name, add one line to each of __all__, _EXPORTS and the TYPE_CHECKING block (see _lazy.py).
__all__ = [
    "Checkpoint",
    "ClientRecipe",
    "DynamoDbCheckpoint",
    "Failure",
    "FileCheckpoint",
    "JobReport",
    "PageTask",
    "SegmentTask",
    "TaskTally",
    "migrate_segment",
    "migrate_table",
    "rewrap_objects",
    "rewrap_page",
]

_EXPORTS = {
    "Checkpoint": ".checkpoint",
    "ClientRecipe": ".clients",
    "DynamoDbCheckpoint": ".checkpoint",
    "Failure": ".report",
    "FileCheckpoint": ".checkpoint",
    "JobReport": ".report",
    "PageTask": ".s3",
    "SegmentTask": ".dynamodb_task",
    "TaskTally": ".report",
    "migrate_segment": ".dynamodb_task",
    "migrate_table": ".dynamodb_job",
    "rewrap_objects": ".s3",
    "rewrap_page": ".s3",
}

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

else:
    __getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
