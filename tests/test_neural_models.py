"""The built-in neural models: registration, the network contract, parameter counts,
checkpoints, ONNX export and the causal PitchVis model. CPU, small presets, fast."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from transcribe_cli.errors import OptionError
from transcribe_cli.models import neural
from transcribe_cli.registry import get_registry

#: every built-in neural model with a small architecture for fast tests
SMALL = {
    "piano": {"channels": 8, "front_channels": 4, "dilations": (1, 2)},
    "hppnet": {"preset": "tiny"},
    "onsets-frames": {"preset": "small"},
    "crnn": {"conv_channels": 4, "embedding": 32, "lstm_hidden": 16},
    "bilstm": {"lstm_hidden": 16},
    "pitchvis-mlp": {"hidden": 64},
}
#: the paper's presets that are still cheap enough for a CPU test
EXTRA = [("hppnet", {"preset": "sp"}), ("hppnet", {"preset": "base"})]
CASES = list(SMALL.items()) + EXTRA


def case_id(case) -> str:
    name, arch = case
    return name + "".join(f"-{v}" for v in arch.values() if isinstance(v, str))


def make(name: str, arch: dict, seed: int = 0):
    spec = get_registry().model(name)
    torch.manual_seed(seed)
    return spec, neural.build_network(spec, arch), get_registry().frontend(spec.frontend).n_bins


def features(batch: int, frames: int, bins: int, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, frames, bins, generator=generator) * 6  # like log1p(1000 |X|)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_every_neural_model_is_registered_and_trainable():
    registry = get_registry()
    expected = {
        "hppnet": ("cqt", "onset-peaks", ("onset", "frame", "offset", "velocity")),
        "onsets-frames": ("logmel", "onsets-frames", ("onset", "frame", "offset", "velocity")),
        "crnn": ("logmel", "onsets-frames", ("onset", "frame")),
        "bilstm": ("logmel", "onsets-frames", ("onset", "frame")),
        "pitchvis-mlp": ("vqt", "frame-threshold", ("frame",)),
    }
    for name, (frontend, decoder, outputs) in expected.items():
        spec = registry.model(name)
        assert (spec.frontend, spec.decoder, tuple(spec.outputs)) == (frontend, decoder, outputs)
        assert spec.trainable and spec.audio_normalization == "peak"
        assert set(registry.decoder(decoder).requires) <= set(outputs)
        assert set(spec.decoder_options) <= set(registry.decoder(decoder).options)
        # only hppnet ships trained weights (model_cards/hppnet.md); the others are train-it-yourself
        assert spec.weights.hub_repo is None
        assert (spec.weights.bundled is not None) == (name == "hppnet")


def test_registration_does_not_import_torch():
    code = (
        "import sys\n"
        "from transcribe_cli.registry import get_registry\n"
        "assert get_registry().model('hppnet').trainable\n"
        "assert 'torch' not in sys.modules, 'registering the models imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("frames", [1, 7])
def test_forward_gives_the_declared_outputs(case, frames):
    name, arch = case
    spec, net, bins = make(name, arch)
    assert tuple(net.outputs) == tuple(spec.outputs)
    net.eval()
    with torch.no_grad():
        logits = net.forward_logits(features(2, frames, bins))
        probs = net(features(2, frames, bins))
    assert tuple(logits) == tuple(probs) == tuple(spec.outputs)
    for key, value in probs.items():
        assert value.shape == (2, frames, 1 if key == "pedal" else neural.N_KEYS), key
        assert torch.isfinite(value).all() and (value >= 0).all() and (value <= 1).all(), key
        torch.testing.assert_close(value, torch.sigmoid(logits[key]))


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_gradients_reach_every_parameter(case):
    name, arch = case
    _, net, bins = make(name, arch)
    net.train()
    logits = net.forward_logits(features(2, 6, bins))
    sum(value.mean() for value in logits.values()).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.mark.parametrize(
    ("arch", "expected"),
    [({"preset": "sp"}, 1.2e6), ({"preset": "tiny"}, 0.24e6), ({"preset": "base"}, 0.8e6)],
)
def test_hppnet_parameter_counts_match_the_paper(arch, expected):
    _, net, _ = make("hppnet", arch)
    assert abs(neural.count_parameters(net) - expected) <= 0.15 * expected


def test_onsets_frames_full_has_the_maestro_paper_size():
    _, net, _ = make("onsets-frames", {"preset": "full"})
    assert abs(neural.count_parameters(net) - 26e6) <= 0.15 * 26e6


def test_hppnet_architecture_follows_the_reference():
    from transcribe_cli.models import hppnet

    assert hppnet.HARMONIC_DILATIONS == (48, 76, 96, 111, 124, 135, 144, 152)
    _, sp, _ = make("hppnet", {"preset": "sp"})
    assert [tuple(s.heads) for s in sp.subnets] == [("onset",), ("frame", "offset", "velocity")]
    assert [s.time_pooling for s in sp.subnets] == [False, True]
    _, wide, _ = make("hppnet", {"preset": "tiny", "channels": 32, "lstm_hidden": 8})
    head = wide.subnets[0].heads["onset"].lstm.rnn
    assert (head.input_size, head.hidden_size) == (32, 8)


def test_hppnet_harmonic_conv_is_the_same_function_on_every_device():
    """The CPU path (one 1x1 conv over shifted copies) equals the reference's sum of dilated convs."""
    from transcribe_cli.models.hppnet import HarmonicDilatedConv

    torch.manual_seed(0)
    for c_in, c_out, dilations, bins in [(3, 5, (48, 76, 152), 352), (2, 4, (1, 3, 9), 11)]:
        conv = HarmonicDilatedConv(c_in, c_out, dilations)
        x = torch.randn(2, c_in, 3, bins)
        torch.testing.assert_close(conv.one_conv(x), conv.summed_convs(x), atol=1e-5, rtol=1e-5)


