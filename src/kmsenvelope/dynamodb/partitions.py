"""Beacon partitions (``search-config.md`` 1.2.0 ``#beacon-partitions``, ``ddb-get-number-of-queries.md``).

Each item written is assigned a partition ``0 <= p < maximum_number_of_partitions`` by a
:class:`PartitionSelector` (default: uniformly random). A standard beacon with ``n`` partitions
(its ``number_of_partitions``, else the version's ``default_number_of_partitions``, else the maximum)
is then computed in beacon partition ``p % n``: the hashed bytes get one byte ``p % n`` appended, and
nothing when that is 0 (``beacons.md#partition-beacon-encoding``), so partition 0 is exactly the
unpartitioned beacon. The HMAC keys do not change.

A query names its partition in ``ExpressionAttributeValues[":aws_dbe_partition"]`` (an ``N``) and
must be run once per partition below :func:`get_number_of_queries`; :func:`partition_queries` yields
those requests. A Scan needs no partition: its filter matches every partition.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..errors import ConfigurationError
from ..primitives.kdf import Hmac
from .policy import RequestRefusedError

if TYPE_CHECKING:
    from .config import TableConfig

__all__ = [
    "PARTITION_VALUE",
    "PartitionSelector",
    "RandomPartitionSelector",
    "get_number_of_queries",
    "partition_queries",
]

PARTITION_VALUE = ":aws_dbe_partition"
"""The ExpressionAttributeValues entry that names a query's partition (``ddb-support.md``)."""
_ALIAS = re.compile(r"[:#]aws_dbe_b\d+")  # the placeholders search.py gives beacon names and values
MAX_PARTITIONS = 254
"""A PartitionCount is 1-255 in the spec, but the reference refuses 255 as a maximum."""


@runtime_checkable
class PartitionSelector(Protocol):
    """Chooses the partition of an item (``search-config.md#partition-selector``)."""

    def get_partition_number(
        self, item: Mapping[str, Any], number_of_partitions: int, logical_table_name: str
    ) -> int:
        """A partition number ``0 <= n < number_of_partitions`` for the plaintext ``item``."""
        ...


class RandomPartitionSelector:
    """The default selector: a uniformly random partition, ignoring the item."""

    def get_partition_number(
        self, item: Mapping[str, Any], number_of_partitions: int, logical_table_name: str
    ) -> int:
        return secrets.randbelow(number_of_partitions)


def check_count(value: object, what: str) -> int:
    """A partition count: an int from 1 to 254."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PARTITIONS:
        raise ConfigurationError(f"{what} must be an int from 1 to {MAX_PARTITIONS}")
    return value


@dataclass(frozen=True)
class Partitions:
    """A beacon version's partitions: the maximum, each standard beacon's count, the selector."""

    maximum: int
    counts: Mapping[str, int]
    selector: PartitionSelector

    def select(self, item: Mapping[str, Any], logical_table_name: str) -> int:
        """The partition of an item being written."""
        if self.maximum == 1:
            return 0
        number = self.selector.get_partition_number(item, self.maximum, logical_table_name)
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number < self.maximum:
            raise ConfigurationError(
                f"the partition selector returned {number!r}, not a partition number from 0 to "
                f"{self.maximum - 1}"
            )
        return number

    def suffix(self, name: str, partition: int) -> bytes:
        """What standard beacon ``name`` appends to the hashed bytes in item partition ``partition``."""
        number = partition % self.counts[name]
        return b"" if number == 0 else bytes([number])

    def queries(self, beacons: set[str]) -> int:
        """GetNumberOfQueries: the LCM of the beacons' counts, at most the maximum."""
        result = 1
        for name in beacons:
            result = min(math.lcm(result, self.counts[name]), self.maximum)
        return result

    def item_partitions(self, partition: int, queries: int) -> list[int]:
        """The item partitions a query on ``partition`` of ``queries`` must match in its filter."""
        return [p for p in range(self.maximum) if p % queries == partition]


class PartitionKeys(dict[str, Hmac]):
    """HMAC keys used in one item partition; records the standard beacons hashed with them."""

    def __init__(self, keys: Mapping[str, Hmac], partition: int) -> None:
        super().__init__(keys)
        self.partition = partition
        self.used: set[str] = set()


