"""Fuzz target ``stream``: streaming decryption, checked against one-shot decryption.

Input: one mode byte, then the message. Bits 0-1 pick the context and bits 2-3 the decrypt
configuration (as in ``fuzz_message``); bits 4-5 how many bytes each read of the source returns (a
cycle of 1, 2, 3, 5, 8 ... 987 bytes, so reads end inside every kind of field; or 61, 4096 or all),
bit 6 ``release_unverified``, bit 7 whether the source offers ``readinto``.

The oracle: when one-shot :meth:`Envelope.decrypt` succeeds, :meth:`Envelope.decrypt_stream` must
produce the same plaintext and vice versa. The only accepted disagreement is a
:class:`~kmsenvelope.errors.PolicyError` on one side, because the two apply different size limits
(streaming bounds a non-framed body by ``max_frame_length``; one-shot checks ``max_message_size``).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import BinaryIO, cast

if __package__ in (None, ""):  # run as a script: make ``tests.fuzz`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kmsenvelope.errors import KmsEnvelopeError, PolicyError
from tests.fuzz import _common

TARGET = "stream"
_FIBONACCI = (1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987)
_CHUNKS: tuple[tuple[int, ...] | None, ...] = (_FIBONACCI, (61,), (4096,), None)


class TrickleReader:
    """A binary source whose reads return at most the next size of ``chunks``, like a pipe or a socket."""

    def __init__(self, data: bytes, chunks: tuple[int, ...] | None, readinto: bool) -> None:
        self._data = io.BytesIO(data)
        self._chunks = chunks
        self._next = 0
        if readinto:
            self.readinto = self._readinto

    def read(self, n: int = -1) -> bytes:
        if self._chunks is not None:
            limit = self._chunks[self._next % len(self._chunks)]
            self._next += 1
            if n < 0 or n > limit:
                n = limit
        return self._data.read(n)

    def _readinto(self, view: memoryview) -> int:
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)


def seeds() -> list[bytes]:
    out = []
    for index, seed in enumerate(_common.message_seeds()):
        # Spread the seeds over read sizes and release modes; bits 0-3 must stay as generated.
        extra = ((index % 4) << 4) | (0x40 if index % 3 == 0 else 0) | (0x80 if index % 2 else 0)
        out.append(bytes([seed[0] | extra]) + seed[1:])
    return out


def TestOneInput(data: bytes) -> None:  # the name atheris and libFuzzer expect
    if not data:
        return
    mode, message = data[0], data[1:]
    context = _common.CONTEXTS[mode & 3]
    envelope = _common.decrypt_envelopes()[(mode >> 2) & 3]
    source = TrickleReader(message, _CHUNKS[(mode >> 4) & 3], readinto=bool(mode & 0x80))
    sink = io.BytesIO()

    streamed: bytes | KmsEnvelopeError
    try:
        header = envelope.decrypt_stream(
            cast(BinaryIO, source), sink, context, release_unverified=bool(mode & 0x40)
        )
    except KmsEnvelopeError as exc:
        streamed = exc
    else:
        streamed = sink.getvalue()
        assert header.size <= len(message)
    oneshot: bytes | KmsEnvelopeError
    try:
        oneshot = envelope.decrypt(message, context)
    except KmsEnvelopeError as exc:
        oneshot = exc

    if isinstance(streamed, bytes) and isinstance(oneshot, bytes):
        assert streamed == oneshot, "streaming and one-shot decryption produced different plaintexts"
    elif isinstance(streamed, bytes):
        assert isinstance(oneshot, PolicyError), f"stream decrypted what one-shot refused: {oneshot!r}"
    elif isinstance(oneshot, bytes):
        assert isinstance(streamed, PolicyError), f"one-shot decrypted what the stream refused: {streamed!r}"


if __name__ == "__main__":
    from tests.fuzz import run

    sys.exit(run.main(["--target", TARGET, *sys.argv[1:]]))
