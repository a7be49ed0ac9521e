"""A local AWS for tests: moto's server in-process on 127.0.0.1, reached by real boto3 over HTTP.

``with local_aws() as aws:`` starts ``moto.server.ThreadedMotoServer`` on a free port, installs the
:mod:`~kmsenvelope.testing.moto_patches`, and puts the :mod:`~kmsenvelope.testing.interceptor` in front
of it. The pytest fixture ``kmsenvelope_local_aws`` (``kmsenvelope.testing.pytest_plugin``) shares one
server per test session and resets faults and recordings around every test.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ..aws.clients import ClientSupplier
from . import moto_patches
from .interceptor import LATENCY, TIMEOUT, Interceptor, RecordedRequest

__all__ = ["ACCOUNT_ID", "LATENCY", "TIMEOUT", "LocalAws", "MrkKey", "RsaKey", "local_aws"]

ACCOUNT_ID = "123456789012"
"""The account moto puts every resource in."""
DEFAULT_REGION = "us-east-1"
_DUMMY = "testing"


@dataclass(frozen=True)
class MrkKey:
    """A multi-Region key: the primary's ARN and one ARN per region that holds a copy."""

    primary: str
    arns: Mapping[str, str]

    def arn(self, region: str) -> str:
        """The key's ARN in ``region`` (primary or replica)."""
        return self.arns[region]


@dataclass(frozen=True)
class RsaKey:
    """An RSA ``ENCRYPT_DECRYPT`` KMS key and its public key as PEM."""

    arn: str
    public_key_pem: bytes


