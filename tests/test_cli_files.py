"""Directories (-r, --suffix, -o DIR/), overwrite safety (--force, --interactive under a pty) and
--metadata-output, each driven through a real ``kmsenvelope`` process (issue 16)."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from kmsenvelope.cli.batch import output_name
from kmsenvelope.cli.exits import CliError, ExitCode
from kmsenvelope.cli.file_jobs import Counting

from ._cli import cli, environment, key_file, one_error_line

TREE = {
    "top.txt": b"top level " * 100,
    "one/middle.txt": b"middle level " * 100,
    "one/two/bottom.txt": b"bottom level " * 100,
    "one/two/empty.bin": b"",
}


def make_tree(root: Path) -> None:
    for relative, data in TREE.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_recursive_round_trip_with_a_failing_file_in_the_middle(tmp_path: Path) -> None:
    key, _ = key_file(tmp_path)
    make_tree(tmp_path / "plain")
    meta = tmp_path / "meta.jsonl"
    result = cli(
        "encrypt", "-r", "-k", key, "-c", "set=tree", tmp_path / "plain", "-o", tmp_path / "enc",
        "--metadata-output", meta,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert b"4 files encrypted" in result.stderr
    encrypted = sorted(
        str(p.relative_to(tmp_path / "enc")) for p in (tmp_path / "enc").rglob("*") if p.is_file()
    )
    assert encrypted == sorted(f"{name}.encrypted" for name in TREE)
    records = [json.loads(line) for line in meta.read_text().splitlines()]
    assert sorted(r["input"] for r in records) == sorted(str(tmp_path / "plain" / n) for n in TREE)
    assert {r["encryption_context"]["set"] for r in records} == {"tree"}

    # The middle file is tampered with: it fails alone, nothing of it is written, the others decrypt.
    middle = tmp_path / "enc" / "one" / "middle.txt.encrypted"
    data = bytearray(middle.read_bytes())
    data[-20] ^= 1
    middle.write_bytes(bytes(data))
    result = cli("decrypt", "-r", "-k", key, "-c", "set=tree", tmp_path / "enc", "-o", tmp_path / "out")
    assert result.returncode == int(ExitCode.INVALID_INPUT), result.stderr
    err = result.stderr.decode()
    assert f"failed: {middle}:" in err
    assert "3 files decrypted, 1 failed" in err
    for relative, plaintext in TREE.items():
        path = tmp_path / "out" / relative
        if relative == "one/middle.txt":
            assert not path.exists()
        else:
            assert path.read_bytes() == plaintext
    assert not [p for p in (tmp_path / "out").rglob(".*")]  # no temporary files left

    # Run again: every output exists now, so each file is refused (exit 3) unless --force.
    again = cli("decrypt", "-r", "-k", key, tmp_path / "enc", "-o", tmp_path / "out")
    assert again.returncode == int(ExitCode.FILE)
    assert b"already exists (use --force to overwrite)" in again.stderr


def test_suffix_and_output_directory(tmp_path: Path) -> None:
    key, _ = key_file(tmp_path)
    make_tree(tmp_path / "plain")
    enc, out = tmp_path / "enc", tmp_path / "out"
    assert cli("encrypt", "-r", "--suffix", ".kms", "-k", key, tmp_path / "plain", "-o", enc).returncode == 0
    assert (enc / "one" / "two" / "bottom.txt.kms").is_file()
    result = cli("decrypt", "-r", "--suffix", ".kms", "-q", "-k", key, enc, "-o", out)
    assert result.returncode == 0 and result.stderr == b""  # -q: no summary
    assert (out / "one" / "two" / "bottom.txt").read_bytes() == TREE["one/two/bottom.txt"]
    # one file into a directory: -o DIR/ keeps the name and adds (or removes) the suffix
    single = tmp_path / "single"
    single.mkdir()
    assert cli("encrypt", "-k", key, tmp_path / "plain" / "top.txt", "-o", f"{single}/").returncode == 0
    assert cli("decrypt", "-k", key, single / "top.txt.encrypted", "-o", f"{single}/").returncode == 0
    assert (single / "top.txt").read_bytes() == TREE["top.txt"]
    # the output tree may not be inside the input tree; a directory input needs -r
    one_error_line(cli("encrypt", "-r", "-k", key, tmp_path / "plain", "-o", tmp_path / "plain" / "x"), 2)
    one_error_line(cli("encrypt", "-k", key, tmp_path / "plain", "-o", tmp_path / "x"), 2)


def test_existing_output_is_refused_unless_force(tmp_path: Path) -> None:
    key, _ = key_file(tmp_path)
    source, target = tmp_path / "p.txt", tmp_path / "p.enc"
    source.write_bytes(b"new plaintext")
    target.write_bytes(b"keep me")
    one_error_line(cli("encrypt", "-k", key, source, "-o", target), int(ExitCode.FILE))
    assert target.read_bytes() == b"keep me"
    assert cli("encrypt", "-k", key, source, "-o", target, "--force").returncode == 0
    assert target.read_bytes().startswith(b"\x02")
    plain = tmp_path / "p.out"
    plain.write_bytes(b"older plaintext")
    line = one_error_line(cli("decrypt", "-k", key, target, "-o", plain), int(ExitCode.FILE))
    assert "already exists" in line
    assert plain.read_bytes() == b"older plaintext"
    assert cli("decrypt", "-k", key, target, "-o", plain, "-f").returncode == 0
    assert plain.read_bytes() == b"new plaintext"


def _run_on_pty(args: list[str], answer: bytes) -> tuple[int, bytes]:
    """Run the CLI with a pseudo-terminal as its controlling terminal; answer its prompt."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.execve(sys.executable, [sys.executable, "-m", "kmsenvelope.cli", *args], environment())
    seen = b""
    answered = False
    while True:
        ready, _, _ = select.select([fd], [], [], 60)
        if not ready:
            os.kill(pid, 9)
            break
        try:
            chunk = os.read(fd, 1024)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
        if not answered and b"[y/N]" in seen:
            os.write(fd, answer)
            answered = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), seen


