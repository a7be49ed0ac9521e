"""The recipe layer: :class:`Envelope` encrypts and decrypts AWS Encryption SDK messages.

An ``Envelope`` is immutable after construction and safe to share between threads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

from .errors import ConfigurationError, MalformedInputError, PolicyError
from .materials.cmm import DefaultMaterials, as_materials_manager, check_suite_policy
from .materials.materials import (
    RESERVED_CONTEXT_PREFIX,
    DecryptionMaterials,
    DecryptionRequest,
    EncryptionMaterials,
    EncryptionRequest,
)
from .materials.protocols import Keyring, MaterialsManager
from .message import body as body_mod
from .message import footer
from .message.codec import Reader
from .message.crypto import HeaderCheck, check_reproduced_context, open_header, seal_header
from .message.header import CONTENT_FRAMED, MAX_FRAME_LENGTH, DecryptLimits, MessageHeader, parse_header
from .primitives.aead import AesGcm
from .primitives.buffers import new_bytes
from .suites import CommitmentPolicy, Suite
from .values import EncryptionContext, freeze_context, seal_dataclass

__all__ = ["DEFAULT_FRAME_LENGTH", "DecryptResult", "Envelope"]

DEFAULT_FRAME_LENGTH = 64 * 1024
# Below this, joining per-frame outputs is as fast as writing in place.
_IN_PLACE_THRESHOLD = 8 * 1024


@dataclass(frozen=True, slots=True, init=False)
class DecryptResult:
    """Plaintext with the parsed header it came from."""

    plaintext: bytes = field(repr=False)
    header: MessageHeader
    encryption_context: EncryptionContext
    """The full context the message is bound to: stored pairs plus required pairs supplied on decrypt."""

    def __new__(
        cls, plaintext: bytes, header: MessageHeader, encryption_context: Mapping[str, str]
    ) -> DecryptResult:
        return _build_result(cls, bytes(plaintext), header, freeze_context(encryption_context))


_build_result = seal_dataclass(DecryptResult)


class Envelope:
    """Encrypts and decrypts ESDK messages with a keyring or materials manager.

    * ``suite``: the encryption suite; default ``AES_256_GCM_HKDF_SHA512_COMMIT_KEY`` (0x0478).
      Use ``AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384`` (0x0578) when readers must not be able to
      forge messages.
    * ``frame_length``: plaintext bytes per frame (default 64 KiB); streaming memory is bounded by it.
    * ``commitment_policy``: default requires key commitment on encrypt and decrypt.
    * ``max_encrypted_data_keys``: refuse to write or read messages with more EDKs.
    * ``limits``: further decrypt limits (header size, frame length, message size).
    """

    def __init__(
        self,
        source: Keyring | MaterialsManager,
        *,
        suite: Suite | None = None,
        frame_length: int | None = None,
        commitment_policy: CommitmentPolicy = CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
        max_encrypted_data_keys: int | None = None,
        limits: DecryptLimits | None = None,
    ) -> None:
        self._cmm = as_materials_manager(source)
        if not isinstance(commitment_policy, CommitmentPolicy):
            raise ConfigurationError("commitment_policy must be a CommitmentPolicy")
        if suite is None:
            suite = (
                Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY
                if commitment_policy.encrypt_requires_commitment
                else Suite.AES_256_GCM_IV12_TAG16_HKDF_SHA256
            )
        if not isinstance(suite, Suite):
            raise ConfigurationError("suite must be a kmsenvelope.Suite")
        try:
            check_suite_policy(suite, commitment_policy, encrypting=True)
        except PolicyError as exc:
            raise ConfigurationError(str(exc)) from None
        frame_length = DEFAULT_FRAME_LENGTH if frame_length is None else frame_length
        valid_int = isinstance(frame_length, int) and not isinstance(frame_length, bool)
        if not valid_int or not 1 <= frame_length <= MAX_FRAME_LENGTH:
            raise ConfigurationError(f"frame_length must be an int between 1 and {MAX_FRAME_LENGTH}")
        if max_encrypted_data_keys is not None and (
            isinstance(max_encrypted_data_keys, bool)
            or not isinstance(max_encrypted_data_keys, int)
            or max_encrypted_data_keys < 1
        ):
            raise ConfigurationError("max_encrypted_data_keys must be a positive int or None")
        if limits is None:
            # The default limits grow to fit this envelope's own frames; explicit limits are kept as given.
            default = DecryptLimits()
            limits = DecryptLimits(max_frame_length=max(default.max_frame_length, frame_length))
        elif not isinstance(limits, DecryptLimits):
            raise ConfigurationError("limits must be a DecryptLimits")
        if max_encrypted_data_keys is not None:
            limits = DecryptLimits(
                max_encrypted_data_keys=max_encrypted_data_keys,
                max_header_size=limits.max_header_size,
                max_frame_length=limits.max_frame_length,
                max_message_size=limits.max_message_size,
            )
        self._suite = suite
        self._frame_length = frame_length
        self._policy = commitment_policy
        self._max_edks = max_encrypted_data_keys
        self._limits = limits

    @property
    def suite(self) -> Suite:
        return self._suite

    @property
    def frame_length(self) -> int:
        return self._frame_length

    @property
    def commitment_policy(self) -> CommitmentPolicy:
        return self._policy

    @property
    def limits(self) -> DecryptLimits:
        return self._limits

    @property
    def materials_manager(self) -> MaterialsManager:
        return self._cmm

    # -- encrypt -------------------------------------------------------------------------------

    def encrypt(self, plaintext: bytes, context: Mapping[str, str] | None = None) -> bytes:
        """Encrypt ``plaintext`` into one ESDK message bound to ``context``."""
        view = memoryview(plaintext)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        return self.encrypt_with_materials(view, self.encryption_materials(context, len(view)))

    def encrypt_with_materials(self, view: memoryview, materials: EncryptionMaterials) -> bytes:
        """The message for ``view`` (a flat byte view) under materials from :meth:`encryption_materials`.

        The second half of :meth:`encrypt`; the async API gets its materials from an async source.
        """
        sealed = seal_header(materials, self._frame_length)
        signing = materials.signing_key is not None
        if len(view) >= _IN_PLACE_THRESHOLD and not signing:
            header = sealed.header
            total = len(header) + body_mod.framed_body_length(len(view), self._frame_length)
            fresh = new_bytes(total)
            if fresh is not None:
                result, dest = fresh
                with dest:
                    dest[: len(header)] = header
                    body_mod.encrypt_framed_into(
                        sealed.aead, sealed.message_id, view, self._frame_length, dest[len(header) :]
                    )
                return result
        parts = [sealed.header]
        body_mod.encrypt_framed_parts(sealed.aead, sealed.message_id, view, self._frame_length, parts)
        if signing:
            signer = footer.signer_for(materials)
            for part in parts:
                signer.update(part)
            parts.append(footer.finish(signer))
        return b"".join(parts)

    def encrypt_into(
        self,
        plaintext: bytes | bytearray | memoryview,
        out: bytearray,
        context: Mapping[str, str] | None = None,
    ) -> int:
        """Encrypt into ``out``, resized to the message length (reuse it to avoid fresh allocations)."""
        view = memoryview(plaintext).cast("B")
        materials = self.encryption_materials(context, len(view))
        sealed = seal_header(materials, self._frame_length)
        header = sealed.header
        body_length = body_mod.framed_body_length(len(view), self._frame_length)
        body_end = len(header) + body_length
        total = body_end + (footer.MAX_FOOTER_LENGTH if materials.suite.signing else 0)
        if len(out) > total:
            del out[total:]
        elif len(out) < total:
            out.extend(bytes(total - len(out)))
        with memoryview(out) as dest:
            dest[: len(header)] = header
            body_mod.encrypt_framed_into(
                sealed.aead, sealed.message_id, view, self._frame_length, dest[len(header) : body_end]
            )
            if materials.signing_key is not None:
                signed = footer.sign(materials, dest[:body_end])
                dest[body_end : body_end + len(signed)] = signed
                body_end += len(signed)
        del out[body_end:]
        return len(out)

    def encryption_materials(
        self, context: Mapping[str, str] | None, plaintext_length: int | None
    ) -> EncryptionMaterials:
        """Materials for one message; checks the context and EDK limit. Used by the streaming writer."""
        cmm = self._cmm
        if cmm.__class__ is DefaultMaterials:
            # What DefaultMaterials.get_encryption_materials does with the request, without building
            # it (the default manager reads no other field of it).
            materials = cmm.encryption_materials(self._checked_context(context), self._policy, self._suite)
        else:
            materials = cmm.get_encryption_materials(self.encryption_request(context, plaintext_length))
        return self.check_encryption_materials(materials)

    def encryption_request(
        self, context: Mapping[str, str] | None, plaintext_length: int | None
    ) -> EncryptionRequest:
        """The materials request for one message, after checking the caller's context."""
        return EncryptionRequest(
            encryption_context=self._checked_context(context),
            commitment_policy=self._policy,
            suite=self._suite,
            max_plaintext_length=plaintext_length,
        )

    @staticmethod
    def _checked_context(context: Mapping[str, str] | None) -> EncryptionContext:
        frozen = freeze_context(context)
        for key in frozen:
            if key.startswith(RESERVED_CONTEXT_PREFIX):
                raise PolicyError(
                    f"encryption context keys starting with {RESERVED_CONTEXT_PREFIX!r} are reserved"
                )
        return frozen

    def check_encryption_materials(self, materials: EncryptionMaterials) -> EncryptionMaterials:
        """Refuse materials whose suite this envelope's policy forbids, or with too many EDKs."""
        if materials.suite is not self._suite:
            # This envelope's own suite was checked at construction; any other must be checked now.
            if not isinstance(materials.suite, Suite):
                raise PolicyError("the materials manager returned a suite that is not an ESDK message suite")
            check_suite_policy(materials.suite, self._policy, encrypting=True)
        if self._max_edks is not None and len(materials.encrypted_data_keys) > self._max_edks:
            raise PolicyError(
                f"materials hold {len(materials.encrypted_data_keys)} encrypted data keys, "
                f"more than max_encrypted_data_keys={self._max_edks}"
            )
        return materials

    # -- decrypt -------------------------------------------------------------------------------

    def decrypt(self, ciphertext: bytes, context: Mapping[str, str] | None = None) -> bytes:
        """Decrypt one message; every pair in ``context`` must be bound to it.

        Nothing larger than ``ciphertext`` is allocated for its body; running out of memory raises
        :class:`PolicyError`.
        """
        return self._decrypt(ciphertext, context)[0]

    def decrypt_with_header(
        self, ciphertext: bytes | bytearray | memoryview, context: Mapping[str, str] | None = None
    ) -> DecryptResult:
        """Decrypt one message and return the plaintext with its parsed header.

        Signed messages have their signature verified before anything is decrypted.
        """
        plaintext, header, materials = self._decrypt(ciphertext, context)
        # Materials from a custom manager may carry any mapping; the caller gets an immutable one.
        return DecryptResult(plaintext, header, freeze_context(materials.encryption_context))

    def _decrypt(
        self, ciphertext: bytes | bytearray | memoryview, context: Mapping[str, str] | None
    ) -> tuple[bytes, MessageHeader, DecryptionMaterials]:
        data, header, materials, aead, reader = self._open_message(ciphertext, context)
        return self.decrypt_opened(data, header, materials, aead, reader), header, materials

    def decrypt_opened(
        self,
        data: memoryview,
        header: MessageHeader,
        materials: DecryptionMaterials,
        aead: AesGcm,
        reader: Reader,
    ) -> bytes:
        """The plaintext of a message whose header was opened (``reader`` at the body)."""
        try:
            if header.content_type == CONTENT_FRAMED:
                # Every frame is found in ``data`` before anything is allocated: the plaintext buffer is
                # never larger than the input.
                frames, total = body_mod.scan_framed(reader, header.frame_length)
                self._finish(header, materials, data, reader)
                fresh = new_bytes(total) if total >= _IN_PLACE_THRESHOLD and len(frames) > 1 else None
                if fresh is not None:
                    plaintext, dest = fresh
                    with dest:
                        body_mod.decrypt_framed_into(aead, header.message_id, data, frames, dest)
                else:
                    parts = body_mod.decrypt_framed_parts(aead, header.message_id, data, frames)
                    plaintext = parts[0] if len(parts) == 1 else b"".join(parts)
            else:
                plaintext = body_mod.decrypt_non_framed(aead, header.message_id, reader)
                self._finish(header, materials, data, reader)
        except MemoryError:
            raise body_mod.allocation_failure() from None
        return plaintext

    def decrypt_into(
        self,
        ciphertext: bytes | bytearray | memoryview,
        out: bytearray,
        context: Mapping[str, str] | None = None,
    ) -> tuple[MessageHeader, DecryptionMaterials]:
        """Decrypt into ``out``, resized to the plaintext length; reuse it to avoid fresh allocations.

        ``out`` is zeroed and emptied on any failure. Signed messages are verified before decrypting.
        """
        try:
            data, header, materials, aead, reader = self._open_message(ciphertext, context)
            if header.framed:
                frames, total = body_mod.scan_framed(reader, header.frame_length)
                self._finish(header, materials, data, reader)
                if len(out) > total:
                    del out[total:]
                elif len(out) < total:
                    out.extend(bytes(total - len(out)))
                with memoryview(out) as view:
                    body_mod.decrypt_framed_into(aead, header.message_id, data, frames, view)
            else:
                plaintext = body_mod.decrypt_non_framed(aead, header.message_id, reader)
                self._finish(header, materials, data, reader)
                out[:] = plaintext
        except BaseException as exc:
            out[:] = bytes(len(out))
            del out[:]
            if isinstance(exc, MemoryError):
                raise body_mod.allocation_failure() from None
            raise
        return header, materials

    def _open_message(
        self, ciphertext: bytes | bytearray | memoryview, context: Mapping[str, str] | None
    ) -> tuple[memoryview, MessageHeader, DecryptionMaterials, AesGcm, Reader]:
        data, header = self.parse_message(ciphertext)
        materials, aead = self.open(header, freeze_context(context))
        return data, header, materials, aead, Reader(data, header.size)

    def parse_message(self, ciphertext: bytes | bytearray | memoryview) -> tuple[memoryview, MessageHeader]:
        """A flat view of a whole message and its parsed header, within this envelope's limits."""
        data = memoryview(ciphertext)
        if data.format != "B" or data.ndim != 1:
            data = data.cast("B")
        limit = self._limits.max_message_size
        if limit is not None and len(data) > limit:
            raise PolicyError(f"message of {len(data)} bytes exceeds the limit of {limit}")
        header = parse_header(ciphertext if isinstance(ciphertext, bytes) else data, self._limits)
        return data, header

    def _finish(
        self, header: MessageHeader, materials: DecryptionMaterials, data: memoryview, reader: Reader
    ) -> None:
        """Verify the footer (if signed) and that nothing trails the message."""
        if header.suite.info.signature_curve is not None:
            footer.verify(materials, data[: reader.pos], reader)
        remaining = reader.remaining
        if remaining:
            raise MalformedInputError(f"{remaining} unexpected bytes after the end of the message")

    def open(
        self, header: MessageHeader, reproduced: Mapping[str, str]
    ) -> tuple[DecryptionMaterials, AesGcm]:
        """Get decryption materials for a parsed header and verify it. Used by the streaming reader."""
        cmm = self._cmm
        if cmm.__class__ is DefaultMaterials:
            # What DefaultMaterials.decrypt_materials does with the request, without building it
            # (it caches nothing, so it needs no authenticate check).
            reproduced = self._checked_reproduced(header, reproduced)
            materials = cmm.decryption_materials(
                header.suite, header.encrypted_data_keys, header.encryption_context, self._policy, reproduced
            )
            return materials, open_header(header, materials)
        check = HeaderCheck(header)
        materials = cmm.decrypt_materials(self.decryption_request(header, reproduced, check))
        return materials, check.open(materials)

    def decryption_request(
        self,
        header: MessageHeader,
        reproduced: Mapping[str, str],
        authenticate: Callable[[DecryptionMaterials], None] | None = None,
    ) -> DecryptionRequest:
        """The materials request for a parsed header, after the commitment policy and context checks.

        ``authenticate`` (a :class:`~kmsenvelope.message.crypto.HeaderCheck` of the header) lets a
        caching manager cache the materials once they have opened the header; without it, none does.
        """
        return DecryptionRequest(
            suite=header.suite,
            encrypted_data_keys=header.encrypted_data_keys,
            encryption_context=header.encryption_context,
            commitment_policy=self._policy,
            reproduced_context=self._checked_reproduced(header, reproduced),
            authenticate=authenticate,
        )

    def _checked_reproduced(self, header: MessageHeader, reproduced: Mapping[str, str]) -> EncryptionContext:
        check_suite_policy(header.suite, self._policy, encrypting=False)
        frozen = freeze_context(reproduced)
        check_reproduced_context(header, frozen)
        return frozen

    def parse_header(self, data: bytes | bytearray | memoryview) -> MessageHeader:
        """Parse (without verifying or decrypting) the header at the start of ``data``."""
        return parse_header(data, self._limits)

    # -- streaming -----------------------------------------------------------------------------

    def encrypt_stream(
        self, src: BinaryIO, dst: BinaryIO, context: Mapping[str, str] | None = None
    ) -> MessageHeader:
        """Encrypt ``src`` to ``dst`` frame by frame; memory stays bounded by the frame length."""
        from .message.stream import encrypt_stream

        return encrypt_stream(self, src, dst, context)

    def decrypt_stream(
        self,
        src: BinaryIO,
        dst: BinaryIO,
        context: Mapping[str, str] | None = None,
        *,
        release_unverified: bool = False,
    ) -> MessageHeader:
        """Decrypt ``src`` to ``dst``. Each frame is written only after its tag verifies.

        For signed suites, no plaintext reaches ``dst`` until the signature has verified: it is held
        in memory, or in a private temporary file above a threshold. ``release_unverified=True`` writes
        each verified frame at once instead, before the signature is checked.

        Memory follows the bytes that arrive, never a length the message claims: about two buffers of
        the largest frame received. Running out of memory raises :class:`PolicyError`.
        """
        from .message.stream import decrypt_stream

        return decrypt_stream(self, src, dst, context, release_unverified=release_unverified)

    def __repr__(self) -> str:
        return (
            f"Envelope(suite={self._suite.name}, frame_length={self._frame_length}, "
            f"commitment_policy={self._policy.value}, source={self._cmm!r})"
        )
