"""The fixed glibc mmap threshold (``transcribe_cli.allocator``): set in the process and for its
workers, a user's choice kept, and freed per-window buffers given back to the system."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from transcribe_cli.allocator import ENV_VAR, MMAP_THRESHOLD, is_glibc, user_threshold_set

pytestmark = pytest.mark.skipif(not is_glibc(), reason="glibc malloc only")


def _python(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k not in (ENV_VAR, "GLIBC_TUNABLES")}
    return subprocess.run([sys.executable, "-c", code], env={**environ, **env}, capture_output=True, text=True,
                          check=True, timeout=120).stdout.strip()


def test_sets_the_threshold_here_and_for_workers():
    out = _python("import os; from transcribe_cli.allocator import fix_mmap_threshold as f; "
                  f"print(f(), os.environ.get({ENV_VAR!r}))")
    assert out == f"True {MMAP_THRESHOLD}"


def test_a_users_threshold_is_left_alone():
    code = f"import os; from transcribe_cli.allocator import fix_mmap_threshold as f; print(f(), os.environ.get({ENV_VAR!r}))"
    assert _python(code, **{ENV_VAR: "65536"}) == "False 65536"
    assert _python(code, GLIBC_TUNABLES="glibc.malloc.mmap_threshold=65536") == "False None"
    assert user_threshold_set({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=1"})
    assert not user_threshold_set({})


# Buffers of a window's size, freed while small objects made in between stay alive (as in a
# transcription: a window's arrays, then the notes and chunks the decoder keeps). With glibc's
# dynamic threshold the first big free raises the threshold, the buffers come from the heap and
# the holes they leave are not given back; with the fixed one they are mmapped and returned.
_PATTERN = """
import numpy as np
from transcribe_cli.allocator import fix_mmap_threshold
if {fix}:
    assert fix_mmap_threshold()
def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024
big = np.ones(8 << 20, dtype=np.uint8); del big  # one large free: the dynamic threshold rises
before = rss()
kept, buffers = [], []
for i in range(40):
    buffers.append(np.ones((1 << 20) + 4096 * i, dtype=np.uint8))
    kept.append(np.ones(64, dtype=np.float64) * i)  # small survivors between the buffers
del buffers
print(round(rss() - before, 1))
"""


def test_freed_window_buffers_are_given_back():
    fixed = float(_python(_PATTERN.format(fix=True)))
    dynamic = float(_python(_PATTERN.format(fix=False)))
    assert fixed < 5.0, f"{fixed} MB still resident after freeing 40 MB of buffers"
    assert dynamic > 20.0, f"the pattern did not reproduce glibc's heap growth ({dynamic} MB)"
