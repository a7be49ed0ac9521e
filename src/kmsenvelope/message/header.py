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
from types import MappingProxyType

from ..errors import ConfigurationError, MalformedInputError, PolicyError
from ..suites import Suite
from ..values import (
    EncryptedDataKey,
    EncryptionContext,
    freeze_context,
    frozen_field,
    parse_context,
    seal_dataclass,
    serialize_context,
)
from .codec import TruncatedInputError

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
_MAX_U16 = 0xFFFF


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
        for name in ("max_encrypted_data_keys", "max_header_size", "max_frame_length", "max_message_size"):
            value = getattr(self, name)
            optional = name in ("max_encrypted_data_keys", "max_message_size")
            if (value is None and optional) or (isinstance(value, int) and not isinstance(value, bool)):
                continue
            raise ConfigurationError(f"{name} must be an int" + (" or None" if optional else ""))
        if self.max_encrypted_data_keys is not None and self.max_encrypted_data_keys < 1:
            raise ConfigurationError("max_encrypted_data_keys must be at least 1")
        if not 1 <= self.max_frame_length <= MAX_FRAME_LENGTH:
            raise ConfigurationError(f"max_frame_length must be between 1 and {MAX_FRAME_LENGTH}")
        if self.max_header_size < 64:
            raise ConfigurationError("max_header_size must be at least 64")
        if self.max_message_size is not None and self.max_message_size < 1:
            raise ConfigurationError("max_message_size must be at least 1")


@dataclass(frozen=True, slots=True, init=False)
class MessageHeader:
    """A parsed message header. ``body`` is the exact serialized header body that was authenticated.

    ``encryption_context`` holds the stored pairs; it serializes canonically even when the header
    stored them out of order (``body`` keeps the bytes as stored).
    """

    version: int
    suite: Suite
    message_id: bytes
    encryption_context: EncryptionContext
    encrypted_data_keys: tuple[EncryptedDataKey, ...]
    content_type: int
    frame_length: int
    commitment: bytes = field(default=b"", repr=False)
    header_iv: bytes = field(default=b"", repr=False)
    header_tag: bytes = field(default=b"", repr=False)
    body: bytes = field(default=b"", repr=False)

    def __new__(
        cls,
        version: int,
        suite: Suite,
        message_id: bytes,
        encryption_context: Mapping[str, str],
        encrypted_data_keys: tuple[EncryptedDataKey, ...],
        content_type: int,
        frame_length: int,
        commitment: bytes = b"",
        header_iv: bytes = b"",
        header_tag: bytes = b"",
        body: bytes = b"",
    ) -> MessageHeader:
        # Sealed (see values.seal_dataclass): a header is handed to callers and may be kept by them.
        return _build_header(
            cls,
            version,
            suite,
            frozen_field(message_id),
            freeze_context(encryption_context),
            frozen_field(encrypted_data_keys),
            content_type,
            frame_length,
            frozen_field(commitment),
            frozen_field(header_iv),
            frozen_field(header_tag),
            frozen_field(body),
        )

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


_build_header = seal_dataclass(MessageHeader)


def _printable(info: bytes) -> str:
    try:
        text = info.decode("utf-8")
        if text.isprintable():
            return text
    except UnicodeDecodeError:
        pass
    return "hex:" + info.hex()


def serialize_edks(edks: tuple[EncryptedDataKey, ...]) -> bytes:
    count = len(edks)
    if not 1 <= count <= 0xFFFF:
        raise PolicyError("a message needs between 1 and 65535 encrypted data keys")
    parts = [count.to_bytes(2, "big")]
    for edk in edks:
        pid = edk.provider_id.encode("utf-8")
        info = edk.provider_info
        ciphertext = edk.ciphertext
        if len(pid) > _MAX_U16 or len(info) > _MAX_U16 or len(ciphertext) > _MAX_U16:
            raise MalformedInputError("encrypted data key field longer than 65535 bytes")
        parts += (len(pid).to_bytes(2, "big"), pid, len(info).to_bytes(2, "big"), info)
        parts += (len(ciphertext).to_bytes(2, "big"), ciphertext)
    return b"".join(parts)