def test_hppnet_pools_the_four_bins_centred_on_each_key():
    from transcribe_cli.models.hppnet import pool_keys

    for bin_ in (0, 1, 2, 189, 190, 191, 192, 193, 194, 349, 350, 351):
        x = torch.zeros(1, 1, 1, 352)
        x[..., bin_] = 1.0
        pooled = pool_keys(x)
        assert pooled.shape == (1, 1, 1, 88)
        key = (bin_ + 2) // 4  # key k owns bins 4k-2 … 4k+1
        assert pooled.flatten().nonzero().flatten().tolist() == ([key] if key < 88 else []), bin_


def test_hppnet_pitch_heads_share_weights_across_keys():
    """FG-LSTM: the same trunk features at two keys give the same head output."""
    _, net, _ = make("hppnet", {"preset": "tiny"})
    head = net.subnets[0].heads["onset"].eval()
    x = torch.rand(1, 64, 5, 1).expand(1, 64, 5, 88).contiguous()
    with torch.no_grad():
        out = head(x)
    assert out.shape == (1, 5, 88)
    torch.testing.assert_close(out, out[..., :1].expand_as(out))


@pytest.mark.parametrize(
    ("name", "arch"),
    [("hppnet", {"preset": "huge"}), ("onsets-frames", {"preset": "tiny"}), ("crnn", {"lstm_hidden": 0}),
     ("pitchvis-mlp", {"dropout": 1.5}), ("hppnet", {"channels": -1})],
)
def test_bad_architecture_options_are_one_line_errors(name, arch):
    spec = get_registry().model(name)
    with pytest.raises(OptionError) as info:
        neural.build_network(spec, arch)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("case", SMALL.items(), ids=case_id)
def test_checkpoint_round_trip_through_the_registered_factory(case, tmp_path):
    name, arch = case
    spec, net, bins = make(name, arch)
    net.eval()
    path = neural.save_weights(tmp_path / f"{name}.pt", {"meta": neural.network_meta(spec, arch),
                                                         "state_dict": net.state_dict()})
    loaded = spec.factory(path)
    assert not loaded.training
    x = features(1, 9, bins)
    with torch.no_grad():
        expected, got = net(x), loaded(x)
    for key in spec.outputs:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0)


