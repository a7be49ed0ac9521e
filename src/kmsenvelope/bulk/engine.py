"""Where the tasks of a bulk job run: in the calling process, a local process pool, or Dask.

A task is a plain function of one picklable argument, returning a picklable
:class:`~kmsenvelope.bulk.report.TaskTally`; this module only schedules them. ``engine``:

* ``None``: one after another in the calling process;
* ``"processes"``: a ``ProcessPoolExecutor`` over every local core (the crypto holds the GIL, so
  threads would not scale);
* a ``dask.distributed.Client``: one Dask task per job task, on its cluster. A task that fails on a
  worker that died is retried by Dask (``retries=``); with a checkpoint the retry resumes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..errors import ConfigurationError

__all__ = ["describe", "parallelism", "run_tasks"]

A = TypeVar("A")
R = TypeVar("R")


def _is_dask_client(engine: object) -> bool:
    return type(engine).__name__ == "Client" and type(engine).__module__.startswith("distributed")


def check_engine(engine: object) -> None:
    if engine is None or engine == "processes" or _is_dask_client(engine):
        return
    raise ConfigurationError('engine must be None, "processes" or a dask.distributed.Client')


def describe(engine: object) -> str:
    """A short name for reports: ``local``, ``processes`` or ``dask``."""
    if engine is None:
        return "local"
    return "processes" if engine == "processes" else "dask"


def parallelism(engine: object) -> int:
    """How many tasks the engine runs at once (a Dask cluster's total worker threads)."""
    if engine is None:
        return 1
    if engine == "processes":
        return os.cpu_count() or 1
    threads = engine.nthreads()  # type: ignore[attr-defined]
    return max(1, int(sum(threads.values())))


def run_tasks(
    engine: object,
    function: Callable[[A], R],
    arguments: Sequence[A],
    *,
    retries: int = 2,
    on_done: Callable[[R], None] | None = None,
) -> list[R]:
    """``[function(a) for a in arguments]`` on ``engine``; the first task error is raised after the
    other running tasks finished (their progress is checkpointed), and queued ones are cancelled.
    ``on_done`` is called here with each result, in task order, as results arrive."""
    check_engine(engine)
    if engine is None:
        results = []
        for argument in arguments:
            results.append(function(argument))
            if on_done is not None:
                on_done(results[-1])
        return results
    if engine == "processes":
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        workers = min(len(arguments), os.cpu_count() or 1) or 1
        # spawn: a forked child would inherit the caller's threads and locks (boto3, moto, Dask).
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(function, argument) for argument in arguments]
            return _gather(futures, lambda f: f.cancel(), on_done)
    futures = engine.map(function, arguments, pure=False, retries=retries)  # type: ignore[attr-defined]
    return _gather(list(futures), lambda f: f.cancel(), on_done)


def _gather(
    futures: list[Any], cancel: Callable[[Any], Any], on_done: Callable[[Any], None] | None
) -> list[Any]:
    results: list[Any] = []
    error: BaseException | None = None
    for future in futures:
        if error is not None:
            cancel(future)
        try:
            results.append(future.result())
            if on_done is not None and error is None:
                on_done(results[-1])
        except BaseException as exc:
            if error is None:
                error = exc
                for other in futures:
                    cancel(other)
    if error is not None:
        raise error
    return results
