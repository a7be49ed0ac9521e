"""benchmarks/bench_dynamodb.py: its subjects do real, correct round trips over distinct items."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_dynamodb.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_dynamodb", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_dynamodb"] = module
    spec.loader.exec_module(module)
    return module


def test_kmsenvelope_subjects_round_trip_distinct_items() -> None:
    bench = _load()
    ops = bench.kmsenvelope_round_trips()
    assert len(ops) == 2
    seen = []
    for op in ops.values():
        for _ in range(3):
            item = op()
            assert item["secret0"]["S"].startswith("0-sensitive-value-")
            seen.append(item["pk"]["S"])
    # Each subject walks its own cycle of distinct items.
    assert seen[:3] == ["customer#00000000", "customer#00000001", "customer#00000002"]
    assert seen[3:] == seen[:3]
    assert bench.item_size(bench.make_item()) > 900


def test_legacy_subjects_when_installed() -> None:
    pytest.importorskip("dynamodb_encryption_sdk", reason="the legacy library is in the bench extra only")
    bench = _load()
    ops, note = bench.legacy_round_trips()
    assert note == "" and len(ops) == 2
    for op in ops.values():
        item = op()
        assert item["pk"]["S"] == "customer#00000000" and item["secret4"]["S"].startswith("4-sensitive")
