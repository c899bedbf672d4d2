"""Batch throughput: ``--jobs N`` worker processes against ``--executor ray`` with N actors.

Usage (from the repository root; Ray from ``pip install -e '.[ray]'``):

    python benchmarks/bench_scale_out.py [--files 200] [--seconds 2] [--jobs 2] [--json r.json]

Cuts the bundled example recording into ``--files`` clips of ``--seconds`` each (real music,
written as 16 kHz WAV), then times ``transcribe CLIPS -o OUT --jobs N -q`` and the same with
``--executor ray`` (a new local Ray cluster), each in a fresh process, as a user would run them.
Reports, per executor: the wall time of the whole command (start-up included), files per hour,
files per hour per core, and the steady rate between the first and the last file the run
manifest records (start-up excluded); and checks that both produced byte-identical outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "pop909_003.flac"
SR = 16000


def make_clips(folder: Path, files: int, seconds: float) -> float:
    import numpy as np
    import soundfile as sf

    from transcribe_cli.io.audio import load_audio

    audio = load_audio(EXAMPLE, SR)
    length = int(seconds * SR)
    reps = int(np.ceil(files * length / len(audio)))
    audio = np.tile(audio, reps)
    for i in range(files):
        sub = folder / f"part{i // 50}"
        sub.mkdir(parents=True, exist_ok=True)
        sf.write(sub / f"clip{i:04d}.wav", audio[i * length:(i + 1) * length], SR)
    return files * seconds


def steady_rate(manifest: Path) -> float | None:
    """Files per second between the first and the last finished file of a run."""
    finished = sorted(datetime.fromisoformat(json.loads(line)["finished"]).timestamp()
                      for line in manifest.read_text().splitlines() if line.strip())
    if len(finished) < 2 or finished[-1] <= finished[0]:
        return None
    return (len(finished) - 1) / (finished[-1] - finished[0])


def run(executor: str, clips: Path, out: Path, jobs: int) -> dict:
    command = [sys.executable, "-m", "transcribe_cli", str(clips), "-o", str(out), "--jobs", str(jobs), "-q"]
    if executor == "ray":
        command += ["--executor", "ray"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{executor} run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    files = len(list(out.rglob("*.mid")))
    rate = steady_rate(out / "transcribe-manifest.jsonl")
    return {
        "executor": executor, "jobs": jobs, "files": files, "wall_s": round(wall, 1),
        "files_per_hour": round(files / wall * 3600), "files_per_hour_per_core": round(files / wall * 3600 / jobs),
        "steady_files_per_hour": round(rate * 3600) if rate else None,
        "load_before": round(load_before, 1), "load_after": round(os.getloadavg()[0], 1),
        "command": " ".join(["transcribe", "CLIPS", "-o", "OUT", "--jobs", str(jobs), "-q"]
                            + (["--executor", "ray"] if executor == "ray" else [])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each clip")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes / Ray actors")
    parser.add_argument("--executors", nargs="+", default=["local", "ray"], choices=["local", "ray"])
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-scale-out-") as tmp:
        tmp = Path(tmp)
        audio = make_clips(tmp / "clips", args.files, args.seconds)
        rows = [run(executor, tmp / "clips", tmp / executor, args.jobs) for executor in args.executors]
        if len(rows) == 2:
            a, b = ({p.relative_to(tmp / e).as_posix(): p.read_bytes() for p in (tmp / e).rglob("*.mid")}
                    for e in args.executors)
            identical = a == b
        else:
            identical = None
    print(f"{args.files} clips × {args.seconds:g} s = {audio:g} s of audio; {platform.machine()}, "
          f"{os.cpu_count()} cores; outputs identical across executors: {identical}")
    print("| executor | command | wall (s) | files/hour | files/hour/core | steady files/hour | load before→after |")
    print("|---|---|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['executor']} | `{r['command']}` | {r['wall_s']} | {r['files_per_hour']} | "
              f"{r['files_per_hour_per_core']} | {r['steady_files_per_hour']} | {r['load_before']}→{r['load_after']} |")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "identical": identical, "audio_s": audio}, indent=1) + "\n")


if __name__ == "__main__":
    main()
