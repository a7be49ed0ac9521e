"""``rewrap_objects``: rewrap every ESDK message under an S3 prefix to a new keyring.

The calling process lists the prefix; each listing page becomes one task (:func:`rewrap_page`, a
plain function of one picklable :class:`PageTask`). Per object: the first bytes are read and parsed
as a message header; objects that are not ESDK messages are counted (``formats["not-a-message"]``)
and left alone; messages whose data key the target already wraps are skipped; the rest go through
:func:`kmsenvelope.aws.rewrap_object` (which pins the source by its ETag, so an object replaced
meanwhile makes that one rewrap fail rather than overwrite the newer object).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..aws.accounting import stats as kms_stats
from ..errors import ConfigurationError, KmsEnvelopeError
from ..suites import CommitmentPolicy
from .checkpoint import Checkpoint, resolve
from .clients import ClientSource, check_picklable, client_source
from .dynamodb_task import describe, item_error
from .engine import check_engine, parallelism, run_tasks
from .engine import describe as engine_name
from .report import JobReport, TaskTally
from .targets import fingerprints
from .throttle import Backoff, RateLimiter, share_rate, with_backoff

__all__ = ["PageTask", "rewrap_objects", "rewrap_page"]

_PEEK = 64 * 1024


@dataclass(frozen=True)
class PageTask:
    """One listing page of a :func:`rewrap_objects` job."""

    job: str
    page: int
    keys: tuple[tuple[str, int], ...]
    """(key, size) of each object, as listed."""
    bucket: str
    client: ClientSource
    dest_client: ClientSource | None
    dest_bucket: str | None
    old: Any
    new: Any
    target_keys: frozenset[tuple[Any, ...]]
    options: tuple[tuple[str, Any], ...] = ()
    checkpoint: Checkpoint | None = None
    rate: float | None = None
    dry_run: bool = False


def rewrap_page(task: PageTask) -> TaskTally:
    """Rewrap the objects of one listing page; saves progress after each object."""
    from ..aws.s3_rewrap import rewrap_object
    from ..message.header import DecryptLimits, parse_header

    tally = TaskTally()
    client = task.client()
    dest = task.dest_client() if task.dest_client is not None else None
    backoff = Backoff(tally)
    limiter = RateLimiter(task.rate)
    before = kms_stats()
    state = task.checkpoint.load(task.job).get(task.page) if task.checkpoint is not None else None
    if state is not None and state.get("done"):
        return tally
    after_key = state.get("last_key") if state is not None else None
    try:
        for key, size in task.keys:
            if after_key is not None and key <= after_key:
                continue
            limiter.acquire()
            tally.read += 1
            attempt = 0
            while True:
                try:
                    if size == 0:  # no range of an empty object can be read; it is not a message
                        tally.saw("not-a-message")
                        tally.skipped += 1
                        break
                    peek = f"bytes=0-{min(size, _PEEK) - 1}"
                    head = client.get_object(Bucket=task.bucket, Key=key, Range=peek)["Body"].read()
                    try:
                        header = parse_header(head, DecryptLimits())
                    except KmsEnvelopeError as exc:
                        if type(exc).__name__ != "TruncatedInputError" or len(head) < _PEEK:
                            tally.saw("not-a-message")
                            tally.skipped += 1
                            break
                        header = None  # a header longer than the peek: rewrap_object reads it whole
                    tally.saw("message")
                    if (
                        header is not None
                        and fingerprints(header.encrypted_data_keys, False) & task.target_keys
                    ):
                        tally.skipped += 1
                        break
                    if task.dry_run:
                        tally.rewrapped += 1
                        break
                    rewrap_object(
                        client, task.bucket, key, task.old, task.new, dest_bucket=task.dest_bucket,
                        dest_client=dest, **dict(task.options),
                    )  # fmt: skip
                    tally.written += 1
                    tally.rewrapped += 1
                    break
                except Exception as exc:
                    if backoff.should_retry(exc, attempt):
                        attempt += 1
                        continue
                    if not item_error(exc):
                        raise
                    tally.fail(key, describe(exc))
                    break
            if task.checkpoint is not None and not task.dry_run:
                task.checkpoint.save(task.job, task.page, {"done": key == task.keys[-1][0], "last_key": key})
    finally:
        after = kms_stats()
        tally.kms_calls += after.calls - before.calls
        tally.retries += max(0, (after.attempts - before.attempts) - (after.calls - before.calls))
    return tally


def rewrap_objects(
    s3_client: Any,
    bucket: str,
    prefix: str,
    *,
    old: Any,
    new: Any,
    dest_bucket: str | None = None,
    dest_client: Any = None,
    engine: Any = None,
    checkpoint: Any = None,
    max_items_per_second: float | None = None,
    dry_run: bool = False,
    page_size: int = 1000,
    context: dict[str, str] | None = None,
    resign: bool = False,
    keep_old: bool = False,
    commitment_policy: CommitmentPolicy = CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
    allow_header_nonce_reuse: bool = False,
) -> JobReport:
    """Rewrap every ESDK message under ``s3://bucket/prefix`` from ``old`` (a keyring or materials
    manager that decrypts them) to ``new`` (a keyring), in place or into ``dest_bucket`` (same keys)
    through ``dest_client`` (another region or account). Objects that are not messages are counted
    and left alone; messages the target already wraps are skipped. ``engine``, ``checkpoint`` and
    ``max_items_per_second`` as for :func:`~kmsenvelope.bulk.migrate_table`; one task per listing page
    of ``page_size`` keys. ``context``, ``resign``, ``keep_old``, ``commitment_policy`` and
    ``allow_header_nonce_reuse`` go to :func:`kmsenvelope.aws.rewrap_object`: without the last,
    committing-suite (version 2) messages are refused and reported as failed (see docs/rewrap.md).
    ``dry_run`` reads headers and classifies only.
    """
    if not isinstance(bucket, str) or not bucket or not isinstance(prefix, str):
        raise ConfigurationError("bucket must be a non-empty string and prefix a string")
    if not isinstance(page_size, int) or not 1 <= page_size <= 1000:
        raise ConfigurationError("page_size must be from 1 to 1000 (S3's listing page)")
    check_engine(engine)
    source = client_source(s3_client, "s3")
    dest = client_source(dest_client, "s3") if dest_client is not None else None
    store = resolve(checkpoint)
    job = f"rewrap_objects/{bucket}/{prefix}->{dest_bucket or bucket}"
    states = store.load(job) if store is not None and not dry_run else {}
    if states and all(s.get("done") for s in states.values()) and store is not None:
        store.reset(job)
    started = time.perf_counter()
    driver = TaskTally()
    pages = _list_pages(source(), bucket, prefix, page_size, Backoff(driver))
    options = (
        ("context", context),
        ("resign", resign),
        ("keep_old", keep_old),
        ("commitment_policy", commitment_policy),
        ("allow_header_nonce_reuse", allow_header_nonce_reuse),
    )
    before = kms_stats()
    target_keys = with_backoff(driver, lambda: _target_keys(new))
    driver.kms_calls = kms_stats().calls - before.calls
    running = parallelism(engine)
    tasks = [
        PageTask(
            job,
            index,
            keys,
            bucket,
            source,
            dest,
            dest_bucket,
            old,
            new,
            target_keys,
            options,
            store,
            share_rate(max_items_per_second, min(len(pages), running)),
            dry_run,
        )
        for index, keys in enumerate(pages)
    ]
    if engine is not None and tasks:
        check_picklable("the keyrings, clients and checkpoint", tasks[0])
    tallies = run_tasks(engine, rewrap_page, tasks)
    return JobReport.combine(
        job, tallies, elapsed=time.perf_counter() - started, engine=engine_name(engine), dry_run=dry_run,
        driver=driver,
    )  # fmt: skip


def _list_pages(
    client: Any, bucket: str, prefix: str, page_size: int, backoff: Backoff
) -> list[tuple[tuple[str, int], ...]]:
    pages = []
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": page_size}
    while True:
        response = backoff.call(client.list_objects_v2, **params)
        keys = tuple((entry["Key"], int(entry.get("Size", 1))) for entry in response.get("Contents", []))
        if keys:
            pages.append(keys)
        token = response.get("NextContinuationToken")
        if not response.get("IsTruncated") or not token:
            return pages
        params["ContinuationToken"] = token


def _target_keys(new: Any) -> frozenset[tuple[Any, ...]]:
    from ..envelope import Envelope
    from ..message.header import DecryptLimits, parse_header

    probe = Envelope(new).encrypt(b"", {})
    return fingerprints(parse_header(probe, DecryptLimits()).encrypted_data_keys, False)
