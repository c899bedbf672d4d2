"""Shared machinery of the spectrogram frontends (imports torch: load only when building one).

Conventions every frontend here follows:

* **Input** ``audio[B, samples]`` float32 (mono, at ``sample_rate``). Any other float dtype is
  cast to the dtype of the frontend's buffers (so ``frontend.double()`` works).
* **Framing** is ``center=True`` with *zero* padding: ``frames = samples // hop_length + 1``
  and frame ``t`` is centred on sample ``t * hop_length``. Samples outside the signal are
  zeros, never reflections, so a frame depends only on the audio within
  ``context_samples`` of its centre (``receptive_field = 2 * context_samples + 1``, what the
  inference windows read): a chunk that starts at a multiple of ``hop_length`` and
  has that much audio around a frame reproduces the frame of the whole signal.
* **Output** ``features[B, frames, bins]`` float32 = ``log1p(log_gain * magnitude)``:
  non-negative, zero for silence, logarithmic for ``magnitude >> 1 / log_gain`` and exactly
  invertible with :meth:`SpectrogramFrontend.linear`.
* Torch-free numpy forms of these conventions, for inference without torch, are in
  :mod:`.arrays` (the ``cqt`` and ``vqt`` analysis itself: :mod:`.constant_q_numpy`).
* Everything is ``conv1d`` on real tensors with buffers registered on the module, so the
  same code runs batched on CPU or CUDA, inside training, and exports to ONNX (no
  ``torch.stft``, no complex tensors).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .arrays import Framing, frame_count, frame_padding

__all__ = ["SpectrogramFrontend", "centered_frames_conv", "compress", "frame_count", "linear", "quadrature_magnitude"]


def centered_frames_conv(
    signal: Tensor, kernels: Tensor, *, half: int, stride: int, n_frames: Tensor | int, offset: int = 0
) -> Tensor:
    """Correlate ``signal[B, 1, n]`` with odd-length ``kernels[C, 1, K]`` at frame centres.

    Frame ``t`` is centred on array index ``t * stride + offset`` (``offset``: samples stored
    before position 0). Output ``[B, C, n_frames]``: column ``t`` is
    ``sum_j kernels[:, 0, j] * x[t*stride + offset + j - K//2]`` with ``x`` zero outside the
    array. Requires ``(n_frames - 1) * stride + offset <= n``, which holds at every level of a
    ``center=True`` analysis (see :func:`frame_count`). ``half`` is ``K // 2`` as a Python int
    (so that tracing for ONNX export keeps the padding constant).
    """
    crop, left, right = frame_padding(half, offset)
    padded = F.pad(signal[..., crop:] if crop else signal, (left, right))
    return F.conv1d(padded, kernels, stride=stride)[..., :n_frames]


def compress(magnitude: Tensor, log_gain: float) -> Tensor:
    """Linear magnitude → features: ``log1p(log_gain * magnitude)`` (the one definition on
    tensors: the frontends' :meth:`SpectrogramFrontend.compress` and the models that read
    features back; :func:`.arrays.compress` is its numpy form)."""
    return torch.log1p(magnitude * log_gain)


def linear(features: Tensor, log_gain: float) -> Tensor:
    """Features → linear magnitude: ``expm1(features) / log_gain``, the inverse of
    :func:`compress` (clamped at 0: a magnitude is never negative)."""
    return torch.expm1(features).clamp_min(0.0) / log_gain


def quadrature_magnitude(responses: Tensor) -> Tensor:
    """``[B, 2C, T]`` stacked (real, imaginary) responses → ``[B, C, T]`` magnitudes."""
    real, imag = responses.chunk(2, dim=1)
    return torch.sqrt(real * real + imag * imag)


class SpectrogramFrontend(nn.Module, Framing):
    """Base class: validation, framing (:class:`.arrays.Framing`) and the ``log1p(log_gain * x)``
    compression.

    Subclasses set ``sample_rate``, ``hop_length``, ``n_bins``, ``context_samples`` and
    implement :meth:`magnitude` (linear magnitudes ``[B, bins, frames]``).
    """

    def __init__(self, log_gain: float) -> None:
        super().__init__()
        self._set_log_gain(log_gain)

    def magnitude(self, audio: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Linear magnitudes ``[B, bins, frames]`` of ``audio[B, 1, samples]``."""
        raise NotImplementedError

    def compress(self, magnitude: Tensor) -> Tensor:
        """Linear magnitude → features (:func:`compress` with this frontend's ``log_gain``)."""
        return compress(magnitude, self.log_gain)

    def linear(self, features: Tensor) -> Tensor:
        """Features → linear magnitude (:func:`linear`, the inverse of :meth:`compress`)."""
        return linear(features, self.log_gain)

    def forward(self, audio: Tensor) -> Tensor:
        """``audio[B, samples]`` → ``features[B, frames, bins]`` (see the module docstring)."""
        if audio.dim() != 2:
            raise ValueError(f"expected audio of shape [batch, samples], got {tuple(audio.shape)}")
        dtype = self._buffer_dtype()
        signal = audio.to(dtype).unsqueeze(1)
        return self.compress(self.magnitude(signal)).transpose(1, 2)

    def _buffer_dtype(self) -> torch.dtype:
        for buffer in self.buffers():
            return buffer.dtype
        return torch.float32

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate}, hop_length={self.hop_length}, "
            f"n_bins={self.n_bins}, log_gain={self.log_gain:g}"
        )
