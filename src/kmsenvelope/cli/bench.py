"""The measurement engine behind ``kmsenvelope bench``, reusable from ``benchmarks/``.

* :func:`measure` times a zero-argument callable and returns operations per second.
* ``*_pair`` functions build ``(encrypt, decrypt)`` callables for one implementation and payload,
  after checking once that they round-trip; they raise :class:`Unavailable` when the implementation
  is not installed or not built.
* :func:`throughput_row` measures a pair into a :class:`ThroughputRow`; :func:`ratio_rows` derives the
  speed ratios; :func:`machine_info` and :func:`library_versions` describe where the numbers came from.

Example::

    from kmsenvelope.cli import bench
    enc, dec = bench.kmsenvelope_pair(bench.DEFAULT_SUITE, b"x" * 4096)
    print(bench.measure(enc, min_time=0.5), "encrypts/s")
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ..suites import CommitmentPolicy, Suite
from .bench_env import library_versions, machine_info

__all__ = [
    "DEFAULT_CONTEXT",
    "DEFAULT_SUITE",
    "NOT_AVAILABLE",
    "Pair",
    "RatioRow",
    "ThroughputRow",
    "Unavailable",
    "aesgcm_frames_pair",
    "aesgcm_pair",
    "esdk_pair",
    "kmsenvelope_pair",
    "library_versions",
    "machine_info",
    "measure",
    "ratio_rows",
    "share_of_ceiling",
    "throughput_row",
]

DEFAULT_SUITE = Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY
DEFAULT_CONTEXT: Mapping[str, str] = {"purpose": "benchmark", "tenant": "acme"}
FRAME_LENGTH = 64 * 1024
NOT_AVAILABLE = "not available"
MB = 1_000_000
NAMESPACE = "kmsenvelope-bench"
KEY_NAME = "bench-aes-256"

KMSENVELOPE = "kmsenvelope"
KMSENVELOPE_INTO = "kmsenvelope (into reused buffer)"
ESDK = "aws-encryption-sdk"
AESGCM_FRESH = "AES-GCM one-shot (fresh buffer)"
AESGCM_INTO = "AES-GCM one-shot (encrypt_into, reused buffer)"
ESDK_DEFAULT_FRAME_LENGTH = 4096
"""aws-encryption-sdk's default frame length: what its users run today."""
KMSENVELOPE_ESDK_FRAMES = "kmsenvelope (ESDK default 4 KiB frames)"
ESDK_DEFAULT_FRAMES = "aws-encryption-sdk (default 4 KiB frames)"
IMPLEMENTATIONS = (
    KMSENVELOPE,
    KMSENVELOPE_INTO,
    ESDK,
    KMSENVELOPE_ESDK_FRAMES,
    ESDK_DEFAULT_FRAMES,
    AESGCM_FRESH,
    AESGCM_INTO,
)
FRAME_LENGTHS = {
    KMSENVELOPE_ESDK_FRAMES: ESDK_DEFAULT_FRAME_LENGTH,
    ESDK_DEFAULT_FRAMES: ESDK_DEFAULT_FRAME_LENGTH,
}
"""Frame length of each message implementation (the others use :data:`FRAME_LENGTH`)."""

Pair = tuple[Callable[[], object], Callable[[], object]]


class Unavailable(Exception):
    """A benchmark subject that cannot be measured here; ``str(exc)`` says why."""


# -- timing --------------------------------------------------------------------------------------


def _time_batch(fn: Callable[[], object], n: int) -> float:
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        return time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()


