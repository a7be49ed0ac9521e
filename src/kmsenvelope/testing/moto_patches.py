"""Narrow patches that make moto (5.x) behave like AWS KMS and S3 where kmsenvelope depends on it.

Each patch names the AWS behaviour it restores; ``docs/testing.md`` lists them and each has a test in
``tests/test_testing_moto_patches.py``. They are applied while a :func:`~kmsenvelope.testing.local_aws`
server runs and reverted when the last one stops.

1. ``MRK_CIPHERTEXT`` -- moto packs the key id into a fixed 36-byte field, which cuts the 40-character
   ``mrk-<uuid>`` ids it generates, so every multi-Region key ``Decrypt`` failed. AWS: a ciphertext of
   a multi-Region key decrypts in any region holding the primary or a replica (they share key material).
2. ``RSA_DECRYPT`` -- moto's ``Decrypt`` treats every key as symmetric. AWS: ``Decrypt`` with an RSA
   ``ENCRYPT_DECRYPT`` key and ``EncryptionAlgorithm=RSAES_OAEP_SHA_1|256`` RSA-decrypts a ciphertext made
   with the key's ``GetPublicKey`` public key.
3. ``KEY_STATE`` -- moto encrypts and decrypts with disabled keys. AWS refuses a disabled key with
   ``DisabledException`` and a key pending deletion (or otherwise unusable) with
   ``KMSInvalidStateException``.
4. ``S3_COPY_SOURCE_IF_MATCH`` -- moto's S3 ``UploadPartCopy`` ignores ``x-amz-copy-source-if-match``.
   AWS answers 412 ``PreconditionFailed`` when the source object's ETag is not the one given, so a
   copy never mixes bytes of two versions of an object.
"""

from __future__ import annotations

import base64
import contextlib
import json
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["PATCHES", "MotoPatch", "active", "apply", "revert", "suspended"]


@dataclass(frozen=True)
class MotoPatch:
    """One patch: what it restores, and how to install and remove it."""

    name: str
    aws_behaviour: str
    install: Callable[[], Callable[[], None]]
    """Installs the patch and returns the function that removes it."""


def _setattr(owner: Any, name: str, value: Any) -> Callable[[], None]:
    original = owner.__dict__[name]
    setattr(owner, name, value)
    return lambda: setattr(owner, name, original)


def _undo_all(undo: list[Callable[[], None]]) -> Callable[[], None]:
    def run() -> None:
        for step in reversed(undo):
            step()

    return run


# -- 1. multi-Region key ciphertexts ---------------------------------------------------------------

_IV_LEN = 12
_TAG_LEN = 16


def _install_mrk_ciphertext() -> Callable[[], None]:
    from moto.kms import utils

    def serialize(ciphertext: Any) -> bytes:
        # moto calls this with the keyword ``ciphertext``.
        key_id = str(ciphertext.key_id).encode("utf-8")
        body = bytes(ciphertext.iv + ciphertext.tag + ciphertext.ciphertext)
        # A length prefix instead of moto's fixed 36-byte field keeps the whole key id.
        return struct.pack(">B", len(key_id)) + key_id + body

    def deserialize(ciphertext_blob: bytes) -> Any:
        # moto calls this with the keyword ``ciphertext_blob``.
        (length,) = struct.unpack_from(">B", ciphertext_blob)
        header = 1 + length + _IV_LEN + _TAG_LEN
        if len(ciphertext_blob) < header:
            raise ValueError("ciphertext blob too short")
        key_id = ciphertext_blob[1 : 1 + length].decode("utf-8")
        iv = ciphertext_blob[1 + length : 1 + length + _IV_LEN]
        tag = ciphertext_blob[1 + length + _IV_LEN : header]
        return utils.Ciphertext(key_id=key_id, iv=iv, ciphertext=ciphertext_blob[header:], tag=tag)

    undo = [
        _setattr(utils, "_serialize_ciphertext_blob", serialize),
        _setattr(utils, "_deserialize_ciphertext_blob", deserialize),
    ]
    return _undo_all(undo)


# -- 3. key state ---------------------------------------------------------------------------------


def _state_error(key: Any) -> Exception | None:
    from moto.core.exceptions import JsonRESTError

    state = getattr(key, "key_state", "Enabled")
    if state == "Enabled":
        return None
    if state == "Disabled":
        return JsonRESTError("DisabledException", f"{key.arn} is disabled.")
    if state == "PendingDeletion":
        return JsonRESTError("KMSInvalidStateException", f"{key.arn} is pending deletion.")
    return JsonRESTError("KMSInvalidStateException", f"{key.arn} is {state}.")


def _find_key(backend: Any, key_id: str | None) -> Any:
    if not key_id:
        return None
    try:
        return backend.keys.get(backend.any_id_to_key_id(key_id))
    except Exception:  # unresolvable ids are left for moto to report as it does
        return None


def _check_state(key: Any) -> None:
    if key is not None:
        error = _state_error(key)
        if error is not None:
            raise error


