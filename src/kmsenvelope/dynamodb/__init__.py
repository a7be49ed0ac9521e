"""Client-side encryption of DynamoDB items, byte-compatible with the AWS Database Encryption SDK.

::

    from kmsenvelope.dynamodb import Action, ItemEncryptor, TableConfig

    config = TableConfig(
        "orders", "order_id",
        actions={"order_id": Action.SIGN_ONLY, "card": Action.ENCRYPT_AND_SIGN},
        keyring=keyring,
    )
    encryptor = ItemEncryptor(config)
    stored = encryptor.encrypt_item({"order_id": {"S": "o-1"}, "card": {"S": "4111..."}})

Names are loaded lazily; nothing here imports boto3 until resource-style items are converted.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "Action": "..structured.model",
    "ParsedHeader": "..structured.model",
    "TableConfig": ".config",
    "DEFAULT_SUITE": ".config",
    "SIGNING_SUITE": ".config",
    "ItemEncryptor": ".encryptor",
    "serialize": ".attributes",
    "deserialize": ".attributes",
    "normalize_number": ".numbers",
    "EncryptedClient": ".client",
    "EncryptedTable": ".table",
    "EncryptedResource": ".resource",
    "RequestRefusedError": ".policy",
    "StandardBeacon": ".beacons",
    "CompoundBeacon": ".beacons",
    "EncryptedPart": ".beacons",
    "SignedPart": ".beacons",
    "Constructor": ".beacons",
    "ConstructorPart": ".beacons",
    "BeaconKeySource": ".beacon_keys",
    "MultiKeyBeaconSource": ".beacon_keys",
    "BeaconVersion": ".search_config",
    "SearchConfig": ".search_config",
    "PartitionSelector": ".partitions",
    "RandomPartitionSelector": ".partitions",
    "get_number_of_queries": ".partitions",
    "partition_queries": ".partitions",
    "PartOnly": ".styles",
    "Shared": ".styles",
    "AsSet": ".styles",
    "SharedSet": ".styles",
    "VirtualField": ".virtual",
    "VirtualPart": ".virtual",
    "Upper": ".virtual",
    "Lower": ".virtual",
    "Insert": ".virtual",
    "GetPrefix": ".virtual",
    "GetSuffix": ".virtual",
    "GetSubstring": ".virtual",
    "GetSegment": ".virtual",
    "GetSegments": ".virtual",
    "PlaintextPolicy": ".legacy",
    "LegacyPolicy": ".legacy",
    "LegacyConfig": ".legacy",
    "ItemFormat": ".legacy",
    "FormatRefusedError": ".legacy",
    "LegacyItemError": ".legacy",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from ..structured.model import Action as Action
    from ..structured.model import ParsedHeader as ParsedHeader
    from .attributes import deserialize as deserialize
    from .attributes import serialize as serialize
    from .beacon_keys import BeaconKeySource as BeaconKeySource
    from .beacon_keys import MultiKeyBeaconSource as MultiKeyBeaconSource
    from .beacons import CompoundBeacon as CompoundBeacon
    from .beacons import Constructor as Constructor
    from .beacons import ConstructorPart as ConstructorPart
    from .beacons import EncryptedPart as EncryptedPart
    from .beacons import SignedPart as SignedPart
    from .beacons import StandardBeacon as StandardBeacon
    from .client import EncryptedClient as EncryptedClient
    from .config import DEFAULT_SUITE as DEFAULT_SUITE
    from .config import SIGNING_SUITE as SIGNING_SUITE
    from .config import TableConfig as TableConfig
    from .encryptor import ItemEncryptor as ItemEncryptor
    from .legacy import FormatRefusedError as FormatRefusedError
    from .legacy import ItemFormat as ItemFormat
    from .legacy import LegacyConfig as LegacyConfig
    from .legacy import LegacyItemError as LegacyItemError
    from .legacy import LegacyPolicy as LegacyPolicy
    from .legacy import PlaintextPolicy as PlaintextPolicy
    from .numbers import normalize_number as normalize_number
    from .partitions import PartitionSelector as PartitionSelector
    from .partitions import RandomPartitionSelector as RandomPartitionSelector
    from .partitions import get_number_of_queries as get_number_of_queries
    from .partitions import partition_queries as partition_queries
    from .policy import RequestRefusedError as RequestRefusedError
    from .resource import EncryptedResource as EncryptedResource
    from .search_config import BeaconVersion as BeaconVersion
    from .search_config import SearchConfig as SearchConfig
    from .styles import AsSet as AsSet
    from .styles import PartOnly as PartOnly
    from .styles import Shared as Shared
    from .styles import SharedSet as SharedSet
    from .table import EncryptedTable as EncryptedTable
    from .virtual import GetPrefix as GetPrefix
    from .virtual import GetSegment as GetSegment
    from .virtual import GetSegments as GetSegments
    from .virtual import GetSubstring as GetSubstring
    from .virtual import GetSuffix as GetSuffix
    from .virtual import Insert as Insert
    from .virtual import Lower as Lower
    from .virtual import Upper as Upper
    from .virtual import VirtualField as VirtualField
    from .virtual import VirtualPart as VirtualPart


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kmsenvelope.dynamodb' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
