"""Single flight: concurrent misses on the same cache key share one fetch, and its outcome."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["SingleFlight"]

_V = TypeVar("_V")


class SingleFlight(Generic[_V]):
    """At most one fetch per key and event loop in flight; every caller that arrives meanwhile awaits it.

    The fetch runs in its own task, so cancelling one waiter (even the one that started it) neither
    cancels the fetch nor fails the other waiters. A failed fetch raises the same error in every waiter
    and is not remembered: the next call after it starts a new fetch.
    """

    def __init__(self) -> None:
        self._flights: dict[tuple[int, Hashable], asyncio.Task[_V]] = {}

    def __len__(self) -> int:
        return len(self._flights)

    async def run(self, key: Hashable, fetch: Callable[[], Awaitable[_V]]) -> _V:
        """The result of the fetch in flight for ``key``, starting ``fetch()`` if there is none."""
        loop = asyncio.get_running_loop()
        slot = (id(loop), key)
        task = self._flights.get(slot)
        if task is None or task.get_loop() is not loop:

            async def call() -> _V:
                return await fetch()

            task = loop.create_task(call())
            self._flights[slot] = task
            task.add_done_callback(functools.partial(self._landed, slot))
        return await asyncio.shield(task)

    def _landed(self, slot: tuple[int, Hashable], task: asyncio.Task[_V]) -> None:
        if self._flights.get(slot) is task:
            del self._flights[slot]
        if not task.cancelled():
            task.exception()  # retrieved even when every waiter was cancelled
