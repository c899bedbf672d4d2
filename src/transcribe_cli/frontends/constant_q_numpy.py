"""The constant-Q design (filters, octaves, decimation) and its analysis in numpy, without torch.

:class:`ConstantQDesign` is the one design of the ``cqt`` and ``vqt`` frontends: the torch
module (:class:`.constant_q.ConstantQ`, whose docstring defines the transform) registers its
kernels as buffers, and :class:`NumpyConstantQ` computes the same transform with numpy for
inference without torch (``--runtime numpy``, :mod:`transcribe_cli.runtime`). Both drive the
multi-rate scheme through :meth:`ConstantQDesign.analyse`, so the bookkeeping of decimation
levels and sample offsets exists once; they differ only in the two array operations (a
strided correlation and the decimating low-pass). Results agree to float32 rounding
(``tests/test_frontends.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .arrays import Framing, compress, correlate_frames, quadrature_magnitude

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


#: Outputs of the stride-2 low-pass computed at once per position: a 1-channel stride-2
#: correlation runs at a fraction of the CPU's speed (torch, onnxruntime and ``np.correlate``
#: alike: 18 ms of a 22-s ``piano`` window's 430 ms in onnxruntime for the first decimation);
#: 16 outputs of a slightly longer kernel at stride 32 are a dense convolution, or one GEMM
#: (4.6x faster in torch, 2.3x in numpy; ``benchmarks/results/model_speed.md``).
DECIMATION_BLOCK = 16


def blocked_lowpass(lowpass: np.ndarray, block: int = DECIMATION_BLOCK) -> np.ndarray:
    """``[block, L + 2 (block - 1)]`` kernels whose row ``p`` is the FIR ``lowpass`` (length
    ``L``) shifted by ``2 p``: correlating a signal with them at stride ``2 block`` gives, in
    row ``p`` at position ``q``, the stride-2 low-passed sample ``block * q + p``."""
    taps = np.asarray(lowpass, dtype=np.float32).reshape(-1)
    kernels = np.zeros((block, taps.size + 2 * (block - 1)), dtype=np.float32)
    for p in range(block):
        kernels[p, 2 * p : 2 * p + taps.size] = taps
    return kernels


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




class ConstantQDesign:
    """Filters and decimation plan of a variable-Q analysis (``gamma=0``: constant-Q).

    Parameters follow ``librosa.vqt`` (see :class:`.constant_q.ConstantQ`). Attributes:
    ``center_frequencies``, ``filter_lengths``, ``groups`` (:class:`OctaveGroup`, top octave
    first), ``kernels`` (float64 ``[2 * bins, taps]`` per group: real parts, then imaginary),
    ``lowpass`` (the decimation FIR) and ``context_samples``.
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
        pass_edge: float = 0.85,
        stopband_db: float = 96.0,
        min_taps: float = 32.0,
    ) -> None:
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
        self.lowpass = halfband_lowpass(pass_edge, stopband_db)
        self.kernels: list[np.ndarray] = []
        context = 0
        half = len(self.lowpass) // 2
        for group in self.groups:
            sl = slice(group.start, group.stop)
            scale = 2**group.level
            kernels = hann_wavelets(freqs[sl], lengths[sl] / scale, sample_rate / scale, np.sqrt(lengths[sl]))[:, 0, :]
            self.kernels.append(kernels)
            # decimation stage j widens the support by (taps // 2) samples at rate sr / 2**j
            chain = sum(half * 2**j for j in range(group.level))
            context = max(context, (kernels.shape[-1] // 2) * scale + chain)
        self.context_samples = int(context)

    @property
    def halves(self) -> list[int]:
        """``taps // 2`` of each group's kernels."""
        return [kernels.shape[-1] // 2 for kernels in self.kernels]

    def decimation_padding(self, offset: int) -> tuple[int, int, int]:
        """``(left, right, new_offset)`` of one decimation of a signal that stores ``offset``
        samples before position 0: zero-pad ``left`` and ``right`` samples, low-pass at stride 2
        (the kept samples are the even positions), and the result stores ``new_offset``.

        The low-passed signal is kept *with* its filter tails beyond both ends of the audio, so
        decimation commutes with the zero padding and the result equals a single-rate analysis
        up to the stop-band level.
        """
        half = len(self.lowpass) // 2
        extra = 2 * half + (offset + half) % 2  # makes output 0 land on an even position
        return extra, 2 * half + 1, (offset + extra - half) // 2

    def analyse(self, signal: Any, n_frames: int, decimate: Callable[[Any, int, int], Any],
                correlate: Callable[..., Any]) -> list[Any]:
        """The multi-rate analysis with the caller's array operations: ``decimate(signal, left,
        right)`` pads and low-passes at stride 2; ``correlate(signal, group_index, half=,
        stride=, n_frames=, offset=)`` is a centred-frames correlation with that group's kernels.
        Returns each group's responses, top octave first."""
        responses = []
        level = 0
        offset = 0  # samples stored before position 0 at the current level
        for i, group in enumerate(self.groups):
            while level < group.level:
                left, right, offset = self.decimation_padding(offset)
                signal = decimate(signal, left, right)
                level += 1
            responses.append(correlate(signal, i, half=self.halves[i], stride=self.hop_length >> level,
                                       n_frames=n_frames, offset=offset))
        return responses

    def describe(self) -> str:
        levels = ",".join(str(g.level) for g in self.groups)
        return f"fmin={self.fmin:g}, bins_per_octave={self.bins_per_octave}, gamma={self.gamma:g}, octave_levels=[{levels}]"


class NumpyConstantQ(Framing):
    """The ``cqt``/``vqt`` frontend computed with numpy (float32), without torch.

    ``frontend(audio[B, samples]) -> features[B, frames, bins]``, the conventions of
    :mod:`.base` (``center=True`` zero-padded framing, ``log1p(log_gain * magnitude)``): the
    torch :class:`.constant_q.ConstantQ` of the same settings to float32 rounding.
    """

    def __init__(self, *, log_gain: float = 1.0, **settings: Any) -> None:
        self._set_log_gain(log_gain)
        self.design = design = ConstantQDesign(**settings)
        self.sample_rate, self.hop_length, self.n_bins = design.sample_rate, design.hop_length, design.n_bins
        self.context_samples = design.context_samples
        # taps x channels, so each group's responses are one GEMM of the frames against them
        self._kernels = [np.ascontiguousarray(k.T, dtype=np.float32) for k in design.kernels]
        self._lowpass_block = np.ascontiguousarray(blocked_lowpass(design.lowpass).T)  # taps x outputs

    def magnitude(self, audio: np.ndarray) -> np.ndarray:
        """Linear magnitudes ``[B, frames, bins]`` of ``audio[B, samples]``."""
        signal = np.ascontiguousarray(audio, dtype=np.float32)
        responses = self.design.analyse(signal, self.frame_count(signal.shape[-1]), self._decimate, self._correlate)
        # groups run from the top octave down
        return np.concatenate([quadrature_magnitude(r) for r in responses[::-1]], axis=-1)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        audio = np.asarray(audio)
        if audio.ndim != 2:
            raise ValueError(f"expected audio of shape [batch, samples], got {tuple(audio.shape)}")
        return compress(self.magnitude(audio), self.log_gain)

    def _correlate(self, signal: np.ndarray, index: int, **framing: int) -> np.ndarray:
        return correlate_frames(signal, self._kernels[index], **framing)

    def _decimate(self, signal: np.ndarray, left: int, right: int) -> np.ndarray:
        """Zero-pad, low-pass and keep the even positions: a stride-2 correlation with the FIR,
        :data:`DECIMATION_BLOCK` outputs per frame of one GEMM (:func:`blocked_lowpass`). The
        result may end in up to ``2 * DECIMATION_BLOCK`` more samples than the plain correlation
        gives, all exactly 0 (they lie beyond the right zero padding, at least one filter long),
        as in the torch :class:`~.constant_q.ConstantQ`."""
        kernels = self._lowpass_block
        taps, block = kernels.shape
        padded = np.pad(signal, ((0, 0), (left, right + 2 * block)))
        rows = []
        for samples in padded:
            frames = np.lib.stride_tricks.sliding_window_view(samples, taps)[:: 2 * block]
            rows.append((frames @ kernels).reshape(-1))
        return np.stack(rows)

    def __repr__(self) -> str:
        return (f"NumpyConstantQ(sample_rate={self.sample_rate}, hop_length={self.hop_length}, n_bins={self.n_bins}, "
                f"log_gain={self.log_gain:g}, {self.design.describe()})")
