"""ESDK messages side by side: kmsenvelope, aws-encryption-sdk, Tink, and the one-shot AES-GCM ceiling.

Run:  python benchmarks/bench_messages.py [--quick] [--sizes 1024,1048576] [--json]

Every peer encrypts the same plaintext in the same run with a raw 256-bit AES wrapping key:

* kmsenvelope 0x0478 (default) and 0x0578 (signed), returning fresh ``bytes`` (``encrypt``/``decrypt``)
  and into a reused buffer (``encrypt_into``/``decrypt_into``);
* aws-encryption-sdk, suite 0x0478, legacy master-key API (its fastest) and keyring (MPL) API;
* Tink ``KmsEnvelopeAead`` with a local AES-GCM AEAD standing in for KMS (not ESDK-compatible);
* the ceiling: one ``cryptography`` AESGCM call over the whole buffer, fresh output and ``encrypt_into``.

It also measures the peak RSS of streaming 1 GiB and ``import kmsenvelope`` time, each in a subprocess.
Timings are wall-clock medians of repeated batches; nothing here is asserted by tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

KEY = bytes(range(32))
CONTEXT = {"purpose": "benchmark", "tenant": "acme"}
Op = Callable[[], object]


def rate(fn: Op, min_time: float) -> float:
    """Operations per second: the median of at least 5 timed batches (the CLI's bench engine)."""
    from kmsenvelope.cli.bench import measure

    return measure(fn, min_time=min_time, repeat=5, statistic="median")


def kmsenvelope_ops(size: int, plaintext: bytes, signed: bool) -> dict[str, tuple[Op, Op]]:
    from kmsenvelope import Envelope, RawAesKeyring, Suite

    suite = (
        Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384
        if signed
        else Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY
    )
    envelope = Envelope(RawAesKeyring("bench", "aes-256", KEY), suite=suite)
    ciphertext = envelope.encrypt(plaintext, CONTEXT)
    label = "0x0578" if signed else "0x0478"
    ops = {
        f"kmsenvelope {label}": (
            lambda: envelope.encrypt(plaintext, CONTEXT),
            lambda: envelope.decrypt(ciphertext),
        )
    }
    if not signed:
        enc_buf, dec_buf = bytearray(), bytearray()
        ops[f"kmsenvelope {label} into reused buffer"] = (
            lambda: envelope.encrypt_into(plaintext, enc_buf, CONTEXT),
            lambda: envelope.decrypt_into(ciphertext, dec_buf),
        )
    return ops


def esdk_ops(plaintext: bytes) -> dict[str, tuple[Op, Op]]:
    ops: dict[str, tuple[Op, Op]] = {}
    try:
        import aws_encryption_sdk
        from aws_encryption_sdk.identifiers import (
            Algorithm,
            CommitmentPolicy,
            EncryptionKeyType,
            WrappingAlgorithm,
        )
        from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
        from aws_encryption_sdk.key_providers.raw import RawMasterKey
    except ImportError:
        return ops
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    master_key = RawMasterKey(
        provider_id="bench",
        key_id=b"aes-256",
        wrapping_key=WrappingKey(
            wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
            wrapping_key=KEY,
            wrapping_key_type=EncryptionKeyType.SYMMETRIC,
        ),
    )
    suite = Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY
    legacy_ct, _ = client.encrypt(
        source=plaintext, key_provider=master_key, encryption_context=CONTEXT, algorithm=suite
    )
    ops["aws-encryption-sdk legacy master key"] = (
        lambda: client.encrypt(
            source=plaintext, key_provider=master_key, encryption_context=CONTEXT, algorithm=suite
        ),
        lambda: client.decrypt(source=legacy_ct, key_provider=master_key),
    )
    # The ESDK's default frame is 4 KiB; with our 64 KiB frames its large-message throughput rises ~4x.
    big_ct, _ = client.encrypt(
        source=plaintext,
        key_provider=master_key,
        encryption_context=CONTEXT,
        algorithm=suite,
        frame_length=65536,
    )
    ops["aws-encryption-sdk legacy, 64 KiB frames"] = (
        lambda: client.encrypt(
            source=plaintext,
            key_provider=master_key,
            encryption_context=CONTEXT,
            algorithm=suite,
            frame_length=65536,
        ),
        lambda: client.decrypt(source=big_ct, key_provider=master_key),
    )
    try:
        from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
        from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
        from aws_cryptographic_material_providers.mpl.models import AesWrappingAlg, CreateRawAesKeyringInput
    except ImportError:
        return ops
    mpl = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
    keyring = mpl.create_raw_aes_keyring(
        CreateRawAesKeyringInput(
            key_namespace="bench",
            key_name="aes-256",
            wrapping_key=KEY,
            wrapping_alg=AesWrappingAlg.ALG_AES256_GCM_IV12_TAG16,
        )
    )
    mpl_ct, _ = client.encrypt(source=plaintext, keyring=keyring, encryption_context=CONTEXT, algorithm=suite)
    ops["aws-encryption-sdk keyring (MPL)"] = (
        lambda: client.encrypt(
            source=plaintext, keyring=keyring, encryption_context=CONTEXT, algorithm=suite
        ),
        lambda: client.decrypt(source=mpl_ct, keyring=keyring),
    )
    return ops


def tink_ops(plaintext: bytes) -> dict[str, tuple[Op, Op]]:
    try:
        import tink
        from tink import aead
    except ImportError:
        return {}
    aead.register()
    kek = tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM).primitive(aead.Aead)
    envelope = aead.KmsEnvelopeAead(aead.aead_key_templates.AES256_GCM, kek)
    associated = b"purpose=benchmark,tenant=acme"
    ciphertext = envelope.encrypt(plaintext, associated)
    return {
        "tink KmsEnvelopeAead (not ESDK format)": (
            lambda: envelope.encrypt(plaintext, associated),
            lambda: envelope.decrypt(ciphertext, associated),
        )
    }


