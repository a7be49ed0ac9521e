"""Blocking views of async keyrings, materials managers and key stores, for code running in worker threads.

The DynamoDB transformations (:mod:`kmsenvelope.dynamodb`) are sync code. The async DynamoDB client runs
them in worker threads; when they need a data key or a branch key, these bridges submit the async call
to the event loop the request came from and wait for it there. So the keyring's I/O is still awaited on
the loop, and its caches and single flight coordinate every request of the process.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from ..aws.key_store import BeaconKeyMaterials, BranchKeyMaterials
from ..errors import ConfigurationError
from ..keyrings.hierarchical import HierarchicalKeyring
from ..materials.materials import (
    AnySuite,
    DecryptionMaterials,
    DecryptionRequest,
    EncryptedDataKey,
    EncryptionMaterials,
    EncryptionRequest,
)
from .hierarchical import AsyncHierarchicalKeyring

__all__ = ["LOOP", "BlockingKeyStore", "bridge_source", "wait_on_loop"]

_T = TypeVar("_T")

LOOP: contextvars.ContextVar[asyncio.AbstractEventLoop] = contextvars.ContextVar("kmsenvelope_aio_loop")
"""The event loop of the request a worker thread is serving (set by the async client, copied to threads)."""


def wait_on_loop(call: Callable[..., Awaitable[_T]], *args: Any) -> _T:
    """Run ``call(*args)`` on the request's event loop and wait for it (from a worker thread only)."""
    loop = LOOP.get(None)
    if loop is None:
        raise ConfigurationError("async keyrings can only be used through kmsenvelope.aio")
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        raise ConfigurationError("a blocking bridge was called on its own event loop (it would deadlock)")

    async def run() -> _T:
        return await call(*args)

    return asyncio.run_coroutine_threadsafe(run(), loop).result()


class _Keyring:
    def __init__(self, keyring: Any) -> None:
        self._keyring = keyring

    def on_encrypt(self, materials: EncryptionMaterials) -> EncryptionMaterials:
        result: EncryptionMaterials = wait_on_loop(self._keyring.on_encrypt, materials)
        return result

    def on_decrypt(
        self, materials: DecryptionMaterials, edks: Sequence[EncryptedDataKey]
    ) -> DecryptionMaterials:
        result: DecryptionMaterials = wait_on_loop(self._keyring.on_decrypt, materials, edks)
        return result

    def __repr__(self) -> str:
        return f"blocking({self._keyring!r})"


class _RecordKeyring(_Keyring):
    def fresh_record_key(
        self, suite: AnySuite, context: Mapping[str, str]
    ) -> tuple[bytes, EncryptedDataKey, bytes]:
        result: tuple[bytes, EncryptedDataKey, bytes] = wait_on_loop(
            self._keyring.fresh_record_key, suite, context
        )
        return result

    def open_record_key(
        self, suite: AnySuite, context: Mapping[str, str], edks: Sequence[EncryptedDataKey]
    ) -> tuple[bytes, bytes]:
        result: tuple[bytes, bytes] = wait_on_loop(self._keyring.open_record_key, suite, context, edks)
        return result


class _Materials:
    def __init__(self, manager: Any) -> None:
        self._manager = manager

    def get_encryption_materials(self, request: EncryptionRequest) -> EncryptionMaterials:
        result: EncryptionMaterials = wait_on_loop(self._manager.get_encryption_materials, request)
        return result

    def decrypt_materials(self, request: DecryptionRequest) -> DecryptionMaterials:
        result: DecryptionMaterials = wait_on_loop(self._manager.decrypt_materials, request)
        return result

    def __repr__(self) -> str:
        return f"blocking({self._manager!r})"


class BlockingKeyStore:
    """A sync :class:`~kmsenvelope.aws.key_store.BranchKeyStore` over an :class:`AsyncKeyStore`, for
    beacon key sources used by :mod:`kmsenvelope.aio.dynamodb` (whose transformations run in threads)."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def get_active_branch_key(self, branch_key_id: str) -> BranchKeyMaterials:
        result: BranchKeyMaterials = wait_on_loop(self._store.get_active_branch_key, branch_key_id)
        return result

    def get_branch_key_version(self, branch_key_id: str, version: str) -> BranchKeyMaterials:
        result: BranchKeyMaterials = wait_on_loop(self._store.get_branch_key_version, branch_key_id, version)
        return result

    def get_beacon_key(self, branch_key_id: str) -> BeaconKeyMaterials:
        result: BeaconKeyMaterials = wait_on_loop(self._store.get_beacon_key, branch_key_id)
        return result

    def __repr__(self) -> str:
        return f"BlockingKeyStore({self._store!r})"


class _Hierarchical(HierarchicalKeyring):
    """An :class:`AsyncHierarchicalKeyring` seen as a sync ``HierarchicalKeyring``.

    Only so that beacons find its key store and branch key id as they do with the sync keyring; every
    operation goes to the async keyring (its cache, its single flight), never to this object's own cache.
    """

    def __init__(self, keyring: AsyncHierarchicalKeyring) -> None:
        super().__init__(BlockingKeyStore(keyring.key_store), branch_key_id=keyring.branch_key_id)
        self._async = _RecordKeyring(keyring)

    def on_encrypt(self, materials: EncryptionMaterials) -> EncryptionMaterials:
        return self._async.on_encrypt(materials)

    def on_decrypt(
        self, materials: DecryptionMaterials, edks: Sequence[EncryptedDataKey]
    ) -> DecryptionMaterials:
        return self._async.on_decrypt(materials, edks)

    def fresh_record_key(
        self, suite: AnySuite, context: Mapping[str, str]
    ) -> tuple[bytes, EncryptedDataKey, bytes]:
        return self._async.fresh_record_key(suite, context)

    def open_record_key(
        self, suite: AnySuite, context: Mapping[str, str], edks: Sequence[EncryptedDataKey]
    ) -> tuple[bytes, bytes]:
        return self._async.open_record_key(suite, context, edks)


def _is_async(method: object) -> bool:
    return inspect.iscoroutinefunction(method)


def bridge_source(source: Any) -> Any:
    """A sync keyring or materials manager for ``source``: itself if it is sync, else a blocking bridge."""
    if _is_async(getattr(source, "get_encryption_materials", None)):
        return _Materials(source)
    if not _is_async(getattr(source, "on_encrypt", None)):
        return source
    if isinstance(source, AsyncHierarchicalKeyring):
        if source.branch_key_id is not None:
            return _Hierarchical(source)
        return _RecordKeyring(source)
    if _is_async(getattr(source, "fresh_record_key", None)):
        return _RecordKeyring(source)
    return _Keyring(source)
