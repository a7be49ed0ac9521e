"""The branch key store on Amazon DynamoDB, with branch keys protected by AWS KMS.

Source: awslabs/aws-encryption-sdk-specification ``framework/branch-key-store.md`` (hierarchy version 1,
the one the MPL's ``KeyStore`` writes and reads); attribute names and encryption contexts as the MPL's
``AwsCryptographyKeyStore``, so a table is shared with the AWS Encryption SDK and the AWS Database
Encryption SDK in both directions.

Table layout (partition key ``branch-key-id``, sort key ``type``, both strings). Each branch key id has::

    type = "branch:version:<uuid>"   one item per version ("DECRYPT_ONLY"), never changed
    type = "branch:ACTIVE"           a copy of the newest version, plus version = "branch:version:<uuid>"
    type = "beacon:ACTIVE"           the beacon key for searchable encryption

Every item also holds ``enc`` (B: the KMS ciphertext of the 32-byte key), ``create-time`` (S, ISO 8601
UTC with microseconds), ``kms-arn`` (S), ``hierarchy-version`` (N, ``1``) and one ``aws-crypto-ec:<k>``
(S) attribute per pair of custom encryption context. The AWS KMS encryption context of ``enc`` is every
attribute of the item except ``enc``, plus ``tablename`` = the logical key store name, so KMS refuses to
decrypt an item whose attributes were changed, added or removed, or which was copied from a key store
with another logical name.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError, KeyStoreError
from .accounting import call_kms, error_code
from .arn import parse_arn
from .branch_key_items import (
    ACTIVE_TYPE,
    BEACON_TYPE,
    BRANCH_KEY_ID,
    CREATE_TIME,
    CUSTOM_CONTEXT_PREFIX,
    ENC,
    HIERARCHY_V1,
    HIERARCHY_VERSION,
    KMS_ARN,
    TABLE_NAME,
    TYPE,
    VERSION,
    VERSION_TYPE_PREFIX,
    active_context,
    check_custom_context,
    check_id,
    custom_context,
    parse_item,
    timestamp,
    to_item,
)
from .clients import ClientSupplier, KmsClientSupplier
from .key_store import BRANCH_KEY_LENGTH, BeaconKeyMaterials, BranchKeyMaterials, check_branch_key_version
from .kms_errors import check_grant_tokens, failure_reason, kms_errors
from .requests import DynamoDbRequest, KmsRequest, Steps, run

__all__ = [
    "ACTIVE_TYPE",
    "BEACON_TYPE",
    "CUSTOM_CONTEXT_PREFIX",
    "VERSION_TYPE_PREFIX",
    "KeyStore",
    "KeyStoreInfo",
]

_KEY_SCHEMA = {BRANCH_KEY_ID: "HASH", TYPE: "RANGE"}
_BKID_NAME = "#BranchKeyIdentifierField"
_ENC_NAME = "#Enc"
_NOT_EXISTS = f"attribute_not_exists({_BKID_NAME})"
_UNCHANGED_ACTIVE = f"attribute_exists({_BKID_NAME}) AND {_ENC_NAME} = :encOld"


@dataclass(frozen=True)
class KeyStoreInfo:
    """What ``GetKeyStoreInfo`` returns: the key store's configuration (no secrets)."""

    key_store_id: str
    table_name: str
    logical_name: str
    kms_key_arn: str
    grant_tokens: tuple[str, ...]


