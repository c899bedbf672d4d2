"""Input conditioning: what every recording goes through before a model's own normalisation.

Peak normalisation (``audio_normalization="peak"``) scales the loudest sample to 0.9, so on
its own it turns dither into full-scale noise and lets a DC offset shrink the music. Before
any model mode is applied, :func:`condition` therefore

1. **removes DC** (subtracts the mean; a no-op for ordinary, zero-mean recordings, so the
   scaling of loud music is unchanged);
2. measures the **level** as the RMS of the loudest analysis frame (128 ms at 16 kHz) and
   counts a recording whose loudest frame is below :data:`SILENCE_DBFS` as **silence** —
   ±1 LSB of 16-bit dither sits near -95 dBFS, the quietest real piano recordings far
   above -70 dBFS;
3. measures how **noise-like** the sound is: the spectral flatness (geometric over
   arithmetic mean of the power spectrum, 50 Hz–7 kHz) of each non-silent frame. White
   noise has a flatness near 0.56 in every frame, tonal music far below (the median over
   the bundled example and ``shared/data/real`` is at most 0.05, see the tests); a recording
   whose median frame flatness exceeds :data:`NOISE_FLATNESS` is **noise**.

A silent or noise-like recording gives no notes (all-zero activations, the model is not
run) and a warning; everything else goes on DC-free to the model's normalisation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

__all__ = ["NOISE_FLATNESS", "SILENCE_DBFS", "Assessment", "AudioStats", "assess", "condition"]

log = logging.getLogger(__name__)

#: A recording whose loudest frame has an RMS below this (dB re full scale) is silence.
SILENCE_DBFS = -70.0
#: A recording whose median frame spectral flatness is above this is noise, not music.
NOISE_FLATNESS = 0.25
_FRAME_SECONDS = 0.128
_MAX_FRAMES = 4000  # flatness from at most this many frames, evenly spread (bounded cost)
_BAND_HZ = (50.0, 7000.0)


@dataclass(frozen=True)
class Assessment:
    """What :func:`assess` found: ``level_dbfs`` of the loudest frame, the median spectral
    ``flatness`` of the non-silent frames (0 when there are none), and the verdicts."""

    level_dbfs: float
    flatness: float
    silent: bool
    noise: bool

    @property
    def blank(self) -> bool:
        """Nothing to transcribe: silence or noise."""
        return self.silent or self.noise

    def warning(self) -> str | None:
        if self.silent:
            return (f"the audio is silent (loudest moment {self.level_dbfs:.0f} dBFS, below {SILENCE_DBFS:.0f} "
                    "dBFS): no notes")
        if self.noise:
            return (f"the audio looks like noise, not music (spectral flatness {self.flatness:.2f} > "
                    f"{NOISE_FLATNESS}): no notes")
        return None


def _frame_length(sample_rate: int) -> int:
    return max(64, 1 << int(round(np.log2(_FRAME_SECONDS * sample_rate))))


def assess(audio: np.ndarray, sample_rate: int) -> Assessment:
    """Level and noise-likeness of DC-free mono ``audio`` at ``sample_rate`` Hz."""
    n = _frame_length(sample_rate)
    count = audio.shape[0] // n
    if count == 0:  # shorter than one frame: judge it as one padded frame
        frames = np.zeros((1, n), dtype=np.float32)
        frames[0, : audio.shape[0]] = audio
    else:
        frames = audio[: count * n].reshape(count, n)
    power = np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / n
    return _judge(power, lambda chosen: spectral_flatness(frames[chosen], sample_rate))


def _judge(power: np.ndarray, flatness_of) -> Assessment:
    """The :class:`Assessment` from each frame's mean power and the flatness of chosen frames."""
    loudest = float(power.max())
    level = 10.0 * np.log10(loudest) if loudest > 0 else -np.inf
    floor = 10.0 ** (SILENCE_DBFS / 10.0)
    if level < SILENCE_DBFS:
        return Assessment(level, 0.0, silent=True, noise=False)
    active = np.flatnonzero(power >= floor)
    if active.size > _MAX_FRAMES:
        active = active[np.linspace(0, active.size - 1, _MAX_FRAMES).round().astype(np.int64)]
    flatness = float(np.median(flatness_of(active)))
    return Assessment(level, flatness, silent=False, noise=flatness > NOISE_FLATNESS)