def ceiling_ops(plaintext: bytes) -> dict[str, tuple[Op, Op]]:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aesgcm = AESGCM(KEY)
    nonce = bytes(12)
    sealed = aesgcm.encrypt(nonce, plaintext, None)
    enc_buf = bytearray(len(plaintext) + 16)
    dec_buf = bytearray(len(plaintext))
    return {
        "ceiling: one-shot AESGCM": (
            lambda: aesgcm.encrypt(nonce, plaintext, None),
            lambda: aesgcm.decrypt(nonce, sealed, None),
        ),
        "ceiling: AESGCM into reused buffer": (
            lambda: aesgcm.encrypt_into(nonce, plaintext, None, enc_buf),
            lambda: aesgcm.decrypt_into(nonce, sealed, None, dec_buf),
        ),
    }


def measure_size(size: int, min_time: float, peers: bool) -> list[dict[str, Any]]:
    plaintext = os.urandom(size)
    ops: dict[str, tuple[Op, Op]] = {}
    ops.update(kmsenvelope_ops(size, plaintext, signed=False))
    ops.update(kmsenvelope_ops(size, plaintext, signed=True))
    if peers:
        ops.update(esdk_ops(plaintext))
        ops.update(tink_ops(plaintext))
    ops.update(ceiling_ops(plaintext))
    rows = []
    for name, (encrypt, decrypt) in ops.items():
        slow_peer = name.startswith("aws-encryption-sdk") and size >= 1 << 24
        t = min_time / 3 if slow_peer else min_time
        enc, dec = rate(encrypt, t), rate(decrypt, t)
        rows.append(
            {
                "size": size,
                "impl": name,
                "encrypt_ops": enc,
                "decrypt_ops": dec,
                "encrypt_MBps": enc * size / 1e6,
                "decrypt_MBps": dec * size / 1e6,
            }
        )
    return rows