def measure(
    fn: Callable[[], object], *, min_time: float = 0.2, repeat: int = 3, statistic: str = "best"
) -> float:
    """Operations per second of ``fn()`` over at least ``repeat`` timed batches.

    One untimed warm-up call, then the batch size grows until a batch takes about
    ``min_time / repeat``; batches run until ``min_time`` has passed and ``repeat`` batches are done
    (or, for very slow calls, until ``4 * min_time`` has passed). The garbage collector is paused
    inside batches. ``statistic`` is ``"best"`` (default: on a shared machine interference only ever
    slows a batch down) or ``"median"`` of the batch rates.
    """
    if min_time <= 0 or repeat < 1:
        raise ValueError("min_time must be > 0 and repeat >= 1")
    if statistic not in ("best", "median"):
        raise ValueError("statistic must be 'best' or 'median'")
    fn()
    target = min_time / repeat
    n = 1
    elapsed = _time_batch(fn, n)
    total = elapsed
    while elapsed < target:
        grow = target / max(elapsed, 1e-9) * 1.1
        n = max(n + 1, int(n * min(grow, 10.0)))
        elapsed = _time_batch(fn, n)
        total += elapsed
    rates = [n / max(elapsed, 1e-12)]
    while (total < min_time or len(rates) < repeat) and total < 4 * min_time:
        elapsed = _time_batch(fn, n)
        total += elapsed
        rates.append(n / max(elapsed, 1e-12))
    return max(rates) if statistic == "best" else statistics.median(rates)


def measure_interleaved(
    subjects: Mapping[str, Callable[[], object]], *, batch_time: float = 0.1, rounds: int = 9
) -> dict[str, float]:
    """Operations per second of each subject: the median over ``rounds`` rounds, where every round
    times one batch of each subject in turn.

    Interleaving puts every subject through the same stretches of machine time, so a slow spell (another
    process, frequency scaling) lands on all of them rather than on whichever ran then: the ratios
    between subjects are far steadier than with one subject after another. Each subject's batch size
    is first grown until a batch takes about ``batch_time`` seconds. The garbage collector is paused
    inside batches.
    """
    if batch_time <= 0 or rounds < 1:
        raise ValueError("batch_time must be > 0 and rounds >= 1")
    sizes: dict[str, int] = {}
    for label, fn in subjects.items():
        fn()
        n = 1
        elapsed = _time_batch(fn, n)
        while elapsed < batch_time:
            n = max(n + 1, int(n * min(batch_time / max(elapsed, 1e-9) * 1.1, 10.0)))
            elapsed = _time_batch(fn, n)
        sizes[label] = n
    rates: dict[str, list[float]] = {label: [] for label in subjects}
    for _ in range(rounds):
        for label, fn in subjects.items():
            rates[label].append(sizes[label] / max(_time_batch(fn, sizes[label]), 1e-12))
    return {label: statistics.median(values) for label, values in rates.items()}


# -- subjects ------------------------------------------------------------------------------------


def _policy(suite: Suite) -> CommitmentPolicy:
    if suite.committing:
        return CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    return CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT


def bench_key() -> bytes:
    """A fixed 256-bit wrapping key: benchmark data only, never used for anything else."""
    return bytes(range(32))


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise RuntimeError(f"{what} did not round-trip; refusing to benchmark it")


def kmsenvelope_pair(
    suite: Suite,
    payload: bytes,
    *,
    keyring: Any = None,
    context: Mapping[str, str] = DEFAULT_CONTEXT,
    frame_length: int = FRAME_LENGTH,
    into: bool = False,
) -> Pair:
    """kmsenvelope ``Envelope.encrypt``/``decrypt`` (or ``*_into`` a reused buffer) with a raw AES keyring."""
    from ..envelope import Envelope
    from ..keyrings.raw_aes import RawAesKeyring

    if keyring is None:
        keyring = RawAesKeyring(NAMESPACE, KEY_NAME, bench_key())
    envelope = Envelope(keyring, suite=suite, frame_length=frame_length, commitment_policy=_policy(suite))
    ciphertext = envelope.encrypt(payload, context)
    _check(envelope.decrypt(ciphertext) == payload, "kmsenvelope")
    if not into:
        return (lambda: envelope.encrypt(payload, context), lambda: envelope.decrypt(ciphertext))
    sealed = bytearray()
    opened = bytearray()
    return (
        lambda: envelope.encrypt_into(payload, sealed, context),
        lambda: envelope.decrypt_into(ciphertext, opened),
    )


def esdk_available() -> str | None:
    """The installed aws-encryption-sdk version, or None."""
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("aws-encryption-sdk")
    except PackageNotFoundError:
        return None


