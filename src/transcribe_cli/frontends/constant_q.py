"""Constant-Q and variable-Q transforms (one implementation: a VQT with ``gamma=0`` is the CQT).

Definition (librosa's ``vqt`` conventions, so the two can be compared bin for bin):

* centre frequencies ``f_k = fmin * 2 ** (k / bins_per_octave)``;
* relative bandwidth ``alpha = (2**(2/bpo) - 1) / (2**(2/bpo) + 1)`` and bandwidth
  ``B_k = alpha * f_k + gamma`` (Hz); filter length ``L_k = filter_scale * sample_rate / B_k``;
* filter ``k`` is a Hann window of (fractional) length ``L_k`` centred on the frame centre,
  modulated to ``f_k``, L1-normalised and multiplied by ``sqrt(L_k)`` — librosa's
  ``norm=1, scale=True``. A unit-amplitude sinusoid at ``f_k`` therefore has magnitude
  ``sqrt(L_k) / 2`` in bin ``k``.

Speed comes from the multi-rate scheme of librosa's ``vqt`` and nnAudio's ``CQT2010v2``: bins
are processed one octave at a time from the top; the signal is low-passed and decimated by 2
before an octave whose filters fit comfortably below the halved Nyquist frequency (their
Hann main lobe ``f_k + 2 B_k / filter_scale`` below ``pass_edge`` of it), as long as the hop
stays an integer and the filters keep at least ``min_taps`` taps. At ``2**d``-fold decimation
the filters are sampled at ``sample_rate / 2**d`` and the hop is ``hop_length / 2**d``, so a
frame is still centred on sample ``t * hop_length``. The anti-aliasing filter is a zero-phase
Kaiser-window FIR (stop band ``stopband_db`` below the pass band), so decimated sample ``m`` is
the low-passed signal at ``2**d * m`` and chunks that start on a hop boundary stay exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .base import SpectrogramFrontend, centered_frames_conv, quadrature_magnitude

#: equivalent noise bandwidth of the Hann window in bins (librosa's ``window_bandwidth("hann")``)
HANN_BANDWIDTH = 1.50018310546875


def center_frequencies(fmin: float, n_bins: int, bins_per_octave: int) -> np.ndarray:
    """``fmin * 2 ** (k / bins_per_octave)`` for ``k < n_bins`` (Hz)."""
    return fmin * 2.0 ** (np.arange(n_bins) / bins_per_octave)


def relative_bandwidth(bins_per_octave: int) -> float:
    """``alpha`` such that neighbouring filters' bands meet: ``(r**2 - 1) / (r**2 + 1)``, ``r = 2**(1/bpo)``."""
    r2 = 2.0 ** (2.0 / bins_per_octave)
    return (r2 - 1.0) / (r2 + 1.0)


def filter_lengths(
    freqs: np.ndarray, sample_rate: float, bins_per_octave: int, gamma: float = 0.0, filter_scale: float = 1.0
) -> np.ndarray:
    """Fractional filter lengths in samples, ``filter_scale * sample_rate / (alpha * f + gamma)``
    (librosa's ``wavelet_lengths`` for geometrically spaced bins)."""
    alpha = relative_bandwidth(bins_per_octave)
    return filter_scale * sample_rate / (alpha * np.asarray(freqs, dtype=np.float64) + gamma)


def hann_wavelets(freqs: np.ndarray, lengths: np.ndarray, rate: float, gains: np.ndarray) -> np.ndarray:
    """Complex analysis kernels ``[2 * n, 1, K]`` (real parts, then imaginary parts), K odd.

    Kernel ``k`` at offset ``t`` (samples at ``rate``) is ``gains[k] * w_k(t) * exp(-2j*pi*f_k*t/rate)
    / sum_t w_k(t)`` with ``w_k(t) = 0.5 + 0.5 * cos(2*pi*t / L_k)`` for ``|t| < L_k / 2``: a Hann
    window of fractional length ``L_k`` centred on ``t = 0``, so the response is zero-phase.
    """
    half = int(np.max(np.ceil(lengths / 2.0))) - 1
    half = max(half, 0)
    t = np.arange(-half, half + 1, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.float64)[:, None]
    window = np.where(np.abs(t) < lengths / 2.0, 0.5 + 0.5 * np.cos(2.0 * np.pi * t / lengths), 0.0)
    window /= window.sum(axis=1, keepdims=True)
    window *= np.asarray(gains, dtype=np.float64)[:, None]
    phase = 2.0 * np.pi * np.asarray(freqs, dtype=np.float64)[:, None] * t / rate
    kernels = np.concatenate([window * np.cos(phase), -window * np.sin(phase)], axis=0)
    return kernels[:, None, :]


