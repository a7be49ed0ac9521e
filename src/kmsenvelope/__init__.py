"""kmsenvelope: client-side envelope encryption on AWS, byte-compatible with the AWS Encryption SDK.

The public API is small and loaded lazily, so ``import kmsenvelope`` stays fast::

    from kmsenvelope import Envelope, RawAesKeyring

    envelope = Envelope(RawAesKeyring("my-namespace", "my-key", key))
    ciphertext = envelope.encrypt(b"secret", {"tenant": "acme"})
    assert envelope.decrypt(ciphertext, {"tenant": "acme"}) == b"secret"
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

__version__ = "0.1.0"

# To export a name, add one line to each of __all__, _EXPORTS and the TYPE_CHECKING block (see _lazy.py).
__all__ = [
    "BranchKeyStore",
    "CachingMaterials",
    "CommitmentPolicy",
    "DecryptLimits",
    "DecryptResult",
    "DefaultMaterials",
    "DiscoveryFilter",
    "EncryptedDataKey",
    "EncryptionContext",
    "Envelope",
    "HierarchicalKeyring",
    "KeyStore",
    "Keyring",
    "KmsDiscoveryKeyring",
    "KmsKeyring",
    "KmsRsaKeyring",
    "MaterialsManager",
    "MessageHeader",
    "MultiKeyring",
    "RawAesKeyring",
    "RawRsaKeyring",
    "RequiredContextMaterials",
    "StaticBranchKeyStore",
    "Suite",
    "errors",
    "rewrap",
    "rewrap_stream",
    "stats",
]

# public name -> defining module (relative to this package)
_EXPORTS = {
    "BranchKeyStore": ".aws.key_store",
    "CachingMaterials": ".materials.caching",
    "CommitmentPolicy": ".suites",
    "DecryptLimits": ".message.header",
    "DecryptResult": ".envelope",
    "DefaultMaterials": ".materials.cmm",
    "DiscoveryFilter": ".aws.arn",
    "EncryptedDataKey": ".values",
    "EncryptionContext": ".values",
    "Envelope": ".envelope",
    "HierarchicalKeyring": ".keyrings.hierarchical",
    "KeyStore": ".aws.branch_key_store",
    "Keyring": ".materials.protocols",
    "KmsDiscoveryKeyring": ".keyrings.kms_discovery",
    "KmsKeyring": ".keyrings.kms",
    "KmsRsaKeyring": ".keyrings.kms_rsa",
    "MaterialsManager": ".materials.protocols",
    "MessageHeader": ".message.header",
    "MultiKeyring": ".keyrings.multi",
    "RawAesKeyring": ".keyrings.raw_aes",
    "RawRsaKeyring": ".keyrings.raw_rsa",
    "RequiredContextMaterials": ".materials.cmm",
    "StaticBranchKeyStore": ".aws.key_store",
    "Suite": ".suites",
    "stats": ".aws.accounting",
    "rewrap": ".rewrapping",
    "rewrap_stream": ".rewrapping",
}

if TYPE_CHECKING:
    from . import errors as errors
    from .aws.accounting import stats as stats
    from .aws.arn import DiscoveryFilter as DiscoveryFilter
    from .aws.branch_key_store import KeyStore as KeyStore
    from .aws.key_store import BranchKeyStore as BranchKeyStore
    from .aws.key_store import StaticBranchKeyStore as StaticBranchKeyStore
    from .envelope import DecryptResult as DecryptResult
    from .envelope import Envelope as Envelope
    from .keyrings.hierarchical import HierarchicalKeyring as HierarchicalKeyring
    from .keyrings.kms import KmsKeyring as KmsKeyring
    from .keyrings.kms_discovery import KmsDiscoveryKeyring as KmsDiscoveryKeyring
    from .keyrings.kms_rsa import KmsRsaKeyring as KmsRsaKeyring
    from .keyrings.multi import MultiKeyring as MultiKeyring
    from .keyrings.raw_aes import RawAesKeyring as RawAesKeyring
    from .keyrings.raw_rsa import RawRsaKeyring as RawRsaKeyring
    from .materials.caching import CachingMaterials as CachingMaterials
    from .materials.cmm import DefaultMaterials as DefaultMaterials
    from .materials.cmm import RequiredContextMaterials as RequiredContextMaterials
    from .materials.protocols import Keyring as Keyring
    from .materials.protocols import MaterialsManager as MaterialsManager
    from .message.header import DecryptLimits as DecryptLimits
    from .message.header import MessageHeader as MessageHeader
    from .rewrapping import rewrap as rewrap
    from .rewrapping import rewrap_stream as rewrap_stream
    from .suites import CommitmentPolicy as CommitmentPolicy
    from .suites import Suite as Suite
    from .values import EncryptedDataKey as EncryptedDataKey
    from .values import EncryptionContext as EncryptionContext
else:
    __getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS, submodules=("errors",))
