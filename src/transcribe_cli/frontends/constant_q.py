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

The design (filters, octave plan, decimation offsets) is torch-free, in
:mod:`.constant_q_numpy`, with the same transform in numpy (:class:`~.constant_q_numpy.NumpyConstantQ`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import SpectrogramFrontend, centered_frames_conv, quadrature_magnitude
from .constant_q_numpy import (  # noqa: F401  (the design's names, importable from here as before)
    HANN_BANDWIDTH,
    ConstantQDesign,
    OctaveGroup,
    blocked_lowpass,
    center_frequencies,
    filter_lengths,
    halfband_lowpass,
    hann_wavelets,
    plan_octaves,
    relative_bandwidth,
)


class ConstantQ(SpectrogramFrontend):
    """Variable-Q magnitude spectrogram (``gamma=0``: constant-Q), multi-rate, in ``conv1d``.

    Parameters follow ``librosa.vqt``; ``gamma`` is the bandwidth offset in Hz. ``pass_edge``,
    ``stopband_db`` and ``min_taps`` tune the decimation (see the module docstring). The filters
    and the plan are a :class:`~.constant_q_numpy.ConstantQDesign` (``self.design``).
    """

    def __init__(self, *, log_gain: float = 1.0, **settings: Any) -> None:
        """``settings``: those of :class:`~.constant_q_numpy.ConstantQDesign` (``sample_rate``,
        ``hop_length``, ``fmin``, ``n_bins``, ``bins_per_octave``, ``gamma``, ``filter_scale``,
        ``pass_edge``, ``stopband_db``, ``min_taps``)."""
        super().__init__(log_gain)
        self.design = design = ConstantQDesign(**settings)
        self.sample_rate, self.hop_length, self.n_bins = design.sample_rate, design.hop_length, design.n_bins
        self.fmin, self.bins_per_octave, self.gamma = design.fmin, design.bins_per_octave, design.gamma
        self.groups = design.groups
        self.center_frequencies = design.center_frequencies
        self.filter_lengths = design.filter_lengths
        self.register_buffer("lowpass", torch.tensor(design.lowpass, dtype=torch.float32).view(1, 1, -1),
                             persistent=False)
        self.register_buffer("lowpass_block", torch.from_numpy(blocked_lowpass(design.lowpass))[:, None, :],
                             persistent=False)
        for i, kernels in enumerate(design.kernels):
            self.register_buffer(f"kernels_{i}", torch.tensor(kernels[:, None, :], dtype=torch.float32),
                                 persistent=False)
        self.context_samples = design.context_samples

    def magnitude(self, signal: Tensor) -> Tensor:
        n_frames = signal.shape[-1] // self.hop_length + 1
        responses = self.design.analyse(signal, n_frames, self._decimate, self._correlate)
        reals, imags = zip(*(r.chunk(2, dim=1) for r in responses[::-1]))  # groups run from the top octave down
        # one magnitude over all bins (fewer small ops)
        return quadrature_magnitude(torch.cat(reals + imags, dim=1))

    def _correlate(self, signal: Tensor, index: int, **framing: int) -> Tensor:
        return centered_frames_conv(signal, getattr(self, f"kernels_{index}"), **framing)

    def _decimate(self, signal: Tensor, left: int, right: int) -> Tensor:
        """Zero-pad and low-pass at stride 2 (:meth:`~.constant_q_numpy.ConstantQDesign.decimation_padding`),
        :data:`~.constant_q_numpy.DECIMATION_BLOCK` outputs per position
        (:func:`~.constant_q_numpy.blocked_lowpass`). The result may
        end in up to ``2 * DECIMATION_BLOCK`` more samples than a plain stride-2 correlation
        gives; they lie beyond the right zero padding (at least one filter length), so they
        are exactly 0 — the zero extension every later step assumes anyway."""
        block = self.lowpass_block.shape[0]
        out = F.conv1d(F.pad(signal, (left, right + 2 * block)), self.lowpass_block, stride=2 * block)
        return out.transpose(1, 2).reshape(signal.shape[0], 1, -1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self.design.describe()}"
