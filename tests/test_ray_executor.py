"""``--executor ray``: a local Ray cluster gives the local executor's outputs, even when a worker dies."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
import soundfile as sf

from conftest import piano_tone

SR = 16000


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    return lines[0]


def test_missing_ray_is_one_line(cli, tmp_path, monkeypatch):
    sf.write(tmp_path / "a.wav", piano_tone(60, 0.3, SR), SR)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    result = cli(tmp_path / "a.wav", "-o", f"{tmp_path}/out/", "--executor", "ray")
    assert result.exit_code == 2
    line = one_error_line(result.stderr)
    assert "--executor ray needs Ray" in line and "pip install 'transcribe-cli[ray]'" in line
    assert not (tmp_path / "out").exists()  # failed before any work


def test_unknown_executor(cli, tmp_path):
    sf.write(tmp_path / "a.wav", piano_tone(60, 0.3, SR), SR)
    result = cli(tmp_path / "a.wav", "--executor", "dask")
    assert result.exit_code == 2
    assert "unknown executor 'dask'" in one_error_line(result.stderr)


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster on 127.0.0.1 with 2 CPUs, shared by this module's tests."""
    ray = pytest.importorskip("ray")
    import logging

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
             _node_ip_address="127.0.0.1")
    yield ray
    ray.shutdown()


def _kill_first_worker(manifest: Path, state: dict, stop: threading.Event) -> None:
    """Once the first file is recorded, SIGKILL the Ray actor that did it (mid-run)."""
    deadline = time.monotonic() + 300
    while not stop.is_set() and time.monotonic() < deadline:
        if manifest.exists():
            records = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
            if records:
                pid = int(records[0]["worker"].rsplit(":", 1)[1])
                os.kill(pid, signal.SIGKILL)
                state.update(pid=pid, recorded_at_kill=len(records))
                return
        time.sleep(0.02)


@pytest.fixture(scope="module")
def collection(tmp_path_factory, ray_cluster):
    """20 short recordings in a folder tree, and what the local executor makes of them."""
    from transcribe_cli.cli import main

    root = tmp_path_factory.mktemp("ray")
    src, local = root / "in", root / "local"
    (src / "sub").mkdir(parents=True)
    for i in range(20):
        rel = f"sub/{i:02d}.wav" if i % 4 == 0 else f"{i:02d}.wav"
        sf.write(src / rel, piano_tone(40 + 2 * i, 0.3, SR), SR)
    with pytest.raises(SystemExit) as done:
        main([str(src), "-o", str(local), "-q"])
    assert done.value.code in (0, None)
    return src, local


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*.mid")}


def records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "transcribe-manifest.jsonl").read_text().splitlines()]


def check_same_as_local(remote: Path, local: Path) -> list[dict]:
    expected = files(local)
    assert len(expected) == 20 and files(remote) == expected  # nothing lost, byte-identical
    made = records(remote)
    assert sorted(r["output"] for r in made) == sorted(expected)  # each file recorded once
    assert all(r["status"] == "ok" and r["worker"] for r in made)
    same = ("model", "model_options", "decoder", "decoder_options", "weights_sha256", "format")
    assert {tuple(json.dumps(r[k], sort_keys=True) for k in same) for r in made + records(local)} == {
        tuple(json.dumps(made[0][k], sort_keys=True) for k in same)}
    assert not [p for p in remote.rglob(".*") if p.is_file()]  # no temporary files left
    return made


def test_ray_gives_the_local_outputs(cli, tmp_path, collection):
    src, local = collection
    remote = tmp_path / "ray"
    done = cli(src, "-o", remote, "--executor", "ray", "--jobs", "2", "-q")
    assert done.exit_code == 0, done.stderr
    check_same_as_local(remote, local)
    # --resume on Ray: nothing left to do, so no actor is started
    again = cli(src, "-o", remote, "--executor", "ray", "--resume")
    assert again.exit_code == 0, again.stderr
    assert "resuming: 20 of 20 files already done" in again.stderr


@pytest.mark.slow  # an actor restart on top of the run: over a minute on 2 busy cores
def test_a_killed_ray_worker_loses_and_duplicates_nothing(cli, tmp_path, collection):
    src, local = collection
    remote = tmp_path / "ray"
    state: dict = {}
    stop = threading.Event()
    killer = threading.Thread(target=_kill_first_worker, args=(remote / "transcribe-manifest.jsonl", state, stop))
    killer.start()
    try:
        done = cli(src, "-o", remote, "--executor", "ray", "--jobs", "2", "-q")
    finally:
        stop.set()
        killer.join()
    assert done.exit_code == 0, done.stderr
    assert "pid" in state and state["recorded_at_kill"] < 20, state  # the kill happened mid-run
    made = check_same_as_local(remote, local)
    assert any(r["worker"].endswith(f":{state['pid']}") for r in made)


@pytest.mark.slow  # four actor restarts
def test_a_file_that_kills_its_worker_every_time_fails_alone(cli, tmp_path, ray_cluster):
    from conftest import ROOT

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(3):
        sf.write(src / f"low{i}.wav", piano_tone(60 + i, 0.3, SR), SR)
    sf.write(src / "high.wav", piano_tone(100, 0.3, SR), SR)
    done = cli("--plugins-dir", ROOT / "tests" / "fixtures" / "ray_plugins", src, "-o", out,
               "--model", "crash-on-high", "--executor", "ray", "--jobs", "1")
    assert done.exit_code == 1, done.stderr
    made = {r["output"]: r for r in records(out)}
    assert sorted(made) == ["high.mid", "low0.mid", "low1.mid", "low2.mid"]
    assert made["high.mid"]["status"] == "failed" and "lost on Ray" in made["high.mid"]["error"], made
    assert all(made[f"low{i}.mid"]["status"] == "ok" for i in range(3)), made
    assert not (out / "high.mid").exists()