def add_ratios(rows: list[dict[str, Any]]) -> None:
    by_size: dict[int, dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_size.setdefault(row["size"], {})[row["impl"]] = row
    for row in rows:
        group = by_size[row["size"]]
        for ref_name, key in (
            ("aws-encryption-sdk legacy master key", "vs_esdk_legacy"),
            ("aws-encryption-sdk legacy, 64 KiB frames", "vs_esdk_legacy_64k"),
            ("aws-encryption-sdk keyring (MPL)", "vs_esdk_mpl"),
        ):
            ref = group.get(ref_name)
            if ref:
                row[key] = (row["encrypt_ops"] / ref["encrypt_ops"], row["decrypt_ops"] / ref["decrypt_ops"])
        ceiling = group[
            "ceiling: AESGCM into reused buffer" if "into" in row["impl"] else "ceiling: one-shot AESGCM"
        ]
        row["vs_ceiling"] = (
            row["encrypt_ops"] / ceiling["encrypt_ops"],
            row["decrypt_ops"] / ceiling["decrypt_ops"],
        )


STREAM_CHILD = r"""
import io, os, sys, time
from kmsenvelope import Envelope, RawAesKeyring
total = int(sys.argv[1])
class Source(io.RawIOBase):
    def __init__(self):
        self.left = total; self.block = os.urandom(1 << 20)
    def readable(self): return True
    def readinto(self, b):
        n = min(len(b), self.left, len(self.block)); b[:n] = self.block[:n]; self.left -= n; return n
envelope = Envelope(RawAesKeyring("bench", "aes-256", bytes(range(32))))
path = sys.argv[2]
start = time.perf_counter()
with open(path, "wb") as dst:
    envelope.encrypt_stream(io.BufferedReader(Source(), 1 << 20), dst)
mid = time.perf_counter()
with open(path, "rb") as src, open(os.devnull, "wb") as dst:
    envelope.decrypt_stream(src, dst)
end = time.perf_counter()
# VmHWM belongs to this address space; ru_maxrss would carry the parent's peak across fork+exec.
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(hwm, total / (mid - start) / 1e6, total / (end - mid) / 1e6)
"""


def measure_streaming(total: int) -> dict[str, float]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, "-c", STREAM_CHILD, str(total), os.path.join(tmp, "stream.bin")],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
    return {
        "bytes": total,
        "peak_rss_MiB": int(out[0]) / 1024,
        "encrypt_MBps": float(out[1]),
        "decrypt_MBps": float(out[2]),
    }


def measure_import() -> float:
    """Cumulative microseconds of ``import kmsenvelope`` (best of 5 fresh interpreters)."""
    best = float("inf")
    for _ in range(5):
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import kmsenvelope"],
            check=True,
            capture_output=True,
            text=True,
        ).stderr
        for line in err.splitlines():
            match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s+kmsenvelope$", line)
            if match:
                best = min(best, int(match.group(1)))
    return best


def _pair(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    return f"{value[0]:.1f}x/{value[1]:.1f}x" if value else "-"


def print_table(rows: list[dict[str, Any]]) -> None:
    head = f"{'size':>9}  {'implementation':<40} {'enc ops/s':>10} {'dec ops/s':>10}"
    head += f" {'enc MB/s':>9} {'dec MB/s':>9}"
    print(head + f"  {'vs ESDK legacy':>15} {'vs ESDK 64KiB':>14} {'vs ESDK MPL':>13} {'vs ceiling':>12}")
    for row in rows:
        print(
            f"{row['size']:>9}  {row['impl']:<40} {row['encrypt_ops']:>10.0f} {row['decrypt_ops']:>10.0f} "
            f"{row['encrypt_MBps']:>9.0f} {row['decrypt_MBps']:>9.0f}  {_pair(row, 'vs_esdk_legacy'):>15} "
            f"{_pair(row, 'vs_esdk_legacy_64k'):>14} "
            f"{_pair(row, 'vs_esdk_mpl'):>13} {_pair(row, 'vs_ceiling'):>12}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short timings, no 16 MiB, 64 MiB stream")
    parser.add_argument("--sizes", help="comma-separated plaintext sizes in bytes")
    parser.add_argument("--no-peers", action="store_true", help="skip aws-encryption-sdk and Tink")
    parser.add_argument(
        "--stream-bytes", type=int, help="bytes to stream for the RSS measurement (default 1 GiB)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else ([1024, 1 << 20] if args.quick else [1024, 64 * 1024, 1 << 20, 16 << 20])
    )
    min_time = 0.3 if args.quick else 1.5
    rows: list[dict[str, Any]] = []
    for size in sizes:
        rows.extend(measure_size(size, min_time, not args.no_peers))
    add_ratios(rows)
    stream_total = args.stream_bytes or ((64 << 20) if args.quick else (1 << 30))
    result = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "rows": rows,
        "streaming": measure_streaming(stream_total),
        "import_kmsenvelope_us": measure_import(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print_table(rows)
    s = result["streaming"]
    print(
        f"\nstreaming {s['bytes'] / 2**20:.0f} MiB: peak RSS {s['peak_rss_MiB']:.1f} MiB, "
        f"encrypt {s['encrypt_MBps']:.0f} MB/s, decrypt {s['decrypt_MBps']:.0f} MB/s"
    )
    print(f"import kmsenvelope: {result['import_kmsenvelope_us'] / 1000:.1f} ms cumulative")


if __name__ == "__main__":
    main()
