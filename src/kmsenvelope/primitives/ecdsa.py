"""ECDSA signing and verification with compressed-point public keys (SEC 1 section 2.3.3)."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..errors import MalformedInputError, SignatureError

_CURVES: dict[str, ec.EllipticCurve] = {"secp256r1": ec.SECP256R1(), "secp384r1": ec.SECP384R1()}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"sha256": hashes.SHA256, "sha384": hashes.SHA384}


def generate_signing_key(curve: str) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(_CURVES[curve])


def compress_public_key(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)


def load_compressed_public_key(curve: str, data: bytes) -> ec.EllipticCurvePublicKey:
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(_CURVES[curve], data)
    except ValueError:
        raise MalformedInputError("invalid ECDSA verification key") from None


class Signer:
    """Incremental ECDSA signer: feed every byte of the message, then :meth:`finalize`."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, hash_name: str) -> None:
        self._key = key
        self._algorithm = _HASHES[hash_name]()
        self._hasher = hashes.Hash(self._algorithm)

    def update(self, data: bytes | memoryview) -> None:
        self._hasher.update(data)

    def finalize(self) -> bytes:
        from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

        digest = self._hasher.finalize()
        return self._key.sign(digest, ec.ECDSA(Prehashed(self._algorithm)))


class Verifier:
    """Incremental ECDSA verifier; :meth:`verify` raises :class:`SignatureError`."""

    def __init__(self, key: ec.EllipticCurvePublicKey, hash_name: str) -> None:
        self._key = key
        self._algorithm = _HASHES[hash_name]()
        self._hasher = hashes.Hash(self._algorithm)

    def update(self, data: bytes | memoryview) -> None:
        self._hasher.update(data)

    def verify(self, signature: bytes) -> None:
        from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

        digest = self._hasher.finalize()
        try:
            self._key.verify(signature, digest, ec.ECDSA(Prehashed(self._algorithm)))
        except InvalidSignature:
            raise SignatureError("message signature did not verify") from None
