"""HKDF (RFC 5869), HMAC and the counter-mode KDF, over the standard library's hashlib.

HMAC is built from precomputed inner/outer hash states (RFC 2104) because every message derives
several keys from one PRK: copying a keyed state is far cheaper than re-keying OpenSSL's HMAC,
and key derivation sits on every message's hot path.
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
_CONSTRUCTORS: dict[str, Callable[..., Any]] = {
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class Hmac:
    """HMAC keyed once, evaluated many times. The key is never shown."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, hash_name: str, key: bytes) -> None:
        ctor = _CONSTRUCTORS[hash_name]
        block = 128 if hash_name in ("sha384", "sha512") else 64
        if len(key) > block:
            key = ctor(key).digest()
        padded = bytes(key).ljust(block, b"\x00")
        self._inner = ctor(padded.translate(_IPAD))
        self._outer = ctor(padded.translate(_OPAD))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return "Hmac(<key hidden>)"


# HKDF-Extract without a salt keys HMAC with HashLen zero bytes: the same key every time, so it is keyed
# once per hash. The states are only ever copied, never updated, so sharing them between threads is safe.
_ZERO_SALT = {name: Hmac(name, bytes(length)) for name, length in _HASH_LEN.items()}


def hmac_digest(hash_name: str, key: bytes, data: bytes) -> bytes:
    """One-shot HMAC (RFC 2104), bytes-identical to ``hmac.digest``.

    For keys up to a block long (all our per-record keys) this pads the key by hand and runs the two
    hashes directly, which skips OpenSSL's HMAC context set-up; it runs several times per item.
    """
    ctor = _CONSTRUCTORS[hash_name]
    block = 128 if hash_name != "sha256" else 64
    if len(key) > block:
        return hmac.digest(key, data, hash_name)
    padded = key.ljust(block, b"\x00")
    return ctor(padded.translate(_OPAD) + ctor(padded.translate(_IPAD) + data).digest()).digest()  # type: ignore[no-any-return]


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
    extract = Hmac(hash_name, salt) if salt else _ZERO_SALT[hash_name]
    prk = extract.digest(ikm)
    if length > hash_len:
        keyed = Hmac(hash_name, prk)
        return [_expand(keyed, info, length, hash_len) for info in infos]
    # One block per output, the common case (32-byte keys from SHA-384/512): HMAC-Expand written out,
    # since this runs several times per DynamoDB item. The PRK is HashLen long, never over a block.
    ctor = _CONSTRUCTORS[hash_name]
    padded = prk.ljust(128 if hash_name != "sha256" else 64, b"\x00")
    inner, outer = ctor(padded.translate(_IPAD)), ctor(padded.translate(_OPAD))
    out = []
    for info in infos:
        state = inner.copy()
        state.update(info + b"\x01")
        final = outer.copy()
        final.update(state.digest())
        out.append(final.digest()[:length])
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


def constant_time_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
