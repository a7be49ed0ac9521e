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

from .beacon_keys import BeaconKeys
from .beacons import BeaconType, beacon_column, mapped_beacon, with_beacons
from .exact import exact_rows, install_exact_match
from .migrate import ReencryptStats, reencrypt
from .rows import EncryptedColumns, Sealed, UnsealedValueError
from .types import COLUMN_KEY, TABLE_KEY, ColumnEncryptionError, EncryptedType, EncryptedValueError

__all__ = [
    "COLUMN_KEY",
    "TABLE_KEY",
    "BeaconKeys",
    "BeaconType",
    "ColumnEncryptionError",
    "EncryptedColumns",
    "EncryptedType",
    "EncryptedValueError",
    "ReencryptStats",
    "Sealed",
    "UnsealedValueError",
    "beacon_column",
    "exact_rows",
    "install_exact_match",
    "mapped_beacon",
    "reencrypt",
    "with_beacons",
]
