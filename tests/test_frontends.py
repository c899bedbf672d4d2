"""Tests of the spectrogram frontends (``cqt``, ``vqt``, ``logmel``).

The librosa comparisons are "close, not equal". Ours evaluates the single-rate definition to
~1e-5 (tested directly below); librosa's multi-rate transform resamples with soxr and, for the
VQT, decimates down to filters of a few taps, which costs it accuracy in the low octaves.
Measured on the 3 s synthetic signal used here (features at log_gain 1000; relative error over
the bins within 60 dB of librosa's maximum):

========  =======================  =====================  =================
frontend  correlation of features  median relative error  90th percentile
========  =======================  =====================  =================
cqt       0.99981                  0.39 %                 1.9 %
vqt       0.99669                  2.9 %                  22 %
logmel    1.00000                  5e-7                   2e-6
========  =======================  =====================  =================
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from transcribe_cli.errors import OptionError
from transcribe_cli.frontends import (
    CQT_SETTINGS,
    DEFAULT_LOG_GAIN,
    LOGMEL_SETTINGS,
    VQT_SETTINGS,
    build_cqt,
    build_logmel,
    build_vqt,
    builtin_frontend_specs,
    register_frontends,
)
from transcribe_cli.frontends.constant_q import ConstantQ, hann_wavelets
from transcribe_cli.frontends.logmel import hz_to_mel, mel_filterbank, mel_to_hz

# Two float32 evaluations of one frame (other batch, chunk, dtype or backend, so another
# summation order) differ by about one ulp of the loudest bin, ~5e-7 here. Where
# ``log_gain * magnitude`` is near 1 that is up to ~2e-4 in features (measured max 1.3e-4 for
# chunk vs whole, 2.3e-4 for float32 vs float64); the algorithm itself is exact (float64: < 1e-9).
FLOAT32_ATOL = 5e-4

BUILDERS = {"cqt": build_cqt, "vqt": build_vqt, "logmel": build_logmel}
NAMES = list(BUILDERS)


@pytest.fixture(scope="module")
def frontends() -> dict[str, torch.nn.Module]:
    return {name: build().eval() for name, build in BUILDERS.items()}


def music_like(sample_rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Decaying harmonic notes over 60 dB-down noise, peak-normalised to 0.9."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    y = 1e-3 * rng.standard_normal(len(t))
    notes = [(0.05, 33), (0.1, 45), (0.5, 57), (0.9, 64), (1.3, 69), (1.6, 40), (2.0, 76), (2.3, 88)]
    for i, (onset, pitch) in enumerate(notes):
        onset = onset * seconds / 3.0
        f0 = 440.0 * 2 ** ((pitch - 69) / 12)
        age = np.maximum(t - onset, 0.0)
        envelope = np.where(t >= onset, np.exp(-2.5 * age) * (1 - np.exp(-200 * age)), 0.0)
        for h in range(1, 9):
            if h * f0 < 0.45 * sample_rate:
                y += envelope * np.sin(2 * np.pi * h * f0 * age + i) / h
    return (0.9 * y / np.abs(y).max()).astype(np.float32)


def features_of(frontend: torch.nn.Module, audio: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return frontend(torch.from_numpy(np.atleast_2d(audio))).numpy()


def linear_of(frontend: torch.nn.Module, audio: np.ndarray) -> np.ndarray:
    """Linear magnitudes ``[bins, frames]`` of one signal (librosa's layout)."""
    with torch.no_grad():
        return frontend.linear(frontend(torch.from_numpy(audio[None])))[0].numpy().T


# --------------------------------------------------------------------------- librosa


def librosa_reference(name: str, audio: np.ndarray) -> np.ndarray:
    """librosa's transform with our settings. ``sparsity=0``: the default 0.01 drops 1 % of each
    filter's mass, which raises librosa's leakage floor to about -40 dB."""
    librosa = pytest.importorskip("librosa")
    if name == "cqt":
        s = CQT_SETTINGS
        return np.abs(
            librosa.cqt(
                audio,
                sr=s["sample_rate"],
                hop_length=s["hop_length"],
                fmin=s["fmin"],
                n_bins=s["n_bins"],
                bins_per_octave=s["bins_per_octave"],
                sparsity=0.0,
            )
        )
    if name == "vqt":
        s = VQT_SETTINGS
        return np.abs(
            librosa.vqt(
                audio,
                sr=s["sample_rate"],
                hop_length=s["hop_length"],
                fmin=s["fmin"],
                n_bins=s["n_bins"],
                bins_per_octave=s["bins_per_octave"],
                gamma=s["gamma"],
                sparsity=0.0,
            )
        )
    s = LOGMEL_SETTINGS
    return librosa.feature.melspectrogram(
        y=audio,
        sr=s["sample_rate"],
        n_fft=s["n_fft"],
        hop_length=s["hop_length"],
        n_mels=s["n_mels"],
        fmin=s["fmin"],
        fmax=s["fmax"],
        power=1.0,
        center=True,
        pad_mode="constant",
    )


@pytest.mark.filterwarnings("ignore:n_fft=.* is too large:UserWarning")
@pytest.mark.parametrize(
    "name, min_correlation, max_median_error",
    [("cqt", 0.999, 0.01), ("vqt", 0.995, 0.05), ("logmel", 0.99999, 1e-5)],
)
def test_close_to_librosa(frontends, name, min_correlation, max_median_error):
    frontend = frontends[name]
    audio = music_like(frontend.sample_rate, 3.0)
    ours = linear_of(frontend, audio)
    reference = librosa_reference(name, audio)
    assert ours.shape == reference.shape

    compressed = [np.log1p(DEFAULT_LOG_GAIN * x).ravel() for x in (ours, reference)]
    assert np.corrcoef(*compressed)[0, 1] > min_correlation

    loud = reference > 1e-3 * reference.max()  # within 60 dB of the maximum
    relative = np.abs(ours - reference)[loud] / reference[loud]
    assert np.median(relative) < max_median_error


def test_mel_filterbank_equals_librosa():
    librosa = pytest.importorskip("librosa")
    s = LOGMEL_SETTINGS
    ours = mel_filterbank(s["sample_rate"], s["n_fft"], s["n_mels"], s["fmin"], s["fmax"])
    reference = librosa.filters.mel(
        sr=s["sample_rate"], n_fft=s["n_fft"], n_mels=s["n_mels"], fmin=s["fmin"], fmax=s["fmax"]
    )
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-7)
    other = mel_filterbank(22050, 1024, 40, 0.0, 11025.0)
    np.testing.assert_allclose(other, librosa.filters.mel(sr=22050, n_fft=1024, n_mels=40), rtol=1e-5, atol=1e-7)


