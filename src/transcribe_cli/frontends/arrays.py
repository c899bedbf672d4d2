"""The frontends' conventions on numpy arrays, without torch (the torch forms are in :mod:`.base`).

What a torch-free inference path needs (``--runtime numpy``, :mod:`transcribe_cli.runtime`):
the ``log1p`` compression and its inverse, and the correlation of a signal with odd-length
kernels at frame centres (:mod:`.base`'s ``centered_frames_conv``), whose padding arithmetic
(:func:`frame_padding`) both forms share. The same float32 operations as torch's, so results
agree to float32 rounding (summation order), not bit for bit.
"""

from __future__ import annotations

import numpy as np


def frame_count(n_samples: int, hop_length: int) -> int:
    """Frames of a ``center=True`` analysis: ``n_samples // hop_length + 1``."""
    return n_samples // hop_length + 1


class Framing:
    """The framing of a spectrogram frontend (the conventions of :mod:`.base`), shared by its
    torch and numpy forms. Subclasses set ``sample_rate``, ``hop_length``, ``n_bins`` and
    ``context_samples`` (samples on each side of a frame centre that can influence that frame)
    and call :meth:`_set_log_gain`."""

    sample_rate: int
    hop_length: int
    n_bins: int
    context_samples: int
    log_gain: float

    def _set_log_gain(self, log_gain: float) -> None:
        if not log_gain > 0:
            raise ValueError(f"log_gain must be positive, got {log_gain!r}")
        self.log_gain = float(log_gain)

    @property
    def frame_rate(self) -> float:
        """Frames per second."""
        return self.sample_rate / self.hop_length

    @property
    def receptive_field(self) -> int:
        """Samples spanned by the analysis of one frame: ``2 * context_samples + 1``."""
        return 2 * self.context_samples + 1

    def frame_count(self, n_samples: int) -> int:
        """Number of frames the frontend returns for ``n_samples`` of audio."""
        return frame_count(n_samples, self.hop_length)


def frame_padding(half: int, offset: int) -> tuple[int, int, int]:
    """``(crop, left, right)``: drop ``crop`` samples from the start of a signal, then zero-pad
    ``left`` and ``right`` samples, so that correlating it with kernels of ``2 * half + 1``
    taps at stride ``s`` puts output ``t`` on array index ``t * s + offset`` of the signal
    (``offset``: samples stored before position 0; see :func:`correlate_frames`)."""
    left = half - offset
    return (0, left, half + 1) if left >= 0 else (-left, 0, half + 1)


def compress(magnitude: np.ndarray, log_gain: float) -> np.ndarray:
    """Linear magnitude → features: ``log1p(log_gain * magnitude)`` (:func:`.base.compress`)."""
    out = np.multiply(magnitude, np.float32(log_gain), dtype=np.float32)
    return np.log1p(out, out=out)


def linear(features: np.ndarray, log_gain: float) -> np.ndarray:
    """Features → linear magnitude: ``expm1(features) / log_gain`` clamped at 0, the inverse of
    :func:`compress` (:func:`.base.linear`)."""
    out = np.expm1(np.asarray(features, dtype=np.float32))
    np.maximum(out, 0.0, out=out)
    out /= np.float32(log_gain)
    return out


def correlate_frames(signal: np.ndarray, kernels: np.ndarray, *, half: int, stride: int, n_frames: int,
                     offset: int = 0) -> np.ndarray:
    """Correlate ``signal[B, n]`` with odd-length ``kernels[K, C]`` (taps × channels) at frame
    centres: output ``[B, n_frames, C]``, row ``t`` is ``sum_j x[t*stride + offset + j - K//2] *
    kernels[j]`` with ``x`` zero outside the array — :func:`.base.centered_frames_conv` with
    frames first (one GEMM of the frames against the kernels)."""
    crop, left, right = frame_padding(half, offset)
    padded = np.pad(signal[:, crop:], ((0, 0), (left, right)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, kernels.shape[0], axis=-1)[:, ::stride][:, :n_frames]
    return np.matmul(frames, kernels)


def quadrature_magnitude(responses: np.ndarray) -> np.ndarray:
    """``[..., 2C]`` (real parts, then imaginary parts) → ``[..., C]`` magnitudes."""
    real, imag = np.split(responses, 2, axis=-1)
    out = np.multiply(real, real)
    out += imag * imag
    return np.sqrt(out, out=out)
