"""Client-side column encryption for SQLAlchemy 2.x (PostgreSQL, MySQL, Aurora). Needs the ``sql`` extra.

* :class:`EncryptedType` -- each value is one AWS Encryption SDK message bound to its table and column.
* :class:`EncryptedColumns` -- row mode: several columns of a row under one data key, DB-ESDK
  structured encryption, bound to the table and the row's primary key.
* :func:`beacon_column` / :func:`mapped_beacon` with :class:`BeaconKeys` -- equality search through
  DB-ESDK standard beacons; :func:`install_exact_match` / :func:`exact_rows` drop false positives.
* :func:`reencrypt` -- online, resumable re-encryption (key rotation, move to an MRK, first encryption).

See ``docs/sql.md``. ``import kmsenvelope`` does not import this package (nor SQLAlchemy).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .beacon_keys import BeaconKeys
from .beacons import BeaconType, beacon_column, mapped_beacon, with_beacons
from .exact import exact_rows, install_exact_match
from .types import COLUMN_KEY, TABLE_KEY, EncryptedType, EncryptedValueError

# Loaded on first use: row mode needs kmsenvelope.structured, reencrypt is rarely imported.
_LAZY = {
    "reencrypt": ".reencrypt",
    "ReencryptStats": ".reencrypt",
    "EncryptedColumns": ".rows",
}

__all__ = [
    "COLUMN_KEY",
    "TABLE_KEY",
    "BeaconKeys",
    "BeaconType",
    "EncryptedColumns",
    "EncryptedType",
    "EncryptedValueError",
    "ReencryptStats",
    "beacon_column",
    "exact_rows",
    "install_exact_match",
    "mapped_beacon",
    "reencrypt",
    "with_beacons",
]

if TYPE_CHECKING:
    from .reencrypt import ReencryptStats as ReencryptStats
    from .reencrypt import reencrypt as reencrypt
    from .rows import EncryptedColumns as EncryptedColumns


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kmsenvelope.sql' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