@given(st.floats(min_value=0.0, max_value=96_000.0, allow_nan=False))
def test_mel_scale_round_trip(hz):
    assert float(mel_to_hz(hz_to_mel(hz))) == pytest.approx(hz, rel=1e-12, abs=1e-9)


def test_mel_scale_is_slaney():
    assert float(hz_to_mel(1000.0)) == pytest.approx(15.0)  # linear part: 200/3 Hz per mel
    assert float(hz_to_mel(6400.0)) == pytest.approx(42.0)  # log part: 27 mels per factor 6.4
    assert np.all(np.diff(hz_to_mel(np.linspace(0, 20000, 500))) > 0)


# --------------------------------------------------------------------------- definition


def direct_constant_q(frontend: ConstantQ, audio: np.ndarray, bins: list[int]) -> np.ndarray:
    """Single-rate float64 evaluation of the definition for some bins: ``[len(bins), frames]``."""
    from scipy.signal import fftconvolve

    hop = frontend.hop_length
    n_frames = len(audio) // hop + 1
    rows = []
    for k in bins:
        freqs, lengths = frontend.center_frequencies[k : k + 1], frontend.filter_lengths[k : k + 1]
        kernel = hann_wavelets(freqs, lengths, frontend.sample_rate, np.sqrt(lengths))[:, 0, :]
        half = kernel.shape[1] // 2
        padded = np.pad(audio.astype(np.float64), (half, half + hop))
        correlation = fftconvolve(padded, (kernel[0] + 1j * kernel[1])[::-1], mode="valid")
        rows.append(np.abs(correlation[::hop][:n_frames]))
    return np.array(rows)


