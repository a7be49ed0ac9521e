"""Pacing and throttling for bulk tasks: a per-task share of the job's rate, and backoff on throttling.

The job's ``max_items_per_second`` is split evenly between the tasks that can run at once (see
:func:`share_rate`), and each task paces itself with a token bucket. No coordination service is
involved, so it works the same in one process, in a process pool, on Dask and under Spark; the price
is that a task that finishes early leaves its share unused (the total never exceeds the limit).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .report import TaskTally

__all__ = ["Backoff", "RateLimiter", "is_throttling", "share_rate"]

T = TypeVar("T")

THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
        "LimitExceededException",
    }
)
_KMS_THROTTLED_TEXT = "throttled by AWS KMS"


def share_rate(max_items_per_second: float | None, concurrent_tasks: int) -> float | None:
    """Each task's share of the job's rate when ``concurrent_tasks`` run at once."""
    if max_items_per_second is None:
        return None
    return float(max_items_per_second) / max(1, concurrent_tasks)


class RateLimiter:
    """A token bucket: :meth:`acquire` blocks until one more item fits under ``rate`` per second."""

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._clock = clock
        self._tokens = 1.0
        self._last = clock()

    def acquire(self) -> None:
        rate = self._rate
        if rate is None:
            return
        while True:
            now = self._clock()
            self._tokens = min(max(1.0, rate), self._tokens + (now - self._last) * rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return
            time.sleep((1.0 - self._tokens) / rate)


def error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if isinstance(code, str):
            return code
    return None


def is_throttling(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) is a throttling answer from DynamoDB, KMS or S3.

    KMS keyrings report a throttled ``Decrypt`` as a per-EDK failure of a ``NoUsableKeyError`` (with
    the reason ``throttled by AWS KMS``), and a throttled ``GenerateDataKey``/``Encrypt`` with the
    botocore error as the cause; both are recognised.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if error_code(current) in THROTTLING_CODES:
            return True
        for failure in getattr(current, "failures", ()) or ():
            if _KMS_THROTTLED_TEXT in str(getattr(failure, "reason", "")):
                return True
        current = current.__cause__ or current.__context__
    return False


def retry_attempts(response_or_exc: object) -> int:
    """botocore's own retries of one request (``ResponseMetadata.RetryAttempts``)."""
    response = getattr(response_or_exc, "response", response_or_exc)
    if isinstance(response, dict):
        value = response.get("ResponseMetadata", {}).get("RetryAttempts")
        if isinstance(value, int):
            return value
    return 0


class Backoff:
    """Exponential backoff with full jitter for throttled requests; every retry is counted."""

    def __init__(
        self, tally: TaskTally, *, base: float = 0.05, cap: float = 5.0, max_attempts: int = 100
    ) -> None:
        self._tally = tally
        self._base = base
        self._cap = cap
        self._max_attempts = max_attempts
        self.client_counts_throttling = False
        """Set when the client's own hook counts throttled answers (see ``count_throttling``)."""

    def should_retry(self, exc: BaseException, attempt: int, *, count_event: bool = True) -> bool:
        """True (after sleeping, counted as a retry) when ``exc`` is throttling and attempts remain.

        ``count_event=False`` when a client hook already counted the throttled answer itself.
        """
        if not is_throttling(exc):
            return False
        if count_event:
            self._tally.throttling_events += 1
        if attempt + 1 >= self._max_attempts:
            return False
        self._tally.retries += 1
        time.sleep(random.uniform(0, min(self._cap, self._base * 2**attempt)))
        return True

    def call(self, operation: Callable[..., T], **params: Any) -> T:
        """``operation(**params)`` retried on throttling; botocore's own retries are counted too."""
        attempt = 0
        while True:
            try:
                response = operation(**params)
            except Exception as exc:
                self._tally.retries += retry_attempts(exc)
                if self.should_retry(exc, attempt, count_event=not self.client_counts_throttling):
                    attempt += 1
                    continue
                raise
            self._tally.retries += retry_attempts(response)
            return response


def count_throttling(client: Any, service: str, tally: TaskTally) -> Callable[[], None]:
    """Count every throttled answer ``client`` receives, including those botocore retries by itself.

    Returns a function that removes the hook again (the client may be the caller's own).
    """

    def on_attempt(response: Any = None, **_: Any) -> None:
        parsed = response[1] if isinstance(response, tuple) and len(response) == 2 else None
        if isinstance(parsed, dict) and parsed.get("Error", {}).get("Code") in THROTTLING_CODES:
            tally.throttling_events += 1

    events = client.meta.events
    event = f"needs-retry.{service}"
    events.register(event, on_attempt)
    return lambda: events.unregister(event, on_attempt)


def with_backoff(tally: TaskTally, operation: Callable[[], T]) -> T:
    """``operation()`` retried with backoff while it fails with throttling (counted in ``tally``)."""
    backoff = Backoff(tally)
    attempt = 0
    while True:
        try:
            return operation()
        except Exception as exc:
            if not backoff.should_retry(exc, attempt):
                raise
            attempt += 1
