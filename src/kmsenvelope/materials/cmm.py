"""Materials managers: the default CMM and the required-encryption-context CMM.

Sources: ESDK ``framework/default-cmm.md`` and ``framework/required-encryption-context-cmm.md``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence

from ..errors import (
    ConfigurationError,
    ContextMismatchError,
    MalformedInputError,
    NoUsableKeyError,
    PolicyError,
)
from ..primitives import ecdsa
from ..suites import CommitmentPolicy, DbeSuite, Suite
from ..values import EMPTY_CONTEXT, freeze_context
from .materials import (
    AnySuite,
    DecryptionMaterials,
    DecryptionRequest,
    EncryptedDataKey,
    EncryptionMaterials,
    EncryptionRequest,
    _build_decryption_materials,
    _build_encryption_materials,
    check_data_key,
)
from .protocols import Keyring, MaterialsManager, RecordKeyring

__all__ = ["DefaultMaterials", "RequiredContextMaterials", "as_materials_manager", "check_suite_policy"]

PUBLIC_KEY_CONTEXT_KEY = "aws-crypto-public-key"

DEFAULT_SUITE = Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY
DEFAULT_LEGACY_SUITE = Suite.AES_256_GCM_IV12_TAG16_HKDF_SHA256


def check_suite_policy(suite: AnySuite, policy: CommitmentPolicy, *, encrypting: bool) -> None:
    """Enforce the commitment policy (``client-apis/client.md``); DB-ESDK suites always commit."""
    if type(suite) is DbeSuite:
        return  # every DB-ESDK suite commits, so every policy admits it
    allowed = _ENCRYPT_ALLOWED[policy] if encrypting else _DECRYPT_ALLOWED[policy]
    if suite in allowed:
        return
    if encrypting:
        raise PolicyError(f"commitment policy {policy.value} forbids encrypting with {suite.name}")
    raise PolicyError(
        f"commitment policy {policy.value} forbids decrypting a {suite.name} message; "
        "pass commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT to read legacy messages"
    )


# Which suites each policy admits, as sets: this check runs on every message.
_ENCRYPT_ALLOWED: dict[CommitmentPolicy, frozenset[AnySuite]] = {
    policy: frozenset([*DbeSuite, *(s for s in Suite if s.committing == policy.encrypt_requires_commitment)])
    for policy in CommitmentPolicy
}
_DECRYPT_ALLOWED: dict[CommitmentPolicy, frozenset[AnySuite]] = {
    policy: frozenset(
        [*DbeSuite, *(s for s in Suite if s.committing or not policy.decrypt_requires_commitment)]
    )
    for policy in CommitmentPolicy
}


class DefaultMaterials:
    """The default materials manager: one keyring, plus the signing key of signed suites."""

    def __init__(self, keyring: Keyring) -> None:
        if not isinstance(keyring, Keyring):
            raise ConfigurationError("DefaultMaterials needs a keyring (on_encrypt / on_decrypt)")
        if _is_async_source(keyring):
            raise ConfigurationError("this is an async keyring: use it through kmsenvelope.aio")
        self._keyring = keyring
        # Checked once: runtime protocol checks are too slow for every message.
        self._record_keyring = keyring if isinstance(keyring, RecordKeyring) else None

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    def get_encryption_materials(self, request: EncryptionRequest) -> EncryptionMaterials:
        """Pick the suite, add the signing key of signed suites, and ask the keyring for the data key."""
        return self.encryption_materials(
            request.encryption_context,
            request.commitment_policy,
            request.suite,
            request.required_context_keys,
        )

    def encryption_materials(
        self,
        encryption_context: Mapping[str, str],
        commitment_policy: CommitmentPolicy,
        suite: AnySuite | None = None,
        required_context_keys: Iterable[str] = frozenset(),
    ) -> EncryptionMaterials:
        """:meth:`get_encryption_materials` without building a request (the record encryptors call this)."""
        if suite is None:
            suite = DEFAULT_SUITE if commitment_policy.encrypt_requires_commitment else DEFAULT_LEGACY_SUITE
        direct = (
            None
            if self._record_keyring is None
            else self.record_key_for_encrypt(encryption_context, commitment_policy, suite)
        )
        if direct is not None:
            context, data_key, edk, symmetric_key = direct
            return EncryptionMaterials(
                suite, context, (edk,), data_key, None, frozenset(required_context_keys), (symmetric_key,)
            )
        materials = start_encryption(encryption_context, commitment_policy, suite, required_context_keys)
        return finish_encryption(materials, self._keyring.on_encrypt(materials))

    def decrypt_materials(self, request: DecryptionRequest) -> DecryptionMaterials:
        """Merge the reproduced context, load the verification key, and ask the keyring for the data key."""
        return self.decryption_materials(
            request.suite,
            request.encrypted_data_keys,
            request.encryption_context,
            request.commitment_policy,
            request.reproduced_context,
        )

    def decryption_materials(
        self,
        suite: AnySuite,
        encrypted_data_keys: Sequence[EncryptedDataKey],
        stored: Mapping[str, str],
        commitment_policy: CommitmentPolicy,
        reproduced: Mapping[str, str],
    ) -> DecryptionMaterials:
        """:meth:`decrypt_materials` without building a request (the record decryptors call this)."""
        direct = (
            None
            if self._record_keyring is None
            else self.record_key_for_decrypt(
                suite, encrypted_data_keys, stored, commitment_policy, reproduced
            )
        )
        if direct is not None:
            context, required, data_key, symmetric_key = direct
            return DecryptionMaterials(suite, context, data_key, None, required, symmetric_key)
        materials = start_decryption(suite, stored, commitment_policy, reproduced)
        return finish_decryption(self._keyring.on_decrypt(materials, encrypted_data_keys))

    # Unsigned DB-ESDK records with a RecordKeyring: what the two methods above return, as plain values,
    # so record encryptors need not build materials objects. These are the only implementation of that
    # path; the methods above wrap their results.

    def record_key_for_encrypt(
        self, encryption_context: Mapping[str, str], commitment_policy: CommitmentPolicy, suite: AnySuite
    ) -> tuple[Mapping[str, str], bytes, EncryptedDataKey, bytes] | None:
        """(frozen context, data key, EDK, symmetric signing key), or ``None`` if this manager's
        keyring does not serve ``suite`` directly."""
        keyring = self._record_keyring
        if keyring is None or not suite.symmetric_signature or suite.signing:
            return None
        check_suite_policy(suite, commitment_policy, encrypting=True)
        context = freeze_context(encryption_context)
        if PUBLIC_KEY_CONTEXT_KEY in context:
            raise PolicyError(f"encryption context key {PUBLIC_KEY_CONTEXT_KEY!r} is reserved")
        data_key, edk, symmetric_key = keyring.fresh_record_key(suite, context)
        check_data_key(suite, data_key)
        return context, data_key, edk, symmetric_key

    def record_key_for_decrypt(
        self,
        suite: AnySuite,
        encrypted_data_keys: Sequence[EncryptedDataKey],
        stored: Mapping[str, str],
        commitment_policy: CommitmentPolicy,
        reproduced: Mapping[str, str],
    ) -> tuple[Mapping[str, str], frozenset[str], bytes, bytes] | None:
        """(frozen full context, required keys, data key, symmetric signing key), or ``None`` if this
        manager's keyring does not serve ``suite`` directly."""
        keyring = self._record_keyring
        if keyring is None or not suite.symmetric_signature or suite.signing:
            return None
        check_suite_policy(suite, commitment_policy, encrypting=False)
        merged, required = _merge_context(stored, reproduced)
        if PUBLIC_KEY_CONTEXT_KEY in merged:
            raise MalformedInputError("unsigned message carries a verification key")
        context = freeze_context(merged)
        data_key, symmetric_key = keyring.open_record_key(suite, context, encrypted_data_keys)
        check_data_key(suite, data_key)
        return context, required, data_key, symmetric_key

    def __repr__(self) -> str:
        return f"DefaultMaterials({self._keyring!r})"


