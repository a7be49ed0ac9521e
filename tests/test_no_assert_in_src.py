"""``assert`` is not control flow: ``python -O`` removes it, so no check in ``src/`` may be an ``assert``."""

from __future__ import annotations

import ast

from .conftest import REPO_ROOT

SRC = REPO_ROOT / "src" / "kmsenvelope"


def _asserts(source: str, name: str) -> list[int]:
    return [node.lineno for node in ast.walk(ast.parse(source, name)) if isinstance(node, ast.Assert)]


def test_the_scan_finds_asserts() -> None:
    assert _asserts("def f(x):\n    assert x is not None\n    return x\n", "sample") == [2]
    assert _asserts('"""Example:\n\n    assert 1 == 1\n"""\n', "docstring") == []  # prose is not code


def test_no_assert_statement_in_src() -> None:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 50
    found = [
        f"{path.relative_to(REPO_ROOT)}:{line}"
        for path in files
        for line in _asserts(path.read_text("utf-8"), str(path))
    ]
    assert found == [], "replace these with explicit checks raising a kmsenvelope.errors class: " + ", ".join(
        found
    )


_KEYLESS_CMM = r"""
import sys
from kmsenvelope import Envelope, Suite
from kmsenvelope.errors import PolicyError
from kmsenvelope.materials.materials import EncryptedDataKey, EncryptionMaterials

class KeylessMaterials:
    # A faulty materials manager: an EDK but no plaintext data key.
    def get_encryption_materials(self, request):
        return EncryptionMaterials(request.suite, request.encryption_context,
                                   (EncryptedDataKey("p", b"i", b"c"),))
    def decrypt_materials(self, request):
        raise NotImplementedError

envelope = Envelope(KeylessMaterials(), suite=Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY)
try:
    envelope.encrypt(b"data")
except PolicyError as exc:
    print("PolicyError", sys.flags.optimize, exc)
"""


def test_a_faulty_materials_manager_is_refused_with_and_without_optimisation() -> None:
    """A check that used to be an ``assert`` still holds under ``python -O``."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    for flags, level in (([], "0"), (["-O"], "1")):
        result = subprocess.run(
            [sys.executable, *flags, "-c", _KEYLESS_CMM], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"PolicyError {level} "), result.stdout
        assert "no plaintext data key" in result.stdout