class KeyStore:
    """A branch key store in the DynamoDB table ``table_name``, wrapping keys with the KMS key ``kms_key_id``.

    * ``kms_key_id`` must be a KMS *key* ARN (not an alias): every key the store creates is protected by
      it, and items whose ``kms-arn`` is any other key are refused.
    * ``logical_name`` (default: ``table_name``) is bound to every key through the AWS KMS encryption
      context. Readers must use the same logical name as the writer; it may differ from the table name,
      e.g. after restoring a backup into a new table.
    * ``ddb_client`` is a boto3 DynamoDB client (default: one built in the KMS key's region on first use).
    * ``client_supplier`` returns the KMS client for a region (default :class:`ClientSupplier`).

    Implements :class:`~kmsenvelope.aws.key_store.BranchKeyStore`. It does not cache: give it to a
    :class:`~kmsenvelope.keyrings.hierarchical.HierarchicalKeyring`, which does. Each ``get_*`` call is one
    DynamoDB ``GetItem`` and one KMS ``Decrypt``; :meth:`create_key` and :meth:`version_key` make three
    KMS calls each. Safe to share between threads. Pickles as its configuration (docs/bulk.md, "What
    travels to workers"): the copy builds its own clients with the receiving process's credentials.
    Failures raise :class:`~kmsenvelope.errors.KeyStoreError`
    (:class:`~kmsenvelope.errors.ConfigurationError` for bad constructor arguments).
    """

    def __init__(
        self,
        table_name: str,
        kms_key_id: str,
        *,
        logical_name: str | None = None,
        ddb_client: Any = None,
        client_supplier: KmsClientSupplier | None = None,
        grant_tokens: Sequence[str] = (),
        key_store_id: str | None = None,
    ) -> None:
        if not isinstance(table_name, str) or not 3 <= len(table_name) <= 255:
            raise ConfigurationError("table_name must be a DynamoDB table name (3 to 255 characters)")
        if not isinstance(kms_key_id, str) or not kms_key_id:
            raise ConfigurationError("kms_key_id must be an AWS KMS key ARN")
        arn = parse_arn(kms_key_id)  # raises ConfigurationError saying what is wrong
        if arn.resource_type != "key":
            raise ConfigurationError("kms_key_id must be an AWS KMS key ARN, not an alias")
        if logical_name is None:
            logical_name = table_name
        if not isinstance(logical_name, str) or not logical_name:
            raise ConfigurationError("logical_name must be a non-empty string")
        if client_supplier is not None and not callable(client_supplier):
            raise ConfigurationError("client_supplier must be a callable region -> KMS client")
        if key_store_id is not None and (not isinstance(key_store_id, str) or not key_store_id):
            raise ConfigurationError("key_store_id must be a non-empty string")
        self._table = table_name
        self._arn = kms_key_id
        self._region = arn.region
        self._logical_name = logical_name
        self._grant_tokens = check_grant_tokens(grant_tokens)
        self._supplier: KmsClientSupplier = (
            client_supplier if client_supplier is not None else ClientSupplier()
        )
        self._ddb = ddb_client
        # Set only in an unpickled copy: how to rebuild the original's DynamoDB client.
        self._ddb_recipe: tuple[str | None, str | None, Any] | None = None
        self._id = key_store_id or str(uuid.uuid4())
        self._lock = threading.Lock()

    # -- configuration ------------------------------------------------------------------------------

    @property
    def table_name(self) -> str:
        """The DynamoDB table holding the keys."""
        return self._table

    @property
    def logical_name(self) -> str:
        """The logical key store name bound to every key (``tablename`` in the KMS encryption context)."""
        return self._logical_name

    @property
    def kms_key_arn(self) -> str:
        """The KMS key that protects every key of this store."""
        return self._arn

    def get_key_store_info(self) -> KeyStoreInfo:
        """The key store's id, table, logical name, KMS key and grant tokens (``GetKeyStoreInfo``)."""
        return KeyStoreInfo(self._id, self._table, self._logical_name, self._arn, self._grant_tokens)

    def __repr__(self) -> str:
        return (
            f"KeyStore(table_name={self._table!r}, logical_name={self._logical_name!r}, "
            f"kms_key_arn={self._arn!r})"
        )

    def __getstate__(self) -> dict[str, Any]:
        # Pickled (a hierarchical keyring sent to a worker) the store carries its configuration only.
        # The DynamoDB client travels as region, endpoint and botocore config, never its credentials:
        # the copy builds its own client from the receiving process's credential chain. The KMS
        # client supplier travels as it pickles itself (ClientSupplier: endpoint and config only).
        state = dict(self.__dict__)
        del state["_lock"]
        state["_ddb"] = None
        state["_ddb_recipe"] = _client_recipe(self._ddb) if self._ddb is not None else self._ddb_recipe
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # -- table ------------------------------------------------------------------------------------

    def create_table(self) -> str:
        """Create the table if it does not exist (``CreateKeyStore``); returns the table ARN.

        An existing table must have the key schema ``branch-key-id`` (HASH, S) and ``type`` (RANGE, S);
        other settings are left alone. A new table uses on-demand billing and has no secondary index.
        """
        ddb = self._ddb_client()
        try:
            table = ddb.describe_table(TableName=self._table)["Table"]
        except _aws_errors() as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise self._ddb_error("DescribeTable", exc) from exc
            try:
                table = ddb.create_table(
                    TableName=self._table,
                    AttributeDefinitions=[
                        {"AttributeName": name, "AttributeType": "S"} for name in _KEY_SCHEMA
                    ],
                    KeySchema=[
                        {"AttributeName": name, "KeyType": kind} for name, kind in _KEY_SCHEMA.items()
                    ],
                    BillingMode="PAY_PER_REQUEST",
                )["TableDescription"]
                if table.get("TableStatus") != "ACTIVE":
                    ddb.get_waiter("table_exists").wait(TableName=self._table)
            except _aws_errors() as exc:
                raise self._ddb_error("CreateTable", exc) from exc
        self._check_table(table)
        return str(table["TableArn"])

    def _check_table(self, table: Mapping[str, Any]) -> None:
        schema = {e.get("AttributeName"): e.get("KeyType") for e in table.get("KeySchema", ())}
        types = {
            d.get("AttributeName"): d.get("AttributeType") for d in table.get("AttributeDefinitions", ())
        }
        if schema != _KEY_SCHEMA or any(types.get(name) != "S" for name in _KEY_SCHEMA):
            raise KeyStoreError(
                f"table {self._table!r} exists but is not a branch key store: its key must be "
                "branch-key-id (HASH, S) and type (RANGE, S)"
            )

    # -- writes -----------------------------------------------------------------------------------

    def create_key(
        self, branch_key_id: str | None = None, encryption_context: Mapping[str, str] | None = None
    ) -> str:
        """Create a branch key (first version, ACTIVE item and beacon key); returns its branch key id.

        Without ``branch_key_id`` a random UUID is used. A caller-chosen id requires a non-empty
        ``encryption_context`` (spec rule); its pairs are bound to every version of the key and returned
        in each :class:`BranchKeyMaterials`. Fails if the id already exists.
        """
        custom = check_custom_context(encryption_context)
        if branch_key_id is None:
            branch_key_id = str(uuid.uuid4())
        elif not isinstance(branch_key_id, str) or not branch_key_id:
            raise KeyStoreError("branch_key_id must be a non-empty string")
        elif not custom:
            raise KeyStoreError("a caller-chosen branch key id requires a non-empty encryption context")
        version = str(uuid.uuid4())
        decrypt_only: dict[str, str] = {
            BRANCH_KEY_ID: branch_key_id,
            TYPE: VERSION_TYPE_PREFIX + version,
            CREATE_TIME: timestamp(),
            TABLE_NAME: self._logical_name,
            KMS_ARN: self._arn,
            HIERARCHY_VERSION: HIERARCHY_V1,
            **{CUSTOM_CONTEXT_PREFIX + k: v for k, v in custom.items()},
        }
        active = active_context(decrypt_only)
        beacon = {**decrypt_only, TYPE: BEACON_TYPE}

        wrapped_version = self._generate(decrypt_only, branch_key_id)
        wrapped_active = self._re_encrypt(wrapped_version, decrypt_only, active, branch_key_id)
        wrapped_beacon = self._generate(beacon, branch_key_id)
        self._transact(
            "CreateKey",
            branch_key_id,
            [
                self._put(to_item(decrypt_only, wrapped_version), _NOT_EXISTS),
                self._put(to_item(active, wrapped_active), _NOT_EXISTS),
                self._put(to_item(beacon, wrapped_beacon), _NOT_EXISTS),
            ],
            conflict=f"branch key id {branch_key_id!r} already exists in table {self._table!r}",
        )
        return branch_key_id

    def version_key(self, branch_key_id: str) -> str:
        """Rotate: create a new version of ``branch_key_id`` and make it ACTIVE; returns the new version.

        Older versions stay readable, so existing messages still decrypt. The ACTIVE item is
        authenticated with KMS ``ReEncrypt`` first, and replaced only if it is unchanged since it was read,
        so two concurrent rotations cannot both win. The custom encryption context and ``kms-arn`` carry
        over from the current ACTIVE item.
        """
        check_id(branch_key_id)
        item = self._get_item(branch_key_id, ACTIVE_TYPE, consistent=True)
        context, old_enc = self._parse_item(item, branch_key_id, ACTIVE_TYPE)
        # Authenticate the ACTIVE item: KMS must accept it under exactly its reconstructed context.
        self._re_encrypt(old_enc, context, context, branch_key_id)

        version = str(uuid.uuid4())
        decrypt_only = {k: v for k, v in context.items() if k != VERSION}
        decrypt_only[TYPE] = VERSION_TYPE_PREFIX + version
        decrypt_only[CREATE_TIME] = timestamp()
        active = active_context(decrypt_only)

        wrapped_version = self._generate(decrypt_only, branch_key_id)
        wrapped_active = self._re_encrypt(wrapped_version, decrypt_only, active, branch_key_id)
        self._transact(
            "VersionKey",
            branch_key_id,
            [
                self._put(to_item(decrypt_only, wrapped_version), _NOT_EXISTS),
                self._put(to_item(active, wrapped_active), _UNCHANGED_ACTIVE, old_enc=old_enc),
            ],
            conflict=(
                f"the ACTIVE item of branch key {branch_key_id!r} changed while it was being versioned "
                "(a concurrent version_key?); read it again and retry"
            ),
        )
        return version

    # -- reads (BranchKeyStore) -------------------------------------------------------------------

    def get_active_branch_key(self, branch_key_id: str) -> BranchKeyMaterials:
        """The ACTIVE version of ``branch_key_id``: one ``GetItem`` and one KMS ``Decrypt``."""
        return run(self.branch_key_steps(branch_key_id, None), self._perform)

    def get_branch_key_version(self, branch_key_id: str, version: str) -> BranchKeyMaterials:
        """Version ``version`` of ``branch_key_id``, active or not: one ``GetItem`` and one ``Decrypt``."""
        return run(self.branch_key_steps(branch_key_id, version), self._perform)

    def get_beacon_key(self, branch_key_id: str) -> BeaconKeyMaterials:
        """The beacon key of ``branch_key_id``: one ``GetItem`` and one KMS ``Decrypt``."""
        return run(self.beacon_key_steps(branch_key_id), self._perform)

    # -- reads as sans-IO steps (shared with kmsenvelope.aio.AsyncKeyStore) -------------------------

    def branch_key_steps(self, branch_key_id: str, version: str | None) -> Steps[BranchKeyMaterials]:
        """Version ``version`` of ``branch_key_id`` (``None``: the ACTIVE one), as sans-IO steps."""
        check_id(branch_key_id)
        if version is None:
            item_type = ACTIVE_TYPE
        else:
            check_branch_key_version(version)
            item_type = VERSION_TYPE_PREFIX + version
        item = yield from self._get_item_steps(branch_key_id, item_type)
        context, enc = self._parse_item(item, branch_key_id, item_type)
        key = yield from self._decrypt_steps(enc, context, branch_key_id, item_type)
        version_field = context[VERSION] if item_type == ACTIVE_TYPE else context[TYPE]
        return BranchKeyMaterials(
            branch_key_id,
            version_field[len(VERSION_TYPE_PREFIX) :],
            key,
            custom_context(context),
        )

    def beacon_key_steps(self, branch_key_id: str) -> Steps[BeaconKeyMaterials]:
        """The beacon key of ``branch_key_id``, as sans-IO steps."""
        check_id(branch_key_id)
        item = yield from self._get_item_steps(branch_key_id, BEACON_TYPE)
        context, enc = self._parse_item(item, branch_key_id, BEACON_TYPE)
        key = yield from self._decrypt_steps(enc, context, branch_key_id, BEACON_TYPE)
        return BeaconKeyMaterials(branch_key_id, key, encryption_context=custom_context(context))

    # -- item checks ------------------------------------------------------------------------------

    def _parse_item(
        self, item: Mapping[str, Any] | None, branch_key_id: str, item_type: str
    ) -> tuple[dict[str, str], bytes]:
        return parse_item(
            item,
            branch_key_id,
            item_type,
            table=self._table,
            kms_arn=self._arn,
            logical_name=self._logical_name,
        )

    # -- AWS calls --------------------------------------------------------------------------------

    def _ddb_client(self) -> Any:
        client = self._ddb
        if client is not None:
            return client
        with self._lock:
            if self._ddb is None:
                import boto3.session
                from botocore.config import Config

                from .. import __version__

                region, endpoint_url, config = self._ddb_recipe or (self._region, None, None)
                self._ddb = boto3.session.Session().client(
                    "dynamodb",
                    region_name=region,
                    endpoint_url=endpoint_url,
                    config=config
                    or Config(retries={"mode": "standard"}, user_agent_extra=f"kmsenvelope/{__version__}"),
                )
            return self._ddb

    def _kms(self) -> Any:
        return self._supplier(self._region)

    def _perform(self, request: KmsRequest | DynamoDbRequest) -> Any:
        """Answer one request of the steps with this store's blocking clients."""
        if isinstance(request, DynamoDbRequest):
            return getattr(self._ddb_client(), request.method)(**request.params)
        return call_kms(
            self._kms(), request.operation, region=request.region, key_id=request.key_id, **request.params
        )

    def _get_item(
        self, branch_key_id: str, item_type: str, consistent: bool = False
    ) -> dict[str, Any] | None:
        return run(self._get_item_steps(branch_key_id, item_type, consistent), self._perform)

    def _get_item_steps(
        self, branch_key_id: str, item_type: str, consistent: bool = False
    ) -> Steps[dict[str, Any] | None]:
        params = {
            "TableName": self._table,
            "Key": {BRANCH_KEY_ID: {"S": branch_key_id}, TYPE: {"S": item_type}},
            "ConsistentRead": consistent,
        }
        try:
            response = yield DynamoDbRequest("get_item", params)
        except _aws_errors() as exc:
            raise self._ddb_error("GetItem", exc, branch_key_id) from exc
        item = response.get("Item")
        return item if isinstance(item, dict) else None

    def _put(self, item: dict[str, Any], condition: str, old_enc: bytes | None = None) -> dict[str, Any]:
        put: dict[str, Any] = {
            "TableName": self._table,
            "Item": item,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {_BKID_NAME: BRANCH_KEY_ID},
        }
        if old_enc is not None:
            put["ExpressionAttributeNames"][_ENC_NAME] = ENC
            put["ExpressionAttributeValues"] = {":encOld": {"B": old_enc}}
        return {"Put": put}

    def _transact(
        self, operation: str, branch_key_id: str, items: list[dict[str, Any]], conflict: str
    ) -> None:
        try:
            self._ddb_client().transact_write_items(TransactItems=items)
        except _aws_errors() as exc:
            if error_code(exc) == "TransactionCanceledException" and _condition_failed(exc):
                raise KeyStoreError(f"{operation} failed: {conflict}") from exc
            raise self._ddb_error(f"{operation} (TransactWriteItems)", exc, branch_key_id) from exc

    def _call_kms(
        self, operation: str, branch_key_id: str, item_type: str | None = None, **params: Any
    ) -> dict[str, Any]:
        """One counted KMS call with this store's key, region and grant tokens; errors as KeyStoreError."""
        return run(self._kms_steps(operation, branch_key_id, item_type, **params), self._perform)

    def _kms_steps(
        self, operation: str, branch_key_id: str, item_type: str | None = None, **params: Any
    ) -> Steps[dict[str, Any]]:
        request = KmsRequest(
            operation, self._region, self._arn, {"GrantTokens": list(self._grant_tokens), **params}
        )
        try:
            response: dict[str, Any] = yield request
        except kms_errors() as exc:
            raise self._kms_error(operation, exc, branch_key_id, item_type) from exc
        return response

    def _generate(self, context: Mapping[str, str], branch_key_id: str) -> bytes:
        response = self._call_kms(
            "GenerateDataKeyWithoutPlaintext",
            branch_key_id,
            KeyId=self._arn,
            NumberOfBytes=BRANCH_KEY_LENGTH,
            EncryptionContext=dict(context),
        )
        blob = response.get("CiphertextBlob")
        if response.get("KeyId") != self._arn or not isinstance(blob, bytes) or not blob:
            raise KeyStoreError("invalid response from AWS KMS GenerateDataKeyWithoutPlaintext")
        return blob

    def _re_encrypt(
        self, blob: bytes, source: Mapping[str, str], destination: Mapping[str, str], branch_key_id: str
    ) -> bytes:
        response = self._call_kms(
            "ReEncrypt",
            branch_key_id,
            CiphertextBlob=blob,
            SourceEncryptionContext=dict(source),
            SourceKeyId=self._arn,
            DestinationKeyId=self._arn,
            DestinationEncryptionContext=dict(destination),
        )
        out = response.get("CiphertextBlob")
        if (
            response.get("SourceKeyId") != self._arn
            or response.get("KeyId") != self._arn
            or not isinstance(out, bytes)
            or not out
        ):
            raise KeyStoreError("invalid response from AWS KMS ReEncrypt")
        return out

    def _decrypt_steps(
        self, enc: bytes, context: Mapping[str, str], branch_key_id: str, item_type: str
    ) -> Steps[bytes]:
        response = yield from self._kms_steps(
            "Decrypt",
            branch_key_id,
            item_type,
            KeyId=self._arn,
            CiphertextBlob=enc,
            EncryptionContext=dict(context),
        )
        plaintext = response.get("Plaintext")
        if response.get("KeyId") != self._arn:
            raise KeyStoreError("AWS KMS Decrypt answered for another KMS key than this key store's")
        if not isinstance(plaintext, bytes) or len(plaintext) != BRANCH_KEY_LENGTH:
            raise KeyStoreError(f"AWS KMS Decrypt did not return a {BRANCH_KEY_LENGTH}-byte key")
        return plaintext

    def _kms_error(
        self, operation: str, exc: BaseException, branch_key_id: str, item_type: str | None = None
    ) -> KeyStoreError:
        subject = f"branch key {branch_key_id!r}" + (f" item {item_type!r}" if item_type else "")
        message = f"AWS KMS {operation} failed for {subject}: {failure_reason(exc)}"
        if operation == "Decrypt" and error_code(exc) == "InvalidCiphertextException":
            message += (
                "; the item was modified, or was written by a key store with another logical name "
                f"than {self._logical_name!r}"
            )
        return KeyStoreError(message)

    def _ddb_error(
        self, operation: str, exc: BaseException, branch_key_id: str | None = None
    ) -> KeyStoreError:
        subject = f" for branch key {branch_key_id!r}" if branch_key_id is not None else ""
        code = error_code(exc)
        if code == "ResourceNotFoundException":
            return KeyStoreError(
                f"DynamoDB {operation} failed{subject}: table {self._table!r} does not exist "
                "(create it with KeyStore.create_table())"
            )
        return KeyStoreError(f"DynamoDB {operation} failed{subject} on table {self._table!r}: {code}")


# -- helpers ---------------------------------------------------------------------------------------


def _aws_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


def _condition_failed(exc: BaseException) -> bool:
    response = getattr(exc, "response", None)
    reasons = response.get("CancellationReasons") if isinstance(response, dict) else None
    if not isinstance(reasons, list):
        return "ConditionalCheckFailed" in str(exc)
    return any(isinstance(r, dict) and r.get("Code") == "ConditionalCheckFailed" for r in reasons)


def _client_recipe(client: Any) -> tuple[str | None, str | None, Any]:
    """(region, endpoint URL, botocore config) of a boto3 client: how to rebuild it, without credentials."""
    meta = getattr(client, "meta", None)
    if meta is None or not hasattr(meta, "region_name"):
        raise TypeError(
            "a KeyStore pickles only with ddb_client=None or a boto3 DynamoDB client "
            f"(got {type(client).__name__})"
        )
    endpoint = getattr(meta, "endpoint_url", None)
    # boto3 fills in the regional AWS endpoint itself; only a non-AWS override must travel.
    if isinstance(endpoint, str) and endpoint.endswith(".amazonaws.com"):
        endpoint = None
    return (meta.region_name, endpoint, getattr(meta, "config", None))
