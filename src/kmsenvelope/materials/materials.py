"""Cryptographic materials: the values that flow between a materials manager and its keyrings.

Source: ``framework/structures.md`` and ``framework/cmm-interface.md`` of the ESDK specification.
Materials are immutable; a keyring returns a new value via :meth:`with_data_key` / :meth:`with_edks`.
Secrets are excluded from ``repr``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from ..errors import MalformedInputError, PolicyError
from ..suites import CommitmentPolicy, DbeSuite, Suite

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey, EllipticCurvePublicKey

__all__ = [
    "RESERVED_CONTEXT_PREFIX",
    "AnySuite",
    "DecryptionMaterials",
    "DecryptionRequest",
    "EncryptedDataKey",
    "EncryptionMaterials",
    "EncryptionRequest",
    "freeze_context",
]

AnySuite: TypeAlias = Suite | DbeSuite

RESERVED_CONTEXT_PREFIX = "aws-crypto-"


def freeze_context(context: Mapping[str, str] | None) -> Mapping[str, str]:
    """A validated, read-only copy of an encryption context."""
    if type(context) is _FrozenDict:
        return context
    if not context:
        return _EMPTY
    try:
        cache_key: tuple[tuple[str, str], ...] | None = tuple(context.items())
        cached = _FROZEN.get(cache_key)  # type: ignore[arg-type]
    except TypeError:  # unhashable values: rejected below
        cache_key, cached = None, None
    if cached is not None:
        return cached
    out: dict[str, str] = {}
    for key, value in context.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise MalformedInputError("encryption context keys and values must be str")
        out[key] = value
    frozen = _FrozenDict(out)
    if cache_key is not None:
        remember(_FROZEN, cache_key, frozen)
    return frozen


def encode_context_field(text: str) -> bytes:
    """One key or value of a serialized encryption context: uint16 length, then UTF-8 bytes."""
    if type(text) is not str:
        raise MalformedInputError("encryption context keys and values must be str")
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedInputError("encryption context must be valid Unicode") from None
    if len(raw) > 0xFFFF:
        raise MalformedInputError("encryption context key or value longer than 65535 bytes")
    return len(raw).to_bytes(2, "big") + raw


def remember(cache: dict[Any, Any], key: object, value: object) -> None:
    """Add to a small content-keyed cache of immutable values, emptying it when full."""
    if len(cache) >= _CONTEXT_CACHE_SIZE:
        cache.clear()
    cache[key] = value


class _FrozenDict(dict[str, str]):
    """A dict that refuses mutation; hashable by content so materials can be cache keys.

    ``serialized`` caches the ESDK serialization, which keyrings and headers need repeatedly.
    """

    serialized: bytes | None = None

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise TypeError("encryption context is read-only")

    __setitem__ = _refuse
    __delitem__ = _refuse
    clear = _refuse
    pop = _refuse  # type: ignore[assignment]
    popitem = _refuse  # type: ignore[assignment]
    setdefault = _refuse  # type: ignore[assignment]
    update = _refuse

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))


_EMPTY: Mapping[str, str] = _FrozenDict()

# Contexts repeat across messages (one tenant, one table); validating, freezing and serializing them
# once per distinct content saves microseconds per message. Values are immutable and hold no secrets.
_CONTEXT_CACHE_SIZE = 512
_FROZEN: dict[tuple[tuple[str, str], ...], _FrozenDict] = {}


# These values are built several times per message. Their __init__ is written out to set the instance
# dict in one step; the dataclass one sets each frozen field through object.__setattr__, which costs
# about twice as much. Field order and defaults below must match the field declarations.


@dataclass(frozen=True, init=False)
class EncryptedDataKey:
    """One wrapped copy of the data key, as serialized in a message header."""

    provider_id: str
    provider_info: bytes
    ciphertext: bytes

    def __init__(self, provider_id: str, provider_info: bytes, ciphertext: bytes) -> None:
        _set(self, {"provider_id": provider_id, "provider_info": provider_info, "ciphertext": ciphertext})

    def describe(self) -> str:
        """A short, secret-free description for error messages: provider and printable key info."""
        info = self.provider_info
        try:
            text = info.decode("utf-8")
            printable = text.isprintable()
        except UnicodeDecodeError:
            printable = False
        return f"{self.provider_id} {text if printable else info[:16].hex()}"


@dataclass(frozen=True, init=False)
class EncryptionRequest:
    """What an encryptor asks a materials manager for."""

    encryption_context: Mapping[str, str]
    commitment_policy: CommitmentPolicy
    suite: AnySuite | None = None
    max_plaintext_length: int | None = None
    required_context_keys: frozenset[str] = frozenset()

    def __init__(
        self,
        encryption_context: Mapping[str, str],
        commitment_policy: CommitmentPolicy,
        suite: AnySuite | None = None,
        max_plaintext_length: int | None = None,
        required_context_keys: frozenset[str] = frozenset(),
    ) -> None:
        _set(
            self,
            {
                "encryption_context": encryption_context,
                "commitment_policy": commitment_policy,
                "suite": suite,
                "max_plaintext_length": max_plaintext_length,
                "required_context_keys": required_context_keys,
            },
        )


@dataclass(frozen=True, init=False)
class DecryptionRequest:
    """What a decryptor asks a materials manager for.

    ``authenticate``, when the decryptor gives one, raises unless the materials open *this* message:
    key commitment and header tag (ESDK), or commitment and recipient tag (DB-ESDK records). A caching
    manager calls it before caching fresh materials, and caches nothing when it is None: everything in
    a request comes from an unauthenticated header. Other managers may ignore it; the decryptor checks
    the header against whatever materials it gets back in any case.
    """

    suite: AnySuite
    encrypted_data_keys: tuple[EncryptedDataKey, ...]
    encryption_context: Mapping[str, str]
    commitment_policy: CommitmentPolicy
    reproduced_context: Mapping[str, str] = field(default_factory=dict)
    authenticate: Callable[[DecryptionMaterials], None] | None = field(
        default=None, repr=False, compare=False
    )

    def __init__(
        self,
        suite: AnySuite,
        encrypted_data_keys: tuple[EncryptedDataKey, ...],
        encryption_context: Mapping[str, str],
        commitment_policy: CommitmentPolicy,
        reproduced_context: Mapping[str, str] | None = None,
        authenticate: Callable[[DecryptionMaterials], None] | None = None,
    ) -> None:
        _set(
            self,
            {
                "suite": suite,
                "encrypted_data_keys": encrypted_data_keys,
                "encryption_context": encryption_context,
                "commitment_policy": commitment_policy,
                "reproduced_context": {} if reproduced_context is None else reproduced_context,
                "authenticate": authenticate,
            },
        )

    def unauthenticated(self) -> DecryptionRequest:
        """This request without its ``authenticate`` check (what a shared fetch passes on)."""
        if self.authenticate is None:
            return self
        return DecryptionRequest(
            self.suite,
            self.encrypted_data_keys,
            self.encryption_context,
            self.commitment_policy,
            self.reproduced_context,
        )


@dataclass(frozen=True, init=False)
class EncryptionMaterials:
    """Everything needed to encrypt one message."""

    suite: AnySuite
    encryption_context: Mapping[str, str]
    encrypted_data_keys: tuple[EncryptedDataKey, ...] = ()
    plaintext_data_key: bytes | None = field(default=None, repr=False)
    signing_key: EllipticCurvePrivateKey | None = field(default=None, repr=False)
    required_context_keys: frozenset[str] = frozenset()
    symmetric_signing_keys: tuple[bytes, ...] = field(default=(), repr=False)

    def __init__(
        self,
        suite: AnySuite,
        encryption_context: Mapping[str, str],
        encrypted_data_keys: tuple[EncryptedDataKey, ...] = (),
        plaintext_data_key: bytes | None = None,
        signing_key: EllipticCurvePrivateKey | None = None,
        required_context_keys: frozenset[str] = frozenset(),
        symmetric_signing_keys: tuple[bytes, ...] = (),
    ) -> None:
        _set(
            self,
            {
                "suite": suite,
                "encryption_context": encryption_context,
                "encrypted_data_keys": encrypted_data_keys,
                "plaintext_data_key": plaintext_data_key,
                "signing_key": signing_key,
                "required_context_keys": required_context_keys,
                "symmetric_signing_keys": symmetric_signing_keys,
            },
        )

    def with_data_key(
        self,
        plaintext_data_key: bytes,
        edk: EncryptedDataKey | None = None,
        symmetric_signing_key: bytes | None = None,
    ) -> EncryptionMaterials:
        """Materials with a freshly generated data key (and optionally its first EDK)."""
        if self.plaintext_data_key is not None:
            raise PolicyError("encryption materials already hold a data key")
        check_data_key(self.suite, plaintext_data_key)
        edks = self.encrypted_data_keys + ((edk,) if edk is not None else ())
        sym = self.symmetric_signing_keys + (
            (symmetric_signing_key,) if symmetric_signing_key is not None else ()
        )
        return EncryptionMaterials(
            self.suite,
            self.encryption_context,
            edks,
            bytes(plaintext_data_key),
            self.signing_key,
            self.required_context_keys,
            sym,
        )

    def with_edk(
        self, edk: EncryptedDataKey, symmetric_signing_key: bytes | None = None
    ) -> EncryptionMaterials:
        """Materials with one more encrypted data key."""
        if self.plaintext_data_key is None:
            raise PolicyError("cannot add an encrypted data key before a data key exists")
        sym = self.symmetric_signing_keys + (
            (symmetric_signing_key,) if symmetric_signing_key is not None else ()
        )
        return EncryptionMaterials(
            self.suite,
            self.encryption_context,
            (*self.encrypted_data_keys, edk),
            self.plaintext_data_key,
            self.signing_key,
            self.required_context_keys,
            sym,
        )

    def __repr__(self) -> str:
        return (
            f"EncryptionMaterials(suite={self.suite!r}, context_keys={sorted(self.encryption_context)!r}, "
            f"edks={len(self.encrypted_data_keys)}, has_data_key={self.plaintext_data_key is not None})"
        )


@dataclass(frozen=True, init=False)
class DecryptionMaterials:
    """Everything needed to decrypt one message."""

    suite: AnySuite
    encryption_context: Mapping[str, str]
    plaintext_data_key: bytes | None = field(default=None, repr=False)
    verification_key: EllipticCurvePublicKey | None = field(default=None, repr=False)
    required_context_keys: frozenset[str] = frozenset()
    symmetric_signing_key: bytes | None = field(default=None, repr=False)

    def __init__(
        self,
        suite: AnySuite,
        encryption_context: Mapping[str, str],
        plaintext_data_key: bytes | None = None,
        verification_key: EllipticCurvePublicKey | None = None,
        required_context_keys: frozenset[str] = frozenset(),
        symmetric_signing_key: bytes | None = None,
    ) -> None:
        _set(
            self,
            {
                "suite": suite,
                "encryption_context": encryption_context,
                "plaintext_data_key": plaintext_data_key,
                "verification_key": verification_key,
                "required_context_keys": required_context_keys,
                "symmetric_signing_key": symmetric_signing_key,
            },
        )

    def with_data_key(
        self, plaintext_data_key: bytes, symmetric_signing_key: bytes | None = None
    ) -> DecryptionMaterials:
        """Materials with the recovered data key."""
        if self.plaintext_data_key is not None:
            raise PolicyError("decryption materials already hold a data key")
        check_data_key(self.suite, plaintext_data_key)
        return DecryptionMaterials(
            self.suite,
            self.encryption_context,
            bytes(plaintext_data_key),
            self.verification_key,
            self.required_context_keys,
            symmetric_signing_key,
        )

    def __repr__(self) -> str:
        return (
            f"DecryptionMaterials(suite={self.suite!r}, context_keys={sorted(self.encryption_context)!r}, "
            f"has_data_key={self.plaintext_data_key is not None})"
        )


def _set(value: object, fields: dict[str, Any]) -> None:
    object.__setattr__(value, "__dict__", fields)


def check_data_key(suite: AnySuite, key: bytes) -> None:
    """Refuse a data key whose length is not the suite's."""
    if len(key) != suite.data_key_length:
        raise MalformedInputError(
            f"data key length {len(key)} does not match the suite's {suite.data_key_length}"
        )
