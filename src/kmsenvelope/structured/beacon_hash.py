"""Searchable-encryption primitives shared by DynamoDB and SQL beacons.

Per the DB-ESDK ``specification/searchable-encryption/beacons.md``: each beacon has its own HMAC-SHA384 key,
``HKDF-SHA512(beacon key, salt = none, info = "AWS_DBE_SCAN_BEACON" || name, 64 bytes)``, and a beacon value
is ``basicHash``: the rightmost ``length`` bits of the first 8 bytes of the HMAC, as fixed-width hex.
"""

from __future__ import annotations

from ..errors import ConfigurationError
from ..primitives.kdf import Hmac, hkdf

__all__ = ["basic_hash", "beacon_chars", "beacon_hmac", "check_beacon_length"]

_INFO = b"AWS_DBE_SCAN_BEACON"


def check_beacon_length(length: int) -> int:
    """Validate a beacon length in bits (the DB-ESDK allows 1 to 63)."""
    if not isinstance(length, int) or isinstance(length, bool) or not 1 <= length <= 63:
        raise ConfigurationError("beacon length must be an int between 1 and 63 bits")
    return length


def beacon_chars(length: int) -> int:
    """Number of hex digits of a beacon of ``length`` bits."""
    return (length + 3) // 4


def beacon_hmac(beacon_key: bytes, name: str) -> Hmac:
    """The keyed HMAC-SHA384 of the beacon called ``name``."""
    return Hmac("sha384", hkdf("sha512", beacon_key, None, _INFO + name.encode("utf-8"), 64))


def basic_hash(key: Hmac, data: bytes, length: int) -> str:
    """``basicHash``: the rightmost ``length`` bits of the first 8 bytes of HMAC-SHA384, in hex."""
    number = int.from_bytes(key.digest(data)[:8], "big") & ((1 << length) - 1)
    return format(number, f"0{beacon_chars(length)}x")