def test_interactive_asks_on_the_terminal(tmp_path: Path) -> None:
    key, _ = key_file(tmp_path)
    source, target = tmp_path / "p.txt", tmp_path / "p.enc"
    source.write_bytes(b"plaintext")
    target.write_bytes(b"keep me")
    args = ["encrypt", "-k", str(key), str(source), "-o", str(target), "--interactive"]
    code, seen = _run_on_pty(args, b"n\n")
    assert b"overwrite " in seen and code == 0
    assert target.read_bytes() == b"keep me"
    code, seen = _run_on_pty(args, b"y\n")
    assert code == 0, seen
    assert target.read_bytes().startswith(b"\x02")
    # without a terminal to ask on (no controlling terminal), --interactive refuses rather than guessing
    result = subprocess.run(
        [sys.executable, "-m", "kmsenvelope.cli", *args],
        capture_output=True,
        env=environment(),
        start_new_session=True,
        timeout=120,
    )
    one_error_line(result, int(ExitCode.FILE))
    assert target.read_bytes().startswith(b"\x02")


def test_metadata_output_matches_inspect_json(tmp_path: Path) -> None:
    key, key_doc = key_file(tmp_path, "meta")
    source = tmp_path / "p.txt"
    source.write_bytes(b"x" * 5000)
    meta = tmp_path / "m.jsonl"
    encrypted = tmp_path / "p.enc"
    args: list[str | Path] = ["-k", key, "--metadata-output", meta]
    assert (
        cli("encrypt", *args, "-c", "a=b", "--frame-length", "1024", source, "-o", encrypted).returncode == 0
    )
    # "-": metadata on stdout, data to a file
    result = cli("decrypt", "-k", key, "--metadata-output", "-", encrypted, "-o", tmp_path / "p.out")
    assert result.returncode == 0, result.stderr
    [written] = [json.loads(line) for line in meta.read_text().splitlines()]
    [read] = [json.loads(line) for line in result.stdout.decode().splitlines()]
    inspected = json.loads(cli("inspect", "--json", encrypted).stdout)
    for record in (written, read):
        for name, value in inspected.items():
            assert record[name] == value, name
    assert (written["operation"], written["bytes_in"], written["bytes_out"]) == (
        "encrypt",
        5000,
        encrypted.stat().st_size,
    )
    assert (read["operation"], read["bytes_in"], read["bytes_out"]) == (
        "decrypt",
        encrypted.stat().st_size,
        5000,
    )
    assert written["encrypted_data_keys"][0]["key_name"] == key_doc.name
    assert written["output"] == str(encrypted) and read["input"] == str(encrypted)
    # metadata and data cannot share stdout
    one_error_line(cli("decrypt", "-k", key, "--metadata-output", "-", encrypted), int(ExitCode.USAGE))


def test_output_names_and_a_growing_input() -> None:
    """Suffix rules, and a file that grows past the size the cache was told is refused."""
    assert output_name("a.txt", encrypting=True, suffix=None) == "a.txt.encrypted"
    assert output_name("a.txt", encrypting=True, suffix="") == "a.txt"
    assert output_name("a.txt.encrypted", encrypting=False, suffix=None) == "a.txt"
    assert output_name("a.txt", encrypting=False, suffix=None) == "a.txt.decrypted"
    assert output_name(".kms", encrypting=False, suffix=".kms") == ".kms.decrypted"
    reader = Counting(io.BytesIO(b"x" * 10), limit=6, name="grows.txt")
    assert reader.read(6) == b"x" * 6
    with pytest.raises(CliError, match=r"grows\.txt grew while it was being encrypted"):
        reader.read(4)