def esdk_pair(
    suite: Suite,
    payload: bytes,
    *,
    context: Mapping[str, str] = DEFAULT_CONTEXT,
    frame_length: int = FRAME_LENGTH,
) -> Pair:
    """The AWS Encryption SDK for Python with a raw AES-256 master key (same key name and suite)."""
    try:
        import aws_encryption_sdk
        from aws_encryption_sdk.identifiers import Algorithm, EncryptionKeyType, WrappingAlgorithm
        from aws_encryption_sdk.identifiers import CommitmentPolicy as EsdkPolicy
        from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
        from aws_encryption_sdk.key_providers.raw import RawMasterKeyProvider
    except ImportError:
        raise Unavailable("aws-encryption-sdk is not installed (pip install aws-encryption-sdk)") from None

    wrapping = WrappingKey(
        wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
        wrapping_key=bench_key(),
        wrapping_key_type=EncryptionKeyType.SYMMETRIC,
    )

    class _Provider(RawMasterKeyProvider):  # type: ignore[misc]
        provider_id = NAMESPACE

        def _get_raw_key(self, key_id: bytes) -> Any:
            return wrapping

    provider = _Provider()
    provider.add_master_key(KEY_NAME.encode())
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=getattr(EsdkPolicy, _policy(suite).value)
    )
    algorithm = Algorithm.get_by_id(suite.id)
    ctx = dict(context)

    def encrypt() -> bytes:
        ct, _ = client.encrypt(
            source=payload,
            key_provider=provider,
            algorithm=algorithm,
            encryption_context=ctx,
            frame_length=frame_length,
        )
        return bytes(ct)

    ciphertext = encrypt()
    _check(
        bytes(client.decrypt(source=ciphertext, key_provider=provider)[0]) == payload, "aws-encryption-sdk"
    )
    return (encrypt, lambda: client.decrypt(source=ciphertext, key_provider=provider))


def aesgcm_pair(payload: bytes, *, into: bool = False) -> Pair:
    """One AES-256-GCM call over the whole payload: the ceiling no message format can beat.

    The IV is fixed because only speed is measured; nothing encrypted here is kept.
    """
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead = AESGCM(bench_key())
    iv = bytes(12)
    aad = b"kmsenvelope-bench"
    ciphertext = aead.encrypt(iv, payload, aad)
    _check(aead.decrypt(iv, ciphertext, aad) == payload, "AES-GCM")
    if not into:
        return (lambda: aead.encrypt(iv, payload, aad), lambda: aead.decrypt(iv, ciphertext, aad))
    if not hasattr(aead, "encrypt_into"):
        raise Unavailable("this cryptography version has no AESGCM.encrypt_into")
    sealed = bytearray(len(ciphertext))
    opened = bytearray(len(payload))
    return (
        lambda: aead.encrypt_into(iv, payload, aad, sealed),
        lambda: aead.decrypt_into(iv, ciphertext, aad, opened),
    )


def aesgcm_frames_pair(payload: bytes, frame_length: int) -> Pair:
    """AES-256-GCM over ``payload`` frame by frame into one reused buffer: the ceiling for a framed message.

    It does the AEAD work a framed message does (one call per frame, 12-byte IV and 16-byte tag per
    frame) and nothing else, with the buffers reused like ``encrypt_into``/``decrypt_into``: measured
    against those, the share of the ceiling compares like with like (no fresh allocation on one side only).
    """
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead = AESGCM(bench_key())
    if not hasattr(aead, "encrypt_into"):
        raise Unavailable("this cryptography version has no AESGCM.encrypt_into")
    aad = b"kmsenvelope-bench"
    spans = [(i, min(i + frame_length, len(payload))) for i in range(0, len(payload), frame_length)] or [
        (0, 0)
    ]
    plain = memoryview(payload)
    sealed = bytearray(len(payload) + 16 * len(spans))
    opened = bytearray(len(payload))
    sealed_view, opened_view = memoryview(sealed), memoryview(opened)
    ivs = [n.to_bytes(12, "big") for n in range(1, len(spans) + 1)]

    def encrypt() -> None:
        for n, (start, end) in enumerate(spans):
            aead.encrypt_into(ivs[n], plain[start:end], aad, sealed_view[start + 16 * n : end + 16 * (n + 1)])

    def decrypt() -> None:
        for n, (start, end) in enumerate(spans):
            aead.decrypt_into(
                ivs[n], sealed_view[start + 16 * n : end + 16 * (n + 1)], aad, opened_view[start:end]
            )

    encrypt()
    decrypt()
    _check(bytes(opened) == payload, "AES-GCM frames")
    return encrypt, decrypt


