"""HKDF (RFC 5869), HMAC (RFC 2104) and the counter-mode KDF, over the standard library's hashlib.

This module holds the library's only HMAC. It is built from the two padded-key hash states of RFC 2104
(``H(K ^ opad || H(K ^ ipad || m))``) because every message and item derives several keys from one key:
copying a keyed hashlib state is far cheaper than keying OpenSSL's HMAC again (measured in
``docs/performance.md``). One key schedule (:func:`_padded_keys`) serves both forms: :class:`Hmac` keys
once and evaluates many times; :func:`hmac_digest` is the one-shot form. ``tests/test_hmac.py`` checks
both against RFC 4231, ``hmac`` and ``cryptography``, and that no other module computes an HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "CounterKdf",
    "Hmac",
    "constant_time_equal",
    "hkdf",
    "hkdf_expand",
    "hkdf_many",
    "hmac_digest",
    "kdf_counter_hmac",
]

_HASH_LEN = {"sha256": 32, "sha384": 48, "sha512": 64}
_BLOCK_LEN = {"sha256": 64, "sha384": 128, "sha512": 128}
_CONSTRUCTORS: dict[str, Callable[..., Any]] = {
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def _padded_keys(hash_name: str, key: bytes) -> tuple[Callable[..., Any], bytes, bytes]:
    """RFC 2104's key schedule for HMAC-``hash_name``: the hash constructor, ``K ^ ipad`` and ``K ^ opad``
    (a key longer than the hash's block is hashed first, a shorter one is padded with zeros)."""
    try:
        ctor = _CONSTRUCTORS[hash_name]
    except KeyError:
        raise ValueError(f"unsupported HMAC hash {hash_name!r}") from None
    block = _BLOCK_LEN[hash_name]
    if type(key) is not bytes:
        key = bytes(key)
    if len(key) > block:
        key = ctor(key).digest()
    padded = key.ljust(block, b"\x00")
    return ctor, padded.translate(_IPAD), padded.translate(_OPAD)


class Hmac:
    """HMAC keyed once, evaluated many times. The key is never shown."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, hash_name: str, key: bytes) -> None:
        ctor, inner_key, outer_key = _padded_keys(hash_name, key)
        self._inner, self._outer = ctor(inner_key), ctor(outer_key)

    def digest(self, message: bytes) -> bytes:
        """``H(K ^ opad || H(K ^ ipad || message))`` from copies of the keyed states, which are never
        changed, so threads may share one :class:`Hmac`."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return "Hmac(<key hidden>)"


def hmac_digest(hash_name: str, key: bytes, data: bytes) -> bytes:
    """One-shot HMAC, bytes-identical to ``hmac.digest(key, data, hash_name)``: the same key schedule as
    :class:`Hmac`, without keeping (or copying) hash states for a key used once."""
    ctor, inner_key, outer_key = _padded_keys(hash_name, key)
    return ctor(outer_key + ctor(inner_key + data).digest()).digest()  # type: ignore[no-any-return]


# HKDF-Extract without a salt keys HMAC with HashLen zero bytes: the same key every time, so it is keyed
# once per hash.
_ZERO_SALT = {name: Hmac(name, bytes(length)) for name, length in _HASH_LEN.items()}


def hkdf(hash_name: str, ikm: bytes, salt: bytes | None, info: bytes, length: int) -> bytes:
    """HKDF-Extract then HKDF-Expand; a ``None`` or empty salt means HashLen zero bytes."""
    return hkdf_many(hash_name, ikm, salt, (info,), length)[0]


def hkdf_many(
    hash_name: str, ikm: bytes, salt: bytes | None, infos: Sequence[bytes], length: int
) -> list[bytes]:
    """Several HKDF outputs sharing one extract step (same IKM and salt, different info)."""
    hash_len = _HASH_LEN[hash_name]
    if length > 255 * hash_len:
        raise ValueError("HKDF output too long")
    # A salt (the message id, on every message) keys HMAC once: the one-shot form, without hash states.
    prk = hmac_digest(hash_name, salt, ikm) if salt else _ZERO_SALT[hash_name].digest(ikm)
    keyed = Hmac(hash_name, prk)
    if length > hash_len:
        return [_expand(keyed, info, length, hash_len) for info in infos]
    # One block per output, the common case (32-byte keys from SHA-384/512): T(1) = HMAC(PRK, info || 0x01).
    digest = keyed.digest
    out = []
    for info in infos:
        out.append(digest(info + b"\x01")[:length])
    return out


def hkdf_expand(hash_name: str, prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand alone."""
    hash_len = _HASH_LEN[hash_name]
    if length > 255 * hash_len:
        raise ValueError("HKDF output too long")
    return _expand(Hmac(hash_name, prk), info, length, hash_len)


def _expand(keyed: Hmac, info: bytes, length: int, hash_len: int) -> bytes:
    if length <= hash_len:
        return keyed.digest(info + b"\x01")[:length]
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = keyed.digest(block + info + bytes([counter]))
        out += block
        counter += 1
    return out[:length]


def kdf_counter_hmac(hash_name: str, ikm: bytes | Hmac, label: bytes, context: bytes, length: int) -> bytes:
    """NIST SP 800-108 KDF in counter mode with HMAC (32-bit counter first, 32-bit length in bits).

    Used by the hierarchical keyring and the DB-ESDK; laid out as the MPL's ``KdfCtr`` does:
    ``counter || label || 0x00 || context || L``. ``ikm`` may be an :class:`Hmac` already keyed with
    the input key (of ``hash_name``), for callers deriving many keys from one long-lived key.
    """
    hash_len = _HASH_LEN[hash_name]
    blocks = -(-length // hash_len)
    keyed = ikm if isinstance(ikm, Hmac) else Hmac(hash_name, ikm)
    out = b""
    suffix = label + b"\x00" + context + (length * 8).to_bytes(4, "big")
    for i in range(1, blocks + 1):
        out += keyed.digest(i.to_bytes(4, "big") + suffix)
    return out[:length]


class CounterKdf:
    """:func:`kdf_counter_hmac` with a fixed key, label and output length, for deriving many keys.

    Keys and labels are fixed per wrapping key (e.g. a hierarchical keyring's branch key); only the
    context varies per call, so the HMAC key schedule and the constant parts are prepared once.
    """

    __slots__ = ("_hash_name", "_keyed", "_label", "_length", "_prefix", "_single_block", "_suffix")

    def __init__(self, hash_name: str, key: bytes, label: bytes, length: int) -> None:
        self._hash_name = hash_name
        self._keyed = Hmac(hash_name, key)
        self._label = label
        self._length = length
        self._single_block = length <= _HASH_LEN[hash_name]
        # The one-block layout of kdf_counter_hmac: counter 1 || label || 0x00 || context || L.
        self._prefix = (1).to_bytes(4, "big") + label + b"\x00"
        self._suffix = (length * 8).to_bytes(4, "big")

    def derive(self, context: bytes) -> bytes:
        """The derived key for ``context``."""
        if self._single_block:
            return self._keyed.digest(self._prefix + context + self._suffix)[: self._length]
        return kdf_counter_hmac(self._hash_name, self._keyed, self._label, context, self._length)

    def __repr__(self) -> str:
        return "CounterKdf(<key hidden>)"


constant_time_equal: Callable[[bytes, bytes], bool] = hmac.compare_digest
"""``hmac.compare_digest``: equality in time independent of where the inputs differ."""
