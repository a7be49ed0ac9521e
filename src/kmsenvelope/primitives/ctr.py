"""AES-256-CTR keystream, the DB-ESDK's per-field key and nonce source.

``cryptography``'s public ``Cipher(...).encryptor()`` spends about as long validating and wrapping as
OpenSSL spends on the whole job for the few hundred bytes a record needs, and this runs twice per item
round trip. When the installed ``cryptography`` exposes its Rust cipher-context constructor (the one
``Cipher.encryptor`` itself calls), it is used directly; otherwise the public API is. Both produce the
same bytes, which ``tests/test_record_key_paths.py`` checks against each other and against a NIST vector.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["USING_RUST_CONTEXT", "aes_ctr_keystream", "public_api_keystream"]


def public_api_keystream(key: bytes, counter_block: modes.CTR, length: int) -> bytes:
    """The keystream through ``cryptography``'s public API (the fallback, and the tests' reference)."""
    return Cipher(algorithms.AES(key), counter_block).encryptor().update(bytes(length))


def _rust_context_constructor() -> Callable[[Any, Any], Any] | None:
    try:
        from cryptography.hazmat.bindings._rust import openssl as rust_openssl

        create = rust_openssl.ciphers.create_encryption_ctx
        # Probe once: the private signature must behave exactly like the public path.
        probe_key, probe_mode = bytes(range(32)), modes.CTR(bytes(range(16)))
        if create(algorithms.AES(probe_key), probe_mode).update(bytes(48)) != public_api_keystream(
            probe_key, probe_mode, 48
        ):
            return None
        return create
    except Exception:  # any missing attribute or changed signature: use the public API
        return None


_CREATE = _rust_context_constructor()
USING_RUST_CONTEXT = _CREATE is not None


def aes_ctr_keystream(key: bytes, counter_block: modes.CTR, length: int) -> bytes:
    """``length`` bytes of AES-CTR keystream under ``key`` from ``counter_block`` (a reusable mode)."""
    if len(key) != 32:
        raise ValueError("AES-256-CTR needs a 32-byte key")
    if _CREATE is None:
        return public_api_keystream(key, counter_block, length)
    return _CREATE(algorithms.AES(key), counter_block).update(bytes(length))  # type: ignore[no-any-return]
