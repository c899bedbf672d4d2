"""``--runtime``: the bundled piano and hppnet graphs on onnxruntime (no torch), and when
torch runs instead.

The bundled ``data/piano_synth.onnx`` is the bundled ``data/piano_synth.pt`` (its
``source_sha256``) exported with its frontend (``scripts/bundle_weights.py``), and
``data/hppnet_tiny_synth.onnx`` is ``data/hppnet_tiny_synth.pt``'s: retraining the weights
without exporting them again fails here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, cli_torch_modules

from transcribe_cli.errors import TranscribeError
from transcribe_cli.models import (HPPNET_DECODER_OPTIONS, HPPNET_ONNX, HPPNET_WEIGHTS, PIANO_DECODER_OPTIONS,
                                   PIANO_ONNX, PIANO_WEIGHTS)
from transcribe_cli.weights.hub import bundled_path, file_digest

ort = pytest.importorskip("onnxruntime")

EXAMPLE = ROOT / "examples" / "pop909_003.flac"


def _graph_meta(location: str = PIANO_ONNX) -> dict:
    from transcribe_cli.models.onnx_runtime import open_session, session_metadata

    path = bundled_path(location)
    return session_metadata(open_session(ort, path, 1), str(path))


def test_bundled_graph_is_the_bundled_weights():
    meta = _graph_meta()
    assert meta["source_sha256"] == file_digest(bundled_path(PIANO_WEIGHTS)), (
        "data/piano_synth.onnx is not the export of data/piano_synth.pt: "
        "run scripts/bundle_weights.py (it writes both)")
    assert meta["format"] == 2 and meta["input"] == "audio" and meta["model"] == "piano"
    assert meta["decoder_options"] == PIANO_DECODER_OPTIONS
    assert meta["context_frames"] == 72 and meta["audio_normalization"] == "loudness"
    assert meta["frontend"]["name"] == "cqt" and meta["frontend"]["options"] == {"log_gain": 1000.0}
    assert meta["outputs"] == ["onset", "frame", "offset", "velocity", "pedal"]
    assert meta["network_trim"] == 72  # the cqt's margin: the network skips it (piano is window-independent)


def test_bundled_hppnet_graph_is_the_bundled_weights():
    meta = _graph_meta(HPPNET_ONNX)
    assert "network_trim" not in meta  # instance norms and BiLSTMs see the whole chunk
    assert meta["source_sha256"] == file_digest(bundled_path(HPPNET_WEIGHTS)), (
        "data/hppnet_tiny_synth.onnx is not the export of data/hppnet_tiny_synth.pt: export it again "
        "(onnx_export.export_and_check(..., with_frontend=True))")
    assert meta["format"] == 2 and meta["input"] == "audio" and meta["model"] == "hppnet"
    assert meta["decoder_options"] == HPPNET_DECODER_OPTIONS
    assert meta["outputs"] == ["onset", "frame", "offset", "velocity"]


def test_package_data_ships_the_graph():
    text = (ROOT / "pyproject.toml").read_text()
    assert '"data/*.onnx"' in text


@pytest.fixture(scope="module")
def example_audio():
    from transcribe_cli.io.audio import load_audio

    return load_audio(EXAMPLE, 16000)


def test_onnx_activations_equal_torch_on_the_example(example_audio):
    from transcribe_cli.models.onnx_runtime import OnnxAudioModel
    from transcribe_cli.pipeline import Transcriber

    onnx_run = Transcriber("piano", runtime="onnx", threads=1)
    torch_run = Transcriber("piano", runtime="torch", threads=1)
    assert isinstance(onnx_run.model, OnnxAudioModel) and onnx_run.frontend is None
    assert (onnx_run.runtime, torch_run.runtime) == ("onnx", "torch")
    assert onnx_run.model.session.get_session_options().intra_op_num_threads == 1
    got, expected = onnx_run.activations(example_audio), torch_run.activations(example_audio)
    assert set(got) == set(expected)
    for key in expected:
        assert got[key].shape == expected[key].shape
        np.testing.assert_allclose(got[key], expected[key], atol=1e-4, rtol=1e-4, err_msg=key)
    assert _rounded(onnx_run.decode(got)) == _rounded(torch_run.decode(expected))
    streamed, _ = onnx_run.transcribe_path(EXAMPLE)
    assert _rounded(streamed.notes) == _rounded(torch_run.transcribe_path(EXAMPLE)[0].notes)


def test_the_network_skips_the_frontend_margin_and_the_kept_frames_do_not_change(example_audio, monkeypatch):
    """A window-independent network runs on a chunk's features less the frontend's margin
    (``inference.network_trim``); every frame a window keeps is what the whole chunk gives."""
    from transcribe_cli.frontends import build_cqt
    from transcribe_cli.inference import frontend_margin_frames, network_trim
    from transcribe_cli.models.hppnet import HPPNet
    from transcribe_cli.models.piano import PianoNet
    from transcribe_cli.pipeline import Transcriber

    frontend = build_cqt()
    assert network_trim(frontend, PianoNet()) == frontend_margin_frames(frontend) == 72
    assert network_trim(frontend, HPPNet()) == 0
    trimmed = Transcriber("piano", runtime="torch", threads=1).activations(example_audio)
    monkeypatch.setattr(PianoNet, "window_independent", False)
    whole = Transcriber("piano", runtime="torch", threads=1).activations(example_audio)
    for key in whole:
        assert trimmed[key].shape == whole[key].shape
        np.testing.assert_allclose(trimmed[key], whole[key], atol=2e-5, rtol=1e-5, err_msg=key)


@pytest.mark.slow
def test_hppnet_onnx_notes_equal_torch_on_the_example():
    """hppnet's graph differs from torch by up to 2e-3 on some activations
    (``onnx_export.MODEL_TOLERANCE``), never enough to change a note."""
    from transcribe_cli.pipeline import Transcriber

    onnx_run = Transcriber("hppnet", runtime="onnx", threads=1)
    torch_run = Transcriber("hppnet", runtime="torch", threads=1)
    assert _rounded(onnx_run.transcribe_path(EXAMPLE)[0].notes) == _rounded(torch_run.transcribe_path(EXAMPLE)[0].notes)


def _rounded(notes):
    """The notes with times to 0.1 ms (a refined onset moves by ~1e-8 s between the runtimes)."""
    return [(n.pitch, round(n.onset, 4), round(n.offset, 4), n.velocity) for n in notes]


def test_auto_picks_onnx_for_piano_and_torch_where_the_graph_does_not_fit():
    from transcribe_cli.pipeline import Transcriber

    assert Transcriber("piano", device="cpu").runtime == "onnx"
    # another frontend setting: the graph's is fixed, so torch runs it
    assert Transcriber("piano", device="cpu", options=["log_gain=20"]).runtime == "torch"
    assert Transcriber("hppnet", device="cpu").runtime == "onnx"
    assert Transcriber("hppnet", device="cpu", runtime="torch").runtime == "torch"


def test_other_weights_than_the_graphs_run_on_torch(tmp_path):
    import torch

    from transcribe_cli.pipeline import Transcriber

    checkpoint = torch.load(bundled_path(PIANO_WEIGHTS), map_location="cpu", weights_only=True)
    checkpoint["meta"]["note"] = "retrained"
    torch.save(checkpoint, tmp_path / "other.pt")
    assert Transcriber("piano", device="cpu", weights=tmp_path / "other.pt").runtime == "torch"
    with pytest.raises(TranscribeError, match="exported from other weights than other.pt"):
        Transcriber("piano", device="cpu", weights=tmp_path / "other.pt", runtime="onnx")


@pytest.mark.parametrize(("args", "expected"), [
    (["--model", "nmf", "--runtime", "onnx"], "--runtime onnx: model 'nmf' has no ONNX graph"),
    (["--model", "piano", "--runtime", "onnx", "-O", "log_gain=20"], "frontend options differ"),
    (["--model", "piano", "--runtime", "fast"], "unknown runtime 'fast'"),
])
def test_runtime_errors_are_one_line(cli, tmp_path, args, expected):
    result = cli(str(EXAMPLE), "-o", str(tmp_path / "out.mid"), "--tempo", "none", *args)
    assert result.exit_code != 0
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_help_documents_runtime(cli):
    result = cli("run", "--help")
    assert "--runtime" in result.stdout and "onnxruntime" in result.stdout


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_piano_runs_without_importing_torch(tmp_path, jobs):
    """The default model's whole command (and a --jobs 2 parent) never imports torch."""
    import shutil

    inputs = [str(EXAMPLE)]
    if jobs == "2":
        for name in ("a.flac", "b.flac"):
            shutil.copy(EXAMPLE, tmp_path / name)
        inputs = [str(tmp_path / "a.flac"), str(tmp_path / "b.flac")]
    out = tmp_path / ("out.mid" if jobs == "1" else "out/")
    report, stderr = cli_torch_modules(*inputs, "-o", out, "--model", "piano", "--tempo", "none", "--jobs", jobs, "-q",
                                       home=tmp_path)
    assert report == {"code": 0, "torch": []}, stderr
    assert (tmp_path / "out.mid").is_file() if jobs == "1" else len(list((tmp_path / "out").glob("*.mid"))) == 2
