"""KMS call accounting: every AWS KMS request kmsenvelope makes is counted, timed and logged.

All keyrings call KMS through :func:`call_kms`, so accounting works with any client supplier, including
user-built boto3 clients. :func:`stats` returns an immutable snapshot; :func:`reset` clears it.
Each call is logged at DEBUG on the ``kmsenvelope.kms`` logger with operation, key id, region,
outcome, attempts and latency; request parameters (plaintexts, ciphertexts, contexts) are never logged.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = ["KmsCall", "KmsStats", "call_kms", "error_code", "reset", "stats"]

logger = logging.getLogger("kmsenvelope.kms")

OK = "ok"
RECENT_CAPACITY = 256


@dataclass(frozen=True)
class KmsCall:
    """One KMS request as the caller saw it (botocore retries included)."""

    operation: str
    key_id: str
    region: str
    outcome: str
    """``"ok"`` or the AWS error code (``ThrottlingException``, ...) or exception class name."""
    latency_ms: float
    attempts: int
    timestamp: float

    @property
    def ok(self) -> bool:
        """True if the call succeeded (possibly after retries)."""
        return self.outcome == OK


@dataclass(frozen=True)
class KmsStats:
    """A read-only snapshot of KMS usage since the last :func:`reset`."""

    calls: int
    errors: int
    total_latency_ms: float
    totals: Mapping[tuple[str, str, str], int]
    """Call counts keyed by ``(operation, region, outcome)``."""
    recent: tuple[KmsCall, ...]
    """The most recent calls, oldest first (at most ``RECENT_CAPACITY``)."""
    attempts: int = 0
    """HTTP attempts behind ``calls`` (botocore's retries included): ``attempts - calls`` were retries."""

    @property
    def by_operation(self) -> Mapping[str, int]:
        """Call counts per KMS operation (``Decrypt``, ``GenerateDataKey``, ...)."""
        return self._group(0)

    @property
    def by_region(self) -> Mapping[str, int]:
        """Call counts per AWS region."""
        return self._group(1)

    @property
    def by_outcome(self) -> Mapping[str, int]:
        """Call counts per outcome: ``"ok"`` or an error code."""
        return self._group(2)

    def count(
        self, operation: str | None = None, region: str | None = None, outcome: str | None = None
    ) -> int:
        """Number of calls matching every given criterion."""
        return sum(
            n
            for (op, reg, out), n in self.totals.items()
            if (operation is None or op == operation)
            and (region is None or reg == region)
            and (outcome is None or out == outcome)
        )

    def __repr__(self) -> str:
        return (
            f"KmsStats(calls={self.calls}, errors={self.errors}, by_operation={dict(self.by_operation)}, "
            f"by_region={dict(self.by_region)}, by_outcome={dict(self.by_outcome)})"
        )

    def _group(self, index: int) -> Mapping[str, int]:
        grouped: Counter[str] = Counter()
        for key, n in self.totals.items():
            grouped[key[index]] += n
        return MappingProxyType(dict(grouped))


class _Ledger:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: Counter[tuple[str, str, str]] = Counter()
        self._latency_ms = 0.0
        self._attempts = 0
        self._recent: deque[KmsCall] = deque(maxlen=RECENT_CAPACITY)

    def add(self, call: KmsCall) -> None:
        with self._lock:
            self._totals[(call.operation, call.region, call.outcome)] += 1
            self._latency_ms += call.latency_ms
            self._attempts += call.attempts
            self._recent.append(call)

    def snapshot(self) -> KmsStats:
        with self._lock:
            totals = dict(self._totals)
            latency = self._latency_ms
            attempts = self._attempts
            recent = tuple(self._recent)
        calls = sum(totals.values())
        errors = sum(n for (_, _, outcome), n in totals.items() if outcome != OK)
        return KmsStats(
            calls=calls,
            errors=errors,
            total_latency_ms=latency,
            totals=MappingProxyType(totals),
            recent=recent,
            attempts=attempts,
        )

    def clear(self) -> None:
        with self._lock:
            self._totals.clear()
            self._latency_ms = 0.0
            self._attempts = 0
            self._recent.clear()


_LEDGER = _Ledger()


def stats() -> KmsStats:
    """An immutable snapshot of every KMS call kmsenvelope made since the last :func:`reset`."""
    return _LEDGER.snapshot()


def reset() -> None:
    """Forget all recorded KMS calls."""
    _LEDGER.clear()


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError``, else the exception class name."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if isinstance(code, str) and code:
            return code
    return type(exc).__name__


def attempts_of(response_or_exc: object) -> int:
    """How many HTTP attempts botocore made (1 + retries), from response metadata when present."""
    response = getattr(response_or_exc, "response", response_or_exc)
    if isinstance(response, dict):
        retries = response.get("ResponseMetadata", {}).get("RetryAttempts")
        if isinstance(retries, int):
            return retries + 1
    return 1


def method_name(operation: str) -> str:
    """The boto3 client method of an AWS operation name (``GenerateDataKey`` -> ``generate_data_key``)."""
    return _method_name(operation)


def record(operation: str, key_id: str, region: str, outcome: str, start: float, attempts: int) -> None:
    """Record one KMS call that began at ``time.perf_counter()`` value ``start`` (the async API's calls)."""
    _record(operation, key_id, region, outcome, start, attempts)


def _method_name(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def call_kms(client: Any, operation: str, *, region: str, key_id: str, **params: Any) -> dict[str, Any]:
    """Call ``operation`` (e.g. ``"Decrypt"``) on a boto3 KMS client, recording and logging the call.

    ``region`` and ``key_id`` describe the request for accounting; ``params`` go to the client as-is.
    Exceptions propagate unchanged after being recorded.
    """
    method = getattr(client, _method_name(operation))
    start = time.perf_counter()
    try:
        response: dict[str, Any] = method(**params)
    except Exception as exc:
        _record(operation, key_id, region, error_code(exc), start, attempts_of(exc))
        raise
    _record(operation, key_id, region, OK, start, attempts_of(response))
    return response


def _record(operation: str, key_id: str, region: str, outcome: str, start: float, attempts: int) -> None:
    latency_ms = (time.perf_counter() - start) * 1000.0
    call = KmsCall(
        operation=operation,
        key_id=key_id,
        region=region,
        outcome=outcome,
        latency_ms=latency_ms,
        attempts=attempts,
        timestamp=time.time(),
    )
    _LEDGER.add(call)
    logger.debug(
        "KMS %s key=%s region=%s outcome=%s attempts=%d latency_ms=%.1f",
        operation,
        key_id,
        region,
        outcome,
        attempts,
        latency_ms,
    )