class RequiredContextMaterials:
    """Keeps the named context keys out of the message header but binds them to it.

    The caller must supply those pairs again on decrypt; they are authenticated, never stored.
    """

    def __init__(self, source: Keyring | MaterialsManager, required_keys: Iterable[str]) -> None:
        keys = frozenset(required_keys)
        if not keys:
            raise ConfigurationError("RequiredContextMaterials needs at least one required key")
        for key in keys:
            if not isinstance(key, str) or not key:
                raise ConfigurationError("required context keys must be non-empty strings")
        self._source = as_materials_manager(source)
        self._required = keys

    @property
    def required_keys(self) -> frozenset[str]:
        return self._required

    def get_encryption_materials(self, request: EncryptionRequest) -> EncryptionMaterials:
        """Require the configured keys in the context and mark them to be kept out of the header."""
        _require_keys(self._required, request.encryption_context, "encrypt")
        inner = EncryptionRequest(
            encryption_context=request.encryption_context,
            commitment_policy=request.commitment_policy,
            suite=request.suite,
            max_plaintext_length=request.max_plaintext_length,
            required_context_keys=request.required_context_keys | self._required,
        )
        materials = self._source.get_encryption_materials(inner)
        if not self._required <= materials.required_context_keys:
            raise PolicyError("the underlying materials manager dropped required context keys")
        return materials

    def decrypt_materials(self, request: DecryptionRequest) -> DecryptionMaterials:
        """Require the configured keys in the caller's reproduced context."""
        _require_keys(self._required, request.reproduced_context, "decrypt")
        materials = self._source.decrypt_materials(request)
        missing = self._required - materials.encryption_context.keys()
        if missing:
            raise ContextMismatchError(f"required encryption context keys missing: {sorted(missing)}")
        return materials

    def __repr__(self) -> str:
        return f"RequiredContextMaterials(required_keys={sorted(self._required)!r})"


# The default CMM's rules around the keyring call, shared with the async materials managers
# (``kmsenvelope.aio``): only the keyring call itself differs between the two.


