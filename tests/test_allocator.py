"""The fixed glibc malloc thresholds (``transcribe_cli.allocator``): set in the process and for its
workers, a user's choice kept, and per-window buffers reused rather than left to creep."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from transcribe_cli.allocator import ENV_VAR, MMAP_THRESHOLD, TRIM_ENV_VAR, TRIM_THRESHOLD, is_glibc, user_threshold_set

pytestmark = pytest.mark.skipif(not is_glibc(), reason="glibc malloc only")


def _python(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k not in (ENV_VAR, TRIM_ENV_VAR, "GLIBC_TUNABLES")}
    return subprocess.run([sys.executable, "-c", code], env={**environ, **env}, capture_output=True, text=True,
                          check=True, timeout=120).stdout.strip()


def test_sets_the_threshold_here_and_for_workers():
    out = _python("import os; from transcribe_cli.allocator import fix_mmap_threshold as f; "
                  f"print(f(), os.environ.get({ENV_VAR!r}), os.environ.get({TRIM_ENV_VAR!r}))")
    assert out == f"True {MMAP_THRESHOLD} {TRIM_THRESHOLD}"


def test_a_users_threshold_is_left_alone():
    code = f"import os; from transcribe_cli.allocator import fix_mmap_threshold as f; print(f(), os.environ.get({ENV_VAR!r}))"
    assert _python(code, **{ENV_VAR: "65536"}) == "False 65536"
    assert _python(code, GLIBC_TUNABLES="glibc.malloc.mmap_threshold=65536") == "False None"
    assert _python(code, **{TRIM_ENV_VAR: "65536"}) == "False None"
    assert user_threshold_set({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=1"})
    assert user_threshold_set({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1"})
    assert not user_threshold_set({})


# Buffers of a window's size, allocated and freed window after window while small objects made in
# between stay alive (as in a transcription: a window's arrays, then the notes and chunks the
# decoder keeps). With the fixed thresholds each round reuses the memory the one before freed, so
# resident memory does not grow with the number of rounds (windows); and the buffers are not fresh
# mmaps whose pages fault in again each time (the page faults are counted).
_PATTERN = """
import resource
import numpy as np
from transcribe_cli.allocator import fix_mmap_threshold
if {fix}:
    assert fix_mmap_threshold()
def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024
kept = []
def window(i):
    buffers = [np.ones((1 << 20) + 4096 * j, dtype=np.uint8) for j in range(20)]
    kept.append(np.ones(64, dtype=np.float64) * i)  # a small survivor between the windows
    del buffers
window(0)
before, faults = rss(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for i in range(1, 30):
    window(i)
print(round(rss() - before, 1), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
"""


def test_window_buffers_are_reused_without_growth_or_page_faults():
    growth, faults = map(float, _python(_PATTERN.format(fix=True)).split())
    assert growth < 5.0, f"resident memory grew by {growth} MB over 29 windows of the same buffers"
    _, churned = map(float, _python(_PATTERN.format(fix=False),
                                    **{ENV_VAR: "131072"}).split())
    assert faults < churned / 10, f"{faults} page faults against {churned} with 128-KiB mmaps"
