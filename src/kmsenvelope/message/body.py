"""The message body: framed (regular frames then a final frame) and non-framed.

Regular frame: sequence number (4) | IV (12) | ciphertext (frame length) | tag (16).
Final frame: FFFFFFFF | sequence number (4) | IV (12) | content length (4) | ciphertext | tag (16).
Non-framed: IV (12) | content length (8) | ciphertext | tag (16).
The IV of frame n is eight zero bytes then n; the AAD is message id | content string | n | length
(``data-format/message-body-aad.md``).
"""

from __future__ import annotations

from ..errors import MalformedInputError, PolicyError
from ..primitives.aead import AesGcm
from .codec import Reader

__all__ = [
    "FINAL_FRAME_MARKER",
    "FrameLayout",
    "allocation_failure",
    "decrypt_framed_into",
    "decrypt_non_framed",
    "encrypt_framed_into",
    "frame_aad",
    "frame_iv",
    "framed_body_length",
]

FRAME_STRING = b"AWSKMSEncryptionClient Frame"
FINAL_FRAME_STRING = b"AWSKMSEncryptionClient Final Frame"
SINGLE_BLOCK_STRING = b"AWSKMSEncryptionClient Single Block"
FINAL_FRAME_MARKER = 0xFFFFFFFF
MAX_FRAMES = 0xFFFFFFFE
MAX_NON_FRAMED_LENGTH = 2**36 - 32
TAG = 16
IV = 12
REGULAR_OVERHEAD = 4 + IV + TAG
FINAL_OVERHEAD = 4 + 4 + IV + 4 + TAG
_ZERO8 = bytes(8)


def allocation_failure() -> PolicyError:
    """What a ``MemoryError`` while decrypting becomes.

    Decryption allocates only for bytes that are present, so running out of memory means the message
    really is too big for this process: a size limit, reported as one (the CLI's exit code 8).
    """
    return PolicyError(
        "not enough memory to decrypt this message; lower DecryptLimits.max_frame_length "
        "(or set max_message_size) to refuse such messages before reading them"
    )


def frame_iv(sequence: int) -> bytes:
    return _ZERO8 + sequence.to_bytes(4, "big")


def frame_aad(message_id: bytes, content_string: bytes, sequence: int, length: int) -> bytes:
    return message_id + content_string + sequence.to_bytes(4, "big") + length.to_bytes(8, "big")


