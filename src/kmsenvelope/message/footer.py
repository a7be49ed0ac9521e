"""The message footer of signed suites: uint16 signature length | DER-encoded ECDSA signature.

The signature covers every byte of the header and body (``data-format/message-footer.md``).
"""

from __future__ import annotations

from ..errors import MalformedInputError, PolicyError
from ..materials.materials import DecryptionMaterials, EncryptionMaterials
from ..primitives.ecdsa import Signer, Verifier
from .codec import Reader, u16

__all__ = ["MAX_FOOTER_LENGTH", "sign", "verify"]

# DER ECDSA-Sig-Value for P-384: at most 2 + 2 * (2 + 49) = 104 bytes; P-256 is shorter.
MAX_SIGNATURE_LENGTH = 104
MAX_FOOTER_LENGTH = 2 + MAX_SIGNATURE_LENGTH


def signer_for(materials: EncryptionMaterials) -> Signer:
    if materials.signing_key is None:
        raise PolicyError("signing suite without a signing key in the materials")
    hash_name = materials.suite.info.signature_hash
    if hash_name is None:
        raise PolicyError(f"signing suite {materials.suite.name} names no signature hash")
    return Signer(materials.signing_key, hash_name)


def finish(signer: Signer) -> bytes:
    """The footer once every header and body byte went through ``signer``."""
    signature = signer.finalize()
    return u16(len(signature)) + signature


def sign(materials: EncryptionMaterials, signed: bytes | memoryview) -> bytes:
    """The footer for a message whose header and body are ``signed``."""
    signer = signer_for(materials)
    signer.update(signed)
    return finish(signer)


def verifier_for(materials: DecryptionMaterials) -> Verifier:
    if materials.verification_key is None:
        raise MalformedInputError("signed message without a verification key")
    hash_name = materials.suite.info.signature_hash
    if hash_name is None:
        raise PolicyError(f"signing suite {materials.suite.name} names no signature hash")
    return Verifier(materials.verification_key, hash_name)


def read_signature(reader: Reader) -> bytes:
    length = reader.u16("signature length")
    if length == 0 or length > MAX_SIGNATURE_LENGTH:
        raise MalformedInputError(f"invalid signature length {length}")
    return reader.read(length, "signature")


def verify(materials: DecryptionMaterials, signed: bytes | memoryview, reader: Reader) -> None:
    """Read the footer from ``reader`` and verify it over ``signed``; raises SignatureError."""
    verifier = verifier_for(materials)
    signature = read_signature(reader)
    verifier.update(signed)
    verifier.verify(signature)