def make_pair(implementation: str, suite: Suite, payload: bytes) -> Pair:
    """The ``(encrypt, decrypt)`` pair of one of :data:`IMPLEMENTATIONS`."""
    if implementation == KMSENVELOPE:
        return kmsenvelope_pair(suite, payload)
    if implementation == KMSENVELOPE_INTO:
        return kmsenvelope_pair(suite, payload, into=True)
    if implementation == ESDK:
        return esdk_pair(suite, payload)
    if implementation == KMSENVELOPE_ESDK_FRAMES:
        return kmsenvelope_pair(suite, payload, frame_length=ESDK_DEFAULT_FRAME_LENGTH)
    if implementation == ESDK_DEFAULT_FRAMES:
        return esdk_pair(suite, payload, frame_length=ESDK_DEFAULT_FRAME_LENGTH)
    if implementation == AESGCM_FRESH:
        return aesgcm_pair(payload)
    if implementation == AESGCM_INTO:
        return aesgcm_pair(payload, into=True)
    raise ValueError(f"unknown implementation {implementation!r}")


# -- rows ----------------------------------------------------------------------------------------


def _mb(ops: float | None, size: int) -> float | None:
    return None if ops is None else ops * size / MB


@dataclass(frozen=True)
class ThroughputRow:
    """Encrypt and decrypt speed of one implementation at one payload size (None: not measured)."""

    implementation: str
    size: int
    suite: str | None
    encrypt_ops_per_s: float | None
    decrypt_ops_per_s: float | None
    reason: str | None = None
    frame_length: int | None = None
    """Plaintext bytes per frame (None: the one-shot AES-GCM rows, which have no frames)."""

    @property
    def available(self) -> bool:
        """True when both directions were measured."""
        return self.encrypt_ops_per_s is not None and self.decrypt_ops_per_s is not None

    @property
    def encrypt_mb_per_s(self) -> float | None:
        """Encrypt throughput in MB/s (10^6 bytes), or None."""
        return _mb(self.encrypt_ops_per_s, self.size)

    @property
    def decrypt_mb_per_s(self) -> float | None:
        """Decrypt throughput in MB/s (10^6 bytes), or None."""
        return _mb(self.decrypt_ops_per_s, self.size)

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON-ready dict, with ``status`` ``ok`` or ``not available``."""
        doc = asdict(self)
        doc["encrypt_mb_per_s"] = self.encrypt_mb_per_s
        doc["decrypt_mb_per_s"] = self.decrypt_mb_per_s
        doc["status"] = "ok" if self.available else NOT_AVAILABLE
        return doc


def throughput_row(implementation: str, suite: Suite, size: int, *, min_time: float) -> ThroughputRow:
    """Measure one implementation at one size; an :class:`Unavailable` subject gives a marked row."""
    suite_id = None if implementation in (AESGCM_FRESH, AESGCM_INTO) else f"0x{suite.id:04X}"
    frames = None if suite_id is None else FRAME_LENGTHS.get(implementation, FRAME_LENGTH)
    payload = os.urandom(size)
    try:
        encrypt, decrypt = make_pair(implementation, suite, payload)
    except Unavailable as exc:
        return ThroughputRow(implementation, size, suite_id, None, None, str(exc), frames)
    return ThroughputRow(
        implementation,
        size,
        suite_id,
        measure(encrypt, min_time=min_time),
        measure(decrypt, min_time=min_time),
        frame_length=frames,
    )


@dataclass
class Section:
    """A titled list of rows (any of the row types here) for rendering and JSON."""

    name: str
    rows: list[Any] = field(default_factory=list)

    def to_list(self) -> list[dict[str, Any]]:
        """Each row's ``to_dict()``."""
        return [row.to_dict() for row in self.rows]


# Ratios live in their own module; re-exported here, where callers have always found them.
from .bench_ratios import RatioRow, ratio_rows, share_of_ceiling  # noqa: E402