# What precedes the message id in a header of each suite, and what follows the EDKs up to the frame
# length (content type framed; v1: reserved bytes and IV length): constants, not rebuilt per message.
# Read-only views: fixed per suite, never filled from input.
_PREFIX = MappingProxyType(
    {suite: (b"\x02" if suite.message_version == 2 else b"\x01\x80") + suite.id_bytes for suite in Suite}
)
_COMMITTING = frozenset(suite for suite in Suite if suite.message_version == 2)
_FRAMED_MIDDLE = MappingProxyType(
    {
        suite: bytes([CONTENT_FRAMED])
        if suite.message_version == 2
        else bytes([CONTENT_FRAMED]) + b"\x00\x00\x00\x00" + bytes([suite.info.iv_length])
        for suite in Suite
    }
)


def serialize_header_body(
    suite: Suite,
    message_id: bytes,
    stored_context: Mapping[str, str],
    edks: tuple[EncryptedDataKey, ...],
    frame_length: int,
    commitment: bytes,
) -> bytes:
    """The header body for a framed message of the suite's message format version.

    The context is always written canonically (sorted by UTF-8 key bytes), whatever mapping is given.
    """
    context = serialize_context(stored_context)
    size = len(context)
    if size > _MAX_U16:
        raise MalformedInputError("serialized encryption context longer than 65535 bytes")
    # Both versions end frame length || commitment; v1 suites have none.
    if commitment and suite not in _COMMITTING:
        raise MalformedInputError("a version 1 header carries no key commitment")
    return b"".join(
        (
            _PREFIX[suite],
            message_id,
            size.to_bytes(2, "big"),
            context,
            serialize_edks(edks),
            _FRAMED_MIDDLE[suite],
            frame_length.to_bytes(4, "big"),
            commitment,
        )
    )


def parse_header(data: bytes | bytearray | memoryview, limits: DecryptLimits) -> MessageHeader:
    """Parse and validate a header at the start of ``data``. Does not verify the header tag."""
    if isinstance(data, bytes):
        return _parse_header(data, limits)
    # Copy only a prefix of other buffers (a header is usually a few hundred bytes), growing it as needed.
    view = memoryview(data)
    size = 4096
    while True:
        try:
            return _parse_header(bytes(view[:size]), limits)
        except TruncatedInputError:
            if size >= len(view) or size > limits.max_header_size:
                raise
            size *= 8


