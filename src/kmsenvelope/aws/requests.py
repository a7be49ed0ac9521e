"""Sans-IO AWS requests: keyrings and key stores decide *what* to ask AWS and check the answers; a driver
does the asking.

The rules of the KMS keyrings and of the DynamoDB branch key store are written once, as generators that
``yield`` a :class:`KmsRequest` or :class:`DynamoDbRequest` and receive the response (or have the
client's exception thrown in at the ``yield``). :func:`run` drives them with blocking boto3 clients;
:mod:`kmsenvelope.aio` drives the very same generators with aiobotocore. Only the I/O differs.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import KmsEnvelopeError

__all__ = [
    "DynamoDbRequest",
    "KmsRequest",
    "KmsResponseError",
    "Steps",
    "check_client_region",
    "run",
    "run_local",
]

_T = TypeVar("_T")

Steps = Generator[Any, Any, _T]
"""A sans-IO computation: yields requests, receives their answers, returns a ``_T``."""


@dataclass(frozen=True)
class KmsRequest:
    """One AWS KMS call: ``operation`` (e.g. ``"Decrypt"``) in ``region`` with boto3-style ``params``.

    ``key_id`` names the key for accounting. ``pinned_region``: the client used must be for ``region``
    exactly (the discovery keyring's rule), which the driver checks with :func:`check_client_region`.
    """

    operation: str
    region: str
    key_id: str
    params: Mapping[str, Any] = field(repr=False)
    pinned_region: bool = False


@dataclass(frozen=True)
class DynamoDbRequest:
    """One DynamoDB client call: ``method`` (e.g. ``"get_item"``) with boto3-style ``params``."""

    method: str
    params: Mapping[str, Any] = field(repr=False)


class KmsResponseError(KmsEnvelopeError):
    """AWS KMS answered, but not with what the keyring asked for (wrong key, bad ARN, wrong region)."""


def check_client_region(client: Any, request: KmsRequest) -> Any:
    """``client``, after checking it serves ``request.region`` when the request pins its region."""
    if request.pinned_region:
        client_region = getattr(getattr(client, "meta", None), "region_name", request.region)
        if client_region != request.region:
            raise KmsResponseError(
                f"client supplier returned a client for {client_region}, not {request.region}"
            )
    return client


def run(steps: Steps[_T], perform: Callable[[Any], Any]) -> _T:
    """Drive ``steps`` to completion, answering each request with ``perform(request)``.

    An exception from ``perform`` is thrown into the generator at its ``yield``, so the rules that
    classify failures (fall through to the next EDK, wrap as KeyStoreError, ...) run unchanged.
    """
    try:
        request = next(steps)
        while True:
            try:
                answer = perform(request)
            except Exception as exc:
                request = steps.throw(exc)
            else:
                request = steps.send(answer)
    except StopIteration as stop:
        result: _T = stop.value
        return result


def run_local(steps: Steps[_T]) -> _T:
    """Drive steps that make no request (local keyrings' wrapping); a request is a programming error."""
    try:
        request = next(steps)
    except StopIteration as stop:
        result: _T = stop.value
        return result
    steps.close()
    raise TypeError(f"local steps made a request: {request!r}")


def now(function: Callable[..., _T]) -> Callable[..., Steps[_T]]:
    """``function`` as steps that make no request, for code that takes step functions."""

    def steps(*args: Any) -> Steps[_T]:
        return function(*args)
        yield  # pragma: no cover - makes this a generator

    return steps
