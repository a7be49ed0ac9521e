"""Rewrap: give an ESDK message new encrypted data keys without decrypting or re-encrypting its body.

The body is encrypted under a key derived from the data key and the message id, neither of which
changes, so only the header is rebuilt: new EDKs (from the ``new`` keyring wrapping the same data
key), the same suite, message id, context, content type and frame length, and a fresh header tag.
The old header is verified first (commitment and header tag, context checked as ``decrypt`` checks
it). The body is copied byte for byte and never decrypted: its frames stay authenticated by their
own GCM tags, so a tampered body is still rejected by every reader of the new message.

Signed suites: the footer signature covers the header, so a rewrapped message must be re-signed by a
fresh key pair (``resign=True``), whose public key replaces ``aws-crypto-public-key`` in the context.
The old signature is verified in the same pass over the body that computes the new one. See
``docs/rewrap.md`` for what this means for trust.

Version 2 messages are refused unless ``allow_header_nonce_reuse=True``: their header tag has a fixed
zero IV under the unchanged derived key, so a rewrap reuses a GCM nonce (``docs/rewrap.md``).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

from .errors import ConfigurationError, MalformedInputError, NoUsableKeyError, PolicyError
from .keyrings.multi import as_wrapping_keyring
from .materials.cmm import PUBLIC_KEY_CONTEXT_KEY, DefaultMaterials, as_materials_manager, check_suite_policy
from .materials.materials import DecryptionMaterials, DecryptionRequest, EncryptionMaterials
from .materials.protocols import Keyring, MaterialsManager
from .message import body as body_mod
from .message import body_copy, footer
from .message.codec import Reader, u16
from .message.crypto import HeaderCheck, check_reproduced_context
from .message.header import DecryptLimits, MessageHeader, parse_header, serialize_edks
from .message.stream import _Input, _read_header
from .primitives import ecdsa
from .primitives.aead import AesGcm
from .primitives.ecdsa import Signer, Verifier
from .primitives.kdf import constant_time_equal
from .suites import CommitmentPolicy, Suite
from .values import freeze_context, serialize_context

__all__ = ["rewrap", "rewrap_stream"]

# Bytes of the header body after the EDKs: content type | frame length | commitment (v2), or
# content type | reserved | IV length | frame length (v1).
_HEADER_TAIL = {2: 1 + 4 + 32, 1: 1 + 4 + 1 + 4}
_COPY_CHUNK = 1 << 20
_ZERO_IV = bytes(12)


@dataclass(frozen=True)
class RewrappedHeader:
    """The serialized new header, and the hashers a signed message's body must pass through."""

    header: bytes
    old_header_size: int
    signer: Signer | None = field(default=None, repr=False)
    verifier: Verifier | None = field(default=None, repr=False)


def rewrap(
    ciphertext: bytes | bytearray | memoryview,
    old: Keyring | MaterialsManager,
    new: Keyring,
    *,
    context: Mapping[str, str] | None = None,
    keep_old: bool = False,
    resign: bool = False,
    commitment_policy: CommitmentPolicy = CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
    limits: DecryptLimits | None = None,
    allow_header_nonce_reuse: bool = False,
) -> bytes:
    """Return ``ciphertext`` with its data key wrapped by ``new`` instead of by its current EDKs.

    ``old`` (a keyring or materials manager) must be able to decrypt the message; ``context`` is
    checked as :meth:`Envelope.decrypt` checks it (required-only pairs must be supplied again).
    ``keep_old=True`` keeps the old EDKs after the new ones. Signed suites need ``resign=True``
    (which cannot be combined with ``keep_old``). ``commitment_policy`` is the decrypt-side policy:
    pass ``REQUIRE_ENCRYPT_ALLOW_DECRYPT`` to rewrap non-committing (legacy) messages.
    The message id, context, suite, frame length and every body byte stay as they were.

    Version 2 messages (every committing suite) are refused with :class:`PolicyError` unless
    ``allow_header_nonce_reuse=True``: their new header tag reuses the old one's key and zero IV, so
    whoever reads both versions can forge messages under that data key. Pass it only once every copy
    of the old ciphertext is destroyed or unreadable to anyone who could read the new one
    (``docs/rewrap.md``); otherwise re-encrypt. Version 1 (legacy) messages need no flag.
    """
    data = memoryview(ciphertext)
    if data.format != "B" or data.ndim != 1:
        data = data.cast("B")
    limits = _limits(limits)
    if limits.max_message_size is not None and len(data) > limits.max_message_size:
        raise PolicyError(f"message of {len(data)} bytes exceeds the limit of {limits.max_message_size}")
    header = parse_header(ciphertext if isinstance(ciphertext, bytes) else data, limits)
    check_header_nonce_reuse(header, allow_header_nonce_reuse)
    # The body's structure is checked first: a malformed message costs no KMS call.
    reader = Reader(data, header.size)
    if header.framed:
        body_mod.scan_framed(reader, header.frame_length)
    else:
        reader.read(body_mod.IV, "body IV")
        length = reader.u64("body length")
        if length > body_mod.MAX_NON_FRAMED_LENGTH:
            raise MalformedInputError("non-framed body is longer than the format allows")
        reader.view(length + body_mod.TAG, "body ciphertext")
    body_end = reader.pos
    if not header.suite.signing and reader.remaining:
        raise MalformedInputError(f"{reader.remaining} unexpected bytes after the end of the message")
    plan = rewrap_header(
        header,
        old,
        new,
        context=context,
        keep_old=keep_old,
        resign=resign,
        commitment_policy=commitment_policy,
        limits=limits,
        allow_header_nonce_reuse=allow_header_nonce_reuse,
    )
    body = data[header.size : body_end]
    parts: list[bytes | memoryview] = [plan.header, body]
    if plan.signer is not None and plan.verifier is not None:
        plan.verifier.update(data[: header.size])
        plan.signer.update(plan.header)
        # One pass over the body feeds both hashes, a cache-sized chunk at a time.
        for start in range(0, len(body), _COPY_CHUNK):
            chunk = body[start : start + _COPY_CHUNK]
            plan.verifier.update(chunk)
            plan.signer.update(chunk)
        plan.verifier.verify(footer.read_signature(reader))
        parts.append(footer.finish(plan.signer))
    if reader.remaining:
        raise MalformedInputError(f"{reader.remaining} unexpected bytes after the end of the message")
    return b"".join(parts)


