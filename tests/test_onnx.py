"""ONNX export (``transcribe export RUN --onnx``) and ONNX inference (``--model model.onnx``).

The trained model is ``tiny-lstm`` from the loose plugin in ``fixtures/onnx_plugins``: a
CQT key detector plus a random conv → bidirectional LSTM path (LSTMs are what ONNX export
gets wrong most easily).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SRC, sine

from transcribe_cli import onnx_export
from transcribe_cli.weights.checkpoint_meta import checkpoint_spec, read_checkpoint_meta
from transcribe_cli.errors import TranscribeError
from transcribe_cli.weights.hub import file_digest
from transcribe_cli.pipeline import Transcriber
from transcribe_cli.weights.uri import resolve_model_argument
from transcribe_cli.models.neural import (
    build_network,
    load_network,
    network_meta,
    save_weights,
)
from transcribe_cli.models.onnx_runtime import OnnxNetwork
from transcribe_cli.onnx_export import export_and_check, export_onnx
from transcribe_cli.registry import get_registry, reset_registry

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

PLUGINS = Path(__file__).parent / "fixtures" / "onnx_plugins"
MODEL = "tiny-lstm"
SR = 16000
TUNED = {"min_duration": 0.3}  # what training stored: drops the transient neighbours of each tone
INSTALL = "pip install 'transcribe-cli[onnx]'"


def registry():
    return get_registry([PLUGINS])


def write_checkpoint(path: Path, *, seed: int = 0, model: str = MODEL, architecture=None, **meta) -> Path:
    """A training-style checkpoint (meta + state_dict + optimizer state) of a fresh network."""
    spec = registry().model(model)
    torch.manual_seed(seed)
    network = build_network(spec, architecture)
    return save_weights(path, {"meta": network_meta(spec, architecture or {}, **meta),
                               "state_dict": network.state_dict(), "optimizer": {"step": 3}, "epoch": 1})


def one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Small networks run fastest on one thread (and onnxruntime follows torch's count)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run folder: best.pt (with tuned decoder options), last.pt (other weights), model.onnx."""
    folder = tmp_path_factory.mktemp("run")
    write_checkpoint(folder / "best.pt", seed=0, decoder_options=TUNED)
    write_checkpoint(folder / "last.pt", seed=1)
    export_onnx(folder / "best.pt", folder / "model.onnx", registry=registry())
    reset_registry()
    return folder


