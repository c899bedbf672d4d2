"""Windowed inference equals one pass over the whole signal; planning edge cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transcribe_cli.errors import TranscribeError
from transcribe_cli.inference import (
    chunk_audio,
    compute_activations,
    normalize_audio,
    plan_windows,
    select_device,
)


class ToyFrontend(torch.nn.Module):
    """Framed features from a 257-tap filter bank: centred frames, zeros beyond the ends."""

    sample_rate = 1000
    hop_length = 10
    n_bins = 8
    receptive_field = 257

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.register_buffer("kernels", torch.randn(self.n_bins, 1, self.receptive_field, generator=g))

    def forward(self, audio):
        pad = self.receptive_field // 2
        x = torch.nn.functional.conv1d(audio[:, None], self.kernels, stride=self.hop_length, padding=pad)
        return x.abs().transpose(1, 2)[:, : audio.shape[-1] // self.hop_length + 1]


class ToyModel(torch.nn.Module):
    """A temporal convolution with ``context`` frames on each side, 88 outputs."""

    def __init__(self, context=5):
        super().__init__()
        torch.manual_seed(1)
        self.conv = torch.nn.Conv1d(8, 88, 2 * context + 1, padding=context)

    def forward(self, features):
        y = torch.sigmoid(self.conv(features.transpose(1, 2))).transpose(1, 2)
        return {"frame": y, "onset": 1 - y}


@pytest.mark.parametrize("n_samples", [1, 10, 11, 2345])
@pytest.mark.parametrize("window_frames", [1, 7, 1000])
def test_windowed_equals_single_pass(n_samples, window_frames):
    rng = np.random.default_rng(n_samples)
    audio = rng.standard_normal(n_samples).astype(np.float32)
    frontend, model = ToyFrontend(), ToyModel(context=5)
    kwargs = dict(context_frames=5, batch_size=3, device=torch.device("cpu"))
    whole = compute_activations(audio, frontend, model, window_frames=10**6, **kwargs)
    windowed = compute_activations(audio, frontend, model, window_frames=window_frames, **kwargs)
    n_frames = n_samples // 10 + 1
    for key in ("frame", "onset"):
        assert whole[key].shape == (n_frames, 88)
        np.testing.assert_allclose(windowed[key], whole[key], atol=1e-5)


def test_plan_windows_covers_every_frame_once():
    windows = plan_windows(1003, 100, 7)
    covered = np.concatenate([np.arange(w.start, w.stop) for w in windows])
    np.testing.assert_array_equal(covered, np.arange(1003))
    assert all(w.chunk_frames == 114 for w in windows)


def test_chunk_audio_zero_pads_beyond_the_signal():
    audio = np.arange(1, 51, dtype=np.float32)
    (w,) = plan_windows(6, 10, 2)  # chunk frames -2 .. 11 at hop 10
    chunk = chunk_audio(audio, w, 10)
    assert chunk.shape == (131,)
    assert np.all(chunk[:20] == 0) and chunk[20] == 1 and chunk[69] == 50 and np.all(chunk[70:] == 0)


def test_peak_normalisation_keeps_silence():
    assert np.all(normalize_audio(np.zeros(100, np.float32), "peak") == 0)
    loud = normalize_audio(np.array([0.1, -0.2], np.float32), "peak")
    assert np.isclose(np.abs(loud).max(), 0.9)
    assert normalize_audio(np.array([0.1], np.float32), None)[0] == np.float32(0.1)


def test_device_selection():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(TranscribeError):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(TranscribeError, match="no CUDA GPU"):
            select_device("cuda")
