"""HKDF (RFC 5869) over the standard library's OpenSSL-backed HMAC.

``hmac.digest`` is a single C call, several times faster per derivation than building a
``cryptography`` HKDF object, and derivations sit on every message's hot path.
"""

from __future__ import annotations

import hmac

_HASH_LEN = {"sha256": 32, "sha384": 48, "sha512": 64}


def hkdf(hash_name: str, ikm: bytes, salt: bytes | None, info: bytes, length: int) -> bytes:
    """HKDF-Extract then HKDF-Expand; a ``None`` or empty salt means HashLen zero bytes."""
    hash_len = _HASH_LEN[hash_name]
    if length > 255 * hash_len:
        raise ValueError("HKDF output too long")
    prk = hmac.digest(salt or bytes(hash_len), ikm, hash_name)
    return hkdf_expand(hash_name, prk, info, length)


def hkdf_expand(hash_name: str, prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand alone."""
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac.digest(prk, block + info + bytes([counter]), hash_name)
        out += block
        counter += 1
    return out[:length]


def hmac_digest(hash_name: str, key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, hash_name)


def kdf_counter_hmac(hash_name: str, ikm: bytes, label: bytes, context: bytes, length: int) -> bytes:
    """NIST SP 800-108 KDF in counter mode with HMAC (32-bit counter first, 32-bit length in bits).

    Used by the hierarchical keyring and the DB-ESDK; laid out as the MPL's ``KdfCtr`` does:
    ``counter || label || 0x00 || context || L``.
    """
    hash_len = _HASH_LEN[hash_name]
    blocks = -(-length // hash_len)
    out = b""
    suffix = label + b"\x00" + context + (length * 8).to_bytes(4, "big")
    for i in range(1, blocks + 1):
        out += hmac.digest(ikm, i.to_bytes(4, "big") + suffix, hash_name)
    return out[:length]


def constant_time_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
