"""A WSGI layer in front of the moto server: records every AWS request and injects faults.

Recording lets tests assert what reached AWS (operation, region, ``KeyId``, ``EncryptionContext``,
``GrantTokens``). Fault injection answers the next N matching requests over HTTP with an AWS error
(``ThrottlingException``, ``AccessDeniedException``, ...) or stalls them past the client's read timeout,
which is how AWS throttling and network trouble look to botocore's retry logic.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qs

__all__ = ["TIMEOUT", "Interceptor", "RecordedRequest"]

TIMEOUT = "timeout"
"""Fault kind: hold the request for ``stall_seconds`` before moto answers it."""

_REDACTED = ("Plaintext",)
_CREDENTIAL_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")
_STATUS = {"KMSInternalException": 500, "InternalFailure": 500, "ServiceUnavailable": 503}

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it reached the local AWS endpoint. Plaintext fields are redacted."""

    service: str
    operation: str
    region: str
    params: Mapping[str, Any]
    timestamp: float
    fault: str | None = None
    """The injected fault this request received, if any."""
    access_key_id: str = ""
    """The access key id the request was signed with (never the secret)."""
    request_bytes: int = 0
    """Length of the request body (what the client uploaded)."""
    response_bytes: int = 0
    """Length of the response body (what the client downloaded); 0 for injected faults."""

    @property
    def key_id(self) -> str | None:
        """The request's ``KeyId`` parameter, if any."""
        value = self.params.get("KeyId")
        return value if isinstance(value, str) else None


@dataclass
class _Fault:
    operation: str
    error: str
    remaining: int
    region: str | None
    service: str | None
    stall_seconds: float
    message: str

    def matches(self, service: str, operation: str, region: str) -> bool:
        return (
            self.remaining > 0
            and self.operation == operation
            and (self.region is None or self.region == region)
            and (self.service is None or self.service == service)
        )


@dataclass
class _State:
    faults: list[_Fault] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


class Interceptor:
    """Wraps a WSGI app (moto's dispatcher); thread-safe."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._state = _State()

    def add_fault(
        self,
        operation: str,
        error: str,
        *,
        count: int,
        region: str | None,
        service: str | None,
        stall_seconds: float,
        message: str,
    ) -> None:
        """Queue a fault for the next ``count`` matching requests."""
        if count < 1:
            raise ValueError("count must be >= 1")
        with self._lock:
            self._state.faults.append(
                _Fault(operation, error, count, region, service, stall_seconds, message)
            )

    def pending_faults(self) -> int:
        """How many injected failures have not been delivered yet."""
        with self._lock:
            return sum(f.remaining for f in self._state.faults)

    def requests(self) -> tuple[RecordedRequest, ...]:
        """Every request since the last reset, oldest first."""
        with self._lock:
            return tuple(self._state.requests)

    def reset(self) -> None:
        """Drop pending faults and recordings, and release any stalled request."""
        with self._lock:
            old, self._state = self._state, _State()
        old.release.set()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        access_key_id, service, region = _scope(environ.get("HTTP_AUTHORIZATION", ""))
        operation, params = _operation(environ, body)

        with self._lock:
            state = self._state
            fault = next((f for f in state.faults if f.matches(service, operation, region)), None)
            if fault is not None:
                fault.remaining -= 1
            record = RecordedRequest(
                service=service,
                operation=operation,
                region=region,
                params=MappingProxyType(params),
                timestamp=time.time(),
                fault=fault.error if fault is not None else None,
                access_key_id=access_key_id,
                request_bytes=len(body),
            )
            state.requests.append(record)

        if fault is None:
            # moto builds whole responses anyway; holding them lets the record carry their size.
            chunks = list(self._app(environ, start_response))
            sized = dataclasses.replace(record, response_bytes=sum(len(chunk) for chunk in chunks))
            with self._lock:
                for index in range(len(state.requests) - 1, -1, -1):
                    if state.requests[index] is record:
                        state.requests[index] = sized
                        break
            return chunks
        if fault.error == TIMEOUT:
            # Hold the connection until the client has given up; reset() releases it early.
            state.release.wait(fault.stall_seconds)
            return self._app(environ, start_response)
        payload = json.dumps({"__type": fault.error, "message": fault.message}).encode("utf-8")
        start_response(
            f"{_STATUS.get(fault.error, 400)} Injected",
            [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("Content-Length", str(len(payload))),
                ("x-amzn-RequestId", "kmsenvelope-injected-fault"),
            ],
        )
        return [payload]


def _scope(authorization: str) -> tuple[str, str, str]:
    match = _CREDENTIAL_SCOPE.search(authorization)
    if match is None:
        return "", "", ""
    return match.group(1), match.group(3), match.group(2)


def _operation(environ: Mapping[str, Any], body: bytes) -> tuple[str, dict[str, Any]]:
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target:
        operation = target.rpartition(".")[2]
        try:
            decoded = json.loads(body) if body else {}
        except ValueError:
            decoded = {}
        params = dict(decoded) if isinstance(decoded, dict) else {}
    else:
        # Only query-protocol requests are forms; parsing an S3 object body as one takes seconds per MiB.
        is_form = str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded")
        form = parse_qs(body.decode("utf-8", "replace")) if body and is_form else {}
        params = {k: v[0] if len(v) == 1 else v for k, v in form.items()}
        operation = str(params.get("Action", "")) or str(environ.get("PATH_INFO", ""))
    for name in _REDACTED:
        if name in params:
            params[name] = "<redacted>"
    return operation, params