# the exporter's notes (legacy exporter, LSTM batch size, torch-internal shape checks); a
# shape baked into the trace would fail the dynamic batch/time comparison below instead
@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("case", list(SMALL.items()) + [EXTRA[0]], ids=case_id)
def test_onnx_export_matches_torch_with_dynamic_batch_and_time(case, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    name, arch = case
    _, net, bins = make(name, arch)
    net.eval()
    path = tmp_path / f"{name}.onnx"
    axes = {"batch_size": 0, "frames": 1}
    dynamic = {key: {i: n for n, i in axes.items()} for key in ("features", *net.outputs)}
    torch.onnx.export(net, (features(2, 11, bins),), str(path), dynamo=False, opset_version=17,
                      input_names=["features"], output_names=list(net.outputs), dynamic_axes=dynamic)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch, frames in [(1, 1), (3, 20)]:
        x = features(batch, frames, bins, seed=frames)
        with torch.no_grad():
            expected = net(x)
        got = session.run(None, {"features": x.numpy()})
        for key, value in zip(net.outputs, got):
            np.testing.assert_allclose(value, expected[key].numpy(), atol=1e-4, rtol=0, err_msg=key)


def test_pitchvis_sees_exactly_the_last_five_frames():
    """Output t depends on input frames t-4 … t only: causal, context_frames = 4."""
    spec, net, bins = make("pitchvis-mlp", SMALL["pitchvis-mlp"])
    net.eval()
    x = features(1, 20, bins)
    changed = x.clone()
    changed[:, 10] += 3.0
    with torch.no_grad():
        before, after = net(x)["frame"], net(changed)["frame"]
    differs = (before - after).abs().amax(dim=(0, 2)) > 0
    assert differs.nonzero().flatten().tolist() == list(range(10, 10 + spec.context_frames + 1))


def test_pitchvis_windowed_inference_equals_one_pass(tmp_path):
    """With its causal context, windowed inference reproduces a single pass exactly."""
    from transcribe_cli.pipeline import Transcriber

    spec, net, _ = make("pitchvis-mlp", SMALL["pitchvis-mlp"])
    net.eval()
    path = neural.save_weights(tmp_path / "p.pt", {"meta": neural.network_meta(spec, SMALL["pitchvis-mlp"]),
                                                   "state_dict": net.state_dict()})
    transcriber = Transcriber("pitchvis-mlp", weights=path, device="cpu", window_seconds=0.5)
    t = np.arange(int(1.7 * transcriber.sample_rate)) / transcriber.sample_rate
    # a chord, not noise (noise-like input is gated before any model runs)
    audio = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 440.0)).astype(np.float32)
    windowed = transcriber.activations(audio)["frame"]
    with torch.no_grad():
        centred = audio - np.float32(np.mean(audio, dtype=np.float64))  # the conditioning's DC removal
        normalized = torch.from_numpy(np.ascontiguousarray(centred * (0.9 / np.abs(centred).max())))
        whole = net(transcriber.frontend(normalized[None]))["frame"][0].numpy()
    assert windowed.shape == whole.shape
    np.testing.assert_allclose(windowed, whole, atol=1e-4)


def test_piano_context_is_its_receptive_field():
    """``context_frames`` of the registered ``piano`` covers what one output frame sees."""
    from transcribe_cli.models.piano import receptive_frames

    spec = get_registry().model("piano")
    assert spec.context_frames >= receptive_frames(spec.architecture["dilations"])
    _, net, bins = make("piano", dict(spec.architecture))
    net.eval()
    x = features(1, 400, bins)
    changed = x.clone()
    changed[:, 200] += 3.0
    with torch.no_grad():
        before, after = net(x), net(changed)
    reach = max(int(((before[k] - after[k]).abs().amax(dim=(0, 2)) > 0).nonzero().flatten().sub(200).abs().max())
                for k in before)
    assert reach <= spec.context_frames


