"""Run tasks in worker processes, reporting each result as it finishes.

Shared by ``transcribe run`` and ``transcribe eval``. Workers are *spawned* (forking a
process that already runs torch threads is unsafe); each builds its own state in
``initializer``. A worker that dies (e.g. killed for memory) turns into a failed result for
its task via ``crashed``; Ctrl-C cancels what has not started.
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any, Callable, Iterable, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def threads_per_worker(workers: int) -> int:
    """Torch CPU threads each of ``workers`` processes gets so they share the cores."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def run_in_processes(
    tasks: Iterable[T],
    work: Callable[[T], R],
    *,
    workers: int,
    initializer: Callable[..., None],
    initargs: tuple[Any, ...],
    on_result: Callable[[R], None],
    crashed: Callable[[T, BaseException], R],
) -> None:
    """Call ``work(task)`` for every task in ``workers`` processes; ``on_result`` runs here."""
    ctx = get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=initializer, initargs=initargs) as pool:
        pending: dict[Future, T] = {pool.submit(work, task): task for task in tasks}
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    task = pending.pop(future)
                    try:
                        result = future.result()
                    except Exception as exc:  # the worker process died
                        result = crashed(task, exc)
                    on_result(result)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
