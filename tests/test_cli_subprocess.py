"""The installed ``kmsenvelope`` console script and ``python -m kmsenvelope.cli``, as real processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import kmsenvelope
from kmsenvelope.cli.exits import ExitCode


def console_script() -> str:
    beside = Path(sys.executable).with_name("kmsenvelope")
    found = str(beside) if beside.exists() else shutil.which("kmsenvelope")
    if found is None:
        pytest.fail("the kmsenvelope console script is not installed (pip install -e '.[cli]')")
    return found


def test_version_from_the_console_script() -> None:
    result = subprocess.run([console_script(), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert kmsenvelope.__version__ in result.stdout


def test_pipeline_round_trip_through_stdin_and_stdout(tmp_path: Path) -> None:
    """keygen, then ``encrypt - | decrypt -`` joined by a real pipe."""
    script = console_script()
    key = tmp_path / "pipe.key"
    subprocess.run([script, "keygen", "aes", str(key)], check=True, capture_output=True, timeout=60)
    plaintext = os.urandom(300_000)
    source = tmp_path / "plain.bin"
    source.write_bytes(plaintext)
    with source.open("rb") as stdin:
        encrypt = subprocess.Popen(
            [script, "encrypt", "--key", str(key), "-c", "via=pipe", "--frame-length", "4096"],
            stdin=stdin,
            stdout=subprocess.PIPE,
        )
    decrypt = subprocess.Popen(
        [sys.executable, "-m", "kmsenvelope.cli", "decrypt", "--key", str(key), "-c", "via=pipe", "-"],
        stdin=encrypt.stdout,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert encrypt.stdout is not None
    encrypt.stdout.close()  # the decrypt process holds the read end now
    try:
        out, err = decrypt.communicate(timeout=60)
        assert encrypt.wait(timeout=60) == 0
    finally:
        for process in (encrypt, decrypt):
            if process.poll() is None:
                process.kill()
    assert decrypt.returncode == 0, err
    assert out == plaintext


def test_failure_in_a_real_process_is_one_line_without_traceback(tmp_path: Path) -> None:
    script = console_script()
    key = tmp_path / "k.key"
    subprocess.run([script, "keygen", "aes", str(key)], check=True, capture_output=True, timeout=60)
    message = subprocess.run(
        [script, "encrypt", "--key", str(key)], input=b"data", capture_output=True, check=True, timeout=60
    ).stdout
    tampered = message[:-1] + bytes([message[-1] ^ 1])
    out = tmp_path / "out.txt"
    result = subprocess.run(
        [sys.executable, "-m", "kmsenvelope.cli", "decrypt", "--key", str(key), "-o", str(out)],
        input=tampered,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == int(ExitCode.INVALID_INPUT)
    assert result.stderr.decode().count("\n") == 1 and b"Traceback" not in result.stderr
    assert not out.exists()


def test_layering_library_does_not_load_the_cli_and_cli_loads_rich_lazily() -> None:
    code = (
        "import sys, kmsenvelope\n"
        "assert not {'kmsenvelope.cli', 'click'} & set(sys.modules), 'library imports the CLI'\n"
        "import kmsenvelope.cli\n"
        "assert 'rich' not in sys.modules, 'rich imported before anything is rendered'\n"
        "assert 'boto3' not in sys.modules and 'aws_encryption_sdk' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
