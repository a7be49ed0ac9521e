"""Standard beacons of the AWS Database Encryption SDK: truncated HMACs for equality search.

Source: aws/aws-database-encryption-sdk-dynamodb ``specification/searchable-encryption/beacons.md``
(basicHash) and ``search-config.md`` (HMAC key generation):

* the HMAC key of a beacon named ``name`` is HKDF-SHA512(ikm = the beacon key from the branch key store,
  no salt, info = ``"AWS_DBE_SCAN_BEACON" || name``, 64 bytes);
* a beacon of ``length`` bits (1..63) is the rightmost ``length`` bits of the first 8 bytes of
  HMAC-SHA384(HMAC key, value bytes), as ``ceil(length / 4)`` lowercase hex digits.

For ``str`` values the input is the UTF-8 text, as in the DB-ESDK, so a beacon computed here equals
the DB-ESDK's for the same beacon key, name and length. This module does not import SQLAlchemy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..aws.key_store import BranchKeyStore
from ..errors import ConfigurationError, KeyStoreError
from ..primitives.kdf import Hmac
from ..structured.beacon_hash import basic_hash, beacon_hmac, check_beacon_length

__all__ = ["BeaconKeys"]



class BeaconKeys:
    """HMAC keys of beacons, derived from one beacon key of a branch key store (a "single key store").

    The beacon key is fetched on first use and again after ``cache_ttl`` seconds (the store may call
    AWS KMS); derived keys are cached with it. Thread-safe. Keys never appear in ``repr``.
    """

    def __init__(
        self,
        key_store: BranchKeyStore,
        beacon_key_id: str,
        *,
        cache_ttl: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not callable(getattr(key_store, "get_beacon_key", None)):
            raise ConfigurationError("key_store must have a get_beacon_key(branch_key_id) method")
        if not isinstance(beacon_key_id, str) or not beacon_key_id:
            raise ConfigurationError("beacon_key_id must be a non-empty string")
        if cache_ttl <= 0:
            raise ConfigurationError("cache_ttl must be positive")
        self._store = key_store
        self._id = beacon_key_id
        self._ttl = float(cache_ttl)
        self._clock = clock
        self._lock = threading.Lock()
        self._expires = float("-inf")
        self._beacon_key = b""
        self._hmacs: dict[str, Hmac] = {}

    @property
    def beacon_key_id(self) -> str:
        return self._id

    def _hmac(self, name: str) -> Hmac:
        with self._lock:
            now = self._clock()
            if now >= self._expires:
                materials = self._store.get_beacon_key(self._id)
                if materials.beacon_key is None:
                    raise KeyStoreError("the key store returned no beacon key")
                self._beacon_key = bytes(materials.beacon_key)
                self._hmacs = {}
                self._expires = now + self._ttl
            hmac = self._hmacs.get(name)
            if hmac is None:
                hmac = self._hmacs[name] = beacon_hmac(self._beacon_key, name)
            return hmac

    def hash(self, name: str, length: int, data: bytes) -> str:
        """The standard beacon named ``name`` of ``length`` bits for the value bytes ``data``."""
        check_beacon_length(length)
        if not name:
            raise ConfigurationError("beacon name must be non-empty")
        return basic_hash(self._hmac(name), data, length)

    def __repr__(self) -> str:
        return f"BeaconKeys(beacon_key_id={self._id!r}, cache_ttl={self._ttl})"