class FrameLayout:
    """How a plaintext of a given length splits into frames: ``regular`` full frames then a final one."""

    __slots__ = ("final_length", "frame_length", "regular")

    def __init__(self, plaintext_length: int, frame_length: int) -> None:
        self.frame_length = frame_length
        # A final frame always exists and holds 1..frame_length bytes (0 only for an empty plaintext).
        self.regular = max(0, (plaintext_length - 1) // frame_length)
        self.final_length = plaintext_length - self.regular * frame_length
        if self.regular + 1 > MAX_FRAMES:
            raise MalformedInputError("plaintext needs more frames than the format allows")

    @property
    def body_length(self) -> int:
        return self.regular * (self.frame_length + REGULAR_OVERHEAD) + self.final_length + FINAL_OVERHEAD


def framed_body_length(plaintext_length: int, frame_length: int) -> int:
    return FrameLayout(plaintext_length, frame_length).body_length


def encrypt_framed_into(
    aead: AesGcm,
    message_id: bytes,
    plaintext: memoryview,
    frame_length: int,
    out: memoryview,
    *,
    first_sequence: int = 1,
    final: bool = True,
) -> int:
    """Write the framed body of ``plaintext`` into ``out``; returns the number of bytes written.

    A body can be written in pieces (the async API yields to its event loop between them): every piece
    but the last passes ``final=False`` and a whole number of frames, the next piece's
    ``first_sequence`` continuing the count.
    """
    layout = FrameLayout(len(plaintext), frame_length)
    regular = layout.regular
    if not final:
        if len(plaintext) % frame_length:
            raise ValueError("a non-final piece of a framed body must hold whole frames")
        regular = len(plaintext) // frame_length
    pos = 0
    src = 0
    sequence = first_sequence
    regular_aad_tail = frame_length.to_bytes(8, "big")
    prefix = message_id + FRAME_STRING
    for _ in range(regular):
        seq = sequence.to_bytes(4, "big")
        iv = _ZERO8 + seq
        out[pos : pos + 4] = seq
        out[pos + 4 : pos + 16] = iv
        end = pos + 16 + frame_length + TAG
        aead.encrypt_into(
            iv, plaintext[src : src + frame_length], prefix + seq + regular_aad_tail, out[pos + 16 : end]
        )
        pos = end
        src += frame_length
        sequence += 1
    if not final:
        return pos
    seq = sequence.to_bytes(4, "big")
    iv = _ZERO8 + seq
    final_length = layout.final_length
    out[pos : pos + 4] = b"\xff\xff\xff\xff"
    out[pos + 4 : pos + 8] = seq
    out[pos + 8 : pos + 20] = iv
    out[pos + 20 : pos + 24] = final_length.to_bytes(4, "big")
    end = pos + 24 + final_length + TAG
    aad = frame_aad(message_id, FINAL_FRAME_STRING, sequence, final_length)
    aead.encrypt_into(iv, plaintext[src : src + final_length], aad, out[pos + 24 : end])
    return end


def encrypt_framed_parts(
    aead: AesGcm, message_id: bytes, plaintext: memoryview, frame_length: int, parts: list[bytes]
) -> None:
    """Append the framed body of ``plaintext`` to ``parts`` as frame prefixes and sealed contents.

    Joining the parts once costs one copy; encrypting into a zeroed buffer and then converting it to
    ``bytes`` would cost a memset and a copy.
    """
    size = len(plaintext)
    if 0 < size <= frame_length:
        # One final frame (most small messages): no layout, no loop.
        iv = _ZERO8 + b"\x00\x00\x00\x01"
        length = size.to_bytes(4, "big")
        parts.append(b"\xff\xff\xff\xff\x00\x00\x00\x01" + iv + length)
        aad = message_id + FINAL_FRAME_STRING + b"\x00\x00\x00\x01\x00\x00\x00\x00" + length
        parts.append(aead.encrypt(iv, plaintext, aad))
        return
    layout = FrameLayout(size, frame_length)
    src = 0
    regular_aad = message_id + FRAME_STRING
    length_bytes = frame_length.to_bytes(8, "big")
    encrypt = aead.encrypt
    append = parts.append
    for sequence in range(1, layout.regular + 1):
        seq = sequence.to_bytes(4, "big")
        iv = _ZERO8 + seq
        append(seq + iv)
        append(encrypt(iv, plaintext[src : src + frame_length], regular_aad + seq + length_bytes))
        src += frame_length
    sequence = layout.regular + 1
    seq = sequence.to_bytes(4, "big")
    iv = _ZERO8 + seq
    final = layout.final_length
    append(b"\xff\xff\xff\xff" + seq + iv + final.to_bytes(4, "big"))
    append(
        encrypt(iv, plaintext[src : src + final], frame_aad(message_id, FINAL_FRAME_STRING, sequence, final))
    )


def decrypt_framed_parts(
    aead: AesGcm, message_id: bytes, data: memoryview, frames: list[tuple[int, int, int, int]]
) -> list[bytes]:
    """Decrypt frames found by :func:`scan_framed`; one ``bytes`` per frame."""
    last = len(frames) - 1
    decrypt = aead.decrypt
    out = []
    for index, (iv_at, start, length, sequence) in enumerate(frames):
        content = FINAL_FRAME_STRING if index == last else FRAME_STRING
        aad = message_id + content + sequence.to_bytes(4, "big") + length.to_bytes(8, "big")
        out.append(decrypt(bytes(data[iv_at : iv_at + IV]), data[start : start + length + TAG], aad))
    return out


def scan_framed(reader: Reader, frame_length: int) -> tuple[list[tuple[int, int, int, int]], int]:
    """Walk the frames without decrypting: ``[(IV offset, ciphertext offset, length, sequence)]`` and total.

    Checks sequence numbers and lengths, so nothing is allocated for a body that is not well formed.
    """
    frames: list[tuple[int, int, int, int]] = []
    total = 0
    sequence = 1
    first = reader.peek(24)
    if first is not None and first[:8] == b"\xff\xff\xff\xff\x00\x00\x00\x01":
        # A single final frame (most small messages): the loop below, with its reads and checks, flat.
        length = int.from_bytes(first[20:24], "big")
        if length > frame_length:
            raise MalformedInputError("final frame is longer than the frame length")
        iv_at = reader.pos + 8
        reader.view(24, "final frame header")
        start = reader.pos
        reader.view(length + TAG, "frame ciphertext")
        return [(iv_at, start, length, 1)], length
    while True:
        marker = reader.u32("frame sequence number")
        if marker == FINAL_FRAME_MARKER:
            if reader.u32("final frame sequence number") != sequence:
                raise MalformedInputError("final frame is out of sequence")
            iv_at = reader.pos
            reader.view(IV, "frame IV")
            length = reader.u32("final frame length")
            if length > frame_length:
                raise MalformedInputError("final frame is longer than the frame length")
        else:
            if marker != sequence:
                raise MalformedInputError("frame is out of sequence")
            if sequence > MAX_FRAMES:
                raise MalformedInputError("too many frames")
            iv_at = reader.pos
            reader.view(IV, "frame IV")
            length = frame_length
        # The encryptor's IV is used as serialized, as the ESDK decryptors do.
        start = reader.pos
        reader.view(length + TAG, "frame ciphertext")
        frames.append((iv_at, start, length, sequence))
        total += length
        if marker == FINAL_FRAME_MARKER:
            return frames, total
        sequence += 1


def decrypt_framed_into(
    aead: AesGcm,
    message_id: bytes,
    data: memoryview,
    frames: list[tuple[int, int, int, int]],
    out: memoryview,
    *,
    ends_with_final: bool = True,
) -> None:
    """Decrypt frames found by :func:`scan_framed` into ``out`` (the summed content length).

    ``frames`` may be a slice of the scan; ``ends_with_final=False`` when it stops before the final frame.
    """
    dst = 0
    last = len(frames) - 1 if ends_with_final else -1
    for index, (iv_at, start, length, sequence) in enumerate(frames):
        content = FINAL_FRAME_STRING if index == last else FRAME_STRING
        aad = frame_aad(message_id, content, sequence, length)
        iv = bytes(data[iv_at : iv_at + IV])
        target = out[dst : dst + length]
        try:
            aead.decrypt_into(iv, data[start : start + length + TAG], aad, target)
        finally:
            # A failure's traceback keeps frames alive; an unreleased slice would pin the caller's buffer.
            target.release()
        dst += length


def decrypt_non_framed(aead: AesGcm, message_id: bytes, reader: Reader) -> bytes:
    iv = reader.read(IV, "body IV")
    length = reader.u64("body length")
    if length > MAX_NON_FRAMED_LENGTH:
        raise MalformedInputError("non-framed body is longer than the format allows")
    sealed = reader.view(length + TAG, "body ciphertext")
    aad = frame_aad(message_id, SINGLE_BLOCK_STRING, 1, length)
    return aead.decrypt(iv, sealed, aad)