class CountingKeys(PartitionKeys):
    """Throwaway keys: enough to find which beacons a query hashes, without a key store."""

    def __init__(self, names: set[str]) -> None:
        dummy = Hmac("sha384", b"\x00")
        super().__init__(dict.fromkeys(names, dummy), 0)


def take_partition(request: Mapping[str, Any], maximum: int) -> tuple[Mapping[str, Any], int | None]:
    """The request without ``:aws_dbe_partition``, and the partition it named (``None``: none)."""
    values = request.get("ExpressionAttributeValues")
    if not isinstance(values, Mapping) or PARTITION_VALUE not in values:
        return request, None
    partition = _partition_number(values[PARTITION_VALUE], maximum, "KeyConditionExpression" not in request)
    out = dict(request)
    out["ExpressionAttributeValues"] = {k: v for k, v in values.items() if k != PARTITION_VALUE}
    if not out["ExpressionAttributeValues"]:
        del out["ExpressionAttributeValues"]
    return out, partition


def _partition_number(value: Any, maximum: int, is_scan: bool) -> int:
    if is_scan:
        raise RequestRefusedError(f"{PARTITION_VALUE} must not be given to a Scan: one Scan finds everything")
    text = value.get("N") if isinstance(value, Mapping) and len(value) == 1 else None
    if not isinstance(text, str) or not (text.strip().isascii() and text.strip().isdigit()):
        raise RequestRefusedError(f"{PARTITION_VALUE} must be an integer N value, not {value!r}")
    number = int(text)
    if not number < maximum:
        raise RequestRefusedError(
            f"{PARTITION_VALUE} is {number}, but must be from 0 to {maximum - 1} "
            "(the beacon version's maximum_number_of_partitions)"
        )
    return number


def check_query_partition(partition: int | None, queries: int) -> None:
    """A query's partition must be below its number of queries, and given when that is above 1."""
    if partition is not None and partition >= queries:
        raise RequestRefusedError(
            f"{PARTITION_VALUE} is {partition}, but this query needs only {queries} "
            "(get_number_of_queries): partitions from 0 to one less"
        )
    if partition is None and queries > 1:
        raise RequestRefusedError(
            f"this query must be run once per partition ({queries} queries): set {PARTITION_VALUE} "
            "to 0, 1, ... (see kmsenvelope.dynamodb.partition_queries)"
        )


def or_partitions(
    beaconize: Callable[[int], str | None], spread: list[int], resolve: Callable[[str], Any]
) -> str | None:
    """A filter for several item partitions: the ``OR`` of ``beaconize(p)`` for ``p`` in ``spread``,
    each distinct value once (``resolve`` reads a placeholder); ``None`` if it hashes no beacon."""
    copies: dict[str, str] = {}
    for number in spread:
        text = beaconize(number)
        if text is None:
            return None  # no beacon hashed: the same in every partition, and left as it was
        canonical = _ALIAS.sub(lambda m: json.dumps(resolve(m.group(0)), sort_keys=True), text)
        copies.setdefault(canonical, text)
    if len(copies) == 1:
        return next(iter(copies.values()))
    return " OR ".join(f"({copy})" for copy in copies.values())


def get_number_of_queries(config: TableConfig, query: Mapping[str, Any]) -> int:
    """How many queries (``:aws_dbe_partition`` = 0, 1, ...) find every item a Query matches
    (``ddb-get-number-of-queries.md``): the LCM of the partition counts of the standard beacons its
    KeyConditionExpression uses, directly or as parts of compound beacons, at most
    ``maximum_number_of_partitions``. 1 without beacons or partitions. Needs no beacon key."""
    from .search import key_condition_beacons

    info = config._search
    if info is None:
        return 1
    return info.partitions.queries(key_condition_beacons(config.actions, info, query))  # type: ignore[no-any-return]


def partition_queries(config: TableConfig, query: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The Query requests that together find every matching item: ``query`` with
    ``:aws_dbe_partition`` set to 0, 1, ... below :func:`get_number_of_queries`."""
    for number in range(get_number_of_queries(config, query)):
        request = dict(query)
        request["ExpressionAttributeValues"] = {
            **(query.get("ExpressionAttributeValues") or {}),
            PARTITION_VALUE: {"N": str(number)},
        }
        yield request
