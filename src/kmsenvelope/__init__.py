"""kmsenvelope: client-side envelope encryption on AWS, byte-compatible with the AWS Encryption SDK.

The public API is small and loaded lazily, so ``import kmsenvelope`` stays fast::

    from kmsenvelope import Envelope, RawAesKeyring

    envelope = Envelope(RawAesKeyring("my-namespace", "my-key", key))
    ciphertext = envelope.encrypt(b"secret", {"tenant": "acme"})
    assert envelope.decrypt(ciphertext, {"tenant": "acme"}) == b"secret"
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> defining module (relative to this package)
_EXPORTS: dict[str, str] = {
    "Envelope": ".envelope",
    "DecryptResult": ".envelope",
    "MessageHeader": ".message.header",
    "Suite": ".suites",
    "CommitmentPolicy": ".suites",
    "Keyring": ".materials.protocols",
    "MaterialsManager": ".materials.protocols",
    "EncryptedDataKey": ".materials.materials",
    "DefaultMaterials": ".materials.cmm",
    "RequiredContextMaterials": ".materials.cmm",
    "RawAesKeyring": ".keyrings.raw_aes",
    "RawRsaKeyring": ".keyrings.raw_rsa",
    "MultiKeyring": ".keyrings.multi",
    "KmsKeyring": ".keyrings.kms",
    "KmsDiscoveryKeyring": ".keyrings.kms_discovery",
    "KmsRsaKeyring": ".keyrings.kms_rsa",
    "DiscoveryFilter": ".aws.arn",
    "CachingMaterials": ".materials.caching",
    "HierarchicalKeyring": ".keyrings.hierarchical",
    "StaticBranchKeyStore": ".aws.key_store",
    "stats": ".aws.accounting",
    "rewrap": ".rewrapping",
    "rewrap_stream": ".rewrapping",
}

__all__ = sorted([*_EXPORTS, "errors"])

if TYPE_CHECKING:
    from . import errors as errors
    from .aws.accounting import stats as stats
    from .aws.arn import DiscoveryFilter as DiscoveryFilter
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
    from .materials.materials import EncryptedDataKey as EncryptedDataKey
    from .materials.protocols import Keyring as Keyring
    from .materials.protocols import MaterialsManager as MaterialsManager
    from .message.header import MessageHeader as MessageHeader
    from .rewrapping import rewrap as rewrap
    from .rewrapping import rewrap_stream as rewrap_stream
    from .suites import CommitmentPolicy as CommitmentPolicy
    from .suites import Suite as Suite


def __getattr__(name: str) -> Any:
    if name == "errors":
        return importlib.import_module(".errors", __name__)
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kmsenvelope' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
