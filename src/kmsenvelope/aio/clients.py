"""Per-region aiobotocore clients for the async keyrings and key stores.

aiobotocore is imported when the first client is built, never by ``import kmsenvelope``.
"""

from __future__ import annotations

import functools
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..aws.clients import check_endpoint_url, client_config
from ..errors import ConfigurationError
from .singleflight import SingleFlight

if TYPE_CHECKING:
    from botocore.config import Config

__all__ = ["DEFAULT_MAX_POOL_CONNECTIONS", "AsyncClientSupplier"]

DEFAULT_MAX_POOL_CONNECTIONS = 64
"""Connections per client unless ``config`` says otherwise: concurrent requests beyond it queue."""


class AsyncClientSupplier:
    """Builds one aiobotocore client per (service, region) on first use and closes them all at the end.

    ``await supplier(region)`` is the KMS client for ``region``; ``await supplier.client("dynamodb",
    region)`` any other service's. ``session`` is an ``aiobotocore.session.AioSession`` (default: a new
    one, which reads credentials and region the usual way). ``config`` is a ``botocore.config.Config``
    merged over kmsenvelope's defaults (standard retry mode), as for the blocking
    :class:`~kmsenvelope.aws.clients.ClientSupplier`, except that the connection pool defaults to
    :data:`DEFAULT_MAX_POOL_CONNECTIONS` (botocore's 10 would cap concurrency). ``endpoint_url``
    overrides every client's endpoint.

    Close it with ``async with AsyncClientSupplier() as supplier:`` or ``await supplier.aclose()``;
    a closed supplier refuses to build clients. Use it from one event loop.
    """

    def __init__(
        self, session: Any = None, *, config: Config | None = None, endpoint_url: str | None = None
    ) -> None:
        self._session = session
        self._user_config = config
        self._endpoint_url = check_endpoint_url(endpoint_url)
        self._clients: dict[tuple[str, str], Any] = {}
        self._contexts: list[Any] = []
        self._builds: SingleFlight[Any] = SingleFlight()
        self._closed = False

    @property
    def endpoint_url(self) -> str | None:
        """The endpoint override, if any."""
        return self._endpoint_url

    @property
    def regions(self) -> tuple[str, ...]:
        """Regions for which a KMS client has been built so far."""
        return tuple(sorted(region for service, region in self._clients if service == "kms"))

    @property
    def default_region(self) -> str | None:
        """The session's region, used for key identifiers that carry no region (aliases, bare key ids)."""
        region = self._get_session().get_config_variable("region")
        return region if isinstance(region, str) and region else None

    async def __call__(self, region: str) -> Any:
        """The KMS client for ``region``."""
        return await self.client("kms", region)

    async def client(self, service: str, region: str) -> Any:
        """The ``service`` client for ``region``, built once (concurrent first calls share one build)."""
        if not isinstance(region, str) or not region:
            raise ConfigurationError("an AWS client needs a non-empty region")
        key = (service, region)
        client = self._clients.get(key)
        if client is not None:
            return client
        if self._closed:
            raise ConfigurationError("this AsyncClientSupplier is closed")
        # The build runs in its own task (single flight): cancelling the caller that started it neither
        # stops it nor fails the other callers waiting for the same client.
        return await self._builds.run(key, functools.partial(self._build, service, region))

    async def _build(self, service: str, region: str) -> Any:
        context = self._get_session().create_client(
            service, region_name=region, config=self._config(), endpoint_url=self._endpoint_url
        )
        client = await context.__aenter__()
        if self._closed:  # closed while this client was being built: it would never be closed
            await context.__aexit__(None, None, None)
            raise ConfigurationError("this AsyncClientSupplier is closed")
        self._contexts.append(context)
        self._clients[(service, region)] = client
        return client

    async def aclose(self) -> None:
        """Close every client built so far; later calls fail."""
        self._closed = True
        contexts, self._contexts = self._contexts, []
        self._clients.clear()
        for context in reversed(contexts):
            await context.__aexit__(None, None, None)

    async def __aenter__(self) -> AsyncClientSupplier:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def _config(self) -> Config:
        from botocore.config import Config

        # botocore's default pool of 10 connections would cap an asyncio service at 10 KMS calls in
        # flight; the user's config, merged last, can set any other size.
        base = Config(max_pool_connections=DEFAULT_MAX_POOL_CONNECTIONS)
        user = self._user_config
        return client_config(base if user is None else base.merge(user))

    def _get_session(self) -> Any:
        if self._session is None:
            from aiobotocore.session import get_session

            self._session = get_session()
        return self._session

    def __repr__(self) -> str:
        return f"AsyncClientSupplier(endpoint_url={self._endpoint_url!r}, clients={sorted(self._clients)!r})"
