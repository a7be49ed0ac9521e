"""Issue 12's rules applied to kmsenvelope.aio: no ``assert`` as a check, no temporary plaintext file left
behind when the final rename fails, and the buffer growth plan the sync and async streams share."""

from __future__ import annotations

import ast
import asyncio
import os
from pathlib import Path

import pytest

from kmsenvelope import Envelope, RawAesKeyring
from kmsenvelope.aio import AsyncEnvelope
from kmsenvelope.message.stream import GROW_STEP, growth_steps

from .conftest import REPO_ROOT

AIO = REPO_ROOT / "src" / "kmsenvelope" / "aio"
KEYRING = RawAesKeyring("aio", "review", bytes(range(32)))


def test_no_assert_statement_in_aio() -> None:
    """``python -O`` removes asserts, so none of kmsenvelope.aio's checks may be one."""
    files = sorted(AIO.glob("*.py"))
    assert len(files) >= 10
    found = [
        f"{path.name}:{node.lineno}"
        for path in files
        for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path)))
        if isinstance(node, ast.Assert)
    ]
    assert found == []


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data

    async def read(self, n: int = -1) -> bytes:
        out, self._data = self._data[:n], self._data[n:]
        return out


@pytest.mark.parametrize("operation", ["encrypt", "decrypt"])
def test_a_failed_rename_leaves_no_temporary_file(tmp_path: Path, operation: str) -> None:
    """The destination cannot be replaced (it is a directory): the error surfaces, the temporary goes."""
    plaintext = os.urandom(100_000)
    aio = AsyncEnvelope(KEYRING, frame_length=4096)
    target = tmp_path / "target"
    target.mkdir()
    if operation == "encrypt":
        call = aio.encrypt_stream(_Reader(plaintext), target)
    else:
        call = aio.decrypt_stream(_Reader(Envelope(KEYRING).encrypt(plaintext)), target)
    with pytest.raises(OSError):
        asyncio.run(call)
    assert [p.name for p in tmp_path.iterdir()] == ["target"]
    assert list(target.iterdir()) == []


@pytest.mark.parametrize(
    ("have", "n", "expected"),
    [
        (0, 0, []),
        (0, 100, [(0, 100)]),
        (0, GROW_STEP, [(0, GROW_STEP)]),
        (0, GROW_STEP + 1, [(0, GROW_STEP), (GROW_STEP, GROW_STEP + 1)]),
        (500, 100, [(0, 100)]),  # a buffer long enough is filled in place
        (500, 500, [(0, 500)]),
        (500, 2 * GROW_STEP, [(0, 500), (500, GROW_STEP + 500), (GROW_STEP + 500, 2 * GROW_STEP)]),
    ],
)
def test_growth_steps(have: int, n: int, expected: list[tuple[int, int]]) -> None:
    assert list(growth_steps(have, n)) == expected


def test_growth_steps_for_a_huge_claim_are_lazy() -> None:
    """A claimed 2 GiB is a plan of 2048 steps, produced one at a time, never a list."""
    steps = growth_steps(0, (1 << 31) - 1)
    assert next(steps) == (0, GROW_STEP)
    assert next(steps) == (GROW_STEP, 2 * GROW_STEP)
    assert sum(1 for _ in steps) == 2046


class _Overflowing:
    """A broken reader: returns more bytes than asked for."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def read(self, n: int = -1) -> bytes:
        out, self._data = self._data[: n + 7], self._data[n + 7 :]
        return out


def test_a_reader_returning_more_than_asked_is_a_clear_error() -> None:
    message = Envelope(KEYRING, frame_length=4096).encrypt(os.urandom(50_000))
    aio = AsyncEnvelope(KEYRING)

    class Sink:
        async def write(self, data: bytes) -> None:
            return None

    with pytest.raises(TypeError, match="more than"):
        asyncio.run(aio.decrypt_stream(_Overflowing(message), Sink()))
    with pytest.raises(TypeError, match="more than"):
        asyncio.run(aio.encrypt_stream(_Overflowing(bytes(200_000)), Sink()))
