"""The message header, versions 1 and 2 (ESDK ``data-format/message-header.md``).

v2 header body: version 0x02 | suite id (2) | message id (32) | AAD | EDKs | content type (1) |
frame length (4) | suite data (the 32-byte key commitment). Authentication: a 16-byte tag, IV all zeros.

v1 header body: version 0x01 | type 0x80 | suite id (2) | message id (16) | AAD | EDKs |
content type (1) | reserved 00000000 | IV length (1) | frame length (4). Authentication: IV (12) | tag (16).

AAD is a uint16 length followed by the serialized encryption context.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import MalformedInputError, PolicyError
from ..materials.materials import EncryptedDataKey, freeze_context
from ..suites import Suite
from .codec import Reader, u16, u32
from .context import parse_context, serialize_context

__all__ = [
    "CONTENT_FRAMED",
    "CONTENT_NON_FRAMED",
    "DecryptLimits",
    "MessageHeader",
    "parse_header",
    "serialize_header_body",
]

CONTENT_NON_FRAMED = 1
CONTENT_FRAMED = 2
MAX_FRAME_LENGTH = 2**31 - 1
_V1_TYPE = 0x80
_COMMITMENT_LENGTH = 32


@dataclass(frozen=True)
class DecryptLimits:
    """Upper bounds checked while parsing, before anything sized by the input is allocated.

    ``max_frame_length`` also bounds a non-framed body when streaming, since its plaintext can only
    be released once the whole body has been authenticated.
    """

    max_encrypted_data_keys: int | None = None
    max_header_size: int = 1 << 20
    max_frame_length: int = 1 << 26
    max_message_size: int | None = None

    def __post_init__(self) -> None:
        if self.max_encrypted_data_keys is not None and self.max_encrypted_data_keys < 1:
            raise ValueError("max_encrypted_data_keys must be at least 1")
        if not 1 <= self.max_frame_length <= MAX_FRAME_LENGTH:
            raise ValueError(f"max_frame_length must be between 1 and {MAX_FRAME_LENGTH}")
        if self.max_header_size < 64:
            raise ValueError("max_header_size must be at least 64")


@dataclass(frozen=True)
class MessageHeader:
    """A parsed message header. ``body`` is the exact serialized header body that was authenticated."""

    version: int
    suite: Suite
    message_id: bytes
    encryption_context: Mapping[str, str]
    encrypted_data_keys: tuple[EncryptedDataKey, ...]
    content_type: int
    frame_length: int
    commitment: bytes = field(default=b"", repr=False)
    header_iv: bytes = field(default=b"", repr=False)
    header_tag: bytes = field(default=b"", repr=False)
    body: bytes = field(default=b"", repr=False)

    @property
    def framed(self) -> bool:
        return self.content_type == CONTENT_FRAMED

    @property
    def size(self) -> int:
        """Length of the whole serialized header, authentication included."""
        return len(self.body) + len(self.header_iv) + len(self.header_tag)

    def to_dict(self) -> dict[str, object]:
        """A JSON-friendly description (no secrets: EDK ciphertexts are shown by length only)."""
        return {
            "version": self.version,
            "suite": self.suite.name,
            "suite_id": f"0x{self.suite.id:04X}",
            "message_id": self.message_id.hex(),
            "encryption_context": dict(self.encryption_context),
            "encrypted_data_keys": [
                {
                    "provider_id": edk.provider_id,
                    "provider_info": _printable(edk.provider_info),
                    "ciphertext_length": len(edk.ciphertext),
                }
                for edk in self.encrypted_data_keys
            ],
            "content_type": "framed" if self.framed else "non-framed",
            "frame_length": self.frame_length,
            "header_size": self.size,
        }


def _printable(info: bytes) -> str:
    try:
        text = info.decode("utf-8")
        if text.isprintable():
            return text
    except UnicodeDecodeError:
        pass
    return "hex:" + info.hex()


def serialize_edks(edks: tuple[EncryptedDataKey, ...]) -> bytes:
    if not 1 <= len(edks) <= 0xFFFF:
        raise PolicyError("a message needs between 1 and 65535 encrypted data keys")
    parts = [u16(len(edks))]
    for edk in edks:
        pid = edk.provider_id.encode("utf-8")
        for value in (pid, edk.provider_info, edk.ciphertext):
            if len(value) > 0xFFFF:
                raise MalformedInputError("encrypted data key field longer than 65535 bytes")
        parts += (u16(len(pid)), pid, u16(len(edk.provider_info)), edk.provider_info)
        parts += (u16(len(edk.ciphertext)), edk.ciphertext)
    return b"".join(parts)


def serialize_header_body(
    suite: Suite,
    message_id: bytes,
    stored_context: Mapping[str, str],
    edks: tuple[EncryptedDataKey, ...],
    frame_length: int,
    commitment: bytes,
) -> bytes:
    """The header body for a framed message of the suite's message format version."""
    context = serialize_context(stored_context)
    aad = u16(len(context)) + context
    content = bytes([CONTENT_FRAMED])
    if suite.message_version == 2:
        return b"".join(
            (
                b"\x02",
                suite.id_bytes,
                message_id,
                aad,
                serialize_edks(edks),
                content,
                u32(frame_length),
                commitment,
            )
        )
    return b"".join(
        (
            b"\x01\x80",
            suite.id_bytes,
            message_id,
            aad,
            serialize_edks(edks),
            content,
            b"\x00\x00\x00\x00",
            bytes([suite.info.iv_length]),
            u32(frame_length),
        )
    )


