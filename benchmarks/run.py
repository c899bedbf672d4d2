"""Whole-command benchmark of ``transcribe``: speed, peak memory, start-up, ``--help``, batches.

Usage (from the repository root):

    python benchmarks/run.py                      # the full set (slow: 60-minute inputs)
    python benchmarks/run.py --quick              # a smaller set (30 s and 5 min, 3 runs)
    python benchmarks/run.py --runs 5 --lengths 30 300 --models piano nmf --batch-files 200
    python benchmarks/run.py --models piano@torch piano@onnx   # one model on each runtime

Every figure is a fresh ``python -m transcribe_cli`` process timed from the outside, the way a
user runs it. Inputs are the bundled example recording (``examples/pop909_003.flac``) looped
to each length and cached (``--cache``). For each input length, each run goes through every
model in turn (A B C A B C ...) so that the models share the machine's load; the figures are
medians over ``--runs``. Peak RSS is the largest single process's ``ru_maxrss`` (from
``wait4``, so a worker's own peak with ``--jobs N``) and, polled from ``/proc`` every 50 ms,
the peak of the sum over the process tree. When the basic-pitch / transkun adapter plugins
are installed they are measured in the same run and every model gets a wall-time ratio
against them. Writes ``results.json`` and ``results.md`` (with the exact command and the load
average) into ``--out``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "pop909_003.flac"
BUNDLED = ("piano", "nmf", "hppnet")
#: adapter plugin distribution -> model name
PEERS = {"transcribe-basic-pitch": "basic-pitch", "transcribe-transkun": "transkun"}
TARGETS = {
    "peak_rss_mb": 300.0, "rss_flat_fraction": 0.10, "nmf_x_realtime_300": 100.0,
    "piano_x_realtime_300": 50.0, "help_s": 0.3, "batch_x_realtime": 30.0,
}


def installed_peers() -> list[str]:
    names = []
    for dist, model in PEERS.items():
        try:
            importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
        names.append(model)
    return names


def cached_input(cache: Path, seconds: float) -> Path:
    """The example recording looped to ``seconds`` (FLAC, its own sample rate), made once."""
    path = cache / f"example_{seconds:g}s.flac"
    if not path.exists():
        import numpy as np
        import soundfile as sf

        audio, rate = sf.read(EXAMPLE, dtype="float32")
        n = int(round(seconds * rate))
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.flac")
        with sf.SoundFile(tmp, "w", rate, 1, format="FLAC", subtype="PCM_16") as out:
            written = 0
            while written < n:  # block writes: an hour is never whole in memory
                block = audio[: n - written]
                out.write(block)
                written += len(block)
        tmp.replace(path)
    return path


def batch_folder(cache: Path, files: int, seconds: float) -> Path:
    """``files`` clips of ``seconds`` each, cut from the example at different offsets."""
    folder = cache / f"batch_{files}x{seconds:g}s"
    if not folder.exists() or len(list(folder.glob("*.flac"))) != files:
        import numpy as np
        import soundfile as sf

        audio, rate = sf.read(EXAMPLE, dtype="float32")
        n = int(round(seconds * rate))
        looped = np.concatenate([audio, audio])
        tmp = folder.with_name(folder.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        for i in range(files):
            start = (i * rate) % len(audio)
            sf.write(tmp / f"clip_{i:04d}.flac", looped[start : start + n], rate, subtype="PCM_16")
        if folder.exists():
            for p in folder.iterdir():
                p.unlink()
            folder.rmdir()
        tmp.rename(folder)
    return folder


def model_options(model: str) -> list[str]:
    """``--model`` (and ``--runtime``) for a benchmarked model: ``piano`` or ``piano@onnx``
    (the same model forced onto one runtime, ``transcribe --runtime``)."""
    name, _, runtime = model.partition("@")
    return ["--model", name] + (["--runtime", runtime] if runtime else [])


def _tree_rss_kb(pid: int) -> int:
    """Resident memory (kB) of ``pid`` and its descendants, from /proc (0 where unreadable)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            continue
    return total