def start_encryption(
    encryption_context: Mapping[str, str],
    commitment_policy: CommitmentPolicy,
    suite: AnySuite,
    required_context_keys: Iterable[str] = frozenset(),
) -> EncryptionMaterials:
    """The materials a keyring's ``on_encrypt`` receives: policy checked, signing key added if signed."""
    check_suite_policy(suite, commitment_policy, encrypting=True)
    context = freeze_context(encryption_context)
    if PUBLIC_KEY_CONTEXT_KEY in context:
        raise PolicyError(f"encryption context key {PUBLIC_KEY_CONTEXT_KEY!r} is reserved")
    signing_key = None
    if suite.signing:
        curve = suite.info.signature_curve
        if curve is None:
            raise PolicyError(f"signing suite {suite.name} names no signature curve")
        signing_key = ecdsa.generate_signing_key(curve)
        public = ecdsa.compress_public_key(signing_key.public_key())
        context = context | {PUBLIC_KEY_CONTEXT_KEY: base64.b64encode(public).decode("ascii")}
    keys = required_context_keys
    return _build_encryption_materials(
        EncryptionMaterials,
        suite,
        context,
        (),
        None,
        signing_key,
        keys if keys.__class__ is frozenset else frozenset(keys),
        (),
    )


def finish_encryption(materials: EncryptionMaterials, result: EncryptionMaterials) -> EncryptionMaterials:
    """Check what the keyring made of :func:`start_encryption`'s materials."""
    if result.plaintext_data_key is None or not result.encrypted_data_keys:
        raise NoUsableKeyError("the keyring produced no data key")
    # Keyrings pass the context object through; comparing contents is only needed when they did not.
    if result.suite is not materials.suite or (
        result.encryption_context is not materials.encryption_context
        and result.encryption_context != materials.encryption_context
    ):
        raise PolicyError("the keyring changed the suite or encryption context")
    return result


def start_decryption(
    suite: AnySuite,
    stored: Mapping[str, str],
    commitment_policy: CommitmentPolicy,
    reproduced: Mapping[str, str],
) -> DecryptionMaterials:
    """The materials a keyring's ``on_decrypt`` receives: full context and verification key."""
    check_suite_policy(suite, commitment_policy, encrypting=False)
    context, required = _merge_context(stored, reproduced)
    verification_key = None
    encoded = context.get(PUBLIC_KEY_CONTEXT_KEY)
    if suite.signing:
        if encoded is None:
            raise MalformedInputError("signed message has no verification key in its encryption context")
        curve = suite.info.signature_curve
        if curve is None:
            raise PolicyError(f"signing suite {suite.name} names no signature curve")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedInputError("verification key is not valid base64") from None
        verification_key = ecdsa.load_compressed_public_key(curve, raw)
    elif encoded is not None:
        raise MalformedInputError("unsigned message carries a verification key")
    return _build_decryption_materials(
        DecryptionMaterials, suite, freeze_context(context), None, verification_key, required, None
    )


def finish_decryption(result: DecryptionMaterials) -> DecryptionMaterials:
    """Check that the keyring recovered a data key."""
    if result.plaintext_data_key is None:
        raise NoUsableKeyError("no keyring recovered the data key")
    return result


_NO_KEYS: frozenset[str] = frozenset()


def _merge_context(
    stored: Mapping[str, str], reproduced: Mapping[str, str]
) -> tuple[Mapping[str, str], frozenset[str]]:
    """The full context and its required keys: reproduced pairs the header does not store become
    required (authenticated, never stored); pairs in both must agree."""
    if reproduced is EMPTY_CONTEXT or not reproduced:
        return stored, _NO_KEYS
    if not stored:
        return reproduced, frozenset(reproduced)
    # Set difference of the items views runs in C; usually every reproduced pair is stored as given.
    different = reproduced.items() - stored.items()
    if not different:
        return stored, frozenset()
    stored_keys = stored.keys()
    extra: dict[str, str] = {}
    for key, value in different:
        if key in stored_keys:
            raise ContextMismatchError(f"encryption context value for {key!r} does not match")
        extra[key] = value
    merged = dict(stored.items())
    merged.update(extra)
    return merged, frozenset(extra)


def _require_keys(required: frozenset[str], context: Mapping[str, str], operation: str) -> None:
    missing = required - context.keys()
    if missing:
        raise ContextMismatchError(
            f"{operation} needs the required encryption context keys {sorted(missing)}"
        )


def as_materials_manager(source: Keyring | MaterialsManager) -> MaterialsManager:
    """Wrap a keyring in :class:`DefaultMaterials`; pass a materials manager through."""
    if _is_async_source(source):
        raise ConfigurationError(
            "this is an async keyring or materials manager: use kmsenvelope.aio.AsyncEnvelope"
        )
    if isinstance(source, MaterialsManager):
        return source
    if isinstance(source, Keyring):
        return DefaultMaterials(source)
    raise ConfigurationError("source must be a keyring or a materials manager")


def _is_async_source(source: object) -> bool:
    """Whether ``source``'s operations are coroutines (a :mod:`kmsenvelope.aio` keyring or manager)."""
    import inspect

    return any(
        inspect.iscoroutinefunction(getattr(source, name, None))
        for name in ("on_encrypt", "on_decrypt", "get_encryption_materials", "decrypt_materials")
    )
