"""A fixed glibc ``malloc`` mmap threshold, so peak memory does not creep with a file's length.

glibc serves a request of at least ``M_MMAP_THRESHOLD`` bytes (128 KiB at start) with its own
``mmap`` and returns it to the system on ``free``. By default the threshold is *dynamic*: each
freed mmapped block raises it to that block's size (up to 32 MiB), so after the first few
windows the transcription's per-window buffers (a window's audio, CQT frames, gains, the
decoder's chunks — a few hundred KiB to a few MiB each) come from the heap instead, where
blocks of changing sizes leave holes that are not given back. Resident memory then grows
slowly with the number of windows: ``nmf`` peaked at 84.8 MB on 1 minute and 93.3 MB on
20 minutes with the dynamic threshold, 82.1 and 84.8 MB with a fixed 128 KiB one
(``MALLOC_MMAP_THRESHOLD_=131072``, ``/usr/bin/time``; ``benchmarks/results/memory.md``).

:func:`fix_mmap_threshold` sets the fixed threshold in this process (``mallopt``, which also
turns the dynamic adjustment off) and, through the environment, in the worker processes it
starts (glibc reads ``MALLOC_MMAP_THRESHOLD_`` when a process starts). A threshold the user
set (``MALLOC_MMAP_THRESHOLD_`` or a ``glibc.malloc.mmap_threshold`` tunable) is left alone;
on other C libraries (musl, macOS, Windows) this does nothing.
"""

from __future__ import annotations

import os

#: the fixed threshold: glibc's own initial value
MMAP_THRESHOLD = 128 * 1024
ENV_VAR = "MALLOC_MMAP_THRESHOLD_"
_M_MMAP_THRESHOLD = -3  # mallopt parameter number (malloc.h)


def user_threshold_set(environ: os._Environ[str] | dict[str, str] = os.environ) -> bool:
    """Whether the environment already chooses glibc's mmap threshold."""
    return ENV_VAR in environ or "glibc.malloc.mmap_threshold" in environ.get("GLIBC_TUNABLES", "")


def is_glibc() -> bool:
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (AttributeError, ValueError, OSError):  # no confstr (Windows) or not glibc
        return False


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes here and in the processes started
    from here (see the module docstring). Returns whether this process's threshold was set."""
    if user_threshold_set() or not is_glibc():
        return False
    os.environ[ENV_VAR] = str(int(threshold))  # spawned workers read it at start-up
    import ctypes

    try:
        return ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, int(threshold)) == 1
    except (OSError, AttributeError):  # pragma: no cover - glibc without mallopt in reach
        return False