def measure(argv: list[str], env: dict[str, str]) -> dict:
    """Run ``argv`` to completion: wall seconds, CPU seconds (user + system, the process tree),
    largest process's peak RSS, tree peak RSS."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_tree = [0]
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            peak_tree[0] = max(peak_tree[0], _tree_rss_kb(proc.pid))
            done.wait(0.05)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    poller.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} exited {proc.returncode}:\n{stderr.decode()[-2000:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": usage.ru_maxrss / 1024, "peak_tree_rss_mb": peak_tree[0] / 1024}


def summarise(samples: list[dict], audio_s: float | None) -> dict:
    walls = [s["wall_s"] for s in samples]
    row = {
        "runs": len(samples),
        "wall_s": round(statistics.median(walls), 3),
        "wall_min_s": round(min(walls), 3),
        "wall_max_s": round(max(walls), 3),
        "cpu_s": round(statistics.median(s["cpu_s"] for s in samples), 3),
        "peak_rss_mb": round(max(s["peak_rss_mb"] for s in samples), 1),
        "peak_tree_rss_mb": round(max(s["peak_tree_rss_mb"] for s in samples), 1),
    }
    if audio_s:
        row["audio_s"] = audio_s
        row["x_realtime"] = round(audio_s / row["wall_s"], 2)
    return row


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_benchmark(args: argparse.Namespace) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    cli = [sys.executable, "-m", "transcribe_cli"]
    peers = [] if args.no_peers else [p for p in installed_peers() if p not in args.skip]
    models = [m for m in args.models if m not in args.skip] + [p for p in peers if p not in args.models]
    out_dir = Path(args.cache) / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict = {
        "command": shlex.join([sys.executable, "benchmarks/run.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "load_start": load(), "models": models, "peers": peers, "targets": TARGETS,
        "help": {}, "startup": {}, "files": [], "batch": [], "ratios": [],
    }
    partial = Path(args.out) / f"{args.name}.partial.json"

    def log(line: str) -> None:  # progress, and what is measured so far (a long run may be cut short)
        if not args.silent:
            print(line, flush=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(result, indent=2) + "\n")

    # --help: the import path a user pays before any work
    samples = [measure([*cli, "--help"], env) for _ in range(args.runs)]
    result["help"] = summarise(samples, None) | {"cmd": shlex.join(["transcribe", "--help"]), "load": load()}
    log(f"help: {result['help']['wall_s']} s")

    def transcribe_argv(model: str, source: Path, tempo: str | None, extra=()) -> list[str]:
        argv = [*cli, str(source), "-o", str(out_dir / f"{model}.mid"), *model_options(model), "-q", "--overwrite"]
        if tempo:
            argv += ["--tempo", tempo]
        return [*argv, *extra]

    tempos = args.tempo
    # start-up: the whole command on a 1-second clip (imports, weights, filter banks, writing)
    startup_input = cached_input(Path(args.cache), 1)
    for model in models:
        samples = [measure(transcribe_argv(model, startup_input, "none"), env) for _ in range(args.startup_runs)]
        result["startup"][model] = summarise(samples, None) | {"load": load()}
        log(f"startup {model}: {result['startup'][model]['wall_s']} s")

    for seconds in args.lengths:
        source = cached_input(Path(args.cache), seconds)
        for n_tempo, tempo in enumerate(tempos):
            run_models = [m for m in models if seconds <= args.max_seconds.get(m, float("inf"))
                          and (n_tempo == 0 or ((not args.tempo_models or m in args.tempo_models)
                                               and seconds <= args.tempo_max_seconds))]
            runs = args.runs if seconds <= args.long_from else args.long_runs
            collected: dict[str, list[dict]] = {m: [] for m in run_models}
            for _ in range(runs):  # interleaved: A B C A B C ...
                for model in run_models:
                    collected[model].append(measure(transcribe_argv(model, source, tempo), env))
            for model in run_models:
                row = {"model": model, "tempo": tempo, "input": source.name} | summarise(collected[model], seconds)
                row["load"] = load()
                row["cmd"] = shlex.join(["transcribe", source.name, "-o", "out.mid", *model_options(model), "-q"]
                                        + (["--tempo", tempo] if tempo else []))
                result["files"].append(row)
                log(f"{seconds:g}s {model} tempo={tempo}: {row['wall_s']} s, {row['x_realtime']}x, {row['peak_rss_mb']} MB")
            for peer in peers:
                if peer not in collected:
                    continue
                for model in run_models:
                    if model == peer:
                        continue
                    a = statistics.median(s["wall_s"] for s in collected[model])
                    b = statistics.median(s["wall_s"] for s in collected[peer])
                    result["ratios"].append({"audio_s": seconds, "tempo": tempo, "model": model, "peer": peer,
                                             "wall_ratio": round(a / b, 2)})

    if args.batch_files:
        folder = batch_folder(Path(args.cache), args.batch_files, args.batch_seconds)
        audio_s = args.batch_files * args.batch_seconds
        for model in [m for m in args.batch_models if m in models]:
            collected = {j: [] for j in args.jobs}
            for _ in range(args.batch_runs):
                for jobs in args.jobs:
                    argv = [*cli, str(folder), "-o", str(out_dir / f"batch_{model}_{jobs}") + "/", *model_options(model),
                            "-q", "--overwrite", "--jobs", str(jobs), "--tempo", args.batch_tempo]
                    collected[jobs].append(measure(argv, env))
            for jobs in args.jobs:
                row = {"model": model, "jobs": jobs, "files": args.batch_files, "clip_s": args.batch_seconds,
                       "tempo": args.batch_tempo} | summarise(collected[jobs], audio_s)
                row["per_file_s"] = round(row["wall_s"] / args.batch_files, 4)
                row["load"] = load()
                row["cmd"] = shlex.join(["transcribe", folder.name + "/", "-o", "out/", *model_options(model), "-q",
                                         "--jobs", str(jobs), "--tempo", args.batch_tempo])
                result["batch"].append(row)
                log(f"batch {model} jobs={jobs}: {row['wall_s']} s, {row['x_realtime']}x, {row['peak_rss_mb']} MB/worker")
    result["load_end"] = load()
    result["checks"] = checks(result)
    return result


def checks(result: dict) -> list[dict]:
    """Each target against today's figure (``ok`` is None where the run did not measure it)."""
    out = []

    def add(name: str, value, target: str, ok) -> None:
        out.append({"target": name, "value": value, "goal": target, "ok": ok})

    add("transcribe --help (s)", result["help"].get("wall_s"), f"<= {TARGETS['help_s']}",
        result["help"].get("wall_s", 1e9) <= TARGETS["help_s"])
    for model in [m for m in result["models"] if m not in result["peers"]]:  # targets are for ours
        rows = [r for r in result["files"] if r["model"] == model]
        if not rows:
            continue
        longest = max(rows, key=lambda r: (r["audio_s"], r["peak_rss_mb"]))  # the larger of its --tempo runs
        add(f"{model}: peak RSS on {longest['audio_s']:g} s (MB)", longest["peak_rss_mb"],
            f"<= {TARGETS['peak_rss_mb']:g}", longest["peak_rss_mb"] <= TARGETS["peak_rss_mb"])
        tempos = sorted({r["tempo"] or "default" for r in rows})  # None: no --tempo, the default auto
        for tempo in tempos:  # growth in file length with the same --tempo (auto tracks beats: more work)
            same = [r for r in rows if (r["tempo"] or "default") == tempo]
            shortest, longest_here = (f(same, key=lambda r: r["audio_s"]) for f in (min, max))
            if longest_here["audio_s"] > shortest["audio_s"]:
                growth = longest_here["peak_rss_mb"] / shortest["peak_rss_mb"] - 1
                label = f"{model}{f' (tempo {tempo})' if len(tempos) > 1 else ''}"
                add(f"{label}: RSS growth {shortest['audio_s']:g} s -> {longest_here['audio_s']:g} s", round(growth, 3),
                    f"<= {TARGETS['rss_flat_fraction']:g}", growth <= TARGETS["rss_flat_fraction"])
        key = f"{model.partition('@')[0]}_x_realtime_300"
        five = [r for r in rows if r["audio_s"] == 300]
        if key in TARGETS and five:
            best = max(r["x_realtime"] for r in five)
            add(f"{model}: x real time on 300 s", best, f">= {TARGETS[key]:g}", best >= TARGETS[key])
    for row in result["batch"]:
        add(f"{row['model']}: batch {row['files']}x{row['clip_s']:g} s --jobs {row['jobs']} (x real time)",
            row["x_realtime"], f">= {TARGETS['batch_x_realtime']:g}", row["x_realtime"] >= TARGETS["batch_x_realtime"])
        if row["jobs"] > 1:
            add(f"{row['model']}: RSS per worker, --jobs {row['jobs']} (MB)", row["peak_rss_mb"],
                f"<= {TARGETS['peak_rss_mb']:g}", row["peak_rss_mb"] <= TARGETS["peak_rss_mb"])
    return out


