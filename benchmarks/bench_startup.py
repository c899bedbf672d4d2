"""Wall and CPU time of fresh ``transcribe`` processes (``--help`` and the like).

Usage (from the repository root):

    PYTHONPATH=src python benchmarks/bench_startup.py 5 python -m transcribe_cli --help

Runs the command N times (output discarded) and prints the median wall time, the fastest,
and the median user+sys CPU of the child (CPU moves less than wall on a loaded machine), with
the 1-minute load average. Results: ``benchmarks/results/memory.md``.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time


def measure(command: list[str], runs: int) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def main(argv: list[str]) -> None:
    if len(argv) < 2 or not argv[0].isdigit():
        sys.exit("usage: bench_startup.py RUNS COMMAND...")
    walls, cpus = measure(argv[1:], int(argv[0]))
    print(f"wall median {statistics.median(walls):.3f} (min {min(walls):.3f})  cpu median "
          f"{statistics.median(cpus):.3f}  load {os.getloadavg()[0]:.1f}  {' '.join(argv[1:])}")


if __name__ == "__main__":
    main(sys.argv[1:])
