"""Log-mel spectrogram (Onsets & Frames style) as ``conv1d`` over a real DFT basis.

Magnitude conventions match ``librosa.feature.melspectrogram(..., power=1.0, center=True,
pad_mode="constant")`` with librosa's default *Slaney* mel filters (``htk=False``,
``norm="slaney"``): the STFT uses a periodic Hann window of ``n_fft`` samples and no
normalisation, and each mel band is a triangle of unit area in Hz. ``power=1`` (magnitude,
not power) keeps the features additive for the NMF model, which works on linear magnitude.

The Slaney filterbank is computed in numpy in :mod:`.mel` (no torch; the beat tracker uses it too);
the tests check it against ``librosa.filters.mel``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .base import SpectrogramFrontend, centered_frames_conv, quadrature_magnitude
from .mel import hz_to_mel, mel_filterbank, mel_to_hz  # noqa: F401 - re-exported

def dft_kernels(n_fft: int, n_freqs: int) -> np.ndarray:
    """Periodic-Hann-windowed DFT basis ``[2 * n_freqs, 1, n_fft - 1]`` (cosines, then sines),
    centred: tap ``j`` multiplies the sample ``j - (n_fft//2 - 1)`` away from the frame centre.

    The periodic Hann window of even length ``n_fft`` is zero at its first sample and
    symmetric about ``n_fft // 2``, so dropping that zero leaves an odd, centred kernel with
    exactly the magnitudes of ``librosa.stft(center=True)``.
    """
    if n_fft % 2:
        raise ValueError(f"n_fft must be even, got {n_fft}")
    half = n_fft // 2 - 1
    t = np.arange(-half, half + 1, dtype=np.float64)
    window = 0.5 + 0.5 * np.cos(2.0 * np.pi * t / n_fft)
    phase = 2.0 * np.pi * np.arange(n_freqs, dtype=np.float64)[:, None] * t / n_fft
    kernels = np.concatenate([window * np.cos(phase), -window * np.sin(phase)], axis=0)
    return kernels[:, None, :]


class LogMel(SpectrogramFrontend):
    """Mel-filtered STFT magnitude, ``log1p``-compressed (see :mod:`.base`)."""

    def __init__(
        self,
        *,
        sample_rate: int,
        n_fft: int,
        hop_length: int,
        n_mels: int,
        fmin: float,
        fmax: float,
        log_gain: float = 1.0,
    ) -> None:
        super().__init__(log_gain)
        if not 0 <= fmin < fmax <= sample_rate / 2:
            raise ValueError(f"need 0 <= fmin < fmax <= {sample_rate / 2:g} Hz, got fmin={fmin}, fmax={fmax}")
        self.sample_rate = int(sample_rate)
        self.hop_length = int(hop_length)
        self.n_fft = int(n_fft)
        self.n_bins = int(n_mels)
        self.fmin = float(fmin)
        self.fmax = float(fmax)
        filters = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax)
        # DFT bins that no mel filter uses are not computed at all
        used = np.nonzero(filters.any(axis=0))[0]
        first, stop = int(used[0]), int(used[-1]) + 1
        kernels = dft_kernels(n_fft, stop)
        kernels = np.concatenate([kernels[first:stop], kernels[stop + first :]], axis=0)
        self.register_buffer("kernels", torch.tensor(kernels, dtype=torch.float32), persistent=False)
        self.register_buffer("mel_basis", torch.tensor(filters[:, first:stop], dtype=torch.float32), persistent=False)
        self.context_samples = n_fft // 2 - 1

    def magnitude(self, signal: Tensor) -> Tensor:
        n_frames = signal.shape[-1] // self.hop_length + 1
        responses = centered_frames_conv(
            signal, self.kernels, half=self.n_fft // 2 - 1, stride=self.hop_length, n_frames=n_frames
        )
        spectrum = quadrature_magnitude(responses)
        return torch.matmul(self.mel_basis, spectrum)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, n_fft={self.n_fft}, fmin={self.fmin:g}, fmax={self.fmax:g}"
