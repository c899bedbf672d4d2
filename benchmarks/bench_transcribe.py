"""End-to-end transcription speed and memory: audio already decoded → notes.

Usage (from the repository root):

    python benchmarks/bench_transcribe.py [--model nmf] [--seconds 60 600] [--runs 5]
    python benchmarks/bench_transcribe.py --memory 3600   # peak RSS on an hour of audio

The input is the bundled example recording looped to the requested length (so the model
sees real music). Reports the median time over ``--runs`` runs after one warm-up, the
x-realtime factor (audio seconds / wall seconds) and, with ``--memory``, the peak resident
memory of a fresh process that transcribes that much audio, next to the size of the
audio itself, to show memory is bounded by the window, not the file.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def example_audio(sample_rate: int, seconds: float):
    import numpy as np

    from transcribe_cli.io.audio import load_audio

    source = sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".flac", ".wav"))[0]
    audio = load_audio(source, sample_rate)
    reps = int(np.ceil(seconds * sample_rate / len(audio)))
    return np.tile(audio, reps)[: int(seconds * sample_rate)], source.name


def time_model(model: str, seconds_list: list[float], runs: int, device: str) -> list[dict]:
    from transcribe_cli.pipeline import Transcriber

    transcriber = Transcriber(model, device=device)
    rows = []
    for seconds in seconds_list:
        audio, name = example_audio(transcriber.sample_rate, seconds)
        transcriber.transcribe_audio(audio[: transcriber.sample_rate * 5])  # warm-up
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            notes = transcriber.transcribe_audio(audio)
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        rows.append({
            "model": model, "device": str(transcriber.device), "audio_s": seconds, "runs": runs,
            "median_s": round(median, 3), "min_s": round(min(times), 3), "max_s": round(max(times), 3),
            "x_realtime": round(seconds / median, 1), "notes": len(notes), "input": name,
        })
    return rows


def peak_memory(model: str, seconds: float, device: str) -> dict:
    code = (
        "import resource, sys, time\n"
        f"sys.path.insert(0, {str(ROOT / 'benchmarks')!r})\n"
        "from bench_transcribe import example_audio\n"
        "from transcribe_cli.pipeline import Transcriber\n"
        f"t = Transcriber({model!r}, device={device!r})\n"
        f"audio, _ = example_audio(t.sample_rate, {seconds})\n"
        "start = time.perf_counter(); notes = t.transcribe_audio(audio); wall = time.perf_counter() - start\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, audio.nbytes, len(notes), wall)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rss_kb, audio_bytes, notes, wall = out.stdout.split()
    return {
        "model": model, "audio_s": seconds, "peak_rss_mb": round(int(rss_kb) / 1024, 1),
        "audio_array_mb": round(int(audio_bytes) / 2**20, 1), "notes": int(notes),
        "wall_s": round(float(wall), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", help="model name (repeatable; default nmf)")
    parser.add_argument("--seconds", type=float, nargs="+", default=[60.0, 600.0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--memory", type=float, nargs="*", help="also measure peak RSS for these lengths (s)")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    models = args.model or ["nmf"]
    import torch

    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads\n")
    rows = [row for model in models for row in time_model(model, args.seconds, args.runs, args.device)]
    print("| model | device | audio (s) | median (s) | min–max (s) | x realtime | notes |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['device']} | {r['audio_s']:.0f} | {r['median_s']} | "
              f"{r['min_s']}–{r['max_s']} | {r['x_realtime']} | {r['notes']} |")
    memory = [peak_memory(m, s, args.device) for m in models for s in (args.memory or [])]
    if memory:
        print("\n| model | audio (s) | audio array (MB) | peak RSS (MB) | wall (s) |")
        print("|---|---:|---:|---:|---:|")
        for r in memory:
            print(f"| {r['model']} | {r['audio_s']:.0f} | {r['audio_array_mb']} | {r['peak_rss_mb']} | {r['wall_s']} |")
    if args.json:
        args.json.write_text(json.dumps({"speed": rows, "memory": memory}, indent=2))


if __name__ == "__main__":
    main()