def _install_key_state() -> Callable[[], None]:
    from moto.kms import utils
    from moto.kms.models import KmsBackend

    original_encrypt = KmsBackend.encrypt
    original_decrypt = KmsBackend.decrypt

    def encrypt(self: Any, key_id: str, plaintext: bytes, encryption_context: dict[str, str]) -> Any:
        _check_state(_find_key(self, key_id))
        return original_encrypt(self, key_id, plaintext, encryption_context)

    def decrypt(
        self: Any, ciphertext_blob: bytes, encryption_context: dict[str, str], key_id: str | None = None
    ) -> Any:
        try:
            blob_key_id = utils._deserialize_ciphertext_blob(ciphertext_blob).key_id
        except Exception:  # a malformed blob is for moto to reject
            blob_key_id = None
        _check_state(_find_key(self, blob_key_id))
        return original_decrypt(self, ciphertext_blob, encryption_context, key_id)

    undo = [_setattr(KmsBackend, "encrypt", encrypt), _setattr(KmsBackend, "decrypt", decrypt)]
    return _undo_all(undo)


# -- 2. RSA decrypt -------------------------------------------------------------------------------

_OAEP_HASHES = ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256")


def _install_rsa_decrypt() -> Callable[[], None]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from moto.kms.exceptions import InvalidCiphertextException, InvalidKeyUsageException
    from moto.kms.responses import KmsResponse

    original = KmsResponse.decrypt

    def decrypt(self: Any) -> str:
        key = _find_key(self.kms_backend, self._get_param("KeyId"))
        if key is None or not str(getattr(key, "key_spec", "")).startswith("RSA_"):
            return original(self)
        algorithm = self._get_param("EncryptionAlgorithm")
        if key.key_usage != "ENCRYPT_DECRYPT" or algorithm not in _OAEP_HASHES:
            raise InvalidKeyUsageException()
        _check_state(key)
        digest = hashes.SHA1() if algorithm == "RSAES_OAEP_SHA_1" else hashes.SHA256()  # noqa: S303 -- KMS defines it so
        oaep = padding.OAEP(mgf=padding.MGF1(digest), algorithm=digest, label=None)
        try:
            plaintext = key.private_key.private_key.decrypt(self._get_param("CiphertextBlob"), oaep)
        except ValueError:
            raise InvalidCiphertextException() from None
        return json.dumps(
            {
                "KeyId": key.arn,
                "Plaintext": base64.b64encode(plaintext).decode("ascii"),
                "EncryptionAlgorithm": algorithm,
            }
        )

    return _setattr(KmsResponse, "decrypt", decrypt)


# -- 4. S3 UploadPartCopy preconditions ------------------------------------------------------------


def _install_copy_source_if_match() -> Callable[[], None]:
    from urllib.parse import parse_qs, unquote, urlparse

    from moto.s3.exceptions import PreconditionFailed
    from moto.s3.responses import S3Response

    original = S3Response.upload_part_copy

    def upload_part_copy(self: Any) -> Any:
        expected = self.headers.get("x-amz-copy-source-if-match")
        source = self.headers.get("x-amz-copy-source")
        if expected and source:
            if isinstance(source, bytes):
                source = source.decode("utf-8")
            parsed = urlparse(source)
            bucket, key_name = unquote(parsed.path).lstrip("/").split("/", 1)
            version = parse_qs(parsed.query).get("versionId", [None])[0]
            key = self.backend.get_object(bucket, key_name, version_id=version)
            if key is not None and expected.strip() != "*" and expected.strip('" ') != key.etag.strip('"'):
                raise PreconditionFailed("x-amz-copy-source-If-Match")
        return original(self)

    return _setattr(S3Response, "upload_part_copy", upload_part_copy)


PATCHES: tuple[MotoPatch, ...] = (
    MotoPatch(
        "MRK_CIPHERTEXT",
        "a multi-Region key ciphertext decrypts in every region holding the primary or a replica",
        _install_mrk_ciphertext,
    ),
    MotoPatch(
        "RSA_DECRYPT",
        "Decrypt with an RSA key and RSAES_OAEP_SHA_1/256 decrypts ciphertexts made with GetPublicKey's key",
        _install_rsa_decrypt,
    ),
    MotoPatch(
        "KEY_STATE",
        "disabled keys fail with DisabledException, keys pending deletion with KMSInvalidStateException",
        _install_key_state,
    ),
    MotoPatch(
        "S3_COPY_SOURCE_IF_MATCH",
        "S3 UploadPartCopy fails with 412 PreconditionFailed unless the source's ETag is the one in "
        "x-amz-copy-source-if-match",
        _install_copy_source_if_match,
    ),
)

_lock = threading.Lock()
_users = 0
_undo: list[Callable[[], None]] = []


def apply() -> None:
    """Install every patch (reference-counted: nested local servers share one installation)."""
    global _users
    with _lock:
        if _users == 0:
            for patch in PATCHES:
                _undo.append(patch.install())
        _users += 1


def revert() -> None:
    """Undo one :func:`apply`; the patches are removed when the last user reverts."""
    global _users
    with _lock:
        if _users == 0:
            return
        _users -= 1
        if _users == 0:
            while _undo:
                _undo.pop()()


def active() -> bool:
    """Whether the patches are installed."""
    with _lock:
        return bool(_undo)


@contextlib.contextmanager
def suspended() -> Iterator[None]:
    """Run a block against unpatched moto (to show what a patch fixes); reinstalls afterwards."""
    with _lock:
        while _undo:
            _undo.pop()()
    try:
        yield
    finally:
        with _lock:
            if _users > 0 and not _undo:
                for patch in PATCHES:
                    _undo.append(patch.install())
