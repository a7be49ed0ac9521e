"""``kmsenvelope bench`` ratios: kmsenvelope against aws-encryption-sdk, and its share of the AES-GCM ceiling.

Two rows per suite and size. The headline compares both libraries at the ESDK's default 4 KiB frames
(what ESDK users run today); the second, labelled row compares them at kmsenvelope's 64 KiB frames.

The share of the ceiling is measured, not derived from the throughput table: ``encrypt_into``/
``decrypt_into`` (a reused buffer) and AES-GCM over the same frames into a reused buffer run
interleaved (:func:`.bench.measure_interleaved`), so both sides see the same buffers, the same warm
heap and the same stretches of machine time. The share is then at most about 100% (noise aside).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from ..suites import Suite
from .bench import (
    ESDK,
    ESDK_DEFAULT_FRAME_LENGTH,
    ESDK_DEFAULT_FRAMES,
    FRAME_LENGTH,
    KMSENVELOPE,
    KMSENVELOPE_ESDK_FRAMES,
    ThroughputRow,
    Unavailable,
    aesgcm_frames_pair,
    kmsenvelope_pair,
    measure_interleaved,
)

__all__ = ["CEILING", "HEADLINE", "OUR_FRAMES", "RatioRow", "ratio_rows", "share_of_ceiling"]

HEADLINE = "ESDK default frames (4 KiB)"
OUR_FRAMES = "kmsenvelope frames (64 KiB)"
CEILING = "AES-GCM per frame into a reused buffer, vs kmsenvelope *_into, interleaved"
_PAIRS = ((HEADLINE, KMSENVELOPE_ESDK_FRAMES, ESDK_DEFAULT_FRAMES, ESDK_DEFAULT_FRAME_LENGTH),
          (OUR_FRAMES, KMSENVELOPE, ESDK, FRAME_LENGTH))  # fmt: skip


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


@dataclass(frozen=True)
class RatioRow:
    """kmsenvelope's speed relative to the ESDK (x times) and to the AES-GCM ceiling (fraction)."""

    suite: str
    size: int
    vs_esdk_encrypt: float | None
    vs_esdk_decrypt: float | None
    of_ceiling_encrypt: float | None
    of_ceiling_decrypt: float | None
    reason: str | None = None
    label: str = OUR_FRAMES
    """:data:`HEADLINE` or :data:`OUR_FRAMES`."""
    frame_length: int = FRAME_LENGTH
    ceiling: str = CEILING
    """How the share of the ceiling was measured."""

    def to_dict(self) -> dict[str, Any]:
        """The row as a JSON-ready dict."""
        return asdict(self)


def share_of_ceiling(suite: Suite, size: int, frame_length: int, *, min_time: float) -> tuple[float, float]:
    """(encrypt, decrypt) share of the AES-GCM ceiling, both sides timed interleaved under the same
    conditions: reused output buffers, the same frames, the same stretches of time."""
    payload = os.urandom(size)
    ours_enc, ours_dec = kmsenvelope_pair(suite, payload, frame_length=frame_length, into=True)
    top_enc, top_dec = aesgcm_frames_pair(payload, frame_length)
    # Median of rounds: more of them for full runs, where a stray slow spell matters more to readers.
    batch_time, rounds = max(min_time / 3, 0.005), (5 if min_time >= 0.2 else 3)
    enc = measure_interleaved({"ours": ours_enc, "top": top_enc}, batch_time=batch_time, rounds=rounds)
    dec = measure_interleaved({"ours": ours_dec, "top": top_dec}, batch_time=batch_time, rounds=rounds)
    return enc["ours"] / enc["top"], dec["ours"] / dec["top"]


def ratio_rows(rows: Iterable[ThroughputRow], *, min_time: float | None = None) -> list[RatioRow]:
    """Headline and our-frames rows per (suite, size) that has kmsenvelope rows.

    With ``min_time`` the share of the ceiling is measured (:func:`share_of_ceiling`); without, it is
    left out (None).
    """
    rows = list(rows)
    by_key = {(r.implementation, r.suite, r.size): r for r in rows}
    keys = sorted({(r.suite, r.size) for r in rows if r.implementation == KMSENVELOPE and r.suite})
    out = []
    for suite_id, size in keys:
        for label, ours_name, esdk_name, frames in _PAIRS:
            ours, other = by_key.get((ours_name, suite_id, size)), by_key.get((esdk_name, suite_id, size))
            if ours is None:
                continue
            reasons = [r.reason for r in (ours, other) if r is not None and r.reason]
            share: tuple[float | None, float | None] = (None, None)
            if min_time is not None:
                try:
                    share = share_of_ceiling(
                        Suite.from_id(int(suite_id, 16)), size, frames, min_time=min_time
                    )
                except Unavailable as exc:
                    reasons.append(str(exc))
            out.append(
                RatioRow(
                    suite=suite_id,
                    size=size,
                    vs_esdk_encrypt=_ratio(
                        ours.encrypt_ops_per_s, other.encrypt_ops_per_s if other else None
                    ),
                    vs_esdk_decrypt=_ratio(
                        ours.decrypt_ops_per_s, other.decrypt_ops_per_s if other else None
                    ),
                    of_ceiling_encrypt=share[0],
                    of_ceiling_decrypt=share[1],
                    reason="; ".join(reasons) or None,
                    label=label,
                    frame_length=frames,
                )
            )
    return out
