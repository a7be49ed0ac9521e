"""AES-256-CTR keystream, the DB-ESDK's per-field key and nonce source.

Through ``cryptography``'s public ``Cipher`` API only. Calling its private Rust cipher-context constructor
directly was measured to buy nothing on the DynamoDB item round trip (``docs/performance.md``, "Shortcuts
and the portable switch"), so it was removed.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["aes_ctr_keystream"]


def aes_ctr_keystream(key: bytes, counter_block: modes.CTR, length: int) -> bytes:
    """``length`` bytes of AES-CTR keystream under ``key`` from ``counter_block`` (a reusable mode)."""
    if len(key) != 32:
        raise ValueError("AES-256-CTR needs a 32-byte key")
    return Cipher(algorithms.AES(key), counter_block).encryptor().update(bytes(length))
