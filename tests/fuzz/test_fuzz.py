"""The fuzz targets in the normal test run: seed replay, a time-boxed atheris smoke run per target,
and proof that the runner catches a crash.

The smoke duration per target is ``KMSENVELOPE_FUZZ_SECONDS`` (default 60 with ``CI=true``, 5
locally); the targets run two at a time. Longer runs: docs/hardening.md.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kmsenvelope.dynamodb import ItemEncryptor
from kmsenvelope.dynamodb.attributes import MAP, deserialize
from kmsenvelope.errors import KmsEnvelopeError
from kmsenvelope.structured.model import Terminal

from .. import _dbesdk
from . import _common, fuzz_item, run

RUN = Path(run.__file__)


def _atheris_required() -> None:
    """atheris is in the test extra wherever it has a wheel (see pyproject.toml); missing there is an
    error, not a skip. Elsewhere the smoke cannot run, and says so."""
    try:
        import atheris  # noqa: F401
    except ImportError:
        wheel = (
            sys.platform == "linux"
            and platform.machine() == "x86_64"
            and (3, 11) <= sys.version_info < (3, 15)
        )
        if wheel:
            pytest.fail("atheris is missing: pip install -e '.[test]' (it has a wheel for this platform)")
        pytest.skip(f"atheris has no wheel for {sys.platform}/{platform.machine()}/py{sys.version_info[:2]}")


@pytest.mark.parametrize("target", run.TARGETS)
def test_every_seed_passes_its_target_in_process(target: str) -> None:
    module = importlib.import_module(f"tests.fuzz.fuzz_{target}")
    seeds = module.seeds()
    assert len(seeds) >= 50
    for seed in seeds:
        module.TestOneInput(seed)


def test_message_seeds_reach_the_decrypt_success_path() -> None:
    """The seeds are worth mutating only if they decrypt: every message we make and every vector with
    an AES key must decrypt under the envelope its mode byte selects."""
    tests, _ = _common.esdk_manifest()
    aes_vectors = sum(
        any(mk["encryption-algorithm"] == "aes" for mk in test["master-keys"]) for test in tests.values()
    )
    decrypted = 0
    seeds = [*_common.our_messages(), *_common.vector_messages()]
    for mode, message in seeds:
        envelope = _common.decrypt_envelopes()[(mode >> 2) & 3]
        try:
            envelope.decrypt(message, _common.CONTEXTS[mode & 3])
        except KmsEnvelopeError:
            continue
        decrypted += 1
    ours = len(list(_common.our_messages()))
    assert decrypted == ours - 1 + aes_vectors  # all but the KMS-EDK seed, which cannot decrypt


def test_item_seeds_reach_the_decrypt_success_path() -> None:
    decrypted = 0
    for seed in fuzz_item.seeds():
        if seed[1] != 0:  # transformed on purpose
            continue
        config = fuzz_item.configs()[seed[0]]
        item = deserialize(Terminal(MAP, seed[2:]))["M"]
        try:
            ItemEncryptor(config).decrypt_item(item)
        except KmsEnvelopeError:
            continue
        decrypted += 1
    positive = sum(test["type"] == "positive-decrypt" for _, test in _dbesdk.manifest_tests())
    assert decrypted == positive + len(fuzz_item._our_items())


def test_smoke_duration_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KMSENVELOPE_FUZZ_SECONDS", raising=False)
    monkeypatch.setenv("CI", "true")
    assert run.default_seconds() == 60
    monkeypatch.delenv("CI")
    assert run.default_seconds() == 5
    monkeypatch.setenv("KMSENVELOPE_FUZZ_SECONDS", "17")
    assert run.default_seconds() == 17


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One atheris run of every target, two at a time, for the configured smoke duration each."""
    _atheris_required()
    seconds = run.default_seconds()
    workdir = tmp_path_factory.mktemp("fuzz")
    summary = workdir / "summary.json"
    command = [sys.executable, str(RUN), "--target", "all", "--seconds", str(seconds), "--jobs", "2"]
    command += ["--workdir", str(workdir), "--summary", str(summary)]
    rounds = -(-len(run.TARGETS) // 2)
    completed = subprocess.run(
        command, cwd=run.REPO_ROOT, capture_output=True, text=True, timeout=rounds * (seconds * 2 + 300)
    )
    assert summary.exists(), completed.stdout + completed.stderr
    data: dict[str, Any] = json.loads(summary.read_text())
    data["__output__"] = completed.stdout
    return data


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("target", run.TARGETS)
def test_fuzz_smoke(smoke: dict[str, Any], target: str) -> None:
    result = smoke[target]
    assert result["crashes"] == [], result["log"]
    assert result["returncode"] == 0, result["log"]
    # Past the seeds: the fuzzer mutated and ran new inputs, with coverage feedback working.
    assert result["executions"] > result["seeds"] > 0, smoke["__output__"]
    assert result["cov"] > 0 and result["ft"] > 0, smoke["__output__"]


@pytest.mark.timeout(600)
def test_runner_reports_a_crash(tmp_path: Path) -> None:
    """A target that raises anything but a KmsEnvelopeError fails the run and leaves the input behind."""
    _atheris_required()
    command = [
        sys.executable,
        str(RUN),
        "--target",
        "selftest",
        "--seconds",
        "60",
        "--workdir",
        str(tmp_path),
    ]
    completed = subprocess.run(command, cwd=run.REPO_ROOT, capture_output=True, text=True, timeout=400)
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "selftest   FAILED" in completed.stdout
    (crash,) = (tmp_path / "selftest" / "artifacts").iterdir()
    assert crash.read_bytes() == b"crash"
    assert "KeyError: 'the self-test crash'" in (tmp_path / "selftest" / "fuzz.log").read_text()
    replayed = subprocess.run(
        [sys.executable, str(RUN), "--target", "selftest", "--replay", str(crash)],
        cwd=run.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert replayed.returncode == 1 and "CRASH" in replayed.stdout