class LocalAws:
    """Handle on a running local AWS endpoint. Build it with :func:`local_aws`."""

    def __init__(self, endpoint_url: str, interceptor: Interceptor, config_dir: str) -> None:
        import boto3.session

        self.endpoint_url = endpoint_url
        self.account_id = ACCOUNT_ID
        self.region = DEFAULT_REGION
        self.session: Any = boto3.session.Session(
            aws_access_key_id=_DUMMY, aws_secret_access_key=_DUMMY, region_name=DEFAULT_REGION
        )
        self._interceptor = interceptor
        self._config_dir = config_dir
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalAws(endpoint_url={self.endpoint_url!r})"

    # -- clients ----------------------------------------------------------------------------------

    def client(self, service: str, region: str | None = None) -> Any:
        """A cached boto3 client for ``service`` in ``region`` talking to the local endpoint."""
        region = region or DEFAULT_REGION
        with self._lock:
            client = self._clients.get((service, region))
            if client is None:
                client = self.session.client(service, region_name=region, endpoint_url=self.endpoint_url)
                self._clients[(service, region)] = client
        return client

    def client_supplier(self, config: Any = None) -> ClientSupplier:
        """A kmsenvelope :class:`ClientSupplier` for the local endpoint (``config``: a botocore Config)."""
        return ClientSupplier(session=self.session, config=config, endpoint_url=self.endpoint_url)

    def aio_session(self) -> Any:
        """An aiobotocore session with this endpoint's dummy credentials and default region."""
        from aiobotocore.session import get_session

        session = get_session()
        session.set_credentials(_DUMMY, _DUMMY)
        session.set_config_variable("region", DEFAULT_REGION)
        return session

    def async_client_supplier(self, config: Any = None) -> Any:
        """A :class:`kmsenvelope.aio.AsyncClientSupplier` for the local endpoint; close it when done."""
        from ..aio.clients import AsyncClientSupplier

        return AsyncClientSupplier(self.aio_session(), config=config, endpoint_url=self.endpoint_url)

    def botocore_session(self, region: str | None = None) -> Any:
        """A botocore session whose clients all use the local endpoint, for libraries that take one
        (e.g. the AWS Encryption SDK's KMS master key providers).

        The endpoint is set the way a user would: ``endpoint_url`` in the session's config file.
        """
        import botocore.session

        path = os.path.join(self._config_dir, f"config-{region or DEFAULT_REGION}")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(
                f"[default]\nregion = {region or DEFAULT_REGION}\nendpoint_url = {self.endpoint_url}\n"
            )
        session = botocore.session.Session()
        session.set_config_variable("config_file", path)
        session.set_config_variable("credentials_file", os.path.join(self._config_dir, "no-credentials"))
        session.set_config_variable("profile", "default")
        session.set_credentials(_DUMMY, _DUMMY)
        return session

    # -- keys -------------------------------------------------------------------------------------

    def create_key(self, region: str | None = None, *, description: str = "") -> str:
        """A new symmetric ``ENCRYPT_DECRYPT`` key; returns its ARN."""
        response = self.client("kms", region).create_key(Description=description or "kmsenvelope test key")
        return str(response["KeyMetadata"]["Arn"])

    def create_mrk(self, primary_region: str, replica_regions: tuple[str, ...] | list[str] = ()) -> MrkKey:
        """A multi-Region key in ``primary_region``, replicated to each of ``replica_regions``."""
        kms = self.client("kms", primary_region)
        metadata = kms.create_key(MultiRegion=True, Description="kmsenvelope test MRK")["KeyMetadata"]
        primary = str(metadata["Arn"])
        arns = {primary_region: primary}
        for region in replica_regions:
            # moto's ReplicateKey accepts only the bare key id, not the ARN.
            replica = kms.replicate_key(KeyId=metadata["KeyId"], ReplicaRegion=region)
            arns[region] = str(replica["ReplicaKeyMetadata"]["Arn"])
        return MrkKey(primary=primary, arns=MappingProxyType(arns))

    def create_rsa_key(self, region: str | None = None, key_spec: str = "RSA_2048") -> RsaKey:
        """A new RSA ``ENCRYPT_DECRYPT`` key and its PEM public key (from ``GetPublicKey``)."""
        from cryptography.hazmat.primitives import serialization

        kms = self.client("kms", region)
        arn = str(kms.create_key(KeySpec=key_spec, KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["Arn"])
        der = kms.get_public_key(KeyId=arn)["PublicKey"]
        pem = serialization.load_der_public_key(der).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return RsaKey(arn=arn, public_key_pem=pem)

    # moto's DisableKey, EnableKey and ScheduleKeyDeletion look keys up by bare key id only.

    def disable_key(self, arn: str) -> None:
        """Disable the key (in the ARN's region)."""
        self.client("kms", _region_of(arn)).disable_key(KeyId=_key_id_of(arn))

    def enable_key(self, arn: str) -> None:
        """Enable the key (in the ARN's region)."""
        self.client("kms", _region_of(arn)).enable_key(KeyId=_key_id_of(arn))

    def schedule_key_deletion(self, arn: str, days: int = 7) -> None:
        """Put the key in ``PendingDeletion`` (in the ARN's region)."""
        self.client("kms", _region_of(arn)).schedule_key_deletion(
            KeyId=_key_id_of(arn), PendingWindowInDays=days
        )

    # -- faults and recordings --------------------------------------------------------------------

    def inject_fault(
        self,
        operation: str,
        error: str = "ThrottlingException",
        *,
        count: int = 1,
        region: str | None = None,
        service: str | None = "kms",
        stall_seconds: float = 5.0,
        message: str = "injected by kmsenvelope.testing",
    ) -> None:
        """Fail the next ``count`` ``operation`` requests (optionally only in ``region``).

        ``error`` is an AWS error code answered over HTTP, or :data:`TIMEOUT` to hold each request for
        ``stall_seconds`` so a client with a shorter read timeout gives up.
        """
        self._interceptor.add_fault(
            operation,
            error,
            count=count,
            region=region,
            service=service,
            stall_seconds=stall_seconds,
            message=message,
        )

    def inject_latency(
        self,
        operation: str,
        seconds: float,
        *,
        count: int = 1,
        region: str | None = None,
        service: str | None = "kms",
    ) -> None:
        """Delay the next ``count`` ``operation`` requests by ``seconds`` each, then answer them normally.

        Delays overlap: concurrent requests are each held ``seconds``, as a slow AWS endpoint would.
        :meth:`max_concurrent_delays` tells how many were held at the same time.
        """
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 600:
            raise ValueError("seconds must be a number between 0 and 600")
        self._interceptor.add_fault(
            operation,
            LATENCY,
            count=count,
            region=region,
            service=service,
            stall_seconds=float(seconds),
            message="",
        )

    def max_concurrent_delays(self) -> int:
        """The most requests held by :meth:`inject_latency` at the same moment since the last reset."""
        return self._interceptor.max_concurrent_delays()

    def pending_faults(self) -> int:
        """How many injected failures (and latencies) have not been delivered yet."""
        return self._interceptor.pending_faults()

    def requests(
        self, operation: str | None = None, *, region: str | None = None, service: str | None = "kms"
    ) -> tuple[RecordedRequest, ...]:
        """Requests received since the last :meth:`reset`, oldest first, filtered as given."""
        return tuple(
            r
            for r in self._interceptor.requests()
            if (operation is None or r.operation == operation)
            and (region is None or r.region == region)
            and (service is None or r.service == service)
        )

    def reset(self) -> None:
        """Forget recordings and pending faults (keys and other AWS resources stay)."""
        self._interceptor.reset()


def _region_of(arn: str) -> str:
    return arn.split(":")[3]


def _key_id_of(arn: str) -> str:
    return arn.rpartition(":key/")[2] if arn.startswith("arn:") else arn


@contextlib.contextmanager
def local_aws() -> Iterator[LocalAws]:
    """Run a patched moto server on 127.0.0.1 at a free port for the duration of the block."""
    from moto.server import ThreadedMotoServer

    # werkzeug prints a line per request to stderr unless its logger has a level; keep it to warnings.
    werkzeug_logger = logging.getLogger("werkzeug")
    quieted = werkzeug_logger.level == logging.NOTSET
    if quieted:
        werkzeug_logger.setLevel(logging.WARNING)
    moto_patches.apply()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    interceptor: Interceptor | None = None
    try:
        server.start()
        wsgi_server = server._server  # moto exposes no hook for WSGI middleware
        if wsgi_server is None:
            raise RuntimeError("moto's ThreadedMotoServer exposes no WSGI server after start()")
        interceptor = Interceptor(wsgi_server.app)
        # werkzeug looks up ``server.app`` per request, so wrapping it here covers every request.
        wsgi_server.app = interceptor
        host, port = server.get_host_and_port()
        with tempfile.TemporaryDirectory(prefix="kmsenvelope-local-aws-") as config_dir:
            yield LocalAws(f"http://{host}:{port}", interceptor, config_dir)
    finally:
        if interceptor is not None:
            interceptor.reset()
        server.stop()
        with contextlib.suppress(Exception):
            if server._server is not None:
                server._server.server_close()
        moto_patches.revert()
        if quieted:
            werkzeug_logger.setLevel(logging.NOTSET)