def markdown(result: dict) -> str:
    lines = [
        "# Whole-command benchmark (`benchmarks/run.py`)", "",
        f"Command: `{result['command']}`", "",
        f"Date {result['date']}; {result['machine']['platform']}, {result['machine']['cpus']} CPUs, "
        f"Python {result['machine']['python']}; load average (1/5/15 min) {result['load_start']} at the start, "
        f"{result['load_end']} at the end. Models: {', '.join(result['models'])}"
        + (f" (peers: {', '.join(result['peers'])})" if result["peers"] else " (no peer plugins installed)") + ".",
        "", "Each figure is a fresh `python -m transcribe_cli` process, median wall time over the runs; "
        "runs interleave the models (A B C A B C). CPU: user + system seconds of the process tree "
        "(less sensitive to other load than wall time). Peak RSS: the largest single process (`wait4` "
        "`ru_maxrss`; per worker with `--jobs N`) and the polled sum over the process tree.", "",
        "## `transcribe --help` and start-up", "",
        "| what | runs | median (s) | min–max (s) | CPU (s) | peak RSS (MB) | load |", "|---|---:|---:|---:|---:|---:|---|",
    ]
    h = result["help"]
    lines.append(f"| `transcribe --help` | {h['runs']} | {h['wall_s']} | {h['wall_min_s']}–{h['wall_max_s']} | "
                 f"{h['cpu_s']} | {h['peak_rss_mb']} | {h['load']} |")
    for model, s in result["startup"].items():
        lines.append(f"| start-up: `{model}` on a 1 s clip, `--tempo none` | {s['runs']} | {s['wall_s']} | "
                     f"{s['wall_min_s']}–{s['wall_max_s']} | {s['cpu_s']} | {s['peak_rss_mb']} | {s['load']} |")
    lines += ["", "## Single files", "",
              "| model | audio (s) | tempo | runs | median (s) | min–max (s) | CPU (s) | × real time | peak RSS (MB) | tree RSS (MB) | load |",
              "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in result["files"]:
        lines.append(f"| {r['model']} | {r['audio_s']:g} | {r['tempo'] or 'default'} | {r['runs']} | {r['wall_s']} | "
                     f"{r['wall_min_s']}–{r['wall_max_s']} | {r['cpu_s']} | {r['x_realtime']} | {r['peak_rss_mb']} | "
                     f"{r['peak_tree_rss_mb']} | {r['load']} |")
    if result["ratios"]:
        lines += ["", "## Against the peers (same run, wall-time ratio model / peer; > 1 is slower)", "",
                  "| audio (s) | tempo | model | peer | ratio |", "|---:|---|---|---|---:|"]
        for r in result["ratios"]:
            lines.append(f"| {r['audio_s']:g} | {r['tempo'] or 'default'} | {r['model']} | {r['peer']} | {r['wall_ratio']} |")
    if result["batch"]:
        lines += ["", "## Batches of short clips", "",
                  "| model | files × clip | jobs | runs | median (s) | per file (s) | CPU (s) | × real time | RSS per worker (MB) | tree RSS (MB) | load |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in result["batch"]:
            lines.append(f"| {r['model']} | {r['files']} × {r['clip_s']:g} s | {r['jobs']} | {r['runs']} | {r['wall_s']} | "
                         f"{r['per_file_s']} | {r['cpu_s']} | {r['x_realtime']} | {r['peak_rss_mb']} | {r['peak_tree_rss_mb']} | {r['load']} |")
    lines += ["", "## Targets (issue 11)", "", "| target | today | goal | met |", "|---|---:|---|---|"]
    for c in result["checks"]:
        lines.append(f"| {c['target']} | {c['value']} | {c['goal']} | {'yes' if c['ok'] else 'no'} |")
    lines += ["", "Exact commands (`transcribe` is `python -m transcribe_cli` with `PYTHONPATH=src`):", ""]
    cmds = [f"- `{result['help']['cmd']}`"]
    cmds += [f"- `{r['cmd']}`" for r in result["files"] + result["batch"]]
    lines += list(dict.fromkeys(cmds))
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="runs per figure (median; default 5)")
    p.add_argument("--quick", action="store_true",
                   help="a smaller set: 30 s and 5 min inputs, 3 runs, 1 run above 5 min, a 50-file batch")
    p.add_argument("--lengths", type=float, nargs="*", help="input lengths in seconds (default 30 300 3600)")
    p.add_argument("--long-from", type=float, default=300, help="inputs longer than this get --long-runs runs")
    p.add_argument("--long-runs", type=int, help="runs for the long inputs (default --runs)")
    p.add_argument("--models", nargs="+", default=list(BUNDLED),
                   help="models (peers are added when installed); MODEL@RUNTIME pins --runtime (piano@torch piano@onnx)")
    p.add_argument("--skip", nargs="*", default=[], help="models to leave out (also peers)")
    p.add_argument("--no-peers", action="store_true", help="do not add the installed peer plugins")
    p.add_argument("--max-seconds", nargs="*", default=["transkun=30"], metavar="MODEL=S",
                   help="longest input a model is run on (default transkun=30: it is very slow on a CPU)")
    p.add_argument("--tempo", nargs="+", default=["none", "auto"],
                   help="--tempo values to run each file with (default: none, then the default auto)")
    p.add_argument("--tempo-models", nargs="*", default=[],
                   help="only these models are run with the second and later --tempo values (default: all)")
    p.add_argument("--tempo-max-seconds", type=float, default=float("inf"),
                   help="longest input run with the second and later --tempo values")
    p.add_argument("--startup-runs", type=int, help="runs of the 1 s start-up figure (default --runs)")
    p.add_argument("--batch-files", type=int, default=200)
    p.add_argument("--batch-seconds", type=float, default=4.0)
    p.add_argument("--batch-models", nargs="+", default=["piano", "nmf"])
    p.add_argument("--batch-runs", type=int, help="runs per batch figure (default --runs)")
    p.add_argument("--batch-tempo", default="none")
    p.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--cache", default=str(ROOT / "benchmarks" / ".cache"), help="generated inputs and outputs")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for results.json/.md")
    p.add_argument("--name", default="results", help="file stem of the JSON/Markdown (default results)")
    p.add_argument("--silent", action="store_true")
    p.add_argument("--rewrite", metavar="JSON", help="rewrite the JSON's checks and Markdown without measuring")
    args = p.parse_args(argv)
    if args.quick:
        args.runs = 3 if args.runs == 5 else args.runs
        args.lengths = [30, 300] if args.lengths is None else args.lengths
        args.long_runs = args.long_runs or 1
        args.batch_files = 50 if args.batch_files == 200 else args.batch_files
    args.lengths = [30, 300, 3600] if args.lengths is None else args.lengths
    args.long_runs = args.long_runs or args.runs
    args.startup_runs = args.startup_runs or args.runs
    args.batch_runs = args.batch_runs or args.runs
    args.max_seconds = {k: float(v) for k, v in (item.split("=", 1) for item in args.max_seconds)}
    args.tempo = [None if t == "auto" else t for t in args.tempo]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rewrite:  # the Markdown (and checks) again from a results JSON, nothing measured
        result = json.loads(Path(args.rewrite).read_text())
        result["checks"] = checks(result)
    else:
        result = run_benchmark(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{args.name}.md").write_text(markdown(result))
    (out / f"{args.name}.partial.json").unlink(missing_ok=True)
    print(f"wrote {out / (args.name + '.json')} and {out / (args.name + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
