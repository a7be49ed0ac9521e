"""A decrypt killed midway (SIGTERM, SIGHUP, SIGINT) leaves no plaintext on disk (issue 12, defect 4)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kmsenvelope import Envelope
from kmsenvelope.cli.keys import generate_aes, write_key_file

FRAME = 4096
# Random plaintext: any 64-byte window of it found in a file means plaintext was left behind.
PLAINTEXT = os.urandom(4 << 20)


def _environment(portable: bool) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(Path(__file__).parents[1] / "src"), env.get("PYTHONPATH")) if p
    )
    env.pop("KMSENVELOPE_PORTABLE", None)
    if portable:
        env["KMSENVELOPE_PORTABLE"] = "1"
    return env


def _holds_plaintext(data: bytes) -> bool:
    return any(PLAINTEXT[i : i + 64] in data for i in range(0, 1 << 20, FRAME))


@pytest.mark.parametrize(
    ("signum", "portable"),
    [
        (signal.SIGTERM, False),
        (signal.SIGHUP, False),
        (signal.SIGINT, False),
        (signal.SIGTERM, True),
        (signal.SIGHUP, True),
    ],
    ids=["SIGTERM", "SIGHUP", "SIGINT", "SIGTERM-portable", "SIGHUP-portable"],
)
def test_signalled_decrypt_leaves_no_plaintext(tmp_path: Path, signum: int, portable: bool) -> None:
    key_file = generate_aes("kmsenvelope", "sig")
    keys = tmp_path / "keys"
    keys.mkdir()
    write_key_file(keys / "sig.key", key_file)
    message = Envelope(key_file.keyring(), frame_length=FRAME).encrypt(PLAINTEXT)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kmsenvelope.cli",
            "decrypt",
            "--key",
            str(keys / "sig.key"),
            "-",
            "-o",
            str(out_dir / "plain.bin"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_environment(portable),
    )
    assert process.stdin is not None
    try:
        # Once these writes return, the CLI has read (and decrypted) all but a pipe buffer of them;
        # the rest of the message never comes, so it is waiting for input when the signal lands.
        process.stdin.write(message[: len(message) // 2])
        process.stdin.flush()
        time.sleep(0.3)
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        process.send_signal(signum)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdin.close()
    assert process.returncode != 0
    if signum == signal.SIGINT:
        assert process.returncode == 130
    else:
        assert process.returncode == -signum  # ends as the signal would have, after cleaning up
    left = list(out_dir.iterdir())
    assert left == [], [p.name for p in left]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert not _holds_plaintext(path.read_bytes()), path
