"""Run the atheris fuzz targets: ``python tests/fuzz/run.py --target T --seconds N``.

Each target runs in its own process (atheris takes over the process and exits it). That child
instruments every ``kmsenvelope`` module for coverage, writes the target's seed corpus (generated now
from our encryptions and from ``tests/vectors``) into ``<workdir>/<target>/seeds``, and fuzzes with
``<workdir>/<target>/corpus`` as the growing corpus. Crashing inputs land in
``<workdir>/<target>/artifacts/``. The parent prints, per target, executions, coverage (libFuzzer's
``cov``/``ft``), the corpus size and any crash, and exits non-zero if any target crashed.

Examples::

    python tests/fuzz/run.py --target all --seconds 60 --jobs 2
    python tests/fuzz/run.py --target message --runs 1000000 --workdir .fuzz --summary message.json
    python tests/fuzz/run.py --target item --replay .fuzz/item/artifacts/crash-...   # reproduce
    python tests/fuzz/run.py --target stream --seconds 30 -- -use_value_profile=1   # libFuzzer flags

Targets: message, stream, item, attributes, inspect (``all`` runs each).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``tests.fuzz`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

REPO_ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("message", "stream", "item", "attributes", "inspect")
_SELFTEST = "selftest"  # a target that must crash; proves crashes are detected (tests/fuzz/_selftest.py)
_MODULES = {name: f"tests.fuzz.fuzz_{name}" for name in TARGETS} | {_SELFTEST: "tests.fuzz._selftest"}
# What the targets reach, instrumented for coverage: these modules and every module of these packages.
_INSTRUMENTED_MODULES = (
    "kmsenvelope",
    "kmsenvelope.envelope",
    "kmsenvelope.errors",
    "kmsenvelope.suites",
    "kmsenvelope.cli.exits",
    "kmsenvelope.cli.inspect",
    "kmsenvelope.cli.streams",
)
_INSTRUMENTED_PACKAGES = ("aws", "dynamodb", "keyrings", "materials", "message", "primitives", "structured")
_STATUS = re.compile(r"cov: (\d+) ft: (\d+) corp: (\d+)/\S+.*?exec/s: (\d+)")
_EXECUTED = re.compile(r"stat::number_of_executed_units: (\d+)")


@dataclass
class Result:
    """What one fuzzing run of one target did."""

    target: str
    returncode: int
    seconds: float
    seeds: int = 0
    executions: int = 0
    cov: int = 0
    ft: int = 0
    corpus: int = 0
    exec_per_s: int = 0
    crashes: list[str] = field(default_factory=list)
    log: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.crashes and self.executions > 0

    def line(self) -> str:
        state = "ok" if self.ok else f"FAILED (exit {self.returncode}, {len(self.crashes)} crash files)"
        return (
            f"{self.target:<10} {state}: {self.executions:,} executions in {self.seconds:.0f} s "
            f"({self.exec_per_s}/s), cov {self.cov}, ft {self.ft}, corpus {self.corpus} "
            f"(from {self.seeds} seeds)"
        )


def default_seconds() -> int:
    """``KMSENVELOPE_FUZZ_SECONDS``; else 60 under CI (``CI=true``), 5 locally."""
    value = os.environ.get("KMSENVELOPE_FUZZ_SECONDS")
    if value:
        return int(value)
    return 60 if os.environ.get("CI", "").lower() == "true" else 5


# -- child: one target under atheris -------------------------------------------------------------


def _import_library() -> None:
    import pkgutil

    for name in _INSTRUMENTED_MODULES:
        importlib.import_module(name)
    for package in _INSTRUMENTED_PACKAGES:
        module = importlib.import_module(f"kmsenvelope.{package}")
        for info in pkgutil.walk_packages(module.__path__, f"{module.__name__}."):
            importlib.import_module(info.name)


def write_seeds(target: str, directory: Path) -> int:
    module = importlib.import_module(_MODULES[target])
    directory.mkdir(parents=True, exist_ok=True)
    seeds = module.seeds()
    for seed in seeds:
        (directory / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    return len(seeds)


def _child(target: str, workdir: Path, fuzzer_args: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=["kmsenvelope"]):
        _import_library()
    seeds_dir, corpus_dir = workdir / "seeds", workdir / "corpus"
    count = write_seeds(target, seeds_dir)
    corpus_dir.mkdir(parents=True, exist_ok=True)
    print(f"kmsenvelope-fuzz: target={target} seeds={count}", file=sys.stderr, flush=True)
    module = importlib.import_module(_MODULES[target])
    atheris.Setup([sys.argv[0], *fuzzer_args, str(corpus_dir), str(seeds_dir)], module.TestOneInput)
    atheris.Fuzz()


# -- parent --------------------------------------------------------------------------------------


def _fuzzer_args(args: argparse.Namespace, workdir: Path) -> list[str]:
    out = [
        f"-artifact_prefix={workdir / 'artifacts'}/",
        "-print_final_stats=1",
        f"-timeout={args.input_timeout}",
        "-rss_limit_mb=2048",
    ]
    if args.runs is not None:
        out.append(f"-runs={args.runs}")
    if args.seconds is not None:
        out.append(f"-max_total_time={args.seconds}")
    return out + list(args.fuzzer_args)


def _parse(result: Result, text: str) -> None:
    seeds = re.search(r"kmsenvelope-fuzz: target=\S+ seeds=(\d+)", text)
    result.seeds = int(seeds.group(1)) if seeds else 0
    statuses = _STATUS.findall(text)
    if statuses:
        cov, ft, corpus, speed = (int(x) for x in statuses[-1])
        result.cov, result.ft, result.corpus, result.exec_per_s = cov, ft, corpus, speed
    executed = _EXECUTED.findall(text)
    if executed:
        result.executions = int(executed[-1])


def _start(target: str, args: argparse.Namespace, root: Path) -> tuple[subprocess.Popen[bytes], Path, float]:
    workdir = root / target
    (workdir / "artifacts").mkdir(parents=True, exist_ok=True)
    log = (workdir / "fuzz.log").open("wb")
    command = [sys.executable, str(Path(__file__).resolve()), "--child", target, "--workdir", str(workdir)]
    command += ["--", *_fuzzer_args(args, workdir)]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return process, workdir, time.monotonic()


def _finish(target: str, process: subprocess.Popen[bytes], workdir: Path, started: float) -> Result:
    text = (workdir / "fuzz.log").read_text(errors="replace")
    result = Result(target, process.returncode, time.monotonic() - started)
    _parse(result, text)
    result.crashes = sorted(str(p) for p in (workdir / "artifacts").iterdir())
    if not result.ok:
        result.log = text[-6000:]
    return result


def fuzz(targets: list[str], args: argparse.Namespace, root: Path) -> list[Result]:
    """Run ``targets``, at most ``args.jobs`` at a time; each is killed past its time budget."""
    pending = list(targets)
    running: list[tuple[str, subprocess.Popen[bytes], Path, float]] = []
    results: list[Result] = []
    budget = None if args.seconds is None else args.seconds * 2 + 300
    while pending or running:
        while pending and len(running) < args.jobs:
            target = pending.pop(0)
            running.append((target, *_start(target, args, root)))
        time.sleep(0.2)
        for entry in list(running):
            target, process, workdir, started = entry
            if process.poll() is None and budget is not None and time.monotonic() - started > budget:
                process.kill()
                process.wait()
            if process.poll() is not None:
                running.remove(entry)
                result = _finish(target, process, workdir, started)
                results.append(result)
                print(result.line(), flush=True)
                for crash in result.crashes:
                    print(f"    crash input: {crash}", flush=True)
                if not result.ok:
                    print(result.log, flush=True)
    order = {name: index for index, name in enumerate(targets)}
    return sorted(results, key=lambda r: order[r.target])


def replay(target: str, paths: list[str]) -> int:
    """Run inputs through a target in this process (no atheris) and show what they raise."""
    module = importlib.import_module(_MODULES[target])
    failures = 0
    for path in paths:
        try:
            module.TestOneInput(Path(path).read_bytes())
        except Exception:
            failures += 1
            print(f"{path}: CRASH")
            traceback.print_exc()
        else:
            print(f"{path}: ok")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--target", choices=(*TARGETS, "all", _SELFTEST), help="what to fuzz")
    parser.add_argument("--seconds", type=int, help="libFuzzer -max_total_time per target")
    parser.add_argument("--runs", type=int, help="libFuzzer -runs: stop after this many executions")
    parser.add_argument("--jobs", type=int, default=1, help="targets fuzzed at the same time")
    parser.add_argument("--workdir", help="keep seeds, corpus and crashes here (default: a temp dir)")
    parser.add_argument("--summary", help="write the results as JSON to this file")
    parser.add_argument("--input-timeout", type=int, default=30, help="seconds one input may take")
    parser.add_argument("--replay", nargs="+", metavar="FILE", help="run these inputs in-process and exit")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("fuzzer_args", nargs="*", help="extra libFuzzer flags, after --")
    args = parser.parse_args(argv)

    if args.child:
        _child(args.child, Path(args.workdir), list(args.fuzzer_args))
        return 0  # not reached: atheris exits the process
    if args.target is None:
        parser.error("--target is required")
    if args.replay:
        return replay(args.target, args.replay)
    if args.seconds is None and args.runs is None:
        args.seconds = default_seconds()
    targets = list(TARGETS) if args.target == "all" else [args.target]
    root = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="kmsenvelope-fuzz-"))
    try:
        results = fuzz(targets, args, root)
    finally:
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)
    if args.summary:
        data: dict[str, Any] = {r.target: asdict(r) for r in results}
        Path(args.summary).write_text(json.dumps(data, indent=2))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