def parse_header(data: bytes | bytearray | memoryview, limits: DecryptLimits) -> MessageHeader:
    """Parse and validate a header at the start of ``data``. Does not verify the header tag."""
    reader = Reader(data)
    version = reader.u8("version")
    if version == 1:
        if reader.u8("type") != _V1_TYPE:
            raise MalformedInputError("unknown message type")
    elif version != 2:
        raise MalformedInputError(f"unsupported message format version {version}")
    suite = Suite.from_id(reader.u16("suite id"))
    if suite.message_version != version:
        raise MalformedInputError(f"suite 0x{suite.id:04X} is not valid in a version {version} message")
    message_id = reader.read(32 if version == 2 else 16, "message id")
    aad_length = reader.u16("AAD length")
    _check_header_size(reader.pos + aad_length, limits)
    context = parse_context(reader.view(aad_length, "encryption context"))
    edks = _parse_edks(reader, limits)
    content_type = reader.u8("content type")
    if content_type not in (CONTENT_FRAMED, CONTENT_NON_FRAMED):
        raise MalformedInputError(f"unknown content type {content_type}")
    if version == 1:
        if reader.read(4, "reserved") != b"\x00\x00\x00\x00":
            raise MalformedInputError("reserved header bytes are not zero")
        if reader.u8("IV length") != suite.info.iv_length:
            raise MalformedInputError("header IV length does not match the suite")
    frame_length = reader.u32("frame length")
    if content_type == CONTENT_FRAMED:
        if frame_length == 0:
            raise MalformedInputError("framed message with frame length 0")
        if frame_length > limits.max_frame_length:
            raise PolicyError(f"frame length {frame_length} exceeds the limit {limits.max_frame_length}")
    elif frame_length != 0:
        raise MalformedInputError("non-framed message with a non-zero frame length")
    commitment = reader.read(_COMMITMENT_LENGTH, "key commitment") if version == 2 else b""
    body_end = reader.pos
    header_iv = reader.read(suite.info.iv_length, "header IV") if version == 1 else b""
    header_tag = reader.read(suite.info.tag_length, "header tag")
    _check_header_size(reader.pos, limits)
    return MessageHeader(
        version=version,
        suite=suite,
        message_id=message_id,
        encryption_context=freeze_context(context),
        encrypted_data_keys=edks,
        content_type=content_type,
        frame_length=frame_length,
        commitment=commitment,
        header_iv=header_iv,
        header_tag=header_tag,
        body=bytes(memoryview(data)[:body_end]),
    )


def _check_header_size(size: int, limits: DecryptLimits) -> None:
    if size > limits.max_header_size:
        raise PolicyError(f"message header exceeds the limit of {limits.max_header_size} bytes")


def _parse_edks(reader: Reader, limits: DecryptLimits) -> tuple[EncryptedDataKey, ...]:
    count = reader.u16("EDK count")
    if count == 0:
        raise MalformedInputError("message has no encrypted data keys")
    if limits.max_encrypted_data_keys is not None and count > limits.max_encrypted_data_keys:
        raise PolicyError(
            f"message has {count} encrypted data keys, more than the limit {limits.max_encrypted_data_keys}"
        )
    edks = []
    for _ in range(count):
        try:
            provider_id = reader.short_bytes("EDK provider id").decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedInputError("EDK provider id is not valid UTF-8") from None
        provider_info = reader.short_bytes("EDK provider info")
        ciphertext = reader.short_bytes("EDK ciphertext")
        _check_header_size(reader.pos, limits)
        edks.append(EncryptedDataKey(provider_id, provider_info, ciphertext))
    return tuple(edks)