def _parse_header(buf: bytes, limits: DecryptLimits) -> MessageHeader:
    # Flat code with explicit bounds checks: this runs once per decrypted message.
    end = len(buf)
    if end < 4:
        raise TruncatedInputError("truncated input: message header")
    version = buf[0]
    if version == 2:
        pos = 1
    elif version == 1:
        if buf[1] != _V1_TYPE:
            raise MalformedInputError("unknown message type")
        pos = 2
    else:
        raise MalformedInputError(f"unsupported message format version {version}")
    suite = Suite.from_id(int.from_bytes(buf[pos : pos + 2], "big"))
    info = suite.info
    if info.message_version != version:
        raise MalformedInputError(f"suite 0x{info.id:04X} is not valid in a version {version} message")
    id_length = 32 if version == 2 else 16
    pos += 2 + id_length + 2
    if pos > end:
        raise TruncatedInputError("truncated input: message id")
    message_id = buf[pos - 2 - id_length : pos - 2]
    aad_length = int.from_bytes(buf[pos - 2 : pos], "big")
    if pos + aad_length > limits.max_header_size:
        _check_header_size(pos + aad_length, limits)
    if pos + aad_length > end:
        raise TruncatedInputError("truncated input: encryption context")
    context = parse_context(buf[pos : pos + aad_length])
    pos += aad_length
    edks, pos = _parse_edks(buf, pos, end, limits)
    fixed = (1 + 4 + 1 + 4) if version == 1 else (1 + 4 + _COMMITMENT_LENGTH)
    if pos + fixed > end:
        raise TruncatedInputError("truncated input: header fields after the encrypted data keys")
    content_type = buf[pos]
    pos += 1
    if content_type not in (CONTENT_FRAMED, CONTENT_NON_FRAMED):
        raise MalformedInputError(f"unknown content type {content_type}")
    if version == 1:
        if buf[pos : pos + 4] != b"\x00\x00\x00\x00":
            raise MalformedInputError("reserved header bytes are not zero")
        if buf[pos + 4] != info.iv_length:
            raise MalformedInputError("header IV length does not match the suite")
        pos += 5
    frame_length = int.from_bytes(buf[pos : pos + 4], "big")
    pos += 4
    if content_type == CONTENT_FRAMED:
        if frame_length == 0:
            raise MalformedInputError("framed message with frame length 0")
        if frame_length > limits.max_frame_length:
            raise PolicyError(f"frame length {frame_length} exceeds the limit {limits.max_frame_length}")
    elif frame_length != 0:
        raise MalformedInputError("non-framed message with a non-zero frame length")
    commitment = b""
    if version == 2:
        commitment = buf[pos : pos + _COMMITMENT_LENGTH]
        pos += _COMMITMENT_LENGTH
    body_end = pos
    iv_length = info.iv_length if version == 1 else 0
    auth_end = pos + iv_length + info.tag_length
    if auth_end > limits.max_header_size:
        _check_header_size(auth_end, limits)
    if auth_end > end:
        raise TruncatedInputError("truncated input: header authentication")
    # Every field is already immutable (bytes slices, an EncryptionContext, a tuple of EDKs): built
    # without MessageHeader.__new__'s normalizing.
    return _build_header(
        MessageHeader,
        version,
        suite,
        message_id,
        context,
        edks,
        content_type,
        frame_length,
        commitment,
        buf[pos : pos + iv_length],
        buf[pos + iv_length : auth_end],
        buf[:body_end],
    )


def _check_header_size(size: int, limits: DecryptLimits) -> None:
    if size > limits.max_header_size:
        raise PolicyError(f"message header exceeds the limit of {limits.max_header_size} bytes")


def _parse_edks(
    buf: bytes, pos: int, end: int, limits: DecryptLimits
) -> tuple[tuple[EncryptedDataKey, ...], int]:
    if pos + 2 > end:
        raise TruncatedInputError("truncated input: EDK count")
    count = int.from_bytes(buf[pos : pos + 2], "big")
    pos += 2
    if count == 0:
        raise MalformedInputError("message has no encrypted data keys")
    if limits.max_encrypted_data_keys is not None and count > limits.max_encrypted_data_keys:
        raise PolicyError(
            f"message has {count} encrypted data keys, more than the limit {limits.max_encrypted_data_keys}"
        )
    edks = []
    max_size = limits.max_header_size
    # The three length-prefixed fields of each EDK, unrolled (this runs per message). Each length is
    # checked against the header limit before truncation, so every input type gets the same error.
    for _ in range(count):
        start = pos + 2
        if start > end:
            raise TruncatedInputError("truncated input: EDK provider id length")
        pos = start + ((buf[pos] << 8) | buf[pos + 1])
        if pos > max_size:
            _check_header_size(pos, limits)
        if pos > end:
            raise TruncatedInputError("truncated input: EDK provider id")
        raw_id = buf[start:pos]
        start = pos + 2
        if start > end:
            raise TruncatedInputError("truncated input: EDK provider info length")
        pos = start + ((buf[pos] << 8) | buf[pos + 1])
        if pos > max_size:
            _check_header_size(pos, limits)
        if pos > end:
            raise TruncatedInputError("truncated input: EDK provider info")
        info = buf[start:pos]
        start = pos + 2
        if start > end:
            raise TruncatedInputError("truncated input: EDK ciphertext length")
        pos = start + ((buf[pos] << 8) | buf[pos + 1])
        if pos > max_size:
            _check_header_size(pos, limits)
        if pos > end:
            raise TruncatedInputError("truncated input: EDK ciphertext")
        try:
            provider_id = raw_id.decode()
        except UnicodeDecodeError:
            raise MalformedInputError("EDK provider id is not valid UTF-8") from None
        edks.append(EncryptedDataKey(provider_id, info, buf[start:pos]))
    return tuple(edks), pos
