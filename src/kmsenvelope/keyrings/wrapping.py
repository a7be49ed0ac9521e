"""How keyrings put the data key into an EDK: the MPL's EDK wrapping.

ESDK suites use *direct* wrapping: the keyring's wrapping key encrypts the data key itself.
DB-ESDK suites (``DbeSuite``, symmetric signature) use *intermediate key wrapping*: the keyring wraps a
random intermediate key, from which a data-key encryption key and a per-EDK symmetric signing key
are derived (MPL ``framework/algorithm-suites.md``, "Intermediate Key Wrapping").

Keyrings supply three small functions and call :func:`on_encrypt` / :func:`unwrap_edk`; this module
decides how to use them for the suite at hand.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..aws.requests import Steps, now, run_local
from ..errors import AuthenticationError, MalformedInputError, PolicyError
from ..materials.materials import AnySuite, DecryptionMaterials, EncryptionMaterials
from ..primitives.kdf import hkdf_many
from ..values import EncryptedDataKey, serialize_context

__all__ = [
    "GenerateAndWrap",
    "GenerateAndWrapSteps",
    "Unwrap",
    "UnwrapSteps",
    "Wrap",
    "WrapSteps",
    "encryption_context_aad",
    "intermediate_open",
    "intermediate_seal",
    "on_encrypt",
    "on_encrypt_steps",
    "sealed_length",
    "unwrap_edk",
    "unwrap_edk_steps",
]

Wrap = Callable[[bytes, Mapping[str, str]], EncryptedDataKey]
"""wrap(key, encryption_context) -> EDK holding ``key``."""
GenerateAndWrap = Callable[[int, Mapping[str, str]], tuple[bytes, EncryptedDataKey]]
"""generate_and_wrap(length, encryption_context) -> (fresh key, EDK holding it); e.g. KMS GenerateDataKey."""
Unwrap = Callable[[EncryptedDataKey, Mapping[str, str]], bytes]
"""unwrap(edk_with_wrapped_part, encryption_context) -> the key it holds."""


WrapSteps = Callable[[bytes, Mapping[str, str]], Steps[EncryptedDataKey]]
""":data:`Wrap` as sans-IO steps (:mod:`kmsenvelope.aws.requests`): the AWS KMS keyrings' form."""
GenerateAndWrapSteps = Callable[[int, Mapping[str, str]], Steps[tuple[bytes, EncryptedDataKey]]]
""":data:`GenerateAndWrap` as sans-IO steps."""
UnwrapSteps = Callable[[EncryptedDataKey, Mapping[str, str]], Steps[bytes]]
""":data:`Unwrap` as sans-IO steps."""


def on_encrypt(
    materials: EncryptionMaterials, wrap: Wrap, generate_and_wrap: GenerateAndWrap | None = None
) -> EncryptionMaterials:
    """Generate the data key if needed, then add one EDK made by this keyring."""
    if generate_and_wrap is None and not materials.suite.symmetric_signature:
        # Direct wrapping by a local keyring (raw AES, raw RSA): on_encrypt_steps' first branch without
        # driving a generator, which costs as much as the wrapping itself on a small message.
        data_key = materials.plaintext_data_key
        if data_key is None:
            data_key = os.urandom(materials.suite.data_key_length)
            return materials.with_data_key(data_key, wrap(data_key, materials.encryption_context))
        return materials.with_edk(wrap(data_key, materials.encryption_context))
    return run_local(
        on_encrypt_steps(materials, now(wrap), None if generate_and_wrap is None else now(generate_and_wrap))
    )


def unwrap_edk(materials: DecryptionMaterials, edk: EncryptedDataKey, unwrap: Unwrap) -> DecryptionMaterials:
    """Recover the data key from one EDK; errors propagate so the caller can record them."""
    suite = materials.suite
    if not suite.symmetric_signature:
        # unwrap_edk_steps' direct branch, without driving a generator (see on_encrypt).
        key = unwrap(edk, materials.encryption_context)
        if len(key) != suite.data_key_length:
            raise AuthenticationError("unwrapped data key has the wrong length")
        return materials.with_data_key(key)
    return run_local(unwrap_edk_steps(materials, edk, now(unwrap)))


def on_encrypt_steps(
    materials: EncryptionMaterials, wrap: WrapSteps, generate_and_wrap: GenerateAndWrapSteps | None = None
) -> Steps[EncryptionMaterials]:
    """:func:`on_encrypt` for keyrings whose wrapping calls AWS (the one implementation of both)."""
    if materials.suite.symmetric_signature:
        return (yield from _intermediate_on_encrypt(materials, wrap, generate_and_wrap))
    context = materials.encryption_context
    if materials.plaintext_data_key is None:
        length = materials.suite.data_key_length
        if generate_and_wrap is not None:
            key, edk = yield from generate_and_wrap(length, context)
            if len(key) != length:
                raise MalformedInputError("key provider returned a data key of the wrong length")
        else:
            key = os.urandom(length)
            edk = yield from wrap(key, context)
        return materials.with_data_key(key, edk)
    return materials.with_edk((yield from wrap(materials.plaintext_data_key, context)))


def unwrap_edk_steps(
    materials: DecryptionMaterials, edk: EncryptedDataKey, unwrap: UnwrapSteps
) -> Steps[DecryptionMaterials]:
    """:func:`unwrap_edk` for keyrings whose unwrapping calls AWS (the one implementation of both)."""
    if materials.suite.symmetric_signature:
        return (yield from _intermediate_unwrap(materials, edk, unwrap))
    key = yield from unwrap(edk, materials.encryption_context)
    if len(key) != materials.suite.data_key_length:
        raise AuthenticationError("unwrapped data key has the wrong length")
    return materials.with_data_key(key)


