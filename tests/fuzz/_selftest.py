"""A target that must crash: the runner's own check that a crashing input is caught and saved.

It follows the real targets' pattern: the code under test may raise a ``KmsEnvelopeError``, which the
target catches; anything else escapes and is a crash. Here ``b"crash"`` raises a ``KeyError``.
"""

from __future__ import annotations

from kmsenvelope.errors import KmsEnvelopeError, MalformedInputError


def seeds() -> list[bytes]:
    return [b"fine", b"crash"]


def _code_under_test(data: bytes) -> None:
    if data == b"crash":
        raise KeyError("the self-test crash")
    raise MalformedInputError("an allowed failure")


def TestOneInput(data: bytes) -> None:  # the name atheris and libFuzzer expect
    try:
        _code_under_test(data)
    except KmsEnvelopeError:
        return