def rewrap_stream(
    src: BinaryIO,
    dst: BinaryIO,
    old: Keyring | MaterialsManager,
    new: Keyring,
    *,
    context: Mapping[str, str] | None = None,
    keep_old: bool = False,
    resign: bool = False,
    commitment_policy: CommitmentPolicy = CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
    limits: DecryptLimits | None = None,
    allow_header_nonce_reuse: bool = False,
) -> MessageHeader:
    """:func:`rewrap` from ``src`` to ``dst``; memory stays bounded (about 1 MiB) whatever the frame length.

    The old header is verified before anything is written. The body is copied as it is read, so a
    failure found later (a truncated body, bytes after the end, an old signature that does not verify)
    raises after ``dst`` received part of the new message: discard ``dst`` then, as the CLI does.
    A version 2 message without ``allow_header_nonce_reuse=True`` is refused (see :func:`rewrap`)
    before any key is used or any byte written. Returns the new header.
    """
    limits = _limits(limits)
    # Between regular files an unsigned body is copied by the kernel; record where the message starts.
    fast = body_copy.files_qualify(src, dst)
    base = src.tell() if fast else 0
    header, raw = _read_header(src, limits)
    check_header_nonce_reuse(header, allow_header_nonce_reuse)
    budget = None
    if limits.max_message_size is not None:
        if header.size > limits.max_message_size:
            raise PolicyError("message exceeds the configured max_message_size")
        budget = limits.max_message_size - header.size
    plan = rewrap_header(
        header,
        old,
        new,
        context=context,
        keep_old=keep_old,
        resign=resign,
        commitment_policy=commitment_policy,
        limits=limits,
        allow_header_nonce_reuse=allow_header_nonce_reuse,
    )
    source = _Input(src, raw[header.size :], budget)
    if plan.verifier is not None:
        plan.verifier.update(raw[: header.size])
        source.verifier = plan.verifier
    sink = _Sink(dst, plan.signer)
    sink.write(plan.header)
    if fast and plan.signer is None:
        limit = limits.max_message_size
        body_copy.copy_body_between_files(
            header, src, dst, base + header.size, None if limit is None else base + limit
        )
        return parse_header(plan.header, limits)
    if header.framed:
        _copy_frames(header, source, sink)
    else:
        iv_and_length = source.read_exact(body_mod.IV + 8, "body IV and length")
        length = int.from_bytes(iv_and_length[body_mod.IV :], "big")
        if length > body_mod.MAX_NON_FRAMED_LENGTH:
            raise MalformedInputError("non-framed body is longer than the format allows")
        sink.write(iv_and_length)
        sink.copy(source, length + body_mod.TAG, "body ciphertext")
    if plan.verifier is not None and plan.signer is not None:
        source.verifier = None
        length = int.from_bytes(source.read_exact(2, "signature length"), "big")
        if length == 0 or length > footer.MAX_SIGNATURE_LENGTH:
            raise MalformedInputError(f"invalid signature length {length}")
        plan.verifier.verify(source.read_exact(length, "signature"))
    if not source.at_end():
        raise MalformedInputError("unexpected bytes after the end of the message")
    if plan.signer is not None:
        dst.write(footer.finish(plan.signer))
    return parse_header(plan.header, limits)