@pytest.mark.parametrize("name", ["cqt", "vqt"])
def test_multirate_equals_single_rate_definition(frontends, name):
    """Decimation (with its filter tails kept at the edges) changes nothing but ~1e-5."""
    frontend = frontends[name]
    audio = music_like(frontend.sample_rate, 3.0, seed=1)
    bins = sorted({0, 1, 15, 16, 17, 40, 63, 64, 100, 108, 150, 192, 251, frontend.n_bins - 1})
    reference = direct_constant_q(frontend, audio, bins)
    ours = linear_of(frontend, audio)[bins]
    loud = reference > 1e-3 * reference.max()
    relative = np.abs(ours - reference)[loud] / reference[loud]
    assert np.median(relative) < 1e-4
    assert np.percentile(relative, 99) < 2e-3
    assert np.abs(ours - reference).max() < 1e-4 * reference.max()


def test_constant_q_scaling_is_librosas():
    """A unit sinusoid at a bin's frequency has magnitude sqrt(L_k) / 2 there (norm=1, scale=True)."""
    frontend = build_cqt()
    sr = frontend.sample_rate
    for k in (60, 192, 330):
        f = frontend.center_frequencies[k]
        audio = np.cos(2 * np.pi * f * np.arange(4 * sr) / sr).astype(np.float32)
        magnitude = linear_of(frontend, audio)[k, 100]
        assert magnitude == pytest.approx(np.sqrt(frontend.filter_lengths[k]) / 2, rel=2e-3)


# --------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize("name, expected_bin", [("cqt", 192), ("vqt", 108), ("logmel", 31)])
def test_a440_peaks_in_expected_bin(frontends, name, expected_bin):
    # logmel: band 31 is centred on 445.5 Hz, the closest of the 229 centres to 440 Hz
    frontend = frontends[name]
    sr = frontend.sample_rate
    audio = (0.5 * np.sin(2 * np.pi * 440.0 * np.arange(2 * sr) / sr)).astype(np.float32)
    features = features_of(frontend, audio)[0]
    middle = features[features.shape[0] // 4 : 3 * features.shape[0] // 4]
    assert np.all(np.argmax(middle, axis=1) == expected_bin)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_frame_count_and_silence(frontends, name):
    frontend = frontends[name]
    hop = frontend.hop_length
    for n_samples in (0, 1, hop - 1, hop, hop + 1, 7 * hop, 7 * hop + hop // 2):
        features = frontend(torch.zeros(3, n_samples))
        assert features.shape == (3, n_samples // hop + 1, frontend.n_bins)
        assert features.shape[1] == frontend.frame_count(n_samples)
        assert features.dtype == torch.float32
        assert torch.count_nonzero(features) == 0  # silence is exactly zero
    noise = frontend(torch.randn(1, 5 * hop))
    assert torch.all(noise >= 0) and torch.all(torch.isfinite(noise))


@pytest.mark.parametrize("name", NAMES)
def test_batch_equals_items_alone(frontends, name):
    frontend = frontends[name]
    a = music_like(frontend.sample_rate, 1.5, seed=2)
    b = music_like(frontend.sample_rate, 1.5, seed=3)[::-1].copy()
    batch = features_of(frontend, np.stack([a, b]))
    np.testing.assert_allclose(batch[0], features_of(frontend, a)[0], atol=FLOAT32_ATOL)
    np.testing.assert_allclose(batch[1], features_of(frontend, b)[0], atol=FLOAT32_ATOL)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-9), (torch.float32, FLOAT32_ATOL)])