@pytest.fixture(scope="module")
def two_tones(tmp_path_factory) -> Path:
    """A4 (0.05–0.55 s) then C4 (0.65–1.05 s), pure sines: the key detector's notes."""
    silence = np.zeros(SR // 10, np.float32)
    audio = np.concatenate([silence[: SR // 20], sine(440.0, 0.5, SR), silence, sine(261.63, 0.4, SR), silence])
    path = tmp_path_factory.mktemp("audio") / "tones.wav"
    sf.write(path, audio, SR)
    return path


# -- export --------------------------------------------------------------------------------


def test_export_writes_a_valid_onnx_model_with_its_metadata(run_dir):
    path = run_dir / "model.onnx"
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    props = {p.key: p.value for p in model.metadata_props}
    meta = json.loads(props["transcribe_cli"])
    assert meta["model"] == MODEL and meta["format"] == 1
    assert meta["frontend"] == {"name": "cqt", "sample_rate": 16000, "hop_length": 320, "n_bins": 352}
    assert meta["outputs"] == ["onset", "frame"] and meta["decoder"] == "frame-threshold"
    assert meta["decoder_options"] == TUNED
    assert meta["architecture"] == {"hidden": 8, "bidirectional": True, "outputs": "onset,frame"}
    assert meta["context_frames"] == 8 and meta["audio_normalization"] == "peak"
    assert meta["source_sha256"] == file_digest(run_dir / "best.pt")
    # the runtime reads the same object without torch (checkpoint_meta)
    assert read_checkpoint_meta(path) == meta
    # one input and one output per key, batch and time symbolic
    (graph_input,) = model.graph.input
    assert graph_input.name == "features"
    for value in (graph_input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        assert [dims[0].dim_param, dims[1].dim_param] == ["batch", "time"]
    assert graph_input.type.tensor_type.shape.dim[2].dim_value == 352
    assert [o.name for o in model.graph.output] == ["onset", "frame"]


def test_onnxruntime_matches_torch_on_other_lengths_and_batch_sizes(run_dir):
    network = load_network(registry().model(MODEL), run_dir / "best.pt")
    runtime = OnnxNetwork(run_dir / "model.onnx")
    assert runtime.to("cpu") is runtime and runtime.eval() is runtime
    generator = torch.Generator().manual_seed(1)
    for batch, frames in ((3, 23), (1, 150)):
        features = torch.rand(batch, frames, 352, generator=generator) * 9
        with torch.inference_mode():
            expected = network(features)
            got = runtime(features)
        assert set(got) == {"onset", "frame"}
        for key, value in got.items():
            assert isinstance(value, torch.Tensor) and value.device == features.device
            assert value.shape == (batch, frames, 88)
            torch.testing.assert_close(value, expected[key], rtol=1e-4, atol=1e-4)


def test_export_refuses_a_graph_that_disagrees_with_torch(run_dir, tmp_path, monkeypatch):
    """The onnxruntime-vs-torch check is real: a graph of other weights is never written."""
    other = onnx.load(str(run_dir / "model.onnx"))
    del other.metadata_props[:]
    monkeypatch.setattr(onnx_export, "_trace", lambda *args: other.SerializeToString())
    with pytest.raises(TranscribeError, match="disagrees with torch"):
        export_onnx(run_dir / "last.pt", tmp_path / "bad.onnx", registry=registry())
    assert list(tmp_path.iterdir()) == []


def test_instance_norms_stay_exact_over_long_windows():
    """onnxruntime's own InstanceNormalization sums naively in float32: over 3000 frames x
    352 bins its output drifts from torch's; the export computes the statistics axis by axis."""
    from torch import nn

    from transcribe_cli.models.neural import TranscriptionNet

    class Normed(TranscriptionNet):
        outputs = ("frame",)

        def __init__(self):
            super().__init__()
            self.norm = nn.InstanceNorm2d(2, affine=True)

        def forward_logits(self, features):
            return {"frame": 4 * self.norm(torch.stack([features, -features], 1)).sum(1)[..., :88]}

    torch.manual_seed(0)
    network = Normed().eval()
    nn.init.uniform_(network.norm.weight, 0.5, 1.5)
    session = ort.InferenceSession(onnx_export._trace(network, 352, 17, "normed"), providers=["CPUExecutionProvider"])
    # a large mean against a small spread is what naive float32 sums get wrong
    features = torch.rand(1, 3000, 352, generator=torch.Generator().manual_seed(0)) + 10
    with torch.no_grad():
        expected = network.forward_logits(features)["frame"].numpy()
    got = session.run(None, {"features": features.numpy()})[0]
    assert np.abs(got - 1 / (1 + np.exp(-expected))).max() < 1.5e-5  # 5.6e-5 with InstanceNormalization


# -- the export command --------------------------------------------------------------------


def test_export_command_on_a_run_folder(cli, run_dir, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").write_bytes((run_dir / "best.pt").read_bytes())
    result = cli("--plugins-dir", PLUGINS, "export", run, "--onnx")
    assert result.exit_code == 0, result.stderr
    assert (run / "model.onnx").is_file()
    line = one_line(result.stdout)
    assert str(run / "model.onnx") in line and "kB" in line and "max abs difference" in line
    # the same weights give the same graph bytes as the module fixture's export
    assert (run / "model.onnx").read_bytes() == (run_dir / "model.onnx").read_bytes()


def test_export_command_checkpoint_choice_and_output(cli, run_dir, tmp_path):
    last = cli("--plugins-dir", PLUGINS, "export", run_dir, "--onnx", "--checkpoint", "last",
               "-o", tmp_path / "last.onnx", "--opset", "18")
    assert last.exit_code == 0, last.stderr
    meta = read_checkpoint_meta(tmp_path / "last.onnx")
    assert meta["source_sha256"] == file_digest(run_dir / "last.pt") and meta["opset"] == 18
    # a .pt file: the .onnx goes beside it
    single = tmp_path / "weights.pt"
    single.write_bytes((run_dir / "last.pt").read_bytes())
    assert cli("--plugins-dir", PLUGINS, "export", single, "--onnx").exit_code == 0
    assert (tmp_path / "weights.onnx").is_file()


def test_export_falls_back_to_last_pt(cli, run_dir, tmp_path):
    (tmp_path / "last.pt").write_bytes((run_dir / "last.pt").read_bytes())
    assert cli("--plugins-dir", PLUGINS, "export", tmp_path, "--onnx").exit_code == 0
    assert read_checkpoint_meta(tmp_path / "model.onnx")["source_sha256"] == file_digest(tmp_path / "last.pt")


@pytest.mark.parametrize("case, expected", [
    ("empty", "no checkpoint in"),
    ("foreign", "not a transcribe-cli checkpoint"),
    ("no-format", "formats: --onnx"),
    ("missing", "not found"),
    ("checkpoint-on-file", "--checkpoint applies to a run folder"),
])
def test_export_command_errors_are_one_line(cli, run_dir, tmp_path, case, expected):
    target = tmp_path / "run"
    target.mkdir()
    args = ["--onnx"]
    if case == "foreign":
        torch.save({"weights": torch.zeros(3)}, target / "best.pt")
    elif case == "no-format":
        (target / "best.pt").write_bytes((run_dir / "best.pt").read_bytes())
        args = []
    elif case == "missing":
        target = tmp_path / "nowhere"
    elif case == "checkpoint-on-file":
        target = run_dir / "best.pt"
        args += ["--checkpoint", "best"]
    result = cli("--plugins-dir", PLUGINS, "export", target, *args)
    assert result.exit_code != 0
    assert expected in one_line(result.stderr)
    assert not (tmp_path / "run" / "model.onnx").exists()


def test_missing_onnx_packages_name_the_extra(cli, run_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx → ImportError
    result = cli("--plugins-dir", PLUGINS, "export", run_dir, "--onnx", "-o", tmp_path / "x.onnx")
    assert result.exit_code != 0 and INSTALL in one_line(result.stderr)
    # running an .onnx model needs only onnxruntime: without both, reading it fails clearly
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(TranscribeError, match=r"needs the onnxruntime package") as caught:
        Transcriber(str(run_dir / "model.onnx"), registry=registry())
    assert "pip install onnxruntime" in str(caught.value)  # a dependency: only missing if removed


# -- inference from an .onnx file ---------------------------------------------------------


def test_onnx_model_transcribes_like_its_checkpoint(cli, run_dir, two_tones, tmp_path):
    from transcribe_cli.io.midi import read_midi

    notes = {}
    for name in ("best.pt", "model.onnx"):
        out = tmp_path / f"{name}.mid"
        result = cli("--plugins-dir", PLUGINS, two_tones, "--model", run_dir / name, "-o", out)
        assert result.exit_code == 0, result.stderr
        notes[name] = [(n.pitch, round(n.onset, 3), round(n.offset, 3)) for n in read_midi(out)]
    assert notes["model.onnx"] == notes["best.pt"]
    # the tuned min_duration from the checkpoint leaves exactly the two tones
    assert [pitch for pitch, _, _ in notes["best.pt"]] == [69, 60]
    (_, onset, offset), _ = notes["best.pt"]
    assert onset < 0.15 and offset > 0.45


def test_onnx_spec_and_decoder_options_from_the_metadata(run_dir):
    reg = registry()
    for name in ("model.onnx", "best.pt"):
        transcriber = Transcriber(str(run_dir / name), registry=reg)
        assert transcriber.decoder_options["min_duration"] == 0.3
        assert transcriber.decoder_options["median_frames"] == 3  # the model's own tuned value stays
        # a given option beats the checkpoint's; another decoder gets none of its tuning
        assert Transcriber(str(run_dir / name), registry=reg,
                           options=["min_duration=0.1"]).decoder_options["min_duration"] == 0.1
        other = Transcriber(str(run_dir / name), registry=reg, decoder="onsets-frames")
        assert "min_duration" not in other.decoder_options
    onnx_run = Transcriber(str(run_dir / "model.onnx"), registry=reg)
    assert isinstance(onnx_run.model, OnnxNetwork) and onnx_run.model_spec.name == MODEL
    assert onnx_run.describe()["weights"] == str(run_dir / "model.onnx")
    # last.pt has no tuned options: the model's defaults apply
    assert Transcriber(str(run_dir / "last.pt"), registry=reg).decoder_options["min_duration"] == 0.05


def test_checkpoint_spec_overrides():
    spec = registry().model(MODEL)
    assert checkpoint_spec(spec, "x.pt", {"model": MODEL}) is spec
    tuned = checkpoint_spec(spec, "x.pt", {"decoder_options": {"threshold": 0.7}})
    assert tuned.decoder_options == {**spec.decoder_options, "threshold": 0.7} and tuned.factory is spec.factory
    switched = checkpoint_spec(spec, "x.pt", {"decoder": "onsets-frames", "decoder_options": {"onset_threshold": 0.6}})
    assert switched.decoder == "onsets-frames" and switched.decoder_options == {"onset_threshold": 0.6}
    exported = checkpoint_spec(spec, "m.onnx", {"outputs": ["frame"], "frontend": {"name": "vqt"},
                                                "context_frames": 2, "audio_normalization": None})
    assert (exported.outputs, exported.frontend, exported.context_frames) == (("frame",), "vqt", 2)
    assert exported.audio_normalization is None and exported.options == {}
    assert exported.factory.__name__ == "build_tiny_lstm_onnx"
    with pytest.raises(TranscribeError, match="must be an object"):
        checkpoint_spec(spec, "x.pt", {"decoder_options": [0.5]})


def test_onnx_without_metadata_uses_config_json_or_says_what_is_missing(run_dir, tmp_path):
    model = onnx.load(str(run_dir / "model.onnx"))
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))
    with pytest.raises(TranscribeError, match="does not say which model"):
        resolve_model_argument(str(bare), registry())
    (tmp_path / "config.json").write_text(json.dumps({"model": MODEL, "decoder_options": {"threshold": 0.6}}))
    choice = resolve_model_argument(str(bare), registry())
    assert choice.spec.name == MODEL and choice.spec.decoder_options["threshold"] == 0.6
    assert isinstance(choice.spec.factory(bare), OnnxNetwork)


def test_unreadable_onnx_and_onnx_weights_are_one_line_errors(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf at all" * 10)
    with pytest.raises(TranscribeError, match="cannot read ONNX model"):
        resolve_model_argument(str(junk), registry())
    with pytest.raises(TranscribeError, match="--weights cannot be an .onnx file"):
        resolve_model_argument(MODEL, registry(), weights=str(junk))
    with pytest.raises(TranscribeError, match="model file not found"):
        resolve_model_argument(str(tmp_path / "absent.onnx"), registry())
    with pytest.raises(TranscribeError, match="cannot load ONNX model"):
        OnnxNetwork(junk)


def test_hub_onnx_uri_resolves_to_onnxruntime(hub_env, run_dir):
    commit = hub_env.publish("acme/tiny", {"exports/model.onnx": (run_dir / "model.onnx").read_bytes()})
    choice = resolve_model_argument(f"hf://acme/tiny@{commit}/exports/model.onnx", registry(), progress=False)
    assert choice.kind == "hub" and choice.spec.weights.hub_repo == "acme/tiny"
    assert choice.spec.decoder_options["min_duration"] == 0.3
    assert isinstance(choice.spec.factory(choice.checkpoint), OnnxNetwork)


def test_onnx_modules_and_reading_metadata_do_not_import_torch(run_dir):
    code = (
        "import sys\n"
        "import transcribe_cli.cli.export, transcribe_cli.models.onnx_runtime\n"
        "from transcribe_cli.weights.checkpoint_meta import read_checkpoint_meta\n"
        f"assert read_checkpoint_meta({str(run_dir / 'model.onnx')!r})['model'] == {MODEL!r}\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert done.stdout.strip() == "NO-TORCH", done.stderr


# -- every registered trainable model ------------------------------------------------------

#: architecture options that make each built-in neural model small enough for a unit test,
#: keeping its structure (hppnet's "sp" preset has the split onset/frame subnets and time pooling)
SMALL = {
    "bilstm": {"lstm_hidden": 8, "lstm_layers": 2},
    "crnn": {"conv_channels": 4, "embedding": 16, "lstm_hidden": 8, "lstm_layers": 2},
    "hppnet": {"preset": "sp", "channels": 2, "lstm_hidden": 2},
    "onsets-frames": {"preset": "small", "model_complexity": 2},
    "pitchvis-mlp": {"hidden": 16, "layers": 2, "conv_channels": 2},
}


def _trainable_models() -> list[str]:
    names = [spec.name for spec in get_registry().specs("model") if spec.trainable]
    reset_registry()
    return names


@pytest.mark.parametrize("name", _trainable_models())
def test_every_trainable_model_exports_and_runs_on_onnxruntime(name, tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_export, "DEFAULT_WINDOW_SECONDS", 2.0)  # a shorter long check: speed
    reg = get_registry()
    spec = reg.model(name)
    architecture = {key: value for key, value in SMALL.get(name, {}).items() if key in spec.architecture}
    write_checkpoint(tmp_path / "best.pt", model=name, architecture=architecture)
    result = export_and_check(tmp_path / "best.pt", tmp_path / "model.onnx", registry=reg)
    assert result.max_abs_diff < 1e-4
    network = load_network(spec, tmp_path / "best.pt")
    runtime = OnnxNetwork(tmp_path / "model.onnx")
    n_bins = reg.frontend(spec.frontend).n_bins
    features = torch.rand(2, 30, n_bins, generator=torch.Generator().manual_seed(2)) * 8
    with torch.inference_mode():
        expected, got = network(features), runtime(features)
    assert set(got) == set(network.outputs)
    for key in network.outputs:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-4, atol=1e-4)
    choice = resolve_model_argument(str(tmp_path / "model.onnx"), reg)
    assert choice.spec.name == name and choice.spec.outputs == tuple(network.outputs)


# -- format 2: frontend and network in one graph (--with-frontend) ---------------------------


@pytest.fixture(scope="module")
def audio_graph(run_dir, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("graph") / "audio.onnx"
    export_and_check(run_dir / "best.pt", path, registry=registry(), with_frontend=True)
    reset_registry()
    return path


def test_with_frontend_exports_audio_to_activations(audio_graph, run_dir):
    meta = read_checkpoint_meta(audio_graph)
    assert meta["format"] == 2 and meta["input"] == "audio"
    assert meta["source_sha256"] == file_digest(run_dir / "best.pt")
    assert meta["frontend"]["context_samples"] > 0 and meta["frontend"]["options"] == {"log_gain": 1000.0}
    (graph_input,) = onnx.load(str(audio_graph)).graph.input
    assert graph_input.name == "audio"


def test_audio_graph_transcribes_like_its_checkpoint_without_torch_modules(cli, run_dir, audio_graph, two_tones,
                                                                          tmp_path):
    from transcribe_cli.io.midi import read_midi
    from transcribe_cli.models.onnx_runtime import OnnxAudioModel

    transcriber = Transcriber(str(audio_graph), registry=registry())
    assert isinstance(transcriber.model, OnnxAudioModel) and transcriber.frontend is None
    assert transcriber.decoder_options["min_duration"] == 0.3  # tuned, from the metadata
    notes = {}
    for name, model in (("pt", run_dir / "best.pt"), ("onnx", audio_graph)):
        out = tmp_path / f"{name}.mid"
        result = cli("--plugins-dir", PLUGINS, two_tones, "--model", model, "-o", out, "--tempo", "none")
        assert result.exit_code == 0, result.stderr
        notes[name] = [(n.pitch, round(n.onset, 3), round(n.offset, 3)) for n in read_midi(out)]
    assert notes["onnx"] == notes["pt"] and [p for p, _, _ in notes["pt"]] == [69, 60]


def test_runtime_flags_on_onnx_files_are_one_line_errors(cli, run_dir, audio_graph, two_tones, tmp_path):
    torch_on_graph = cli("--plugins-dir", PLUGINS, two_tones, "--model", audio_graph, "-o", tmp_path / "a.mid",
                         "--runtime", "torch")
    assert torch_on_graph.exit_code != 0 and "runs on onnxruntime only" in one_line(torch_on_graph.stderr)
    onnx_on_network = cli("--plugins-dir", PLUGINS, two_tones, "--model", run_dir / "model.onnx",
                          "-o", tmp_path / "b.mid", "--runtime", "onnx")
    line = one_line(onnx_on_network.stderr)
    assert onnx_on_network.exit_code != 0 and "format 1" in line and "--with-frontend" in line


def test_a_window_independent_network_is_exported_without_the_frontend_margin(tmp_path):
    """A ``piano`` graph runs its network on the features less the cqt's margin
    (``network_trim``); its outputs, padded back by OnnxAudioModel, equal torch's on every
    frame a window keeps."""
    from transcribe_cli.inference import frontend_margin_frames
    from transcribe_cli.models.onnx_runtime import OnnxAudioModel
    from transcribe_cli.pipeline import Transcriber

    checkpoint = write_checkpoint(tmp_path / "piano.pt", model="piano",
                                  architecture={"channels": 8, "front_channels": 2, "dilations": [1, 2]})
    graph = tmp_path / "piano.onnx"
    export_and_check(checkpoint, graph, registry=registry(), with_frontend=True)
    meta = read_checkpoint_meta(graph)
    frontend = registry().frontend("cqt").factory()
    assert meta["network_trim"] == frontend_margin_frames(frontend) == 72
    model = OnnxAudioModel(graph, threads=1)
    chunk = (0.1 * np.random.default_rng(0).standard_normal((1, 400 * frontend.hop_length))).astype(np.float32)
    padded = model(chunk)
    assert padded["onset"].shape == (1, 401, 88) and not padded["onset"][:, :72].any()
    audio = (0.1 * np.random.default_rng(1).standard_normal(16000 * 9)).astype(np.float32)
    onnx_run = Transcriber(str(graph), registry=registry(), threads=1)
    torch_run = Transcriber(str(checkpoint), registry=registry(), runtime="torch", threads=1)
    got, expected = onnx_run.activations(audio), torch_run.activations(audio)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], atol=1e-4, rtol=1e-4, err_msg=key)


def test_check_audio_needs_with_frontend(run_dir, two_tones, tmp_path):
    with pytest.raises(TranscribeError, match="needs --with-frontend"):
        export_and_check(run_dir / "best.pt", tmp_path / "x.onnx", registry=registry(), check_audio=two_tones)
    assert not (tmp_path / "x.onnx").exists()
