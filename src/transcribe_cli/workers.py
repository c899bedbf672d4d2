"""Run tasks in worker processes, reporting each result as it finishes.

Shared by ``transcribe run`` and ``transcribe eval`` (:func:`run_tasks`: a state built once
per worker, such as its models) and the training-data preparation (:func:`parallel_map`). Workers are *spawned* (forking a
process that already runs torch threads is unsafe); each builds its own state in
``initializer``. A worker that dies (e.g. killed for memory) turns into a failed result for
its task via ``crashed``. Ctrl-C or SIGTERM (see :mod:`transcribe_cli.signals`) stops the
batch at once: tasks not started are cancelled, running workers get SIGTERM (which unwinds
their task, removing temporary files) and are killed if they have not exited a second later,
and the interrupt propagates once the pool is fully shut down.
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


#: Resident memory one transcription worker needs, measured with ``nmf`` (16 workers took
#: 5.5 GB: torch, the model and a file's audio and activations each).
WORKER_MEMORY_BYTES = 350 * 1024**2
#: Seconds a worker has to exit after SIGTERM before it is killed.
STOP_GRACE_SECONDS = 1.0


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask; ``os.cpu_count()`` elsewhere)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def available_memory() -> int | None:
    """Bytes of memory available to new processes (``MemAvailable``), ``None`` where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def cap_workers(requested: int, tasks: int, *, memory_per_worker: int = WORKER_MEMORY_BYTES) -> tuple[int, str | None]:
    """How many workers to start for ``tasks`` tasks when ``requested`` were asked for: at most
    one per usable core, per task, and per ``memory_per_worker`` of available memory.
    Returns the number and, when it is lower than requested (beyond the task count), why."""
    requested = max(1, requested)
    limits = [(usable_cores(), "the number of usable CPU cores")]
    memory = available_memory()
    if memory is not None and memory_per_worker > 0:
        limits.append((max(1, memory // memory_per_worker),
                       f"one per {memory_per_worker // 1024**2} MB of the {memory / 1024**3:.1f} GB available memory"))
    count, reason = requested, None
    for limit, why in limits:
        if limit < count:
            count, reason = limit, f"{limit} ({why})"
    return max(1, min(count, tasks)), (reason if count < requested and count < tasks else None)


def threads_per_worker(workers: int) -> int:
    """Torch CPU threads each of ``workers`` processes gets so they share the cores."""
    return max(1, usable_cores() // max(1, workers))


@dataclass(frozen=True)
class _StoppableWork:
    """Runs ``work(task)`` in a worker; a SIGTERM-stopped task ends the worker process."""

    work: Callable[[Any], Any]

    def __call__(self, task: Any) -> Any:
        from transcribe_cli.signals import WorkerStopped, exit_worker_now

        try:
            return self.work(task)
        except WorkerStopped:
            exit_worker_now()


def _start_worker(initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
    from transcribe_cli.signals import WorkerStopped, exit_worker_now, stop_on_sigterm

    stop_on_sigterm()
    try:
        initializer(*initargs)
    except WorkerStopped:  # stopped while building its state (e.g. a model): nothing to report
        exit_worker_now()


#: what :func:`run_tasks`' ``setup`` built in this worker process (the one per-process state)
_STATE: Any = None


def _set_state(setup: Callable[..., Any], args: tuple[Any, ...]) -> None:
    global _STATE
    _STATE = setup(*args)


@dataclass(frozen=True)
class _WithState:
    """``task -> work(state, task)`` with this worker's state; picklable for spawned workers."""

    work: Callable[[Any, Any], Any]

    def __call__(self, task: Any) -> Any:
        return self.work(_STATE, task)


def run_tasks(
    tasks: Sequence[T],
    work: Callable[[Any, T], R],
    *,
    workers: int,
    setup: Callable[..., Any],
    setup_args: tuple[Any, ...] = (),
    state: Any = None,
    on_result: Callable[[R], None],
    crashed: Callable[[T, BaseException], R],
) -> None:
    """``work(state, task)`` for every task, ``on_result`` called here as each finishes.

    With one worker the tasks run in this process on ``state`` (built by
    ``setup(*setup_args)`` when not given); with more, each spawned worker builds its own
    state with ``setup`` once (what ``transcribe run`` and ``transcribe eval`` share: a
    worker builds its models once, then runs many files). ``work`` and ``setup`` must be
    picklable (module-level functions or classes)."""
    if workers <= 1:
        state = setup(*setup_args) if state is None else state
        for task in tasks:
            on_result(work(state, task))
        return
    run_in_processes(tasks, _WithState(work), workers=workers, initializer=_set_state,
                     initargs=(setup, setup_args), on_result=on_result, crashed=crashed)


def stop_pool(pool: ProcessPoolExecutor, grace: float = STOP_GRACE_SECONDS) -> None:
    """Cancel what has not started, SIGTERM the workers, kill those still alive after ``grace``
    seconds, and shut the pool down (its queues and semaphores released)."""
    import time

    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + grace
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(1.0)
    pool.shutdown(wait=True, cancel_futures=True)


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
    from transcribe_cli.signals import ignoring_sigint

    ctx = get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_start_worker, initargs=(initializer, initargs))
    try:
        with ignoring_sigint():  # workers are spawned at submit time and inherit SIG_IGN
            pending: dict[Future, T] = {pool.submit(_StoppableWork(work), task): task for task in tasks}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                task = pending.pop(future)
                try:
                    result = future.result()
                except Exception as exc:  # the worker process died
                    result = crashed(task, exc)
                on_result(result)
    except BaseException:  # Ctrl-C, SIGTERM, or on_result failed: stop now, not after the batch
        stop_pool(pool)
        raise
    pool.shutdown(wait=True)


#: ``progress(done, total)`` after each finished task.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class _IndexedWork:
    """``(index, task) -> (index, work(task))``; picklable for spawned workers."""

    work: Callable[[Any], Any]

    def __call__(self, indexed: tuple[int, Any]) -> tuple[int, Any]:
        index, task = indexed
        return index, self.work(task)


def _no_setup() -> None:
    """Worker initializer: nothing to build (each task is self-contained)."""


def parallel_map(
    work: Callable[[T], Any],
    tasks: Iterable[T],
    *,
    jobs: int = 1,
    progress: Progress | None = None,
    names: Sequence[str] | None = None,
) -> list[Any]:
    """``[work(task) for task in tasks]``, in ``jobs`` spawned processes when ``jobs > 1``.

    ``work`` must be a module-level function; it returns a :class:`TranscribeError`
    instead of raising it, and the first such error (in task order) is raised here after
    every task has finished. A worker that dies becomes a :class:`TranscribeError` naming
    the task (``names[i]``, or its index).
    """
    from transcribe_cli.errors import TranscribeError

    tasks = list(tasks)
    total = len(tasks)
    results: list[Any] = [None] * total
    done = 0

    def finished(index: int, result: Any) -> None:
        nonlocal done
        results[index] = result
        done += 1
        if progress is not None:
            progress(done, total)

    if jobs <= 1 or total <= 1:
        for index, task in enumerate(tasks):
            finished(index, work(task))
    else:
        def crashed(indexed: tuple[int, T], exc: BaseException) -> tuple[int, Any]:
            index = indexed[0]
            label = names[index] if names is not None else f"task {index}"
            return index, TranscribeError(f"a worker preparing {label} failed: {exc}",
                                          "retry with --jobs 1 to see the error directly")

        run_in_processes(
            list(enumerate(tasks)),
            _IndexedWork(work),
            workers=min(jobs, total),
            initializer=_no_setup,
            initargs=(),
            on_result=lambda pair: finished(*pair),
            crashed=crashed,
        )
    for result in results:
        if isinstance(result, TranscribeError):
            raise result
    return results
