"""The whole-command benchmark runner (``benchmarks/run.py``): its JSON and Markdown shape."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _runner():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sample(wall):
    return {"wall_s": wall, "cpu_s": wall, "peak_rss_mb": 250.0, "peak_tree_rss_mb": 260.0}


def test_markdown_and_checks_from_a_result():
    run = _runner()
    row = run.summarise([_sample(1.0), _sample(3.0), _sample(2.0)], 300)
    assert row["wall_s"] == 2.0 and row["x_realtime"] == 150.0 and row["runs"] == 3
    result = {
        "command": "python benchmarks/run.py --quick", "date": "today", "load_start": "1 1 1", "load_end": "1 1 1",
        "machine": {"platform": "linux", "cpus": 2, "python": "3.11"}, "models": ["nmf", "basic-pitch"],
        "peers": ["basic-pitch"], "targets": run.TARGETS,
        "help": run.summarise([_sample(0.2)], None) | {"cmd": "transcribe --help", "load": "1 1 1"},
        "startup": {"nmf": run.summarise([_sample(2.0)], None) | {"load": "1 1 1"}},
        "files": [{"model": "nmf", "tempo": "none", "input": "x.flac", "load": "1", "cmd": "transcribe x.flac"} | row],
        "batch": [], "ratios": [{"audio_s": 300, "tempo": "none", "model": "nmf", "peer": "basic-pitch", "wall_ratio": 0.5}],
    }
    result["checks"] = run.checks(result)
    goals = {c["target"]: c["ok"] for c in result["checks"]}
    assert goals["transcribe --help (s)"] is True
    assert goals["nmf: x real time on 300 s"] is True
    assert not any(name.startswith("basic-pitch") for name in goals)  # targets are for our models
    # RSS growth is per --tempo mode (auto's beat tracking is extra work, not growth)
    def sized(seconds, tempo, rss):
        return {**result["files"][0], "audio_s": seconds, "tempo": tempo, "peak_rss_mb": rss}

    grown = {**result, "files": [sized(60, "none", 80.0), sized(3600, "none", 84.0),
                                 sized(60, None, 82.0), sized(3600, None, 95.0)]}
    checks = {c["target"]: (c["value"], c["ok"]) for c in run.checks(grown)}
    assert checks["nmf (tempo none): RSS growth 60 s -> 3600 s"] == (0.05, True)
    assert checks["nmf (tempo default): RSS growth 60 s -> 3600 s"] == (round(95 / 82 - 1, 3), False)
    text = run.markdown(result)
    for heading in ("## `transcribe --help` and start-up", "## Single files", "## Against the peers", "## Targets"):
        assert heading in text
    assert "python benchmarks/run.py --quick" in text and "`transcribe x.flac`" in text


def test_a_model_can_be_pinned_to_a_runtime():
    """``piano@onnx`` runs ``--model piano --runtime onnx`` and is checked against piano's targets."""
    run = _runner()
    assert run.model_options("piano") == ["--model", "piano"]
    assert run.model_options("piano@onnx") == ["--model", "piano", "--runtime", "onnx"]
    row = run.summarise([_sample(5.0)], 300)
    result = {"help": {"wall_s": 0.1}, "models": ["piano@torch", "piano@onnx"], "peers": [], "batch": [],
              "files": [{"model": m, "tempo": "none"} | row for m in ("piano@torch", "piano@onnx")]}
    goals = {c["target"]: c["value"] for c in run.checks(result)}
    assert goals["piano@onnx: x real time on 300 s"] == 60.0 and "piano@torch: x real time on 300 s" in goals


@pytest.mark.slow
def test_smallest_run_writes_json_and_markdown(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--runs", "1", "--lengths", "1", "--models", "nmf",
         "--no-peers", "--tempo", "none", "--batch-files", "2", "--batch-seconds", "1", "--batch-models", "nmf",
         "--jobs", "1", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out"), "--silent"],
        check=True, env=env, cwd=ROOT,
    )
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    assert result["help"]["runs"] == 1 and result["startup"]["nmf"]["wall_s"] > 0
    (row,) = result["files"]
    assert row["model"] == "nmf" and row["audio_s"] == 1 and row["peak_rss_mb"] > 0 and row["cpu_s"] > 0
    (batch,) = result["batch"]
    assert batch["jobs"] == 1 and batch["files"] == 2
    assert "## Batches of short clips" in (tmp_path / "out" / "results.md").read_text()
    assert not (tmp_path / "out" / "results.partial.json").exists()