class AudioStats:
    """What conditioning and the input normalisation need of a recording, gathered block by
    block (a first pass; memory: a few numbers per 128 ms frame and per loudness block):
    the count, sum, extremes, each analysis frame's sum, sum of squares and spectral
    flatness, and each loudness block's sum and sum of squares. The DC-free power of a frame
    follows from its sums (``sum x^2 - 2 m sum x + n m^2``), and the flatness is taken on the
    raw frame (a DC offset only moves the Hann-windowed spectrum's bins 0 and 1, outside the
    50 Hz band)."""

    def __init__(self, sample_rate: int, loudness_block: int):
        self.sample_rate = sample_rate
        self.count, self.total = 0, 0.0
        self.low, self.high = np.inf, -np.inf
        self._sizes = (_frame_length(sample_rate), max(int(loudness_block), 1))
        self._rest = [np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.float32)]
        self._sums: list[list[np.ndarray]] = [[], []]
        self._squares: list[list[np.ndarray]] = [[], []]
        self._flatness: list[np.ndarray] = []
        self.head = np.zeros(0, dtype=np.float32)  # the first frame's samples (a recording shorter than one)

    def add(self, block: np.ndarray) -> None:
        block = np.asarray(block, dtype=np.float32)
        if not block.size:
            return
        self.count += block.size
        self.total += float(np.sum(block, dtype=np.float64))
        self.low, self.high = min(self.low, float(block.min())), max(self.high, float(block.max()))
        if self.head.size < self._sizes[0]:
            self.head = np.concatenate([self.head, block[: self._sizes[0] - self.head.size]])
        for which, size in enumerate(self._sizes):
            data = np.concatenate([self._rest[which], block])
            whole = data.shape[0] // size * size
            frames = data[:whole].reshape(-1, size)
            self._rest[which] = data[whole:]
            if frames.shape[0]:
                self._sums[which].append(frames.sum(axis=1, dtype=np.float64))
                self._squares[which].append(np.einsum("ij,ij->i", frames, frames, dtype=np.float64))
                if which == 0:
                    self._flatness.append(spectral_flatness(frames, self.sample_rate))

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    @property
    def peak(self) -> float:
        return max(abs(self.low), abs(self.high)) if self.count else 0.0

    def _power(self, which: int, gain: float) -> np.ndarray:
        """Mean DC-free power of each whole frame (``which`` 0) or loudness block (1), the
        samples scaled by ``gain``."""
        sums = np.concatenate(self._sums[which]) if self._sums[which] else np.zeros(0)
        squares = np.concatenate(self._squares[which]) if self._squares[which] else np.zeros(0)
        m, n = self.mean, self._sizes[which]
        return np.maximum(squares - 2.0 * m * sums + n * m * m, 0.0) / n * gain * gain

    def assessment(self, gain: float = 1.0) -> Assessment:
        """:func:`assess` of the DC-free recording scaled by ``gain``."""
        n = self._sizes[0]
        if self.count < n:  # shorter than one frame: the padded frame, as assess does
            return assess(((self.head - np.float32(self.mean)) * np.float32(gain)).astype(np.float32),
                          self.sample_rate)
        flatness = np.concatenate(self._flatness)
        return _judge(self._power(0, gain), lambda chosen: flatness[chosen])

    def loudness_rms(self, gain: float = 1.0) -> np.ndarray:
        """RMS of each loudness block of the DC-free recording scaled by ``gain`` (the whole
        recording as one block when it is shorter than one)."""
        if self.count < self._sizes[1]:
            return np.sqrt(np.maximum(self._power_of_all(), 0.0)) * gain
        return np.sqrt(self._power(1, gain))

    def _power_of_all(self) -> np.ndarray:
        rest = self._rest[1].astype(np.float64) - self.mean
        return np.array([float(np.mean(rest * rest))]) if rest.size else np.zeros(1)


def spectral_flatness(frames: np.ndarray, sample_rate: int) -> np.ndarray:
    """Spectral flatness of each row of ``frames`` (Hann window, 50 Hz–7 kHz power)."""
    n = frames.shape[1]
    window = np.hanning(n).astype(np.float32)
    spectrum = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    band = spectrum[:, (freqs >= _BAND_HZ[0]) & (freqs <= min(_BAND_HZ[1], sample_rate / 2))]
    band = band.astype(np.float64) + 1e-20
    return np.exp(np.mean(np.log(band), axis=1)) / np.mean(band, axis=1)


def condition(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, Assessment]:
    """DC-free ``audio`` and its :class:`Assessment`; a blank verdict is logged as a warning."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.size:
        mean = float(np.mean(audio, dtype=np.float64))
        if mean != 0.0:
            audio = (audio - np.float32(mean)).astype(np.float32, copy=False)
    verdict = assess(audio, sample_rate)
    message = verdict.warning()
    if message:
        log.warning("%s", message)
    return audio, verdict
