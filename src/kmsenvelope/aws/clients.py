"""Regional AWS KMS clients for the KMS keyrings.

A *client supplier* is any callable ``region -> boto3 KMS client``. :class:`ClientSupplier` is the
default one: it builds one client per region on first use and reuses it. boto3 is imported only
when the first client is built, so constructing keyrings (and ``import kmsenvelope``) stays cheap and
works without AWS credentials.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from botocore.config import Config

__all__ = ["ClientSupplier", "KmsClientSupplier", "check_endpoint_url", "client_config", "default_region_of"]


@runtime_checkable
class KmsClientSupplier(Protocol):
    """Anything that returns a KMS client for a region."""

    def __call__(self, region: str) -> Any: ...


class ClientSupplier:
    """Builds and caches one boto3 KMS client per region; safe to share between threads.

    ``session`` is a ``boto3.Session`` (default: a new default session, created on first use).
    ``config`` is a ``botocore.config.Config`` merged over kmsenvelope's defaults: standard retry mode,
    so throttling and transient errors are retried with jittered exponential backoff.
    ``endpoint_url`` overrides the KMS endpoint for every region (VPC endpoints, local testing).
    """

    def __init__(
        self, session: Any = None, config: Config | None = None, endpoint_url: str | None = None
    ) -> None:
        check_endpoint_url(endpoint_url)
        self._session = session
        self._user_config = config
        self._endpoint_url = endpoint_url
        self._clients: dict[str, Any] = {}
        # boto3 sessions are not thread-safe; every use of the session happens under this lock.
        self._lock = threading.Lock()

    @property
    def endpoint_url(self) -> str | None:
        """The endpoint override, if any."""
        return self._endpoint_url

    @property
    def regions(self) -> tuple[str, ...]:
        """Regions for which a client has been built so far."""
        with self._lock:
            return tuple(sorted(self._clients))

    @property
    def default_region(self) -> str | None:
        """The session's region, used for key identifiers that carry no region (aliases, bare key ids)."""
        with self._lock:
            region = self._get_session().region_name
        return region if isinstance(region, str) and region else None

    def __call__(self, region: str) -> Any:
        if not isinstance(region, str) or not region:
            raise ConfigurationError("a KMS client needs a non-empty region")
        client = self._clients.get(region)
        if client is not None:
            return client
        with self._lock:
            client = self._clients.get(region)
            if client is None:
                client = self._get_session().client(
                    "kms", region_name=region, config=self._config(), endpoint_url=self._endpoint_url
                )
                self._clients[region] = client
        return client

    def _get_session(self) -> Any:
        if self._session is None:
            import boto3.session

            self._session = boto3.session.Session()
        return self._session

    def _config(self) -> Config:
        return client_config(self._user_config)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled (e.g. inside a keyring sent to a Dask worker) it carries only the endpoint and the
        # botocore config: never the session, whose credentials stay here. The copy builds clients
        # from the receiving process's own default session and credential chain.
        return (ClientSupplier, (None, self._user_config, self._endpoint_url))

    def __repr__(self) -> str:
        return f"ClientSupplier(endpoint_url={self._endpoint_url!r}, regions={sorted(self._clients)!r})"


def client_config(user: Config | None) -> Config:
    """kmsenvelope's client defaults (standard retries, user agent) with ``user``'s settings merged over.

    Shared by the blocking and the async (:mod:`kmsenvelope.aio`) client suppliers.
    """
    from botocore.config import Config

    from .. import __version__

    config = Config(retries={"mode": "standard"}, user_agent_extra=f"kmsenvelope/{__version__}")
    if user is None:
        return config
    config = config.merge(user)
    user_retries = getattr(user, "retries", None)
    if isinstance(user_retries, dict) and "mode" not in user_retries:
        # A user who only sets max_attempts should keep standard-mode backoff, not fall back to legacy.
        retries: Any = {**user_retries, "mode": "standard"}
        config = config.merge(Config(retries=retries))
    return config


def check_endpoint_url(endpoint_url: str | None) -> str | None:
    """``endpoint_url`` if it is ``None`` or a non-empty str."""
    if endpoint_url is not None and (not isinstance(endpoint_url, str) or not endpoint_url):
        raise ConfigurationError("endpoint_url must be a non-empty str")
    return endpoint_url


def default_region_of(supplier: object) -> str | None:
    """The default region a supplier advertises via a ``default_region`` attribute, if any."""
    region = getattr(supplier, "default_region", None)
    return region if isinstance(region, str) and region else None
