"""benchmarks/bench_dynamodb.py: the legacy-read subjects really read (and verify) distinct legacy items."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_dynamodb.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_dynamodb_legacy", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_dynamodb_legacy"] = module
    spec.loader.exec_module(module)
    return module


def test_legacy_read_subjects_read_distinct_items_the_same_way() -> None:
    pytest.importorskip("dynamodb_encryption_sdk")
    bench = _load()
    ops, note = bench.legacy_reads()
    assert note == "" and len(ops) == 4
    for label, op in ops.items():
        first, second = op(), op()
        assert first == bench.make_item(0) and second == bench.make_item(1), label
