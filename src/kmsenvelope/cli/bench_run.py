"""What ``kmsenvelope bench`` runs: the configuration, the KMS and DynamoDB rows, and the report.

Rows whose subject is not built yet are kept, marked ``not available`` with the reason, never faked.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from ..suites import Suite
from . import bench
from .bench import NOT_AVAILABLE, Section, ThroughputRow, Unavailable

__all__ = [
    "KMS_PRICE_PER_REQUEST_USD",
    "BenchConfig",
    "ItemsRow",
    "KmsRow",
    "default_config",
    "feature",
    "human_size",
    "run",
]

KMS_PRICE_PER_REQUEST_USD = 0.03 / 10_000
DEFAULT_SIZES = (64, 1024, 16 * 1024, 256 * 1024, 1 << 20, 16 << 20)
QUICK_SIZES = (64, 4096, 1 << 20, 16 << 20)
KEYRINGS = ("raw-aes", "kms")
NO_CACHE = "KmsKeyring, no cache"
CACHE_MAX_MESSAGES = 100
CACHE_MAX_AGE = 300.0
WITH_CACHE = (
    f"KmsKeyring + CachingMaterials (max_messages={CACHE_MAX_MESSAGES}, max_age={CACHE_MAX_AGE:.0f} s)"
)
ITEMS = "DynamoDB ItemEncryptor, raw AES keyring"


@dataclass(frozen=True)
class BenchConfig:
    """What to measure. ``min_time`` is the timing budget per measured operation."""

    sizes: tuple[int, ...]
    suites: tuple[Suite, ...]
    keyrings: tuple[str, ...]
    min_time: float
    quick: bool
    kms_messages: int

    def steps(self) -> int:
        """How many progress steps :func:`run` reports."""
        steps = 0
        if "raw-aes" in self.keyrings:
            steps += len(self.sizes) * (2 + 5 * len(self.suites)) + 2
        if "kms" in self.keyrings:
            steps += 1
        return steps

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        doc = asdict(self)
        doc["suites"] = [f"0x{s.id:04X}" for s in self.suites]
        return doc


def default_config(
    *,
    quick: bool = False,
    sizes: Sequence[int] = (),
    suites: Sequence[Suite] = (),
    keyrings: Sequence[str] = (),
) -> BenchConfig:
    """The full run, or the ``--quick`` one (about 20 s), narrowed by any of the arguments."""
    return BenchConfig(
        sizes=tuple(sizes) or (QUICK_SIZES if quick else DEFAULT_SIZES),
        suites=tuple(dict.fromkeys(suites)) or (bench.DEFAULT_SUITE,),
        keyrings=tuple(dict.fromkeys(keyrings)) or KEYRINGS,
        min_time=0.05 if quick else 0.3,
        quick=quick,
        kms_messages=10 if quick else 50,
    )


def human_size(size: int) -> str:
    """``65536`` -> ``64 KiB``."""
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"


def feature(module: str, name: str) -> Any:
    """``module.name`` if that part of kmsenvelope is built, else None."""
    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None


# -- KMS -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KmsRow:
    """KMS requests per message and what they cost, for one keyring configuration."""

    configuration: str
    messages: int | None
    encrypt_calls_per_message: float | None
    decrypt_calls_per_message: float | None
    encrypt_ops_per_s: float | None
    decrypt_ops_per_s: float | None
    reason: str | None = None

    @property
    def available(self) -> bool:
        """True when the row was measured."""
        return self.encrypt_calls_per_message is not None and self.decrypt_calls_per_message is not None

    def cost_per_million(self, calls_per_message: float | None) -> float | None:
        """USD for a million messages at $0.03 per 10,000 KMS requests."""
        if calls_per_message is None:
            return None
        return calls_per_message * 1_000_000 * KMS_PRICE_PER_REQUEST_USD

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        doc = asdict(self)
        encrypt = self.cost_per_million(self.encrypt_calls_per_message)
        decrypt = self.cost_per_million(self.decrypt_calls_per_message)
        doc["encrypt_usd_per_million_messages"] = encrypt
        doc["decrypt_usd_per_million_messages"] = decrypt
        doc["total_usd_per_million_messages"] = (
            None if encrypt is None or decrypt is None else encrypt + decrypt
        )
        doc["status"] = "ok" if self.available else NOT_AVAILABLE
        return doc

    @classmethod
    def unavailable(cls, configuration: str, reason: str) -> KmsRow:
        """A row that could not be measured, and why."""
        return cls(configuration, None, None, None, None, None, reason)


def _kms_calls() -> int:
    from ..aws.accounting import stats

    return stats().calls


def _count_kms(
    messages: int, encrypt: Callable[[], bytes], decrypt: Callable[[bytes], object]
) -> tuple[float, float]:
    """KMS requests per encrypt and per decrypt over ``messages`` messages, from kmsenvelope.stats()."""
    before = _kms_calls()
    ciphertexts = [encrypt() for _ in range(messages)]
    middle = _kms_calls()
    for ciphertext in ciphertexts:
        decrypt(ciphertext)
    after = _kms_calls()
    return (middle - before) / messages, (after - middle) / messages


def kms_rows(config: BenchConfig) -> list[KmsRow]:
    """KMS calls and cost per message with and without caching, measured on the local KMS."""
    local_aws = feature("kmsenvelope.testing", "local_aws")
    if local_aws is None:
        reason = "kmsenvelope.testing.local_aws() (local KMS) is not built yet"
        return [KmsRow.unavailable(NO_CACHE, reason), KmsRow.unavailable(WITH_CACHE, reason)]
    return _kms_rows_local(config, local_aws)


def _caching_manager(keyring: Any) -> Any:
    """``CachingMaterials`` over ``keyring``; :class:`Unavailable` when it is not built."""
    caching = feature("kmsenvelope.materials.caching", "CachingMaterials")
    if caching is None:
        raise Unavailable("kmsenvelope.CachingMaterials is not built yet")
    try:
        return caching(keyring, max_age=CACHE_MAX_AGE, max_messages=CACHE_MAX_MESSAGES)
    except Exception as exc:
        raise Unavailable(f"CachingMaterials(keyring, ...) failed: {type(exc).__name__}: {exc}") from None


def _kms_rows_local(config: BenchConfig, local_aws: Any) -> list[KmsRow]:
    from ..envelope import Envelope
    from ..keyrings.kms import KmsKeyring

    payload = bytes(1024)
    rows = []
    with local_aws() as aws:
        keyring = KmsKeyring(
            aws.create_key(description="kmsenvelope bench"), client_supplier=aws.client_supplier()
        )
        for label in (NO_CACHE, WITH_CACHE):
            try:
                source = keyring if label == NO_CACHE else _caching_manager(keyring)
            except Unavailable as exc:
                rows.append(KmsRow.unavailable(label, str(exc)))
                continue
            envelope = Envelope(source)
            ciphertext = envelope.encrypt(payload, bench.DEFAULT_CONTEXT)
            if envelope.decrypt(ciphertext) != payload:
                raise RuntimeError("KMS round trip failed; refusing to benchmark it")
            # With the cache, count over whole data-key lifetimes so the figure is the steady state.
            messages = config.kms_messages if label == NO_CACHE else 2 * CACHE_MAX_MESSAGES
            seen = len(aws.requests())
            per_encrypt, per_decrypt = _count_kms(
                messages,
                partial(envelope.encrypt, payload, bench.DEFAULT_CONTEXT),
                envelope.decrypt,
            )
            server_calls = len(aws.requests()) - seen
            counted = round((per_encrypt + per_decrypt) * messages)
            if server_calls != counted:
                raise RuntimeError(
                    f"kmsenvelope.stats() counted {counted} KMS calls but the local KMS saw {server_calls}"
                )
            rows.append(
                KmsRow(
                    label,
                    messages,
                    per_encrypt,
                    per_decrypt,
                    bench.measure(
                        partial(envelope.encrypt, payload, bench.DEFAULT_CONTEXT), min_time=config.min_time
                    ),
                    bench.measure(partial(envelope.decrypt, ciphertext), min_time=config.min_time),
                )
            )
    return rows


# -- DynamoDB ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemsRow:
    """DynamoDB items encrypted and decrypted per second."""

    configuration: str
    encrypt_items_per_s: float | None
    decrypt_items_per_s: float | None
    reason: str | None = None

    @property
    def available(self) -> bool:
        """True when the row was measured."""
        return self.encrypt_items_per_s is not None and self.decrypt_items_per_s is not None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        doc = asdict(self)
        doc["status"] = "ok" if self.available else NOT_AVAILABLE
        return doc


def _item() -> dict[str, Any]:
    return {
        "pk": {"S": "customer#0001"},
        "sk": {"S": "profile"},
        "name": {"S": "Ada Lovelace"},
        "email": {"S": "ada@example.com"},
        "balance": {"N": "1234.56"},
        "tags": {"SS": ["early-adopter", "gold"]},
        "document": {"B": bytes(range(256))},
        "updated": {"S": "2026-01-01T00:00:00Z"},
    }


def item_rows(config: BenchConfig) -> list[ItemsRow]:
    """Items/s of :class:`kmsenvelope.dynamodb.ItemEncryptor` (8 attributes, 5 encrypted), when built."""
    encryptor_type = feature("kmsenvelope.dynamodb", "ItemEncryptor")
    if encryptor_type is None:
        return [ItemsRow(ITEMS, None, None, "kmsenvelope.dynamodb.ItemEncryptor is not built yet")]
    from ..dynamodb import DEFAULT_SUITE, SIGNING_SUITE, Action, TableConfig
    from ..keyrings.raw_aes import RawAesKeyring

    keyring = RawAesKeyring(bench.NAMESPACE, bench.KEY_NAME, bench.bench_key())
    sign, encrypt = Action.SIGN_ONLY, Action.ENCRYPT_AND_SIGN
    actions = {"pk": sign, "sk": sign, "name": encrypt, "email": encrypt, "balance": encrypt}
    actions.update(tags=encrypt, document=encrypt, updated=sign)
    item = _item()
    rows = []
    for suite in (DEFAULT_SUITE, SIGNING_SUITE):
        table = TableConfig("bench_table", "pk", sort_key="sk", actions=actions, keyring=keyring, suite=suite)
        encryptor = encryptor_type(table)
        stored = encryptor.encrypt_item(item)
        if encryptor.decrypt_item(stored) != item:
            raise RuntimeError("DynamoDB item round trip failed; refusing to benchmark it")
        rows.append(
            ItemsRow(
                f"{ITEMS}, suite 0x{suite.id:04X}",
                bench.measure(partial(encryptor.encrypt_item, item), min_time=config.min_time),
                bench.measure(partial(encryptor.decrypt_item, stored), min_time=config.min_time),
            )
        )
    return rows


# -- the run -------------------------------------------------------------------------------------


def run(config: BenchConfig, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every benchmark ``config`` selects; returns the JSON-ready report."""
    step = progress or (lambda _label: None)
    started = time.perf_counter()
    sections: list[Section] = []
    if "raw-aes" in config.keyrings:
        messages = Section("messages")
        for size in config.sizes:
            for implementation in (bench.AESGCM_FRESH, bench.AESGCM_INTO):
                step(f"{implementation}, {human_size(size)}")
                messages.rows.append(
                    bench.throughput_row(implementation, config.suites[0], size, min_time=config.min_time)
                )
        for suite in config.suites:
            for size in config.sizes:
                for implementation in (
                    bench.KMSENVELOPE,
                    bench.KMSENVELOPE_INTO,
                    bench.ESDK,
                    bench.KMSENVELOPE_ESDK_FRAMES,
                    bench.ESDK_DEFAULT_FRAMES,
                ):
                    step(f"{implementation} 0x{suite.id:04X}, {human_size(size)}")
                    messages.rows.append(
                        bench.throughput_row(implementation, suite, size, min_time=config.min_time)
                    )
        sections.append(messages)
        step("share of the AES-GCM ceiling")
        throughput = [r for r in messages.rows if isinstance(r, ThroughputRow)]
        sections.append(Section("ratios", bench.ratio_rows(throughput, min_time=config.min_time)))
        step("DynamoDB items")
        sections.append(Section("dynamodb", _guard(item_rows, config, ItemsRow(ITEMS, None, None))))
    if "kms" in config.keyrings:
        step("KMS calls and cost")
        sections.append(Section("kms", _guard(kms_rows, config, KmsRow.unavailable(NO_CACHE, ""))))
    return {
        "schema": "kmsenvelope-bench/1",
        "machine": bench.machine_info(),
        "versions": bench.library_versions(),
        "config": config.to_dict(),
        "units": {
            "mb": "10^6 bytes",
            "ops_per_s": "best of timed batches",
            "kms_price": "$0.03 per 10,000 requests",
        },
        **{section.name: section.to_list() for section in sections},
        "elapsed_s": round(time.perf_counter() - started, 3),
    }


def _guard(build: Callable[[BenchConfig], list[Any]], config: BenchConfig, template: Any) -> list[Any]:
    try:
        return build(config)
    except Unavailable as exc:
        from dataclasses import replace

        return [replace(template, reason=str(exc))]
