"""Fixed glibc ``malloc`` thresholds, so memory is reused instead of churned or left to creep.

glibc serves a request of at least ``M_MMAP_THRESHOLD`` bytes (128 KiB at start) with its own
``mmap`` and returns it to the system on ``free``; free memory at the top of the heap beyond
``M_TRIM_THRESHOLD`` (128 KiB) is given back too. By default the mmap threshold is *dynamic*:
each freed mmapped block raises it to that block's size (up to 32 MiB), so after the first few
windows the per-window buffers come from the heap, where blocks of changing sizes leave holes and
resident memory grows slowly with the number of windows (``nmf``: 84.8 MB on 1 minute, 93.3 MB on
20 minutes; ``benchmarks/results/memory.md``).

Until 2026-12-03 the threshold was fixed at 128 KiB: every array above it was a fresh ``mmap``,
given back on ``free``. That kept memory flat, but each such array's pages fault in again on
first touch: the default ``piano`` command on a 5-minute file spent 2.2–2.5 s in the kernel and
``nmf`` on 60 minutes 33 s (``benchmarks/results/model_speed.md``). Now both thresholds are fixed
high (:data:`MMAP_THRESHOLD` 64 MiB, :data:`TRIM_THRESHOLD` 128 MiB, which also turns the dynamic
adjustment off): a window's buffers come from the heap and are reused by the next window, and at
most :data:`TRIM_THRESHOLD` of free heap is kept. Measured (``/usr/bin/time``, one run each): the
default ``piano`` command on 5 minutes 8.4 → 6.5 s wall, sys 2.5 → 0.4 s, identical MIDI, peak RSS
183 → 203 MB; 1 → 60 minutes 203 → 220 MB (+8.2 %; +8.3 % before); ``nmf`` on 60 minutes 167 →
124 s, 98 → 125 MB (1 minute: 88 → 112 MB; +11.7 % against +11.4 % in the same pair of runs).

:func:`fix_mmap_threshold` sets both in this process (``mallopt``) and, through the environment,
in the worker processes it starts (glibc reads ``MALLOC_MMAP_THRESHOLD_`` and
``MALLOC_TRIM_THRESHOLD_`` when a process starts). A threshold the user set (either variable or a
``glibc.malloc.mmap_threshold`` / ``trim_threshold`` tunable) leaves both alone; on other C libraries
(musl, macOS, Windows) this does nothing.
"""

from __future__ import annotations

import os

#: the fixed mmap threshold: requests below it come from the heap (a window's arrays are below it)
MMAP_THRESHOLD = 64 * 1024 * 1024
#: free memory at the top of the heap kept for reuse before it is given back
TRIM_THRESHOLD = 128 * 1024 * 1024
ENV_VAR = "MALLOC_MMAP_THRESHOLD_"
TRIM_ENV_VAR = "MALLOC_TRIM_THRESHOLD_"
_M_TRIM_THRESHOLD = -1  # mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3


def user_threshold_set(environ: os._Environ[str] | dict[str, str] = os.environ) -> bool:
    """Whether the environment already chooses glibc's mmap or trim threshold."""
    tunables = environ.get("GLIBC_TUNABLES", "")
    return (ENV_VAR in environ or TRIM_ENV_VAR in environ or "glibc.malloc.mmap_threshold" in tunables
            or "glibc.malloc.trim_threshold" in tunables)


def is_glibc() -> bool:
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (AttributeError, ValueError, OSError):  # no confstr (Windows) or not glibc
        return False


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD, trim: int = TRIM_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` and its trim threshold at ``trim`` bytes here
    and in the processes started from here (see the module docstring). Returns whether this
    process's thresholds were set."""
    if user_threshold_set() or not is_glibc():
        return False
    os.environ[ENV_VAR] = str(int(threshold))  # spawned workers read them at start-up
    os.environ[TRIM_ENV_VAR] = str(int(trim))
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        return libc.mallopt(_M_MMAP_THRESHOLD, int(threshold)) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, int(trim)) == 1
    except (OSError, AttributeError):  # pragma: no cover - glibc without mallopt in reach
        return False
