"""Fuzz target ``message``: one-shot message decryption and header parsing.

Input: one mode byte, then the message. Mode bits 0-1 pick the decrypt-time encryption context, bits
2-3 the decrypt configuration (plain, caching, required context, tight limits). Each input goes through
:func:`parse_header` (bytes and bytearray paths, default and minimal limits),
:meth:`Envelope.decrypt_with_header` and :meth:`Envelope.decrypt_into`, which must agree: same
success or failure, same plaintext, and ``decrypt_into`` empties its buffer whenever it fails.

Run it: ``python tests/fuzz/run.py --target message --seconds 60``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``tests.fuzz`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kmsenvelope.errors import KmsEnvelopeError
from kmsenvelope.message.header import DecryptLimits, parse_header
from tests.fuzz import _common

TARGET = "message"
_DEFAULT_LIMITS = DecryptLimits()
_MINIMAL_LIMITS = DecryptLimits(max_encrypted_data_keys=1, max_header_size=64, max_frame_length=1)


def seeds() -> list[bytes]:
    return _common.message_seeds()


def TestOneInput(data: bytes) -> None:  # the name atheris and libFuzzer expect
    if not data:
        return
    mode, message = data[0], data[1:]
    context = _common.CONTEXTS[mode & 3]
    envelope = _common.decrypt_envelopes()[(mode >> 2) & 3]

    for buffer, limits in ((message, _DEFAULT_LIMITS), (bytearray(message), _MINIMAL_LIMITS)):
        try:
            header = parse_header(buffer, limits)
        except KmsEnvelopeError:
            continue
        assert header.size <= len(message)
        header.to_dict()

    try:
        result = envelope.decrypt_with_header(message, context)
    except KmsEnvelopeError:
        result = None
    out = bytearray(b"stale plaintext of an earlier message")
    try:
        envelope.decrypt_into(memoryview(message), out, context)
    except KmsEnvelopeError:
        assert result is None, "decrypt_into failed on a message decrypt_with_header decrypted"
        assert out == b"", "decrypt_into left bytes in its buffer after failing"
        return
    assert result is not None, "decrypt_into decrypted a message decrypt_with_header refused"
    assert bytes(out) == result.plaintext, "decrypt_into and decrypt_with_header disagree"
    assert result.header.size <= len(message)
    result.header.to_dict()
    repr(result)


if __name__ == "__main__":
    from tests.fuzz import run

    sys.exit(run.main(["--target", TARGET, *sys.argv[1:]]))