def test_chunk_with_context_equals_whole_signal(frontends, name, dtype, atol):
    """A chunk starting on a hop boundary reproduces the whole signal's frames wherever it holds
    ``context_samples`` of audio around them (exactly, up to rounding); at its edges it does not."""
    frontend = frontends[name] if dtype == torch.float32 else BUILDERS[name]().to(dtype)
    hop = frontend.hop_length
    margin = -(-frontend.context_samples // hop)  # frames
    assert frontend.receptive_field == 2 * frontend.context_samples + 1
    chunk_frames = 2 * margin + 40
    start = margin + 13  # frames into the signal
    seconds = (start + chunk_frames + margin + 5) * hop / frontend.sample_rate
    audio = torch.from_numpy(music_like(frontend.sample_rate, seconds, seed=4)).to(dtype)[None]
    chunk = audio[:, start * hop : (start + chunk_frames) * hop]

    with torch.no_grad():
        whole, part = frontend(audio)[0], frontend(chunk)[0]
    assert part.shape[0] == chunk_frames + 1
    inside = part[margin:-margin]
    torch.testing.assert_close(inside, whole[start + margin : start + chunk_frames - margin + 1], rtol=0, atol=atol)
    assert (part[0] - whole[start]).abs().max() > 1e-2  # the first frame lacks its left context


@pytest.mark.parametrize("name", NAMES)
def test_linear_inverts_compression(frontends, name):
    frontend = frontends[name]
    audio = torch.from_numpy(music_like(frontend.sample_rate, 1.0, seed=5)[None])
    with torch.no_grad():
        features = frontend(audio)
        magnitude = frontend.magnitude(audio.unsqueeze(1)).transpose(1, 2)
    torch.testing.assert_close(frontend.linear(features), magnitude, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(frontend.compress(frontend.linear(features)), features, rtol=1e-6, atol=1e-6)
    values = torch.tensor([0.0, 1e-6, 1e-3, 0.5, 40.0])
    torch.testing.assert_close(frontend.linear(frontend.compress(values)), values, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_double_precision_copy_agrees(frontends, name):
    frontend = frontends[name]
    audio = torch.from_numpy(music_like(frontend.sample_rate, 1.0, seed=6)[None])
    double = BUILDERS[name]().double()
    assert all(buffer.dtype == torch.float64 for buffer in double.buffers())
    with torch.no_grad():
        torch.testing.assert_close(double(audio).float(), frontend(audio), rtol=0, atol=FLOAT32_ATOL)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_matches_cpu(frontends, name):
    frontend = frontends[name]
    audio = torch.from_numpy(music_like(frontend.sample_rate, 2.0, seed=7)[None])
    gpu = BUILDERS[name]().cuda()
    with torch.no_grad():
        torch.testing.assert_close(gpu(audio.cuda()).cpu(), frontend(audio), rtol=0, atol=FLOAT32_ATOL)


@pytest.mark.parametrize("name", NAMES)
def test_onnx_export_matches_torch(frontends, name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    frontend = frontends[name]
    path = tmp_path / f"{name}.onnx"
    example = torch.randn(1, frontend.sample_rate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation / constant-folding notes
        torch.onnx.export(
            frontend,
            (example,),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["audio"],
            output_names=["features"],
            dynamic_axes={"audio": {0: "batch", 1: "samples"}, "features": {0: "batch", 1: "frames"}},
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    audio = torch.from_numpy(np.stack([music_like(frontend.sample_rate, 1.7, seed=s) for s in (8, 9)]))
    (exported,) = session.run(None, {"audio": audio.numpy()})
    np.testing.assert_allclose(exported, features_of(frontend, audio.numpy()), atol=FLOAT32_ATOL)


def test_bad_input_shape_and_settings_raise():
    frontend = build_logmel()
    with pytest.raises(ValueError, match=r"\[batch, samples\]"):
        frontend(torch.zeros(16000))
    with pytest.raises(ValueError, match="Nyquist"):
        ConstantQ(sample_rate=8000, hop_length=160, fmin=27.5, n_bins=352, bins_per_octave=48)


# --------------------------------------------------------------------------- registration


def test_hook_registers_three_specs_matching_the_modules():
    import pluggy

    from transcribe_cli import hookspecs

    manager = pluggy.PluginManager("transcribe_cli")
    manager.add_hookspecs(hookspecs)
    manager.register(sys.modules["transcribe_cli.frontends"])
    specs = []
    manager.hook.register_frontends(register=specs.append)
    assert [spec.name for spec in specs] == ["cqt", "vqt", "logmel"]
    for spec in specs:
        assert spec.options == {"log_gain": DEFAULT_LOG_GAIN}
        module = spec.factory(log_gain=10.0)
        assert (module.sample_rate, module.hop_length, module.n_bins) == (
            spec.sample_rate,
            spec.hop_length,
            spec.n_bins,
        )
        assert module.log_gain == 10.0
        assert spec.frame_rate == pytest.approx(module.frame_rate)
    assert [(s.sample_rate, s.hop_length, s.n_bins) for s in specs] == [
        (16000, 320, 352),
        (22050, 512, 252),
        (16000, 512, 229),
    ]
    direct = []
    register_frontends(direct.append)
    assert [s.name for s in direct] == [s.name for s in builtin_frontend_specs()]


def test_factory_rejects_unknown_or_bad_options():
    with pytest.raises(OptionError, match="no option 'n_bins'"):
        build_cqt(n_bins=12)
    with pytest.raises(OptionError, match="positive"):
        build_vqt(log_gain=0)
    with pytest.raises(OptionError, match="positive"):
        build_logmel(log_gain="loud")


@pytest.mark.parametrize("code, module", [
    ("import transcribe_cli.frontends as f; f.builtin_frontend_specs()", "torch"),
    # scipy.signal alone cost more start-up than the rest of the frontend
    ("from transcribe_cli.frontends import build_cqt; build_cqt()", "scipy.signal"),
])
def test_frontend_code_does_not_import(code, module):
    code = f"import sys; {code}; assert {module!r} not in sys.modules, '{module} imported'"
    import transcribe_cli

    source_root = os.path.dirname(os.path.dirname(transcribe_cli.__file__))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source_root, os.environ.get("PYTHONPATH")]))}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


@pytest.mark.parametrize("pass_edge, stopband_db", [(0.85, 96.0), (0.8, 60.0), (0.9, 120.0), (0.5, 30.0)])
def test_halfband_lowpass_equals_scipy_design(pass_edge, stopband_db):
    from scipy.signal import firwin, kaiserord

    from transcribe_cli.frontends.constant_q import halfband_lowpass

    numtaps, beta = kaiserord(stopband_db, width=1.0 - pass_edge)
    numtaps += 1 - numtaps % 2
    np.testing.assert_allclose(halfband_lowpass(pass_edge, stopband_db),
                               firwin(numtaps, 0.5, window=("kaiser", beta)), rtol=0, atol=1e-15)


@given(samples=st.integers(1, 700), batch=st.integers(1, 3), left=st.integers(0, 90))
def test_blocked_decimation_equals_a_plain_stride_two_lowpass(samples, batch, left):
    """The torch and numpy ``cqt``'s ``_decimate`` (16 outputs per position) give the plain
    stride-2 correlation with the FIR, then only exact zeros (the right padding is at least a
    filter length)."""
    from transcribe_cli.frontends.constant_q import ConstantQ
    from transcribe_cli.frontends.constant_q_numpy import NumpyConstantQ

    settings = dict(sample_rate=16000, hop_length=320, fmin=27.5, n_bins=352, bins_per_octave=48)
    frontend, numpy_frontend = ConstantQ(**settings), NumpyConstantQ(**settings)
    taps = frontend.lowpass.shape[-1]
    signal = torch.randn(batch, 1, samples, generator=torch.Generator().manual_seed(samples))
    right = taps + left % 3
    plain = torch.nn.functional.conv1d(torch.nn.functional.pad(signal, (left, right)), frontend.lowpass, stride=2)
    n = plain.shape[-1]
    for blocked in (frontend._decimate(signal, left, right),
                    torch.from_numpy(numpy_frontend._decimate(signal[:, 0].numpy(), left, right))[:, None]):
        assert blocked.shape[:2] == plain.shape[:2] and blocked.shape[-1] >= n
        torch.testing.assert_close(blocked[..., :n], plain, rtol=0, atol=1e-5)
        assert not blocked[..., n:].any()


# --------------------------------------------------------------------------- numpy forms


NUMPY_BUILDERS = {"cqt": "build_cqt_numpy", "vqt": "build_vqt_numpy"}


@pytest.mark.parametrize("name", list(NUMPY_BUILDERS))
def test_numpy_constant_q_equals_the_torch_module(frontends, name):
    """The numpy analysis (``--runtime numpy``) computes the torch module's transform from the
    same design: magnitudes to float32 rounding (summation order), on a known signal and a batch."""
    import transcribe_cli.frontends as registry_module

    torch_frontend = frontends[name]
    numpy_frontend = getattr(registry_module, NUMPY_BUILDERS[name])()
    assert (numpy_frontend.sample_rate, numpy_frontend.hop_length, numpy_frontend.n_bins) == (
        torch_frontend.sample_rate, torch_frontend.hop_length, torch_frontend.n_bins)
    assert numpy_frontend.receptive_field == torch_frontend.receptive_field
    for got, expected in zip(numpy_frontend.design.kernels, (getattr(torch_frontend, f"kernels_{i}")
                                                             for i in range(len(torch_frontend.groups)))):
        np.testing.assert_array_equal(got.astype(np.float32), expected[:, 0].numpy())
    a = music_like(torch_frontend.sample_rate, 2.0, seed=4)
    audio = np.stack([a, a[::-1].copy()])
    with torch.no_grad():
        expected = torch_frontend.magnitude(torch.from_numpy(audio)[:, None]).transpose(1, 2).numpy()
        expected_features = torch_frontend(torch.from_numpy(audio)).numpy()
    got = numpy_frontend.magnitude(audio)
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.abs(got - expected).max() < 2e-6 * expected.max()
    loud = expected > 1e-2 * expected.max()  # within 40 dB of the peak
    assert (np.abs(got - expected)[loud] / expected[loud]).max() < 3e-5
    features = numpy_frontend(audio)
    assert features.dtype == np.float32
    np.testing.assert_allclose(features, expected_features, atol=FLOAT32_ATOL, rtol=0)


@pytest.mark.parametrize("name", list(NUMPY_BUILDERS))
def test_numpy_constant_q_shapes_and_silence(name):
    import transcribe_cli.frontends as registry_module

    frontend = getattr(registry_module, NUMPY_BUILDERS[name])()
    hop = frontend.hop_length
    for n_samples in (0, 1, hop - 1, hop, hop + 1, 7 * hop + hop // 2):
        features = frontend(np.zeros((2, n_samples), dtype=np.float32))
        assert features.shape == (2, frontend.frame_count(n_samples), frontend.n_bins)
        assert not features.any()  # silence is exactly zero


def test_numpy_cqt_equals_torch_on_a_real_recording(frontends):
    """The example recording (first 6 s, as the pipeline normalises it): bins within 40 dB of
    the peak agree to ~1e-5 relative (measured max 8.9e-6 on the whole example)."""
    from transcribe_cli.frontends import build_cqt_numpy
    from transcribe_cli.inference import normalize_audio
    from transcribe_cli.io.audio import load_audio

    audio = normalize_audio(load_audio(os.path.join(os.path.dirname(__file__), "..", "examples", "pop909_003.flac"),
                                       16000)[: 6 * 16000], "peak")
    with torch.no_grad():
        expected = frontends["cqt"].magnitude(torch.from_numpy(audio)[None, None]).transpose(1, 2)[0].numpy()
    got = build_cqt_numpy().magnitude(audio[None])[0]
    loud = expected > 1e-2 * expected.max()
    relative = np.abs(got - expected)[loud] / expected[loud]
    assert np.median(relative) < 2e-6 and relative.max() < 3e-5


def test_numpy_frontends_import_no_torch():
    code = ("import sys, numpy as np\n"
            "from transcribe_cli.frontends import build_cqt_numpy, build_vqt_numpy\n"
            "build_cqt_numpy()(np.zeros((1, 4000), np.float32)); build_vqt_numpy()\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
