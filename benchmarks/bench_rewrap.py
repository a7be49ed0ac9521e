"""Rewrap against decrypt-then-encrypt of the same message, side by side in one run.

Run:  python benchmarks/bench_rewrap.py [--quick] [--signed] [--file] [--file-size BYTES] [--json]

In memory, at 1 KiB, 1 MiB and 64 MiB: ``kmsenvelope.rewrap(message, old, new)`` against
``Envelope(new).encrypt(Envelope(old).decrypt(message))``, raw AES-256 keyrings, suite 0x0478
(``--signed`` adds 0x0578, where rewrap re-signs: the body is hashed twice, never decrypted). The two
subjects are interleaved round by round (``kmsenvelope.cli.bench.measure_interleaved``).

``--file`` adds a 1 GiB file (``--file-size``): ``rewrap_stream`` file to file, against
``decrypt_stream`` to a plaintext file then ``encrypt_stream`` back, and against a plain file copy
(``shutil.copyfile``), the floor for any rewrap that writes a new file. The three file subjects take
turns for three rounds, each into fresh files, and the fastest run of each is kept; the files live in
a temporary directory that is removed afterwards.
Timings are wall clock; nothing here is asserted by tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

CONTEXT = {"purpose": "benchmark", "tenant": "acme"}
OLD_KEY = bytes(range(32))
NEW_KEY = bytes(range(32, 64))
SIZES = (1024, 1024 * 1024, 64 * 1024 * 1024)


def _keyrings() -> tuple[Any, Any]:
    from kmsenvelope import RawAesKeyring

    return RawAesKeyring("bench", "old", OLD_KEY), RawAesKeyring("bench", "new", NEW_KEY)


def memory_case(size: int, signed: bool, quick: bool) -> dict[str, Any]:
    import kmsenvelope
    from kmsenvelope import Envelope, Suite
    from kmsenvelope.cli.bench import measure_interleaved

    suite = (
        Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384
        if signed
        else Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY
    )
    old, new = _keyrings()
    reader, writer = Envelope(old), Envelope(new, suite=suite)
    message = Envelope(old, suite=suite).encrypt(os.urandom(size), CONTEXT)

    def rewrap() -> object:
        return kmsenvelope.rewrap(message, old, new, resign=signed)

    def reencrypt() -> object:
        return writer.encrypt(reader.decrypt(message), CONTEXT)

    rates = measure_interleaved(
        {"rewrap": rewrap, "decrypt+encrypt": reencrypt},
        batch_time=0.05 if quick else 0.2,
        rounds=3 if quick else 7,
    )
    return {
        "suite": f"0x{suite.id:04X}",
        "size": size,
        "rewrap_per_s": rates["rewrap"],
        "reencrypt_per_s": rates["decrypt+encrypt"],
        "speedup": rates["rewrap"] / rates["decrypt+encrypt"],
    }


def _best_interleaved(
    subjects: dict[str, Callable[[], object]], remove: list[str], rounds: int = 3
) -> dict[str, float]:
    """The fastest of ``rounds`` runs of each subject, the subjects taking turns within each round."""
    best = {label: float("inf") for label in subjects}
    for _ in range(rounds):
        for label, fn in subjects.items():
            for path in remove:  # every run writes fresh files: truncating 1 GiB costs time too
                if os.path.exists(path):
                    os.unlink(path)
            start = time.perf_counter()
            fn()
            best[label] = min(best[label], time.perf_counter() - start)
    return best


def file_case(size: int) -> dict[str, Any]:
    import kmsenvelope
    from kmsenvelope import Envelope

    old, new = _keyrings()
    with tempfile.TemporaryDirectory(prefix="kmsenvelope-bench-rewrap-") as tmp:
        plain, enc = os.path.join(tmp, "plain"), os.path.join(tmp, "old.enc")
        out, scratch = os.path.join(tmp, "new.enc"), os.path.join(tmp, "scratch")
        chunk = os.urandom(1 << 20)
        with open(plain, "wb") as handle:
            for _ in range(size >> 20):
                handle.write(chunk)
        with open(plain, "rb") as src, open(enc, "wb") as dst:
            Envelope(old).encrypt_stream(src, dst, CONTEXT)
        os.unlink(plain)

        def rewrap() -> None:
            with open(enc, "rb") as src, open(out, "wb") as dst:
                kmsenvelope.rewrap_stream(src, dst, old, new)

        def reencrypt() -> None:
            with open(enc, "rb") as src, open(scratch, "wb") as dst:
                Envelope(old).decrypt_stream(src, dst)
            with open(scratch, "rb") as src, open(out, "wb") as dst:
                Envelope(new).encrypt_stream(src, dst, CONTEXT)

        def copy() -> None:
            shutil.copyfile(enc, out)

        times = _best_interleaved({"copy": copy, "rewrap": rewrap, "reencrypt": reencrypt}, [out, scratch])
    return {
        "size": size,
        "copy_s": times["copy"],
        "rewrap_s": times["rewrap"],
        "reencrypt_s": times["reencrypt"],
        "rewrap_vs_copy": times["rewrap"] / times["copy"],
        "speedup": times["reencrypt"] / times["rewrap"],
    }


def _human(size: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:g} {unit}"
    return f"{size} B"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter batches (noisier figures)")
    parser.add_argument("--signed", action="store_true", help="also suite 0x0578 (rewrap re-signs)")
    parser.add_argument("--file", action="store_true", help="also rewrap a file (default 1 GiB)")
    parser.add_argument("--file-size", type=int, default=1 << 30, help="file size in bytes (MiB multiple)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    memory = [memory_case(size, False, args.quick) for size in SIZES]
    if args.signed:
        memory += [memory_case(size, True, args.quick) for size in SIZES]
    files = [file_case(args.file_size)] if args.file else []
    if args.json:
        print(json.dumps({"python": platform.python_version(), "memory": memory, "files": files}, indent=2))
        return
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"{'suite':8} {'size':>8} {'rewrap/s':>12} {'dec+enc/s':>12} {'speedup':>9}")
    for row in memory:
        print(
            f"{row['suite']:8} {_human(row['size']):>8} {row['rewrap_per_s']:12.1f} "
            f"{row['reencrypt_per_s']:12.1f} {row['speedup']:8.1f}x"
        )
    for row in files:
        print(
            f"file {_human(row['size'])}: copy {row['copy_s']:.2f} s, "
            f"rewrap_stream {row['rewrap_s']:.2f} s ({row['rewrap_vs_copy']:.2f}x the copy), "
            f"decrypt_stream+encrypt_stream {row['reencrypt_s']:.2f} s (rewrap {row['speedup']:.1f}x faster)"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
