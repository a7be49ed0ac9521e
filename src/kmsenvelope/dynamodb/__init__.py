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

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

# To export a name, add one line to each of __all__, _EXPORTS and the TYPE_CHECKING block (see _lazy.py).
__all__ = [
    "DEFAULT_SUITE",
    "SIGNING_SUITE",
    "Action",
    "AsSet",
    "BeaconKeySource",
    "BeaconVersion",
    "CompoundBeacon",
    "Constructor",
    "ConstructorPart",
    "EncryptedClient",
    "EncryptedPart",
    "EncryptedResource",
    "EncryptedTable",
    "FormatRefusedError",
    "GetPrefix",
    "GetSegment",
    "GetSegments",
    "GetSubstring",
    "GetSuffix",
    "Insert",
    "ItemEncryptor",
    "ItemFormat",
    "LegacyConfig",
    "LegacyItemError",
    "LegacyPolicy",
    "Lower",
    "MultiKeyBeaconSource",
    "ParsedHeader",
    "PartOnly",
    "PartitionSelector",
    "PlaintextPolicy",
    "RandomPartitionSelector",
    "RequestRefusedError",
    "SearchConfig",
    "Shared",
    "SharedSet",
    "SignedPart",
    "StandardBeacon",
    "TableConfig",
    "Upper",
    "VirtualField",
    "VirtualPart",
    "deserialize",
    "get_number_of_queries",
    "normalize_number",
    "partition_queries",
    "serialize",
]

# public name -> defining module (relative to this package)
_EXPORTS = {
    "DEFAULT_SUITE": ".config",
    "SIGNING_SUITE": ".config",
    "Action": "..structured.model",
    "AsSet": ".styles",
    "BeaconKeySource": ".beacon_keys",
    "BeaconVersion": ".search_config",
    "CompoundBeacon": ".beacons",
    "Constructor": ".beacons",
    "ConstructorPart": ".beacons",
    "EncryptedClient": ".client",
    "EncryptedPart": ".beacons",
    "EncryptedResource": ".resource",
    "EncryptedTable": ".table",
    "GetPrefix": ".virtual",
    "GetSegment": ".virtual",
    "GetSegments": ".virtual",
    "GetSubstring": ".virtual",
    "GetSuffix": ".virtual",
    "Insert": ".virtual",
    "ItemEncryptor": ".encryptor",
    "Lower": ".virtual",
    "MultiKeyBeaconSource": ".beacon_keys",
    "ParsedHeader": "..structured.model",
    "PartOnly": ".styles",
    "PartitionSelector": ".partitions",
    "RandomPartitionSelector": ".partitions",
    "RequestRefusedError": ".policy",
    "SearchConfig": ".search_config",
    "Shared": ".styles",
    "SharedSet": ".styles",
    "SignedPart": ".beacons",
    "StandardBeacon": ".beacons",
    "TableConfig": ".config",
    "Upper": ".virtual",
    "VirtualField": ".virtual",
    "VirtualPart": ".virtual",
    "deserialize": ".attributes",
    "get_number_of_queries": ".partitions",
    "normalize_number": ".numbers",
    "partition_queries": ".partitions",
    "serialize": ".attributes",
    "PlaintextPolicy": ".legacy",
    "LegacyPolicy": ".legacy",
    "LegacyConfig": ".legacy",
    "ItemFormat": ".legacy",
    "FormatRefusedError": ".legacy",
    "LegacyItemError": ".legacy",
}

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
else:
    __getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
