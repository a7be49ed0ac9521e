"""What a bulk job did: :class:`JobReport` (immutable, JSON-ready) and the per-task tallies behind it.

Reports name items by their primary key (stored in the clear by DynamoDB anyway) and failures by the
exception type and kmsenvelope's own message, which never quotes attribute values; plaintext never
enters a report.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from types import MappingProxyType
from typing import Any

__all__ = ["MAX_FAILURES_LISTED", "Failure", "JobReport", "TaskTally"]

MAX_FAILURES_LISTED = 1000
"""A report lists at most this many failures (``items_failed`` counts them all)."""

KMS_PRICE_PER_10K_REQUESTS_USD = 0.03
"""AWS KMS symmetric request price (us-east-1, outside the free tier) used for dry-run estimates."""


@dataclass(frozen=True)
class Failure:
    """One item or object the job could not process: its key and why (never its contents)."""

    key: str
    reason: str


@dataclass
class TaskTally:
    """Counters of one task (segment, key range or listing page); summed into a :class:`JobReport`."""

    read: int = 0
    written: int = 0
    skipped: int = 0
    rewrapped: int = 0
    reencrypted: int = 0
    failed: int = 0
    verified: int = 0
    conflicts: int = 0
    kms_calls: int = 0
    retries: int = 0
    throttling_events: int = 0
    estimated_kms_calls: int = 0
    formats: dict[str, int] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)

    def fail(self, key: str, reason: str) -> None:
        self.failed += 1
        if len(self.failures) < MAX_FAILURES_LISTED:
            self.failures.append(Failure(key, reason))

    def saw(self, kind: str) -> None:
        self.formats[kind] = self.formats.get(kind, 0) + 1


_COUNTERS = ("read", "written", "skipped", "rewrapped", "reencrypted", "failed", "verified", "conflicts",
             "kms_calls", "retries", "throttling_events", "estimated_kms_calls")  # fmt: skip


@dataclass(frozen=True)
class JobReport:
    """What a bulk job did.

    ``items_*`` count items (DynamoDB) or objects (S3) or rows (SQL): read, written back, skipped
    (already in the target state, or not a message), rewrapped (only the data key's wrapping changed),
    re-encrypted (decrypted and encrypted again), failed (listed in ``failures``, at most
    :data:`MAX_FAILURES_LISTED`). With ``dry_run`` nothing is written: ``items_rewrapped`` and
    ``items_reencrypted`` say what would be done, ``estimated_kms_calls`` and
    ``estimated_kms_cost_usd`` what it would take. ``kms_calls`` counts the KMS requests made by this
    job's tasks; ``retries`` every retried request (botocore's own retries and the job's backoff);
    ``throttling_events`` the throttled answers seen (DynamoDB ``ProvisionedThroughputExceededException``,
    KMS ``ThrottlingException``...). ``conflicts`` counts conditional writes that found the item changed
    since it was read (each was read again and retried). ``formats`` counts items read per format
    (``new``, ``legacy``, ``plaintext``).
    """

    job: str
    items_read: int
    items_written: int
    items_skipped: int
    items_rewrapped: int
    items_reencrypted: int
    items_failed: int
    failures: tuple[Failure, ...]
    kms_calls: int
    retries: int
    throttling_events: int
    elapsed_seconds: float
    items_per_second: float
    tasks: int
    engine: str
    dry_run: bool = False
    verified: int = 0
    conflicts: int = 0
    formats: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    estimated_kms_calls: int = 0
    estimated_kms_cost_usd: float = 0.0

    @classmethod
    def combine(
        cls,
        job: str,
        tallies: Iterable[TaskTally],
        *,
        elapsed: float,
        engine: str,
        dry_run: bool,
        driver: TaskTally | None = None,
    ) -> JobReport:
        """Sum task tallies into one report (``driver``: what the job did outside its tasks)."""
        total = TaskTally()
        tasks = list(tallies)
        count = len(tasks)
        for tally in [*tasks, *([driver] if driver is not None else [])]:
            for name in _COUNTERS:
                setattr(total, name, getattr(total, name) + getattr(tally, name))
            for kind, n in tally.formats.items():
                total.formats[kind] = total.formats.get(kind, 0) + n
            room = MAX_FAILURES_LISTED - len(total.failures)
            total.failures.extend(tally.failures[: max(room, 0)])
        elapsed = max(elapsed, 0.0)
        return cls(
            job=job,
            items_read=total.read,
            items_written=total.written,
            items_skipped=total.skipped,
            items_rewrapped=total.rewrapped,
            items_reencrypted=total.reencrypted,
            items_failed=total.failed,
            failures=tuple(total.failures),
            kms_calls=total.kms_calls,
            retries=total.retries,
            throttling_events=total.throttling_events,
            elapsed_seconds=elapsed,
            items_per_second=total.read / elapsed if elapsed > 0 else 0.0,
            tasks=count,
            engine=engine,
            dry_run=dry_run,
            verified=total.verified,
            conflicts=total.conflicts,
            formats=MappingProxyType(dict(sorted(total.formats.items()))),
            estimated_kms_calls=total.estimated_kms_calls,
            estimated_kms_cost_usd=round(
                total.estimated_kms_calls * KMS_PRICE_PER_10K_REQUESTS_USD / 10_000, 6
            ),
        )

    @property
    def ok(self) -> bool:
        """True when no item failed."""
        return self.items_failed == 0

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-compatible values."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["formats"] = dict(self.formats)
        out["failures"] = [asdict(f) for f in self.failures]
        return out

    def to_json(self, indent: int | None = None) -> str:
        """The report as a JSON document."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)