def halfband_lowpass(pass_edge: float, stopband_db: float) -> np.ndarray:
    """Zero-phase FIR for decimation by 2 (odd length, unit DC gain).

    Passes ``[0, pass_edge]`` of the *output* Nyquist frequency and attenuates by
    ``stopband_db`` everything that would alias into that band. The design of
    ``scipy.signal.firwin(n, 0.5, window=("kaiser", beta))`` with ``kaiserord``'s ``n`` and
    ``beta`` (Kaiser's formulas), written out in numpy because importing ``scipy.signal``
    alone cost more start-up than the rest of the frontend (``benchmarks/results/memory.md``);
    ``tests/test_frontends.py`` checks the taps equal scipy's.
    """
    a = abs(float(stopband_db))
    if a < 8:
        raise ValueError("stopband_db must be at least 8 dB for the Kaiser design")
    beta = 0.1102 * (a - 8.7) if a > 50 else (0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21) if a > 21 else 0.0)
    numtaps = int(np.ceil((a - 7.95) / 2.285 / (np.pi * (1.0 - pass_edge)) + 1))
    numtaps += 1 - numtaps % 2
    m = np.arange(numtaps) - 0.5 * (numtaps - 1)
    taps = 0.5 * np.sinc(0.5 * m) * np.kaiser(numtaps, beta)
    return taps / taps.sum()


@dataclass(frozen=True)
class OctaveGroup:
    """Bins ``[start, stop)`` analysed after ``level`` halvings of the sample rate."""

    start: int
    stop: int
    level: int


def plan_octaves(
    freqs: np.ndarray,
    lengths: np.ndarray,
    *,
    sample_rate: float,
    hop_length: int,
    bins_per_octave: int,
    edges: np.ndarray,
    pass_edge: float,
    min_taps: float,
) -> list[OctaveGroup]:
    """Split the bins into octaves (from the top) and pick each one's decimation level.

    ``edges[k]`` is the highest frequency filter ``k`` responds to (its main lobe). Levels never
    decrease towards lower octaves, because all levels share one decimation chain.
    """
    max_level = (hop_length & -hop_length).bit_length() - 1  # times the hop can be halved
    groups: list[OctaveGroup] = []
    level = 0
    stop = len(freqs)
    while stop > 0:
        start = max(stop - bins_per_octave, 0)
        while level < max_level:
            rate = sample_rate / 2 ** (level + 1)
            fits = edges[start:stop].max() <= pass_edge * rate / 2
            long_enough = lengths[start:stop].min() / 2 ** (level + 1) >= min_taps
            if not (fits and long_enough):
                break
            level += 1
        groups.append(OctaveGroup(start, stop, level))
        stop = start
    return groups


