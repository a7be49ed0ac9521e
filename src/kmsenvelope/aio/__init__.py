"""kmsenvelope for asyncio: the same formats, keyrings' rules, caches and errors, without blocking the loop.

Install the ``aio`` extra (aiobotocore). Nothing here is imported by ``import kmsenvelope``, and
aiobotocore itself is imported only when the first client is built. See ``docs/async.md``.
"""

from __future__ import annotations

from .clients import AsyncClientSupplier
from .envelope import INLINE_LIMIT, AsyncEnvelope
from .hierarchical import AsyncHierarchicalKeyring
from .key_store import AsyncKeyStore
from .keyrings import AsyncKmsDiscoveryKeyring, AsyncKmsKeyring
from .materials import AsyncCachingMaterials, AsyncDefaultMaterials, as_async_materials_manager
from .protocols import AsyncKeyring, AsyncMaterialsManager
from .singleflight import SingleFlight

__all__ = [
    "INLINE_LIMIT",
    "AsyncCachingMaterials",
    "AsyncClientSupplier",
    "AsyncDefaultMaterials",
    "AsyncEnvelope",
    "AsyncHierarchicalKeyring",
    "AsyncKeyStore",
    "AsyncKeyring",
    "AsyncKmsDiscoveryKeyring",
    "AsyncKmsKeyring",
    "AsyncMaterialsManager",
    "SingleFlight",
    "as_async_materials_manager",
]
