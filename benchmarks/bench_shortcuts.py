"""What each private-API shortcut buys: the same operations with and without ``KMSENVELOPE_PORTABLE``.

Run:  python benchmarks/bench_shortcuts.py [--rounds 7] [--quick] [--json] [--only NAME] [--in-process]
                                           [--src SRC_DIR] [--against SRC_DIR]

Each round starts one fresh worker process per configuration, in alternating order, and each worker
times every operation (median of 5 batches); the figures are the medians over rounds, so a slow spell
on a shared machine lands on both configurations alike. Operations: ``Envelope.encrypt``/``decrypt``
(suite 0x0478, raw AES keyring) at 1 KiB, 1 MiB and 16 MiB, and a DynamoDB item round trip
(``ItemEncryptor``, suite 0x6700, cached hierarchical keyring; the item of ``bench_dynamodb.py``).

Configurations: ``shortcuts`` (the default build) and ``portable`` (``KMSENVELOPE_PORTABLE=1``). With
``--against SRC_DIR`` the comparison is instead ``--src`` (default: this checkout's ``src``) against
another ``src`` directory (e.g. ``git archive`` of an older commit), both with shortcuts on: before/after
figures. ``--only`` keeps the operations whose name contains the given text.

``--in-process`` instead measures each shortcut on its own in one process: every operation runs with and
without the shortcut (by flipping the module state the switch would have set at import, ``buffers._state``),
all subjects interleaved batch by batch (``measure_interleaved``, 21 rounds), which
is far steadier on a busy machine than comparing processes. Nothing here is asserted by tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SIZES = {"1 KiB": 1024, "1 MiB": 1 << 20, "16 MiB": 16 << 20}


def worker(min_time: float, only: str = "") -> dict[str, float]:
    """Operations per second of every operation (whose name contains ``only``) in this configuration."""
    from kmsenvelope.cli.bench import measure

    return {
        name: measure(op, min_time=min_time, repeat=5, statistic="median")
        for name, op in _operations().items()
        if only in name
    }


def _operations() -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    import bench_dynamodb

    from kmsenvelope import Envelope, RawAesKeyring

    ops: dict[str, Any] = {}
    envelope = Envelope(RawAesKeyring("bench", "aes-256", bytes(range(32))))
    context = {"purpose": "benchmark", "tenant": "acme"}
    for label, size in SIZES.items():
        plaintext = os.urandom(size)
        ciphertext = envelope.encrypt(plaintext, context)
        if envelope.decrypt(ciphertext) != plaintext:
            raise RuntimeError("round trip changed the plaintext")
        ops[f"encrypt {label}"] = lambda p=plaintext: envelope.encrypt(p, context)
        ops[f"decrypt {label}"] = lambda c=ciphertext: envelope.decrypt(c)
    (round_trip,) = (fn for name, fn in bench_dynamodb.kmsenvelope_round_trips().items() if "0x6700" in name)
    ops["DynamoDB item round trip"] = round_trip
    return ops


def in_process(rounds: int, only: str = "") -> list[dict[str, Any]]:
    """Each shortcut alone, on and off, every subject interleaved batch by batch in this process."""
    from kmsenvelope.cli.bench import measure_interleaved
    from kmsenvelope.primitives import buffers, portable

    if portable.ACTIVE:
        raise SystemExit("unset KMSENVELOPE_PORTABLE for --in-process")
    in_place = buffers.in_place_available()

    def configured(op: Any, use_buffers: bool) -> Any:
        def run() -> object:
            buffers._state["ok"] = in_place and use_buffers
            return op()

        return run

    subjects: dict[str, Any] = {}
    for name, op in _operations().items():
        if only not in name:
            continue
        subjects[f"{name}|buffers.new_bytes|on"] = configured(op, True)
        subjects[f"{name}|buffers.new_bytes|off"] = configured(op, False)
    rates = measure_interleaved(subjects, batch_time=0.1, rounds=rounds)
    rows = []
    for key, on in rates.items():
        op, shortcut, state = key.split("|")
        if state == "on":
            off = rates[f"{op}|{shortcut}|off"]
            rows.append({"operation": op, "shortcut": shortcut, "on": on, "off": off, "gain": on / off - 1})
    return rows


def run_worker(src: str, portable: bool, min_time: float, only: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": src}
    env.pop("KMSENVELOPE_PORTABLE", None)
    if portable:
        env["KMSENVELOPE_PORTABLE"] = "1"
    code = (
        f"import json, sys; sys.path.insert(0, {str(HERE)!r}); import bench_shortcuts as b; "
        f"print(json.dumps({{'rates': b.worker({min_time!r}, {only!r})}}))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    document: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return document["rates"]  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="shorter batches")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", default="", help="only operations whose name contains this")
    parser.add_argument("--in-process", action="store_true", help="each shortcut alone, interleaved")
    parser.add_argument("--src", help="the src directory measured (default: this checkout's)")
    parser.add_argument("--against", help="another src directory to compare this one with (shortcuts on)")
    args = parser.parse_args()
    if args.in_process:
        rows = in_process(args.rounds, args.only)
        if args.json:
            print(json.dumps(rows, indent=2))
            return
        print("| operation | shortcut | on ops/s | off ops/s | on vs off |")
        print("|---|---|---|---|---|")
        for row in rows:
            print(
                f"| {row['operation']} | `{row['shortcut']}` | {row['on']:,.0f} | {row['off']:,.0f} "
                f"| {row['gain']:+.0%} |"
            )
        return
    here_src = args.src or str(HERE.parent / "src")
    if args.against:
        configs = {"src": (here_src, False), "against": (args.against, False)}
    else:
        configs = {"shortcuts": (here_src, False), "portable": (here_src, True)}
    min_time = 0.15 if args.quick else 0.4
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in configs}
    order = list(configs)
    for index in range(args.rounds):
        for name in order if index % 2 == 0 else reversed(order):
            src, portable = configs[name]
            samples[name].append(run_worker(src, portable, min_time, args.only))
        print(f"round {index + 1}/{args.rounds} done", file=sys.stderr)
    first, second = order
    rows = []
    for op in samples[first][0]:
        a = statistics.median(s[op] for s in samples[first])
        b = statistics.median(s[op] for s in samples[second])
        rows.append({"operation": op, first: a, second: b, "gain": a / b - 1})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"| operation | {first} ops/s | {second} ops/s | {first} vs {second} |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['operation']} | {row[first]:,.0f} | {row[second]:,.0f} | {row['gain']:+.0%} |")


if __name__ == "__main__":
    main()
