"""Per-message key derivation and key commitment (ESDK ``framework/algorithm-suites.md``).

* Identity KDF suites use the data key as is.
* HKDF suites (v1): HKDF(hash, salt=none, ikm=data key, info=suite id || message id).
* Committing suites (v2): HKDF-SHA512(salt=message id, ikm=data key), info=suite id || "DERIVEKEY"
  for the encryption key and info="COMMITKEY" for the 32-byte commitment stored in the header.
"""

from __future__ import annotations

from types import MappingProxyType

from ..primitives.kdf import hkdf, hkdf_many
from ..suites import Suite, SuiteInfo

_DERIVE_KEY_LABEL = b"DERIVEKEY"
_COMMIT_KEY_LABEL = b"COMMITKEY"


def derive_message_keys(suite: SuiteInfo, data_key: bytes, message_id: bytes) -> tuple[bytes, bytes]:
    """The content encryption key and the key commitment (empty for non-committing suites)."""
    hash_name = suite.kdf_hash
    if hash_name is None:
        return data_key, b""
    if suite.committing:
        # Both outputs share the extract step: same IKM and salt (the message id).
        key, commitment = hkdf_many(hash_name, data_key, message_id, _COMMIT_INFOS[suite.id], 32)
        return key, commitment
    return hkdf(hash_name, data_key, None, suite.id_bytes + message_id, suite.key_length), b""


# The two HKDF infos of each committing suite: constants, built once rather than per message.
_COMMIT_INFOS = MappingProxyType(
    {
        info.id: (info.id_bytes + _DERIVE_KEY_LABEL, _COMMIT_KEY_LABEL)
        for info in (suite.info for suite in Suite)
        if info.committing
    }
)
