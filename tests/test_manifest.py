"""The run manifest (``OUT/transcribe-manifest*.jsonl``) and ``--resume``."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import soundfile as sf

from conftest import piano_tone
from transcribe_cli.batch import Job, JobResult
from transcribe_cli.manifest import RunManifest, manifest_path, read_manifests

SR = 16000
IDENTITY = {"model": "m", "model_options": {"a": 1}, "frontend": "f", "decoder": "d", "decoder_options": {},
            "weights": None, "weights_sha256": None, "format": "mid", "transcribe_cli": "0"}


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_result_is_on_disk_before_it_is_reported(tmp_path):
    (tmp_path / "in").mkdir()
    seen = []
    with RunManifest(tmp_path, identity=IDENTITY, inputs=[tmp_path / "in"]) as manifest:
        report = manifest.recording(lambda result: seen.append(len(lines(manifest.path))))
        report(JobResult(Job(tmp_path / "in" / "a.wav", tmp_path / "a.mid"), "ok", notes=3, seconds=0.5))
        report(JobResult(Job(tmp_path / "in" / "b.wav", tmp_path / "b.mid"), "failed", error="corrupt"))
        report(JobResult(Job(tmp_path / "in" / "c.wav", tmp_path / "c.mid"), "skipped"))  # nothing done: no line
    assert seen == [1, 2, 2]
    first, second = lines(tmp_path / "transcribe-manifest.jsonl")
    assert (first["input"], first["key"], first["output"], first["status"], first["notes"]) == (
        str(tmp_path / "in" / "a.wav"), "a.wav", "a.mid", "ok", 3)
    assert second["status"] == "failed" and second["error"] == "corrupt"
    assert first["model"] == "m" and first["model_options"] == {"a": 1} and first["run"] == second["run"]


def _append_many(path: str, writer: int, count: int) -> None:
    folder = Path(path)
    with RunManifest(folder, identity=IDENTITY, inputs=[]) as manifest:
        for i in range(count):
            # long lines, so an interleaved write would show as broken JSON
            manifest.record(JobResult(Job(Path(f"w{writer}-{i}.wav"), folder / f"w{writer}-{i}.mid"), "failed",
                                      error="x" * 5000))


def test_several_processes_append_whole_lines(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), w, 60)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    records = lines(tmp_path / "transcribe-manifest.jsonl")  # every line parses
    assert sorted(r["output"] for r in records) == sorted(f"w{w}-{i}.mid" for w in range(3) for i in range(60))


def test_a_line_cut_short_by_a_crash_is_ignored(tmp_path):
    good = {"output": "a.mid", "status": "ok"}
    (tmp_path / "transcribe-manifest.jsonl").write_text(json.dumps(good) + "\n" + '{"output": "b.mid", "sta')
    (tmp_path / "transcribe-manifest.shard-0-of-2.jsonl").write_text("[1, 2]\n\n" + json.dumps(good) + "\n")
    assert [r["output"] for r in read_manifests(tmp_path)] == ["a.mid", "a.mid"]


def make_inputs(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        sf.write(folder / f"{i}.wav", piano_tone(55 + i, 0.3, SR), SR)


def test_resume_skips_only_verified_outputs_of_the_same_model(cli, tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    make_inputs(src, 5)
    first = cli(src, "-o", out, "-q")
    assert first.exit_code == 0, first.stderr
    manifest = out / "transcribe-manifest.jsonl"
    assert len(lines(manifest)) == 5
    (out / "1.mid").unlink()                       # lost
    (out / "2.mid").write_bytes(b"MThd garbage")   # does not parse
    with open(manifest, "a") as handle:            # a crash mid-line
        handle.write('{"output": "3.mid", "status": "fai')
    kept = {name: (out / name).stat().st_mtime_ns for name in ("0.mid", "3.mid", "4.mid")}

    resumed = cli(src, "-o", out, "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert "resuming: 3 of 5 files already done" in resumed.stderr
    assert {name: (out / name).stat().st_mtime_ns for name in kept} == kept  # untouched
    records = list(read_manifests(out))
    assert len(records) == 7 and [r["output"] for r in records[5:]] == ["1.mid", "2.mid"]
    assert all(r["status"] == "ok" for r in records[5:]) and records[5]["run"] != records[0]["run"]

    # another decoder setting is another result: nothing is skipped
    other = cli(src, "-o", out, "--resume", "-O", "onset_threshold=0.6", "-q")
    assert other.exit_code == 0, other.stderr
    assert len(list(read_manifests(out))) == 12
    assert {r["decoder_options"]["onset_threshold"] for r in list(read_manifests(out))[7:]} == {0.6}

    # a re-recorded input (another size) is transcribed again
    sf.write(src / "4.wav", piano_tone(70, 0.6, SR), SR)
    again = cli(src, "-o", out, "--resume", "-O", "onset_threshold=0.6", "-q")
    assert again.exit_code == 0, again.stderr
    assert [r["output"] for r in read_manifests(out)][12:] == ["4.mid"]


def test_resume_needs_an_output_folder(cli, tmp_path):
    make_inputs(tmp_path / "in", 1)
    for args in ([], ["-o", tmp_path / "x.mid"]):
        result = cli(tmp_path / "in" / "0.wav", *args, "--resume")
        assert result.exit_code == 2
        assert result.stderr.strip().splitlines() == [
            "error: --resume needs -o FOLDER: the run manifest is kept there (add -o OUTPUT_FOLDER)"]


def test_no_manifest_for_a_single_output_file(cli, tmp_path):
    make_inputs(tmp_path / "in", 1)
    assert cli(tmp_path / "in" / "0.wav", "-o", tmp_path / "x.mid").exit_code == 0
    assert sorted(os.listdir(tmp_path)) == ["in", "x.mid"]
    assert manifest_path(tmp_path).name == "transcribe-manifest.jsonl"
