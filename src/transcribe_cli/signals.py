"""Ctrl-C and SIGTERM: stop promptly, clean up, and say so.

Python turns SIGINT into :class:`KeyboardInterrupt` but lets SIGTERM kill the process on the
spot, so ``finally`` blocks, atomic writes and the process pool's own clean-up never run
(hence "resource_tracker: ... leaked semaphore objects"). Inside :func:`interrupts_as_exceptions`
both signals raise :class:`Interrupted` (a ``KeyboardInterrupt``) in the main thread, so one
``except KeyboardInterrupt`` handles either, and :func:`exit_code` gives the shell's
convention: 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM).

Worker processes (see :mod:`transcribe_cli.workers`) are started with SIGINT ignored — a
terminal's Ctrl-C reaches the whole process group, and only the main process decides what
happens — and run :func:`stop_on_sigterm`: the main process stops them with SIGTERM, which
unwinds the current task (deleting any temporary output file) before the worker exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["Interrupted", "WorkerStopped", "exit_code", "exit_worker_now", "ignoring_sigint",
           "interrupts_as_exceptions", "stop_on_sigterm"]


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; ``signum`` says which."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


class WorkerStopped(SystemExit):
    """Raised in a worker process by SIGTERM: unwinds the task, then the worker exits."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


def exit_code(exc: BaseException) -> int:
    """128 + the signal number behind ``exc`` (130 for a plain ``KeyboardInterrupt``)."""
    return 128 + getattr(exc, "signum", signal.SIGINT)


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def interrupts_as_exceptions() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` while inside the block (main thread only;
    elsewhere the block runs unchanged). The previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise_interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def ignoring_sigint() -> Iterator[None]:
    """Ignore SIGINT while starting child processes, so they inherit ``SIG_IGN`` (a Python
    child installs its own KeyboardInterrupt handler only where SIGINT is not ignored).
    A Ctrl-C that arrives meanwhile is re-raised once the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    previous_term = signal.getsignal(signal.SIGTERM)
    # SIGTERM is not inherited as a Python handler (exec resets it), so it may be recorded.
    if previous_term is _raise_interrupted:
        signal.signal(signal.SIGTERM, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
    if caught:
        raise Interrupted(caught[0])


def _stop_worker(signum: int, frame: Any) -> None:
    raise WorkerStopped()


_SWALLOWED_STOPS_BEFORE_EXIT = 100


def _redeliver_swallowed_stop(previous_hook: Any) -> Any:
    """A ``sys.unraisablehook`` for workers. A signal handler runs at the next Python
    bytecode, which may be inside a C library's callback (numba/llvmlite call back into
    Python while compiling); an exception raised there cannot propagate, so Python prints
    "Exception ignored on calling ctypes callback" and carries on. For :class:`WorkerStopped`
    that would print a traceback and lose the stop, so the signal is sent again a moment
    later from another thread (sent from here, its handler would run inside this hook, where
    an exception is lost too), and its handler runs once the C code has returned to Python.
    After many swallowed stops the worker exits at once."""
    swallowed = 0

    def hook(unraisable: Any) -> None:
        nonlocal swallowed
        if not isinstance(unraisable.exc_value, WorkerStopped):
            previous_hook(unraisable)
            return
        swallowed += 1
        if swallowed >= _SWALLOWED_STOPS_BEFORE_EXIT:
            exit_worker_now()
        resend = threading.Timer(0.02, os.kill, (os.getpid(), signal.SIGTERM))
        resend.daemon = True
        resend.start()

    return hook


def stop_on_sigterm() -> None:
    """In a worker process: SIGINT ignored, SIGTERM raises :class:`WorkerStopped` (and one
    swallowed by a C callback is delivered again)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop_worker)
    sys.unraisablehook = _redeliver_swallowed_stop(sys.unraisablehook)


def exit_worker_now() -> None:
    """End a worker process at once after :class:`WorkerStopped` unwound its task (no
    result is sent back: the main process is already tearing the pool down)."""
    os._exit(128 + signal.SIGTERM)
