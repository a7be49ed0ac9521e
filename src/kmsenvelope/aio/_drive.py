"""The async driver of the sans-IO rules in :mod:`kmsenvelope.aws.requests`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..aws import accounting
from ..aws.requests import KmsRequest, Steps, check_client_region

__all__ = ["acall_kms", "perform_kms", "run_async"]

_T = TypeVar("_T")


async def run_async(steps: Steps[_T], perform: Callable[[Any], Awaitable[Any]]) -> _T:
    """:func:`kmsenvelope.aws.requests.run`, awaiting each answer instead of blocking for it."""
    try:
        request = next(steps)
        while True:
            try:
                answer = await perform(request)
            except Exception as exc:
                request = steps.throw(exc)
            else:
                request = steps.send(answer)
    except StopIteration as stop:
        result: _T = stop.value
        return result


async def acall_kms(
    client: Any, operation: str, *, region: str, key_id: str, **params: Any
) -> dict[str, Any]:
    """:func:`kmsenvelope.aws.accounting.call_kms` for an aiobotocore client: counted, timed, logged."""
    method = getattr(client, accounting.method_name(operation))
    start = time.perf_counter()
    try:
        response: dict[str, Any] = await method(**params)
    except Exception as exc:
        accounting.record(
            operation, key_id, region, accounting.error_code(exc), start, accounting.attempts_of(exc)
        )
        raise
    accounting.record(operation, key_id, region, accounting.OK, start, accounting.attempts_of(response))
    return response


async def perform_kms(supplier: Callable[[str], Awaitable[Any]], request: KmsRequest) -> dict[str, Any]:
    """Send one KMS request with an aiobotocore client from ``supplier``."""
    client = check_client_region(await supplier(request.region), request)
    return await acall_kms(
        client, request.operation, region=request.region, key_id=request.key_id, **request.params
    )
