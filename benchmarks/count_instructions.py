"""CPU instructions per operation, counted by valgrind's callgrind: a noise-free before/after measure.

Run:  python benchmarks/count_instructions.py [--src SRC_DIR ...] [--ops encrypt,decrypt,dynamodb] [-n 500]

For each ``src`` directory (default: this checkout's ``src``; pass several to compare, e.g. a ``git archive``
of an older commit) and each operation, runs the operation ``n`` times after 50 warm-up calls under
``valgrind --tool=callgrind``, once more with 0 calls, and reports the difference divided by ``n``. The
garbage collector is paused while counting and ``PYTHONHASHSEED=0``, so repeated runs agree closely
(within 0.1% for messages, about 2% for the DynamoDB round trip). Operations: ``Envelope.encrypt`` and
``decrypt`` of 1 KiB (suite 0x0478, raw AES keyring) and the ``bench_dynamodb.py`` item round trip (0x6700,
cached hierarchical keyring); ``esdk-encrypt`` and ``esdk-decrypt`` are aws-encryption-sdk's legacy
master-key API on the same 1 KiB message, as ``bench_messages.py`` runs it. Needs valgrind; each count
takes about a minute. Counts are not timings: they ignore page faults and memory stalls, so they suit
pure-Python changes, not buffer allocation.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def workload(name: str, n: int) -> None:
    """Build operation ``name``, warm it up, then run it ``n`` times with the garbage collector paused."""
    import gc

    sys.path.insert(0, str(HERE))
    if name == "dynamodb":
        import bench_dynamodb

        (op,) = (fn for label, fn in bench_dynamodb.kmsenvelope_round_trips().items() if "0x6700" in label)
    elif name.startswith("esdk-"):
        import bench_messages

        encrypt, decrypt = bench_messages.esdk_ops(bytes(1024))["aws-encryption-sdk legacy master key"]
        op = encrypt if name == "esdk-encrypt" else decrypt
    else:
        from kmsenvelope import Envelope, RawAesKeyring

        envelope = Envelope(RawAesKeyring("bench", "aes-256", bytes(range(32))))
        context = {"purpose": "benchmark", "tenant": "acme"}
        plaintext = bytes(1024)
        message = envelope.encrypt(plaintext, context)
        if name == "encrypt":
            op = lambda: envelope.encrypt(plaintext, context)  # noqa: E731
        else:
            op = lambda: envelope.decrypt(message)  # noqa: E731
    for _ in range(50):
        op()
    gc.collect()
    gc.disable()
    for _ in range(n):
        op()


def count(src: str, name: str, n: int) -> int:
    env = {**os.environ, "PYTHONPATH": src, "PYTHONHASHSEED": "0"}
    code = (
        f"import sys; sys.path.insert(0, {str(HERE)!r}); "
        f"import count_instructions as c; c.workload({name!r}, {n})"
    )
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"Collected : (\d+)", result.stderr)
    if match is None:
        raise RuntimeError("callgrind reported no instruction count:\n" + result.stderr[-2000:])
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", action="append", help="a src directory to measure (repeatable)")
    parser.add_argument("--ops", default="encrypt,decrypt,dynamodb")
    parser.add_argument("-n", type=int, default=500)
    args = parser.parse_args()
    sources = args.src or [str(HERE.parent / "src")]
    for name in args.ops.split(","):
        first = None
        for src in sources:
            per_op = (count(src, name, args.n) - count(src, name, 0)) / args.n
            first = first or per_op
            print(f"{name:9s} {per_op:12,.0f} instructions/op  {per_op / first - 1:+6.1%}  {src}", flush=True)


if __name__ == "__main__":
    main()