# Intermediate key wrapping (MPL ``framework/algorithm-suites.md#intermediate-key-wrapping``).
# The EDK ciphertext is AES-GCM(kek, zero IV, AAD=serialized context)(data key) || keyring-wrapped
# intermediate key, where kek and the symmetric signing key are HKDF expansions of the intermediate key.
_KEYWRAP_MAC_INFO = b"AWS_MPL_INTERMEDIATE_KEYWRAP_MAC"
_KEYWRAP_ENC_INFO = b"AWS_MPL_INTERMEDIATE_KEYWRAP_ENC"
_KEYWRAP_INFOS = (_KEYWRAP_ENC_INFO, _KEYWRAP_MAC_INFO)
_ZERO_IV = bytes(12)
_GCM_TAG_LENGTH = 16


def encryption_context_aad(context: Mapping[str, str]) -> bytes:
    """The MPL's canonical encryption context bytes (``structures.md#serialization``), used as AAD.

    This is :func:`kmsenvelope.values.serialize_context`: the empty context is the empty string and,
    unlike in the ESDK message header, the total length is not limited to 64 KiB.
    """
    return serialize_context(context)


def _intermediate_keys(suite: AnySuite, intermediate_key: bytes) -> tuple[bytes, bytes]:
    """(key encryption key, symmetric signing key) derived from one intermediate key."""
    info = suite.info
    hash_name = info.kdf_hash
    if hash_name is None or not info.committing:
        raise PolicyError("intermediate key wrapping needs a committing suite with an HKDF")
    # One HKDF-Extract with an empty salt; the MPL expands both keys from the same PRK.
    kek, signing_key = hkdf_many(hash_name, intermediate_key, None, _KEYWRAP_INFOS, info.key_length)
    return kek, signing_key


def intermediate_seal(
    suite: AnySuite, intermediate_key: bytes, data_key: bytes, aad: bytes
) -> tuple[bytes, bytes]:
    """(the data key sealed under the intermediate key's KEK, the EDK's symmetric signing key).

    The sealed data key is the first ``data_key_length + 16`` bytes of an intermediate-wrapped EDK's
    ciphertext; the keyring's wrapping of the intermediate key follows it. ``aad`` is
    :func:`encryption_context_aad` of the materials' context.
    """
    kek, signing_key = _intermediate_keys(suite, intermediate_key)
    return AESGCM(kek).encrypt(_ZERO_IV, data_key, aad), signing_key


def intermediate_open(
    suite: AnySuite, intermediate_key: bytes, sealed: bytes, aad: bytes
) -> tuple[bytes, bytes]:
    """(data key, symmetric signing key) from a sealed data key and its recovered intermediate key."""
    if len(intermediate_key) != suite.info.key_length:
        raise AuthenticationError("unwrapped intermediate key has the wrong length")
    kek, signing_key = _intermediate_keys(suite, intermediate_key)
    try:
        data_key = AESGCM(kek).decrypt(_ZERO_IV, sealed, aad)
    except InvalidTag:
        raise AuthenticationError("authentication tag did not verify") from None
    return data_key, signing_key


def sealed_length(suite: AnySuite) -> int:
    """Length of the sealed data key at the start of an intermediate-wrapped EDK ciphertext."""
    return suite.data_key_length + _GCM_TAG_LENGTH


def _intermediate_on_encrypt(
    materials: EncryptionMaterials, wrap: WrapSteps, generate_and_wrap: GenerateAndWrapSteps | None
) -> Steps[EncryptionMaterials]:
    suite = materials.suite
    context = materials.encryption_context
    key_length = suite.key_length
    data_key = materials.plaintext_data_key
    generated = data_key is None
    if data_key is None:
        data_key = os.urandom(suite.data_key_length)
    # Every EDK gets its own intermediate key, so each recipient gets its own signing key.
    if generate_and_wrap is not None:
        intermediate, inner = yield from generate_and_wrap(key_length, context)
        if len(intermediate) != key_length:
            raise MalformedInputError("key provider returned an intermediate key of the wrong length")
    else:
        intermediate = os.urandom(key_length)
        inner = yield from wrap(intermediate, context)
    sealed, signing_key = intermediate_seal(suite, intermediate, data_key, encryption_context_aad(context))
    edk = EncryptedDataKey(inner.provider_id, inner.provider_info, sealed + inner.ciphertext)
    if generated:
        return materials.with_data_key(data_key, edk, symmetric_signing_key=signing_key)
    return materials.with_edk(edk, symmetric_signing_key=signing_key)


def _intermediate_unwrap(
    materials: DecryptionMaterials, edk: EncryptedDataKey, unwrap: UnwrapSteps
) -> Steps[DecryptionMaterials]:
    suite = materials.suite
    context = materials.encryption_context
    wrapped_length = sealed_length(suite)
    ciphertext = edk.ciphertext
    if len(ciphertext) <= wrapped_length:
        raise MalformedInputError("intermediate-wrapped EDK ciphertext is too short")
    inner = EncryptedDataKey(edk.provider_id, edk.provider_info, ciphertext[wrapped_length:])
    intermediate = yield from unwrap(inner, context)
    data_key, signing_key = intermediate_open(
        suite, intermediate, ciphertext[:wrapped_length], encryption_context_aad(context)
    )
    return materials.with_data_key(data_key, symmetric_signing_key=signing_key)