def rewrap_header(
    header: MessageHeader,
    old: Keyring | MaterialsManager,
    new: Keyring,
    *,
    context: Mapping[str, str] | None,
    keep_old: bool,
    resign: bool,
    commitment_policy: CommitmentPolicy,
    limits: DecryptLimits,
    allow_header_nonce_reuse: bool = False,
) -> RewrappedHeader:
    """Verify ``header`` with ``old`` and build its replacement with EDKs from ``new``.

    Used by :func:`rewrap`, :func:`rewrap_stream` and the S3 rewrap, which copy the body themselves.
    Refuses a version 2 header unless ``allow_header_nonce_reuse`` (:func:`check_header_nonce_reuse`).
    """
    check_header_nonce_reuse(header, allow_header_nonce_reuse)
    if not callable(getattr(new, "on_encrypt", None)):
        raise ConfigurationError("new must be a keyring (it wraps the message's existing data key)")
    suite = header.suite
    check_signing_options(suite, keep_old=keep_old, resign=resign)
    materials, aead = _open(header, old, context, commitment_policy)
    data_key = materials.plaintext_data_key
    if data_key is None:  # open() has checked it against the header tag
        raise PolicyError("the materials manager returned no data key")
    full = dict(materials.encryption_context)
    stored = dict(header.encryption_context)
    signer = verifier = None
    signing_key = None
    if suite.signing:
        verifier = footer.verifier_for(materials)
        curve = suite.info.signature_curve
        hash_name = suite.info.signature_hash
        if curve is None or hash_name is None:
            raise PolicyError(f"signing suite {suite.name} names no signature curve or hash")
        signing_key = ecdsa.generate_signing_key(curve)
        public = base64.b64encode(ecdsa.compress_public_key(signing_key.public_key())).decode("ascii")
        full[PUBLIC_KEY_CONTEXT_KEY] = stored[PUBLIC_KEY_CONTEXT_KEY] = public
        signer = Signer(signing_key, hash_name)
    wrapped = as_wrapping_keyring(new).on_encrypt(
        EncryptionMaterials(
            suite,
            freeze_context(full),
            (),
            data_key,
            signing_key,
            materials.required_context_keys,
        )
    )
    returned_key = wrapped.plaintext_data_key
    if returned_key is None or not constant_time_equal(returned_key, data_key):
        raise PolicyError("the new keyring replaced the data key instead of wrapping it")
    if wrapped.suite is not suite or dict(wrapped.encryption_context) != full:
        raise PolicyError("the new keyring changed the suite or encryption context")
    if not wrapped.encrypted_data_keys:
        raise NoUsableKeyError("the new keyring produced no encrypted data key")
    edks = wrapped.encrypted_data_keys + (header.encrypted_data_keys if keep_old else ())
    if limits.max_encrypted_data_keys is not None and len(edks) > limits.max_encrypted_data_keys:
        raise PolicyError(
            f"the rewrapped message would hold {len(edks)} encrypted data keys, "
            f"more than the limit {limits.max_encrypted_data_keys}"
        )
    prefix_length = (1 if header.version == 2 else 2) + 2 + len(header.message_id)
    serialized = serialize_context(freeze_context(stored))
    body = b"".join(
        (
            header.body[:prefix_length],
            u16(len(serialized)),
            serialized,
            serialize_edks(edks),
            header.body[-_HEADER_TAIL[header.version] :],
        )
    )
    authenticated_only = {
        k: full[k] for k in materials.required_context_keys if k not in stored and k in full
    }
    # Version 1 headers carry their IV: a fresh one means the header key never sees an IV twice.
    # Version 2 fixes it at zero (see docs/rewrap.md).
    iv = _fresh_header_iv() if header.version == 1 else _ZERO_IV
    tag = aead.encrypt(iv, b"", body + serialize_context(authenticated_only))
    auth = iv + tag if header.version == 1 else tag
    return RewrappedHeader(body + auth, header.size, signer, verifier)


def check_header_nonce_reuse(header: MessageHeader, allow: bool) -> None:
    """Refuse to rewrap a version 2 message unless the caller accepted the header tag's nonce reuse.

    A version 2 header tag is AES-GCM under the message's derived key with an all-zero IV; the key
    depends only on the data key and message id, which a rewrap keeps. Two tags under one key and IV
    reveal GCM's authentication key, so both ciphertexts together let anyone forge that message.
    """
    if header.version == 2 and not allow:
        raise PolicyError(
            f"rewrapping this version 2 message (suite 0x{header.suite.id:04X}) reuses its header tag's "
            "AES-GCM key and nonce: anyone who can read both the old and the new ciphertext can forge "
            "messages under its data key. Pass allow_header_nonce_reuse=True only once every copy of "
            "the old ciphertext (object versions and backups included) is destroyed or unreadable to "
            "anyone who could read the new one; otherwise decrypt and re-encrypt it"
        )


