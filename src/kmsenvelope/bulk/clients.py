"""boto3 clients that can travel to workers: rebuilt from region, endpoint and botocore config.

A client object holds credentials and connection pools, so it is never pickled. What travels is a
:class:`ClientRecipe` (service, region, endpoint URL, botocore ``Config``); each worker builds its own
client from it with its own credential chain (instance role, environment, ``~/.aws``). A zero-argument
callable that returns a client travels as it is, so it must pickle (a module-level function or a
``functools.partial`` of ``boto3.client``, not a lambda).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError

__all__ = ["ClientRecipe", "ClientSource", "client_source"]


@dataclass(frozen=True)
class ClientRecipe:
    """How to build a boto3 client on a worker: never credentials, only where to connect and how."""

    service: str
    region: str | None
    endpoint_url: str | None = None
    config: Any = None  # a botocore.config.Config

    def __call__(self) -> Any:
        import boto3.session

        session: Any = boto3.session.Session()
        return session.client(
            self.service, region_name=self.region, endpoint_url=self.endpoint_url, config=self.config
        )


ClientSource = Callable[[], Any]


def _recipe_of(client: Any, service: str) -> ClientRecipe:
    meta = getattr(client, "meta", None)
    service_model = getattr(meta, "service_model", None)
    name = getattr(service_model, "service_name", None)
    if meta is None or name is None:
        raise ConfigurationError(
            f"expected a boto3 {service} client or a zero-argument callable returning one"
        )
    if name != service:
        raise ConfigurationError(f"expected a boto3 {service} client, got a {name} client")
    endpoint = getattr(meta, "endpoint_url", None)
    # boto3 fills in the regional AWS endpoint itself; only a non-AWS override must travel.
    if isinstance(endpoint, str) and endpoint.endswith(".amazonaws.com"):
        endpoint = None
    return ClientRecipe(service, meta.region_name, endpoint, getattr(meta, "config", None))


class _Local:
    """The caller's own client, used as is when tasks run in the calling process."""

    def __init__(self, client: Any, recipe: ClientRecipe) -> None:
        self.client = client
        self.recipe = recipe

    def __call__(self) -> Any:
        return self.client

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.recipe,))


def _rebuild(recipe: ClientRecipe) -> ClientRecipe:
    return recipe


def client_source(client: Any, service: str) -> ClientSource:
    """A picklable zero-argument source of ``service`` clients for ``client`` (a client or a callable).

    In the calling process it returns the caller's client itself; pickled, it becomes a
    :class:`ClientRecipe`.
    """
    if client is None:
        raise ConfigurationError(f"a boto3 {service} client (or a zero-argument callable) is required")
    if hasattr(client, "meta") and hasattr(client, "_make_api_call"):
        return _Local(client, _recipe_of(client, service))
    if callable(client):
        return client  # type: ignore[no-any-return]
    raise ConfigurationError(f"expected a boto3 {service} client or a zero-argument callable returning one")


def check_picklable(what: str, value: object) -> None:
    """Raise a clear error now rather than a Dask/multiprocessing traceback later."""
    try:
        pickle.dumps(value)
    except Exception as exc:
        raise ConfigurationError(
            f"{what} must pickle to run on a process pool or cluster ({type(exc).__name__}: {exc}); "
            "see docs/bulk.md#what-travels-to-workers"
        ) from None
