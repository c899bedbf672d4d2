"""Time the spectrogram frontends on a long signal and print a markdown table.

    PYTHONPATH=src python benchmarks/bench_frontends.py                     # 60 s, 7 runs, CPU, 1 and N threads
    PYTHONPATH=src python benchmarks/bench_frontends.py --librosa           # also time librosa
    PYTHONPATH=src python benchmarks/bench_frontends.py --device cuda --batch 8 --output out.md

Each timing is the median of ``--runs`` calls after one warm-up call, in ``torch.inference_mode``
(CUDA timings synchronise before reading the clock). "x realtime" is audio seconds processed
per wall-clock second (``batch * seconds / median``). Content does not affect the cost, so the
input is seeded white noise at the frontend's sample rate.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np


def median_seconds(call: Callable[[], object], runs: int, synchronize: Callable[[], None]) -> float:
    call()
    synchronize()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def librosa_call(name: str, audio: np.ndarray) -> Callable[[], object]:
    """librosa's transform with the frontend's settings (for comparison only)."""
    import librosa

    from transcribe_cli.frontends import CQT_SETTINGS, LOGMEL_SETTINGS, VQT_SETTINGS

    if name in ("cqt", "vqt"):
        s = CQT_SETTINGS if name == "cqt" else VQT_SETTINGS
        return lambda: librosa.vqt(
            audio,
            sr=s["sample_rate"],
            hop_length=s["hop_length"],
            fmin=s["fmin"],
            n_bins=s["n_bins"],
            bins_per_octave=s["bins_per_octave"],
            gamma=s["gamma"],
        )
    s = LOGMEL_SETTINGS
    return lambda: librosa.feature.melspectrogram(
        y=audio,
        sr=s["sample_rate"],
        n_fft=s["n_fft"],
        hop_length=s["hop_length"],
        n_mels=s["n_mels"],
        fmin=s["fmin"],
        fmax=s["fmax"],
        power=1.0,
        pad_mode="constant",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="audio length (default 60)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per frontend (median reported)")
    parser.add_argument("--batch", type=int, default=1, help="signals per call")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, ...)")
    parser.add_argument(
        "--threads",
        default=None,
        help="comma-separated torch intra-op thread counts to time (default: 1 and torch's default)",
    )
    parser.add_argument("--frontends", default="cqt,vqt,logmel", help="comma-separated names")
    parser.add_argument("--librosa", action="store_true", help="also time librosa's transform (CPU, batch 1)")
    parser.add_argument("--output", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args(argv)

    import torch

    from transcribe_cli.frontends import builtin_frontend_specs

    default_threads = torch.get_num_threads()
    thread_counts = [int(t) for t in args.threads.split(",")] if args.threads else sorted({1, default_threads})
    device = torch.device(args.device)
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    specs = {spec.name: spec for spec in builtin_frontend_specs()}
    rng = np.random.default_rng(0)

    rows = []
    for name in args.frontends.split(","):
        spec = specs[name]
        start = time.perf_counter()
        frontend = spec.factory().to(device).eval()
        build = time.perf_counter() - start
        n = int(args.seconds * spec.sample_rate)
        audio = (0.1 * rng.standard_normal((args.batch, n))).astype(np.float32)
        signal = torch.from_numpy(audio).to(device)
        for threads in thread_counts:
            torch.set_num_threads(threads)
            with torch.inference_mode():
                shape = tuple(frontend(signal).shape)
                seconds = median_seconds(partial(frontend, signal), args.runs, synchronize)
            row = {
                "frontend": name,
                "threads": threads,
                "shape": "x".join(map(str, shape)),
                "build": build,
                "median": seconds,
                "realtime": args.batch * args.seconds / seconds,
            }
            if args.librosa:
                reference = median_seconds(librosa_call(name, audio[0]), max(1, args.runs // 2), lambda: None)
                row["librosa"] = reference
            rows.append(row)
    torch.set_num_threads(default_threads)

    header = (
        f"{args.seconds:g} s of audio, batch {args.batch}, device {device}, median of {args.runs} runs; "
        f"torch {torch.__version__}, Python {platform.python_version()}, {platform.machine()} "
        f"({os.cpu_count()} CPUs), load average {os.getloadavg()[0]:.2f} at the end"
    )
    librosa_head = " librosa (s) |" if args.librosa else ""
    lines = [header, "", "| frontend | threads | output | build (s) | time (s) | x realtime |" + librosa_head]
    lines.append("|---|---:|---|---:|---:|---:|" + ("---:|" if args.librosa else ""))
    for row in rows:
        line = (
            f"| {row['frontend']} | {row['threads']} | {row['shape']} | {row['build']:.2f} | "
            f"{row['median']:.3f} | {row['realtime']:.0f} |"
        )
        if args.librosa:
            line += f" {row['librosa']:.2f} |"
        lines.append(line)
    table = "\n".join(lines)
    print(table)
    if args.output:
        args.output.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
