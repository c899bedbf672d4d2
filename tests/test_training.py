"""``transcribe train``: every model trains, runs resume exactly, Ctrl-C saves, DDP runs,
and the acceptance path train → resume → export ONNX → transcribe."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import SRC, needs_fluidsynth
from training_corpus import make_midi_corpus, make_pairs_corpus
from transcribe_cli.registry import get_registry
from transcribe_cli.training.config import build_config
from transcribe_cli.training.loop import Trainer

#: The smallest architecture of each built-in model (kept small for CI).
SMALL = {
    "hppnet": {"preset": "tiny"},
    "onsets-frames": {"preset": "small"},
}


def trainable_models() -> list[str]:
    return [spec.name for spec in get_registry().specs("model") if spec.trainable]


@pytest.fixture(scope="module")
def pairs_root(tmp_path_factory) -> Path:
    return make_pairs_corpus(tmp_path_factory.mktemp("pairs"), files=3, seconds=3.0)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TRANSCRIBE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    torch.set_num_threads(1)


def quick_config(model: str, root: Path, **overrides):
    flags = {
        "model": model, "architecture": SMALL.get(model, {}), "dataset": "pairs", "root": str(root),
        "train_split": "all", "validation_split": "all", "validation_files": 1, "validation_seconds": 2.0,
        "steps": 2, "batch_size": 2, "segment_seconds": 1.0, "validate_every": 2, "checkpoint_every": 1,
        "log_every": 1, "warmup_steps": 0, "device": "cpu", **overrides,
    }
    return build_config(flags, model_defaults=get_registry().model(model).train_defaults)


def test_the_built_in_neural_models_are_trainable():
    assert {"piano", "hppnet", "onsets-frames", "crnn", "bilstm", "pitchvis-mlp"} <= set(trainable_models())
    assert "nmf" not in trainable_models()


def test_piano_trains_with_its_balanced_loss_weights_unless_told_otherwise(pairs_root):
    from transcribe_cli.models import PIANO_LOSS_WEIGHTS

    config = quick_config("piano", pairs_root)
    assert config.loss_weights == PIANO_LOSS_WEIGHTS
    assert config.loss_weights["onset"] > 10 * config.loss_weights["frame"]
    # a flag or config file still overrides one part and keeps the others
    config = quick_config("piano", pairs_root, loss_weights={"onset": 1.0})
    assert config.loss_weights == {**PIANO_LOSS_WEIGHTS, "onset": 1.0}


@pytest.mark.parametrize("model", ["piano", "hppnet", "onsets-frames", "crnn", "bilstm", "pitchvis-mlp"])
def test_every_model_trains_a_few_steps(model, pairs_root, tmp_path):
    run = tmp_path / "run"
    trainer = Trainer(quick_config(model, pairs_root), run)
    before = {k: v.clone() for k, v in trainer.network.state_dict().items()}
    result = trainer.run()
    assert result.step == 2 and result.stopped == "finished"
    after = torch.load(run / "last.pt", weights_only=True)
    changed = [k for k, v in after["state_dict"].items() if v.dtype.is_floating_point and not torch.equal(v, before[k])]
    assert changed, "no parameter moved"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2]
    assert all(r["loss"] > 0 and r["audio_seconds_per_second"] > 0 for r in train)
    validation = [r for r in records if r["kind"] == "validation"]
    assert len(validation) == 1 and 0 <= validation[0]["onset_f1"] <= 1
    assert (run / "best.pt").is_file() and (run / "validation.csv").is_file()
    assert after["meta"]["model"] == model and after["step"] == 2


def test_fine_tuning_starts_from_the_published_weights(pairs_root, tmp_path):
    from transcribe_cli.errors import TranscribeError
    from transcribe_cli.weights.hub import resolve_weights
    from transcribe_cli.models.neural import load_checkpoint

    published = load_checkpoint(resolve_weights(get_registry().model("piano")))
    trainer = Trainer(quick_config("piano", pairs_root, init_weights="published"), tmp_path / "a")
    for key, value in published["state_dict"].items():
        assert torch.equal(trainer.network.state_dict()[key], value), key
    assert trainer.architecture["channels"] == published["meta"]["architecture"]["channels"]
    trainer.run()  # and it trains on from there
    assert torch.load(tmp_path / "a" / "last.pt", weights_only=True)["step"] == 2
    random = Trainer(quick_config("piano", pairs_root), tmp_path / "b")
    assert not torch.equal(random.network.state_dict()["front.weight"], published["state_dict"]["front.weight"])
    with pytest.raises(TranscribeError, match="does not fit this architecture"):
        Trainer(quick_config("piano", pairs_root, init_weights="published",
                             architecture={"channels": 4}), tmp_path / "c")
    hpp = tmp_path / "hpp"
    Trainer(quick_config("hppnet", pairs_root, steps=1, validate_every=100), hpp).run()
    with pytest.raises(TranscribeError, match="holds weights of model 'hppnet'"):
        Trainer(quick_config("piano", pairs_root, init_weights=str(hpp / "last.pt")), tmp_path / "d")


def test_a_run_started_from_grown_weights_resumes_with_their_architecture(pairs_root, tmp_path):
    """A run whose network shape came from ``init_weights`` (here a deeper ``piano`` than the
    default, as ``scripts/grow_piano_depth.py`` writes) resumes with that shape: its config does
    not repeat the architecture, the checkpoint does."""
    from transcribe_cli.models.neural import build_network, network_meta, save_weights

    spec = get_registry().model("piano")
    deeper = {**SMALL.get("piano", {}), "dilations": (1, 2, 4)}
    grown = tmp_path / "grown.pt"
    save_weights(grown, {"meta": network_meta(spec, deeper), "state_dict": build_network(spec, deeper).state_dict()})
    config = quick_config("piano", pairs_root, architecture={}, init_weights=str(grown), steps=2, validate_every=100)
    first = Trainer(config, tmp_path / "run")

    def interrupt(step, record):
        if step == 1:
            os.kill(os.getpid(), signal.SIGINT)

    assert first.run(on_step=interrupt).stopped == "interrupted"
    resumed = Trainer(quick_config("piano", pairs_root, architecture={}, init_weights=str(grown), steps=2,
                                   validate_every=100), tmp_path / "run", resume=True)
    assert len(resumed.network.temporal) == 3 and resumed.progress.step == 1
    resumed.run()
    assert list(torch.load(tmp_path / "run" / "last.pt", weights_only=True)["meta"]["architecture"]["dilations"]) == [1, 2, 4]


def test_resume_continues_exactly(pairs_root, tmp_path):
    """4 steps interrupted after 2 + resume == 4 steps in one go (same weights, bit for bit), with
    augmentation on and the data position restored from the step."""
    augment = {"noise_prob": 0.5, "pitch_prob": 0.5, "gain_db": 6}
    straight = Trainer(quick_config("crnn", pairs_root, steps=4, augment=augment, validate_every=100), tmp_path / "a")
    straight.run()
    first = Trainer(quick_config("crnn", pairs_root, steps=4, augment=augment, validate_every=100), tmp_path / "b")

    def interrupt(step, record):  # Ctrl-C after step 2: the loop saves and stops
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    assert first.run(on_step=interrupt).stopped == "interrupted"
    resumed_config = quick_config("crnn", pairs_root, steps=4, augment=augment, validate_every=100)
    resumed = Trainer(resumed_config, tmp_path / "b", resume=True)
    assert resumed.progress.step == 2
    resumed.run()
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    steps = [json.loads(line)["step"] for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["kind"] == "train"]
    assert steps == [1, 2, 3, 4]


def test_cli_refuses_to_overwrite_a_run_and_to_resume_nothing(cli, pairs_root, tmp_path):
    args = ["train", "--model", "crnn", "--dataset", "pairs", "--root", pairs_root, "--train-split", "all",
            "--validation-split", "", "--steps", "1", "--batch-size", "1", "--segment-seconds", "0.5",
            "--device", "cpu", "--out", tmp_path / "run"]
    assert cli(*args).exit_code == 0
    again = cli(*args)
    assert again.exit_code != 0 and "already holds a run" in again.stderr and "Traceback" not in again.stderr
    missing = cli("train", "--out", tmp_path / "nothing", "--resume")
    assert missing.exit_code != 0 and "config.yaml" in missing.stderr
    untrainable = cli("train", "--model", "nmf", "--out", tmp_path / "nmf", "--dataset", "pairs", "--root", pairs_root)
    assert untrainable.exit_code != 0 and "cannot be trained" in untrainable.stderr


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "TRANSCRIBE_CACHE_DIR": str(tmp_path / "cache"),
           "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    env.pop("CI", None)
    return env


def test_ctrl_c_saves_a_checkpoint_and_resume_goes_on(pairs_root, tmp_path):
    run = tmp_path / "run"
    args = [sys.executable, "-m", "transcribe_cli", "train", "--model", "bilstm", "--dataset", "pairs",
            "--root", str(pairs_root), "--train-split", "all", "--validation-split", "", "--steps", "100000",
            "--batch-size", "1", "--segment-seconds", "0.5", "--log-every", "1", "--checkpoint-every", "100000",
            "--device", "cpu", "--threads", "1", "--out", str(run)]
    process = subprocess.Popen(args, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (run / "metrics.jsonl").is_file() or \
                not (run / "metrics.jsonl").read_text().strip():
            assert process.poll() is None, process.communicate()[1]
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert "interrupted" in stderr
    saved = torch.load(run / "last.pt", weights_only=True)
    assert saved["step"] >= 1
    resumed = subprocess.run(args[:args.index("--steps") + 1] + [str(saved["step"] + 1)] + ["--out", str(run), "--resume"],
                             env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert torch.load(run / "last.pt", weights_only=True)["step"] == saved["step"] + 1


def test_sigterm_while_preparing_the_audio_stops_the_run(pairs_root, tmp_path, monkeypatch):
    """SIGTERM during data preparation raises (so the preparing worker pool is stopped by
    ``workers.run_in_processes``) instead of killing the process and orphaning its renderers."""
    from transcribe_cli.signals import Interrupted

    def prepare_slowly(self):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        raise AssertionError("SIGTERM did not interrupt the preparation")

    monkeypatch.setattr(Trainer, "_prepare_data", prepare_slowly)
    before = signal.getsignal(signal.SIGTERM)
    trainer = Trainer(quick_config("piano", pairs_root), tmp_path / "run")
    with pytest.raises(Interrupted) as caught:
        trainer.run()
    assert caught.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is only there while preparing


@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
                    reason="torchrun not installed")
def test_ddp_two_cpu_processes_with_gloo(pairs_root, tmp_path):
    run = tmp_path / "run"
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    result = subprocess.run(
        [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "transcribe_cli", "-q", "train",
         "--model", "bilstm", "--dataset", "pairs", "--root", str(pairs_root), "--train-split", "all",
         "--validation-split", "all", "--validation-files", "1", "--validation-seconds", "1", "--steps", "3",
         "--validate-every", "3", "--batch-size", "1", "--segment-seconds", "0.5", "--log-every", "1",
         "--device", "cpu", "--threads", "1", "--out", str(run)],
        env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3]
    assert all(r["processes"] == 2 for r in train)
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 3
    assert any(r["kind"] == "validation" for r in records)


@pytest.mark.render
@needs_fluidsynth
def test_hppnet_train_resume_export_transcribe(cli, tmp_path):
    """The acceptance path on rendered audio: tiny hppnet trains, resumes from its
    checkpoint, exports to ONNX, and the exported model transcribes a file."""
    pytest.importorskip("onnxruntime")
    corpus = make_midi_corpus(tmp_path / "midi", files=4, seconds=4.0)
    run = tmp_path / "run"
    common = ["--dataset", "synth", "--root", corpus, "--train-split", "all", "--validation-split", "all",
              "--validation-files", "1", "--validation-seconds", "4", "--batch-size", "2",
              "--segment-seconds", "2", "--device", "cpu", "--threads", "1", "--out", run]
    first = cli("train", "--model", "hppnet", "--architecture", "preset=tiny", "--steps", "2",
                "--validate-every", "2", *common)
    assert first.exit_code == 0, first.stderr
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 2
    resumed = cli("train", "--out", run, "--resume", "--steps", "4")
    assert resumed.exit_code == 0, resumed.stderr
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 4
    exported = cli("export", run, "--onnx")
    assert exported.exit_code == 0, exported.stderr
    onnx_path = run / "model.onnx"
    assert onnx_path.is_file()
    from transcribe_cli.datasets.synth import open_synth

    audio = open_synth(corpus, "all", limit=1)[0].audio_path
    assert cli(audio, "--model", onnx_path, "-o", tmp_path / "onnx.csv").exit_code == 0
    assert cli(audio, "--model", run / "best.pt", "-o", tmp_path / "torch.csv").exit_code == 0
    from transcribe_cli.io.outputs import read_notes

    onnx_notes, torch_notes = read_notes(tmp_path / "onnx.csv"), read_notes(tmp_path / "torch.csv")
    from transcribe_cli.evaluation.scoring import score

    # barely trained activations hover near the thresholds: allow a few flipped decisions
    assert torch_notes and score(torch_notes, onnx_notes)["onset_f1"] >= 0.95
