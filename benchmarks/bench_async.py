"""An asyncio service decrypting KMS messages, under 5, 20 and 50 ms of injected KMS latency.

Run:  python benchmarks/bench_async.py [--requests 100] [--latencies 5,20,50] [--json]

The service handles ``--requests`` concurrent requests, each decrypting a distinct KMS message (so every
request makes one KMS ``Decrypt``; no cache), against the local AWS (moto over HTTP) with
``LocalAws.inject_latency`` delaying every ``Decrypt``. Three ways, side by side in one run:

* ``AsyncEnvelope`` + ``AsyncKmsKeyring`` (aiobotocore): KMS calls overlap, the loop never blocks;
* the sync ``Envelope`` called in the loop: each request blocks the loop for a whole KMS round trip;
* the sync ``Envelope`` through ``asyncio.to_thread``: overlap bounded by the default thread pool.

Reported: requests per second (one run each; the local AWS's own CPU cost is included, so absolute numbers
on a loaded machine are low, the ratios are what matters). Nothing here is asserted by tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

CONTEXT = {"purpose": "benchmark", "tenant": "acme"}


async def _serve(handler: Callable[[bytes], Awaitable[bytes]], messages: list[bytes]) -> float:
    started = time.perf_counter()
    results = await asyncio.gather(*(handler(m) for m in messages))
    elapsed = time.perf_counter() - started
    assert results == [b"request %d" % i for i in range(len(messages))]
    return len(messages) / elapsed


def run(requests: int, latencies_ms: list[int]) -> list[dict[str, Any]]:
    from kmsenvelope import Envelope, KmsKeyring
    from kmsenvelope.aio import AsyncEnvelope, AsyncKmsKeyring
    from kmsenvelope.testing import local_aws

    rows: list[dict[str, Any]] = []
    with local_aws() as aws:
        key = aws.create_key("eu-west-1")
        sync = Envelope(KmsKeyring(key, client_supplier=aws.client_supplier()))
        messages = [sync.encrypt(b"request %d" % i, CONTEXT) for i in range(requests)]
        for latency_ms in latencies_ms:
            row: dict[str, Any] = {"latency_ms": latency_ms, "requests": requests}

            async def in_loop(message: bytes) -> bytes:
                return sync.decrypt(message, CONTEXT)

            async def in_thread(message: bytes) -> bytes:
                return await asyncio.to_thread(sync.decrypt, message, CONTEXT)

            async def with_aio(latency_ms: int = latency_ms) -> float:
                async with aws.async_client_supplier() as supplier:
                    envelope = AsyncEnvelope(AsyncKmsKeyring(key, client_supplier=supplier))
                    await envelope.decrypt(messages[0], CONTEXT)  # connect before timing

                    async def decrypt(message: bytes) -> bytes:
                        return await envelope.decrypt(message, CONTEXT)

                    aws.reset()
                    aws.inject_latency("Decrypt", latency_ms / 1000, count=requests)
                    return await _serve(decrypt, messages)

            row["async"] = asyncio.run(with_aio())
            for name, handler in (("sync_in_loop", in_loop), ("to_thread", in_thread)):
                aws.reset()
                aws.inject_latency("Decrypt", latency_ms / 1000, count=requests)
                row[name] = asyncio.run(_serve(handler, messages))
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--latencies", default="5,20,50", help="injected KMS latencies in ms")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = run(args.requests, [int(x) for x in args.latencies.split(",")])
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'KMS latency':>12} {'AsyncEnvelope':>14} {'sync in loop':>13} {'to_thread':>10}   requests/s")
    for row in rows:
        print(
            f"{row['latency_ms']:>9} ms {row['async']:>14.0f} {row['sync_in_loop']:>13.0f} "
            f"{row['to_thread']:>10.0f}"
        )


if __name__ == "__main__":
    main()