def test_piano_harmonic_conv_taps_sit_on_the_partials():
    """The separable harmonic convolution equals its dense definition."""
    from transcribe_cli.models.piano import HARMONIC_OFFSETS, HarmonicConv

    torch.manual_seed(0)
    conv = HarmonicConv(3, HARMONIC_OFFSETS)
    x = torch.randn(1, 3, 5, 88)
    z = conv.mix(x)
    expected = torch.zeros_like(z) + conv.bias
    for j, offset in enumerate(HARMONIC_OFFSETS):
        shifted = torch.zeros_like(z)
        lo, hi = max(0, -offset), min(88, 88 - offset)
        shifted[..., lo:hi] = z[..., lo + offset : hi + offset]
        expected += conv.taps[j] * shifted
    torch.testing.assert_close(conv(x), expected)


def test_piano_windowed_inference_equals_one_pass():
    """Batch norm (not instance norm) and enough context: windows reproduce one pass at
    every window seam (the recording's own two ends differ within the receptive field: one
    pass zero-pads the hidden layers there, windows see the layers' response to silence)."""
    from transcribe_cli.inference import compute_activations
    from transcribe_cli.models.piano import receptive_frames

    spec, net, _ = make("piano", SMALL["piano"])
    net.eval()
    frontend = get_registry().frontend("cqt").factory().eval()
    rng = np.random.default_rng(0)
    audio = (0.3 * rng.standard_normal(4 * 16000)).astype(np.float32)
    edge = receptive_frames(SMALL["piano"]["dilations"])
    windowed = compute_activations(audio, frontend, net, context_frames=spec.context_frames, window_frames=40,
                                   batch_size=3, device=torch.device("cpu"))
    with torch.no_grad():
        whole = net(frontend(torch.from_numpy(audio)[None]))
    for key, value in whole.items():
        np.testing.assert_allclose(windowed[key][edge:-edge], value[0].numpy()[edge:-edge], atol=2e-4, err_msg=key)


def test_piano_inference_path_equals_the_training_path():
    """Without gradients ``piano`` runs :class:`InferenceTrunk` (batch norms folded,
    depthwise harmonic taps, channels-last maps): the logits equal the training path's in
    eval mode, and it follows the weights when they change (a validation pass mid-training)."""
    spec, net, bins = make("piano", {"channels": 8, "front_channels": 4, "dilations": (1, 2, 4)})
    x = features(2, 60, bins)
    net.train()
    with torch.no_grad():
        net.forward_logits(x)  # batch-norm running statistics away from 0 / 1
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    net.eval()
    for _ in range(2):
        with torch.enable_grad():
            reference = {k: v.detach() for k, v in net.forward_logits(x).items()}
        with torch.inference_mode():
            fast = net.forward_logits(x)
        assert set(fast) == set(reference)
        for key in reference:
            torch.testing.assert_close(fast[key], reference[key], atol=1e-4, rtol=1e-4, msg=key)
        with torch.no_grad():  # an optimizer step: the next inference must use the new weights
            net.harmonic.taps.mul_(1.5)
            net.temporal[0].norm.running_mean.add_(0.2)
    assert "_inference_cache" not in net.state_dict()


@pytest.mark.parametrize("name", ["hppnet", "piano"])
def test_bundled_checkpoints_run_with_their_own_tuned_decoder_options(name):
    """The registered spec carries the decoder options tuned into its bundled checkpoint
    (cheap to read for --help and `models info`), and the transcriber uses them."""
    from transcribe_cli.weights.hub import bundled_path
    from transcribe_cli.pipeline import Transcriber

    spec = get_registry().model(name)
    meta = torch.load(bundled_path(spec.weights.bundled), map_location="cpu", weights_only=True)["meta"]
    assert dict(spec.decoder_options) == meta["decoder_options"]
    transcriber = Transcriber(name, device="cpu")
    for key, value in meta["decoder_options"].items():
        assert transcriber.decoder_options[key] == value
