"""``kmsenvelope.aio.dynamodb``: the encrypted DynamoDB client for asyncio, over aiobotocore.

Same operations, beacons, projections and policies as :class:`kmsenvelope.dynamodb.EncryptedClient`,
because they *are* its request and response transformations (:mod:`kmsenvelope.dynamodb.operations`).
What differs is the I/O: DynamoDB calls are awaited on the event loop, the transformations (encryption,
decryption, beacons: CPU work) run in a pool of worker threads so they never hold the loop, and data
keys and branch keys come from the table's async keyring on the loop, through its caches and single
flight. Async keyrings and materials managers (``AsyncHierarchicalKeyring``, ``AsyncKmsKeyring``,
``AsyncCachingMaterials``) and sync local ones are accepted in :class:`~kmsenvelope.dynamodb.TableConfig`.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar

from ..dynamodb.beacon_keys import BeaconKeySource
from ..dynamodb.client import EncryptedClient as SyncEncryptedClient
from ..dynamodb.config import TableConfig
from ..dynamodb.operations import TableOperations
from ..errors import ConfigurationError
from ._bridge import LOOP, BlockingKeyStore, bridge_source, wait_on_loop

__all__ = ["DEFAULT_WORKERS", "BlockingKeyStore", "EncryptedClient", "async_beacon_source"]

DEFAULT_WORKERS = 16
"""Worker threads for the transformations of one client (each request holds one only while it runs)."""

_T = TypeVar("_T")
_DELEGATED = (
    "batch_write_item",
    "batch_get_item",
    "transact_write_items",
    "transact_get_items",
    "execute_statement",
    "batch_execute_statement",
    "execute_transaction",
)


def async_beacon_source(keyring: Any) -> BeaconKeySource:
    """The beacon key source of an :class:`AsyncHierarchicalKeyring` with a fixed branch key id: its
    key store (seen as blocking from the worker threads) and branch key id, as for the sync keyring."""
    from .hierarchical import AsyncHierarchicalKeyring

    if not isinstance(keyring, AsyncHierarchicalKeyring) or keyring.branch_key_id is None:
        raise ConfigurationError(
            "beacons need a beacon key: add BeaconKeySource(key_store, beacon_key_id) to beacons, or use "
            "a hierarchical keyring with a fixed branch_key_id"
        )
    return BeaconKeySource(BlockingKeyStore(keyring.key_store), keyring.branch_key_id)


class _BlockingClient:
    """The aiobotocore client as the blocking client the sync ``EncryptedClient`` expects (threads only)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._client, name)

        def call(**params: Any) -> Any:
            return wait_on_loop(functools.partial(method, **params))

        return call