def check_signing_options(suite: Suite, *, keep_old: bool, resign: bool) -> None:
    """Refuse what a signed suite forbids: no re-signing, or re-signing while keeping the old EDKs."""
    if suite.signing and not resign:
        raise PolicyError(
            f"{suite.name} messages are signed and the signature covers the header: rewrapping must "
            "re-sign with a fresh key pair; pass resign=True (the rewrapper then signs as a writer)"
        )
    if suite.signing and keep_old:
        raise PolicyError(
            "keep_old cannot be combined with resign: re-signing replaces aws-crypto-public-key, to "
            "which the old encrypted data keys are bound through the context"
        )


def _open(
    header: MessageHeader,
    old: Keyring | MaterialsManager,
    context: Mapping[str, str] | None,
    policy: CommitmentPolicy,
) -> tuple[DecryptionMaterials, AesGcm]:
    """What :meth:`Envelope.open` does, without building an Envelope per call.

    Runtime protocol checks cost tens of microseconds each on Python 3.11; a rewrap of a small message
    would spend most of its time in them, so a materials manager is recognised by its methods.
    """
    if not isinstance(policy, CommitmentPolicy):
        raise ConfigurationError("commitment_policy must be a CommitmentPolicy")
    if callable(getattr(old, "decrypt_materials", None)):
        manager: MaterialsManager = old  # type: ignore[assignment]
    elif callable(getattr(old, "on_decrypt", None)):
        manager = DefaultMaterials(old)  # type: ignore[arg-type]
    else:
        manager = as_materials_manager(old)  # raises the usual ConfigurationError
    reproduced = freeze_context(context)
    check_suite_policy(header.suite, policy, encrypting=False)
    check_reproduced_context(header, reproduced)
    check = HeaderCheck(header)
    request = DecryptionRequest(
        header.suite, header.encrypted_data_keys, header.encryption_context, policy, reproduced, check
    )
    materials = manager.decrypt_materials(request)
    return materials, check.open(materials)


def _fresh_header_iv() -> bytes:
    # Frame IVs are eight zero bytes then the sequence number; a set top bit can never equal one.
    iv = bytearray(os.urandom(12))
    iv[0] |= 0x80
    return bytes(iv)


def _limits(limits: DecryptLimits | None) -> DecryptLimits:
    if limits is None:
        return DecryptLimits()
    if not isinstance(limits, DecryptLimits):
        raise ConfigurationError("limits must be a DecryptLimits")
    return limits


class _Sink:
    """Writes to ``dst``, feeding the new signature's hash when the message is signed."""

    def __init__(self, dst: BinaryIO, signer: Signer | None) -> None:
        self._dst = dst
        self._signer = signer
        self._buffer = bytearray()

    def write(self, data: bytes | memoryview) -> None:
        self._dst.write(data)
        if self._signer is not None:
            self._signer.update(data)

    def copy(self, source: _Input, n: int, what: str) -> None:
        """Copy ``n`` bytes from ``source`` through a buffer of at most ``_COPY_CHUNK`` bytes."""
        while n:
            step = min(n, _COPY_CHUNK)
            if len(self._buffer) < step:
                self._buffer = bytearray(step)
            with memoryview(self._buffer) as whole, whole[:step] as view:
                source.readinto_exact(view, what)
                self.write(view)
            n -= step


def _copy_frames(header: MessageHeader, source: _Input, sink: _Sink) -> None:
    """Copy every frame, checking sequence numbers and lengths as the decryptor would."""
    frame_length = header.frame_length
    sequence = 1
    while True:
        prefix = source.read_exact(4, "frame sequence number")
        final = prefix == b"\xff\xff\xff\xff"
        if final:
            prefix += source.read_exact(4, "final frame sequence number")
        if int.from_bytes(prefix[-4:], "big") != sequence:
            raise MalformedInputError("frame is out of sequence")
        prefix += source.read_exact(body_mod.IV + (4 if final else 0), "frame IV")
        length = int.from_bytes(prefix[-4:], "big") if final else frame_length
        if length > frame_length:
            raise MalformedInputError("final frame is longer than the frame length")
        sink.write(prefix)
        sink.copy(source, length + body_mod.TAG, "frame")
        if final:
            return
        sequence += 1
        if sequence > body_mod.MAX_FRAMES:
            raise MalformedInputError("too many frames")
