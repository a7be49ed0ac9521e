""":class:`AsyncKeyStore`: the DynamoDB branch key store's reads for asyncio.

Every rule (item format checks, KMS encryption context, error messages) is the sync
:class:`~kmsenvelope.aws.branch_key_store.KeyStore`'s sans-IO read steps; only the DynamoDB ``GetItem``
and KMS ``Decrypt`` are awaited. Create and rotate branch keys with the sync ``KeyStore`` (or the CLI):
those are rare administrative operations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..aws.branch_key_store import KeyStore, KeyStoreInfo
from ..aws.key_store import BeaconKeyMaterials, BranchKeyMaterials
from ..aws.requests import DynamoDbRequest, KmsRequest
from ..errors import ConfigurationError
from ._drive import perform_kms, run_async
from .clients import AsyncClientSupplier

__all__ = ["AsyncKeyStore"]


class AsyncKeyStore:
    """Reads branch keys and beacon keys from the key store table ``table_name`` without blocking.

    ``kms_key_arn`` and ``logical_name`` as for the sync ``KeyStore``. ``client_supplier`` is an
    :class:`AsyncClientSupplier`; it also builds the DynamoDB client (in the KMS key's region) unless
    ``ddb_client`` (an aiobotocore DynamoDB client) is given. Uncached: give it to an
    :class:`~kmsenvelope.aio.AsyncHierarchicalKeyring`, which caches with single flight.
    """

    def __init__(
        self,
        table_name: str,
        kms_key_arn: str,
        *,
        client_supplier: AsyncClientSupplier | Any,
        logical_name: str | None = None,
        ddb_client: Any = None,
        grant_tokens: Sequence[str] = (),
        key_store_id: str | None = None,
    ) -> None:
        if not callable(client_supplier):
            raise ConfigurationError("client_supplier must be an AsyncClientSupplier")
        if ddb_client is None and not callable(getattr(client_supplier, "client", None)):
            raise ConfigurationError(
                "give ddb_client, or a client_supplier with an async client(service, region)"
            )
        # The sync store, used only for its rules (argument checks, request steps, errors): never its I/O.
        self._rules = KeyStore(
            table_name,
            kms_key_arn,
            logical_name=logical_name,
            ddb_client=None,
            client_supplier=client_supplier,
            grant_tokens=grant_tokens,
            key_store_id=key_store_id,
        )
        self._supplier = client_supplier
        self._ddb = ddb_client
        self._region = kms_key_arn.split(":")[3]

    @property
    def table_name(self) -> str:
        """The DynamoDB table holding the keys."""
        return self._rules.table_name

    @property
    def logical_name(self) -> str:
        """The logical key store name bound to every key."""
        return self._rules.logical_name

    @property
    def kms_key_arn(self) -> str:
        """The KMS key that protects every key of this store."""
        return self._rules.kms_key_arn

    def get_key_store_info(self) -> KeyStoreInfo:
        """The key store's id, table, logical name, KMS key and grant tokens."""
        return self._rules.get_key_store_info()

    async def get_active_branch_key(self, branch_key_id: str) -> BranchKeyMaterials:
        """The ACTIVE version of ``branch_key_id``: one ``GetItem`` and one KMS ``Decrypt``."""
        return await run_async(self._rules.branch_key_steps(branch_key_id, None), self._perform)

    async def get_branch_key_version(self, branch_key_id: str, version: str) -> BranchKeyMaterials:
        """Version ``version`` of ``branch_key_id``: one ``GetItem`` and one KMS ``Decrypt``."""
        return await run_async(self._rules.branch_key_steps(branch_key_id, version), self._perform)

    async def get_beacon_key(self, branch_key_id: str) -> BeaconKeyMaterials:
        """The beacon key of ``branch_key_id``: one ``GetItem`` and one KMS ``Decrypt``."""
        return await run_async(self._rules.beacon_key_steps(branch_key_id), self._perform)

    async def _perform(self, request: KmsRequest | DynamoDbRequest) -> Any:
        if isinstance(request, DynamoDbRequest):
            client = self._ddb
            if client is None:
                client = await self._supplier.client("dynamodb", self._region)
            return await getattr(client, request.method)(**request.params)
        return await perform_kms(self._supplier, request)

    def __repr__(self) -> str:
        return f"Async{self._rules!r}"