class ConstantQ(SpectrogramFrontend):
    """Variable-Q magnitude spectrogram (``gamma=0``: constant-Q), multi-rate, in ``conv1d``.

    Parameters follow ``librosa.vqt``; ``gamma`` is the bandwidth offset in Hz. ``pass_edge``,
    ``stopband_db`` and ``min_taps`` tune the decimation (see the module docstring).
    """

    def __init__(
        self,
        *,
        sample_rate: int,
        hop_length: int,
        fmin: float,
        n_bins: int,
        bins_per_octave: int,
        gamma: float = 0.0,
        filter_scale: float = 1.0,
        log_gain: float = 1.0,
        pass_edge: float = 0.85,
        stopband_db: float = 96.0,
        min_taps: float = 32.0,
    ) -> None:
        super().__init__(log_gain)
        if n_bins < 1 or bins_per_octave < 1 or hop_length < 1 or fmin <= 0 or gamma < 0:
            raise ValueError("constant-Q needs n_bins, bins_per_octave, hop_length >= 1, fmin > 0, gamma >= 0")
        self.sample_rate = int(sample_rate)
        self.hop_length = int(hop_length)
        self.n_bins = int(n_bins)
        self.fmin = float(fmin)
        self.bins_per_octave = int(bins_per_octave)
        self.gamma = float(gamma)

        freqs = center_frequencies(fmin, n_bins, bins_per_octave)
        lengths = filter_lengths(freqs, sample_rate, bins_per_octave, gamma, filter_scale)
        bandwidths = relative_bandwidth(bins_per_octave) * freqs + gamma
        cutoff = float(np.max(freqs + 0.5 * HANN_BANDWIDTH * bandwidths / filter_scale))
        if cutoff > sample_rate / 2:
            raise ValueError(
                f"the top filter reaches {cutoff:.0f} Hz, above the Nyquist frequency {sample_rate / 2:.0f} Hz: "
                "use fewer bins or a lower fmin"
            )
        edges = freqs + 2.0 * bandwidths / filter_scale
        self.groups = plan_octaves(
            freqs,
            lengths,
            sample_rate=sample_rate,
            hop_length=hop_length,
            bins_per_octave=bins_per_octave,
            edges=edges,
            pass_edge=pass_edge,
            min_taps=min_taps,
        )
        self.center_frequencies = freqs
        self.filter_lengths = lengths

        lowpass = halfband_lowpass(pass_edge, stopband_db)
        self.register_buffer("lowpass", torch.tensor(lowpass, dtype=torch.float32).view(1, 1, -1), persistent=False)
        self._lowpass_half = len(lowpass) // 2
        self._halves: list[int] = []
        context = 0
        for i, group in enumerate(self.groups):
            sl = slice(group.start, group.stop)
            scale = 2**group.level
            kernels = hann_wavelets(freqs[sl], lengths[sl] / scale, sample_rate / scale, np.sqrt(lengths[sl]))
            self.register_buffer(f"kernels_{i}", torch.tensor(kernels, dtype=torch.float32), persistent=False)
            self._halves.append(kernels.shape[-1] // 2)
            # decimation stage j widens the support by (taps // 2) samples at rate sr / 2**j
            chain = sum((len(lowpass) // 2) * 2**j for j in range(group.level))
            context = max(context, (kernels.shape[-1] // 2) * scale + chain)
        self.context_samples = int(context)

    def magnitude(self, signal: Tensor) -> Tensor:
        n_frames = signal.shape[-1] // self.hop_length + 1
        reals: list[Tensor] = []
        imags: list[Tensor] = []
        level = 0
        offset = 0  # samples stored before position 0 at the current level
        for i, group in enumerate(self.groups):
            while level < group.level:
                signal, offset = self._decimate(signal, offset)
                level += 1
            kernels = getattr(self, f"kernels_{i}")
            responses = centered_frames_conv(
                signal, kernels, half=self._halves[i], stride=self.hop_length >> level, n_frames=n_frames, offset=offset
            )
            real, imag = responses.chunk(2, dim=1)
            reals.append(real)
            imags.append(imag)
        # groups run from the top octave down; one magnitude over all bins (fewer small ops)
        return quadrature_magnitude(torch.cat(reals[::-1] + imags[::-1], dim=1))

    def _decimate(self, signal: Tensor, offset: int) -> tuple[Tensor, int]:
        """Low-pass and keep the samples at even positions; returns ``(signal, offset)``.

        ``offset`` counts the samples stored before position 0. The low-passed signal is kept
        *with* its filter tails beyond both ends of the audio, so decimation commutes with the
        zero padding and the result equals a single-rate analysis up to the stop-band level.
        """
        half = self._lowpass_half
        extra = 2 * half + (offset + half) % 2  # makes output 0 land on an even position
        padded = F.pad(signal, (extra, 2 * half + 1))
        return F.conv1d(padded, self.lowpass, stride=2), (offset + extra - half) // 2

    def extra_repr(self) -> str:
        levels = ",".join(str(g.level) for g in self.groups)
        return (
            f"{super().extra_repr()}, fmin={self.fmin:g}, bins_per_octave={self.bins_per_octave}, "
            f"gamma={self.gamma:g}, octave_levels=[{levels}]"
        )