class EncryptedClient:
    """Wraps an aiobotocore DynamoDB client; ``tables`` maps table names to their :class:`TableConfig`.

    Every method of the sync client is a coroutine here: ``put_item``, ``get_item``, ``delete_item``,
    ``update_item``, ``query``, ``scan`` (and :meth:`paginate` for query/scan pages), ``batch_write_item``,
    ``batch_get_item``, ``transact_write_items``, ``transact_get_items`` and the PartiQL refusals. Other
    attributes pass through to the wrapped client. Close with ``async with`` or :meth:`aclose` (it stops
    the worker threads; the aiobotocore client stays yours to close).
    """

    def __init__(
        self, client: Any, tables: Mapping[str, TableConfig], *, workers: int = DEFAULT_WORKERS
    ) -> None:
        if not isinstance(tables, Mapping):
            raise ConfigurationError("tables must map DynamoDB table names to TableConfig objects")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigurationError("workers must be a positive int")
        bridged = {
            name: dataclasses.replace(config, keyring=bridge_source(config.keyring))
            if isinstance(config, TableConfig)
            else config
            for name, config in tables.items()
        }
        self._client = client
        self._sync = SyncEncryptedClient(_BlockingClient(client), bridged)
        self._workers = workers
        self._executor: ThreadPoolExecutor | None = None

    @property
    def client(self) -> Any:
        """The wrapped aiobotocore client."""
        return self._client

    def operations(self, table: object) -> TableOperations | None:
        """The encryption of ``table`` (a name or ARN), or ``None`` when it is not configured."""
        return self._sync.operations(table)

    async def _work(self, function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """``function(*args, **kwargs)`` in a worker thread that can reach this loop's async keyrings."""
        loop = asyncio.get_running_loop()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="kmsenvelope-aio")
        LOOP.set(loop)
        context = contextvars.copy_context()
        return await loop.run_in_executor(
            self._executor, functools.partial(context.run, function, *args, **kwargs)
        )

    # -- single items ----------------------------------------------------------------------------

    async def put_item(self, **params: Any) -> dict[str, Any]:
        """PutItem with the item encrypted; ``Attributes`` (ReturnValues=ALL_OLD) decrypted."""
        ops = self.operations(params.get("TableName"))
        if ops is None:
            return dict(await self._client.put_item(**params))
        request = await self._work(ops.before_put, params)
        response = dict(await self._client.put_item(**request))
        return await self._work(ops.after_write, response, params)

    async def get_item(self, **params: Any) -> dict[str, Any]:
        """GetItem with the item decrypted (and cut down to ``ProjectionExpression``)."""
        ops = self.operations(params.get("TableName"))
        if ops is None:
            return dict(await self._client.get_item(**params))
        request, projection = ops.before_get(params)
        response = dict(await self._client.get_item(**request))
        return await self._work(ops.after_get, response, projection)

    async def delete_item(self, **params: Any) -> dict[str, Any]:
        """DeleteItem; ``Attributes`` (ReturnValues=ALL_OLD) decrypted."""
        ops = self.operations(params.get("TableName"))
        if ops is None:
            return dict(await self._client.delete_item(**params))
        ops.check_write(params)
        response = dict(await self._client.delete_item(**params))
        return await self._work(ops.after_write, response, params)

    async def update_item(self, **params: Any) -> dict[str, Any]:
        """UpdateItem of attributes allowed unsigned only; whole-item ``Attributes`` decrypted."""
        ops = self.operations(params.get("TableName"))
        if ops is None:
            return dict(await self._client.update_item(**params))
        ops.check_update(params)
        response = dict(await self._client.update_item(**params))
        return await self._work(ops.after_write, response, params)

    # -- queries -----------------------------------------------------------------------------------

    async def query(self, **params: Any) -> dict[str, Any]:
        """Query with beacons substituted, items decrypted and beacon false positives dropped."""
        return await self._read("query", params)

    async def scan(self, **params: Any) -> dict[str, Any]:
        """Scan with beacons substituted, items decrypted and beacon false positives dropped."""
        return await self._read("scan", params)

    async def _read(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        method = getattr(self._client, operation)
        ops = self.operations(params.get("TableName"))
        if ops is None:
            return dict(await method(**params))
        request, plan = await self._work(ops.before_read, params)
        response = dict(await method(**request))
        return await self._work(ops.after_read, response, plan)

    async def paginate(self, operation_name: str, **params: Any) -> AsyncIterator[dict[str, Any]]:
        """Every page of a ``query`` or ``scan``, decrypted and filtered like :meth:`query`."""
        if operation_name not in ("query", "scan"):
            raise ConfigurationError("paginate supports 'query' and 'scan'")
        request = dict(params)
        while True:
            page = await self._read(operation_name, request)
            yield page
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    # -- batches, transactions, PartiQL --------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        if name in _DELEGATED:
            sync_method = getattr(self._sync, name)

            async def delegated(**params: Any) -> dict[str, Any]:
                result: dict[str, Any] = await self._work(sync_method, **params)
                return result

            delegated.__name__ = name
            delegated.__doc__ = sync_method.__doc__
            return delegated
        return getattr(self._client, name)

    async def aclose(self) -> None:
        """Stop the worker threads (waiting for running transformations)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(None, executor.shutdown)

    async def __aenter__(self) -> EncryptedClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"aio.dynamodb.EncryptedClient(tables={sorted(self._sync._tables)!r})"
