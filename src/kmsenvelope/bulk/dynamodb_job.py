"""``migrate_table``: move every item of a DynamoDB table to a target configuration, in place."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ..aws.accounting import stats as kms_stats
from ..errors import ConfigurationError
from .checkpoint import resolve
from .clients import check_picklable, client_source
from .dynamodb_task import SegmentTask, migrate_segment
from .engine import check_engine, describe, parallelism, run_tasks
from .estimates import kms_calls_per_item
from .report import JobReport, TaskTally
from .targets import ConfigRecipe, can_rewrap_to, target_fingerprints
from .throttle import share_rate, with_backoff

__all__ = ["migrate_table"]

MAX_SEGMENTS = 1_000_000  # DynamoDB's TotalSegments limit


def migrate_table(
    dynamodb_client: Any,
    table_name: str,
    *,
    source: Any | Sequence[Any],
    target: Any,
    segments: int = 0,
    engine: Any = None,
    checkpoint: Any = None,
    max_items_per_second: float | None = None,
    dry_run: bool = False,
    verify: bool = False,
    page_size: int = 100,
    on_task_done: Callable[[TaskTally], None] | None = None,
) -> JobReport:
    """Move every item of ``table_name`` from ``source`` to ``target`` (both ``TableConfig``), in place.

    ``source`` may also be a sequence of ``TableConfig``: the DB-ESDK allows a legacy config or a
    plaintext policy on one config, not both, so a table that holds legacy *and* plaintext items is
    read with two (legacy items go to the first with a legacy config, plaintext items to the first
    whose plaintext policy allows reading them, new-format items to the first).

    Each item is read by a parallel scan (``segments`` segments, one task each; 0 picks one per
    concurrent task the engine runs, times 4 off the calling process) and then:

    * skipped when already in the target state (new format, a target key among its EDKs), so a job
      can be run again at any time;
    * rewrapped (:meth:`ItemEncryptor.rewrap_item`) when ``source`` and ``target`` differ only in
      their keyring and the item's suite is the target's (signed suites are re-signed);
    * otherwise decrypted under ``source`` (legacy and plaintext items as its policies allow) and
      encrypted under ``target``;

    and written back with a conditional ``UpdateItem`` (see :mod:`kmsenvelope.bulk.dynamodb_task`);
    an item changed meanwhile is read again and retried, so no concurrent update is lost.

    ``dynamodb_client``: a boto3 DynamoDB client or a zero-argument callable returning one; workers
    rebuild it from its region, endpoint and botocore config with their own credentials.
    ``engine``: ``None``, ``"processes"`` or a ``dask.distributed.Client`` (``docs/bulk.md``).
    ``checkpoint``: a file path or a :class:`~kmsenvelope.bulk.DynamoDbCheckpoint`; a job run again
    with it resumes where each segment stopped (once every segment finished, it starts over).
    ``max_items_per_second``: for the whole job, shared evenly by the tasks running at once.
    ``dry_run``: read and classify only; nothing is written or checkpointed, and the report estimates
    the KMS calls and their cost. ``verify``: read each written item back and decrypt it under
    ``target``. ``on_task_done`` is called in this process with each finished segment's tally (e.g. for a
    progress bar). Item failures are listed in the report and do not stop the job; throttling is retried
    with backoff. An exception from the job itself (e.g. a lost connection) propagates after the
    running tasks stopped; progress so far is in the checkpoint.
    """
    if not isinstance(table_name, str) or not table_name:
        raise ConfigurationError("table_name must be a non-empty string")
    if not isinstance(segments, int) or isinstance(segments, bool) or not 0 <= segments <= MAX_SEGMENTS:
        raise ConfigurationError(f"segments must be an int from 0 (automatic) to {MAX_SEGMENTS}")
    if max_items_per_second is not None and not max_items_per_second > 0:
        raise ConfigurationError("max_items_per_second must be positive")
    if not isinstance(page_size, int) or page_size < 1:
        raise ConfigurationError("page_size must be a positive int")
    check_engine(engine)
    sources = tuple(source) if isinstance(source, (list, tuple)) else (source,)
    if not sources:
        raise ConfigurationError("source must be a TableConfig or a non-empty sequence of them")
    source_recipes = tuple(ConfigRecipe.of(config) for config in sources)
    target_recipe = ConfigRecipe.of(target)
    _check_same_table(sources, target)
    _check_target_writes_new_format(target)
    client = client_source(dynamodb_client, "dynamodb")
    store = resolve(checkpoint)
    job = f"migrate_table/{table_name}"

    states = store.load(job) if store is not None and not dry_run else {}
    if states and all(state.get("done") for state in states.values()) and store is not None:
        store.reset(job)  # the previous run finished: this one is a new pass over the table
        states = {}
    stored_segments = {state.get("segments") for state in states.values()}
    if states:
        if len(stored_segments) != 1:
            raise ConfigurationError(f"checkpoint of {job!r} is inconsistent (several segment counts)")
        (previous,) = stored_segments
        if segments and segments != previous:
            raise ConfigurationError(
                f"the checkpoint of {job!r} was made with segments={previous}; resume with the same count"
            )
        segments = int(previous)  # type: ignore[arg-type]
    running = parallelism(engine)
    if segments == 0:
        segments = running if engine is None else running * 4

    if engine is not None:
        check_picklable("source and target (their keyrings)", (source_recipes, target_recipe))
        check_picklable("dynamodb_client", client)
        check_picklable("checkpoint", store)

    started = time.perf_counter()
    driver = TaskTally()  # what the job does here, outside its tasks: the target probe
    before = kms_stats()
    target_keys = with_backoff(driver, lambda: target_fingerprints(target))
    after = kms_stats()
    driver.kms_calls = after.calls - before.calls
    driver.retries += (after.attempts - before.attempts) - driver.kms_calls  # botocore's own retries
    rewrap = source_recipes[0].same_except_keyring(target_recipe) and can_rewrap_to(target)
    tasks = [
        SegmentTask(
            job=job,
            table_name=table_name,
            client=client,
            sources=source_recipes,
            target=target_recipe,
            segment=segment,
            total_segments=segments,
            target_keys=target_keys,
            rewrap=rewrap,
            checkpoint=store,
            rate=share_rate(max_items_per_second, min(segments, running)),
            dry_run=dry_run,
            verify=verify,
            page_size=page_size,
            kms_per_item=kms_calls_per_item(sources[0], target),
        )
        for segment in range(segments)
    ]
    tallies = run_tasks(engine, migrate_segment, tasks, on_done=on_task_done)
    return JobReport.combine(
        job, tallies, elapsed=time.perf_counter() - started, engine=describe(engine), dry_run=dry_run,
        driver=driver,
    )  # fmt: skip


def _check_target_writes_new_format(target: Any) -> None:
    legacy = target.legacy
    policy = target.plaintext_policy
    if (legacy is not None and legacy.policy.forces_encrypt) or (policy is not None and policy.forces_write):
        raise ConfigurationError(
            "the target config writes legacy or plaintext items; it must write the new format"
        )


def _check_same_table(sources: Sequence[Any], target: Any) -> None:
    keys = (target.partition_key, target.sort_key)
    for config in sources:
        if (config.partition_key, config.sort_key) != keys:
            raise ConfigurationError("source and target must name the same partition and sort keys")
