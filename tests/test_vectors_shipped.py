"""The conformance vectors ship in the repository, byte for byte, and nothing reads them from elsewhere."""

from __future__ import annotations

import hashlib
import re

import pytest

from .conftest import REPO_ROOT, VECTORS

SUMS = VECTORS / "SHA256SUMS"
SOURCE_DIRS = ("tests", "benchmarks", "examples")
# Strings only a read from outside the repository would need (the old location and its override).
OUTSIDE = re.compile(r"\.\./shared|\"shared\" */ *\"vectors\"|KMSENVELOPE_VECTORS")


def _listed() -> dict[str, str]:
    entries = {}
    for line in SUMS.read_text(encoding="ascii").splitlines():
        digest, name = line.split(maxsplit=1)
        entries[name] = digest
    return entries


def test_vectors_live_inside_the_repository() -> None:
    assert VECTORS.resolve().is_relative_to(REPO_ROOT.resolve())
    assert not VECTORS.is_symlink()


def test_every_vector_file_is_listed_and_unchanged() -> None:
    listed = _listed()
    assert len(listed) == 109  # 99 ciphertexts, 1 plaintext, manifest and keys; 7 DB-ESDK files
    shipped = {
        path.relative_to(VECTORS).as_posix()
        for path in VECTORS.rglob("*")
        if path.is_file() and path.name not in ("README.md", "SHA256SUMS")
    }
    assert shipped == set(listed)
    changed = [
        name
        for name, digest in listed.items()
        if hashlib.sha256((VECTORS / name).read_bytes()).hexdigest() != digest
    ]
    assert not changed


def test_no_source_points_outside_the_repository() -> None:
    here = __file__
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{number}"
        for directory in SOURCE_DIRS
        for path in sorted((REPO_ROOT / directory).rglob("*.py"))
        if str(path) != here
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not offenders


def test_an_empty_parametrize_fails_the_collection(pytestconfig: pytest.Config) -> None:
    """Any parametrized test whose cases did not load is a collection error, never a silent skip."""
    assert pytestconfig.getini("empty_parameter_set_mark") == "fail_at_collect"
