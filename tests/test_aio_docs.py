"""docs/async.md's example and benchmarks/bench_async.py run (each in a subprocess with its own local AWS)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from .conftest import REPO_ROOT


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def test_the_async_docs_example_runs() -> None:
    text = (REPO_ROOT / "docs" / "async.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "docs/async.md has no python example"
    for block in blocks:
        result = subprocess.run(
            [sys.executable, "-c", block],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "decrypt requests: 1" in result.stdout


def test_the_async_benchmark_runs_and_reports_every_subject() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "benchmarks" / "bench_async.py"),
            "--requests",
            "6",
            "--latencies",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["latency_ms"] == 1 and row["requests"] == 6
    assert all(row[name] > 0 for name in ("async", "sync_in_loop", "to_thread"))
