"""Audio augmentation for training segments: seeded pure functions on numpy arrays.

Every random function takes a :class:`numpy.random.Generator` and draws all of its
randomness from it, so the same generator state gives the same output. Audio is 1-D
float32; outputs keep the length and dtype and stay finite.

What :class:`AugmentConfig` controls, with defaults chosen for piano transcription (the
labels stay right for every one of them except pitch shift, which moves them):

- ``gain_db`` (6): every segment's level changes by a uniform ``[-gain_db, gain_db]`` dB.
- ``noise_prob`` (0.3), ``noise_snr_min``/``noise_snr_max`` (10/40 dB): white or pink
  noise at a uniform random SNR relative to the segment's RMS (silent segments stay silent).
- ``reverb_prob`` (0.3), ``reverb_rt60_min``/``reverb_rt60_max`` (0.2/1.5 s),
  ``reverb_wet_min``/``reverb_wet_max`` (0.1/0.5): convolution with a synthetic room (an
  exponentially decaying noise burst whose level falls 60 dB in RT60), mixed in at a
  random wet fraction. Rendered SoundFonts are dry; real recordings are not.
- ``room_prob`` (0), ``room_rt60_min``/``room_rt60_max`` (0.2/1.2 s): a simulated room
  (pyroomacoustics image-source model of a random shoebox room, 3–15 m, with random source
  and microphone positions and the absorption that gives a random RT60; early reflections
  up to order 12, then a diffuse exponential tail with the same RT60), mixed in at a random
  wet fraction in ``[reverb_wet_min, 1]``.
- ``compress_prob`` (0): a dynamic-range compressor (pedalboard; threshold -35..-10 dB,
  ratio 2..8, attack 1..30 ms, release 50..400 ms, make-up gain to the input RMS), as
  broadcast, streaming and phone recordings have.
- ``codec_prob`` (0): an MP3 round trip (pedalboard's LAME, VBR quality 2..9).
  Rooms, compressor and codec need the ``train`` extra (``pip install 'transcribe-cli[train]'``).
- ``eq_prob`` (0.3), ``eq_db`` (6): a smooth random spectral tilt/colour (random dB gains
  at log-spaced frequencies, interpolated), for microphones and rooms.
- ``highpass_prob`` (0), ``highpass_min_hz``/``highpass_max_hz`` (60/250 Hz): a causal
  4th-order Butterworth high-pass at a log-uniform random cut-off, for small speakers, phone
  and laptop microphones, and pianos whose bass strings carry little of their fundamental
  (a recorded Steinway's fundamentals below C3 are 7–40 dB below their strongest partial,
  the training SoundFonts' mostly within 8 dB, ``scripts/piano_fundamentals.py``): the model
  has to hear a bass note from its upper partials.
- ``pitch_prob`` (0.1), ``pitch_shift`` (2): an integer shift in ``[-n, n]`` semitones
  (0 excluded when drawn); labels move with it and notes leaving 21..108 are dropped.
  Kept rare: a shifted piano has shifted formants, unlike any real one.
- ``tuning_prob`` (0.2), ``tuning_cents`` (30, at most 50): a detuning the labels ignore
  (pianos are not always at A440).

Pitch shift and tuning are applied by the segment sampler (it reads
``round(N * r)`` samples and resamples them to ``N``, :func:`resample_ratio`); the
functions here only draw them. :func:`augment` chains room → reverb → EQ → high-pass → compressor → noise → codec → gain.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from transcribe_cli.errors import OptionError

_EPS = 1e-12


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation settings (see the module docstring); ``enabled=False`` turns all off."""

    enabled: bool = True
    gain_db: float = 6.0
    noise_prob: float = 0.3
    noise_snr_min: float = 10.0
    noise_snr_max: float = 40.0
    pitch_prob: float = 0.1
    pitch_shift: int = 2
    tuning_prob: float = 0.2
    tuning_cents: float = 30.0
    reverb_prob: float = 0.3
    reverb_rt60_min: float = 0.2
    reverb_rt60_max: float = 1.5
    reverb_wet_min: float = 0.1
    reverb_wet_max: float = 0.5
    eq_prob: float = 0.3
    eq_db: float = 6.0
    highpass_prob: float = 0.0
    highpass_min_hz: float = 60.0
    highpass_max_hz: float = 250.0
    room_prob: float = 0.0
    room_rt60_min: float = 0.2
    room_rt60_max: float = 1.2
    compress_prob: float = 0.0
    codec_prob: float = 0.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.name.endswith("_prob") and not 0.0 <= getattr(self, f.name) <= 1.0:
                raise OptionError(f"augment {f.name} must be within 0..1, got {getattr(self, f.name)}")
        if self.gain_db < 0 or self.eq_db < 0:
            raise OptionError("augment gain_db and eq_db must not be negative")
        if not self.noise_snr_min <= self.noise_snr_max:
            raise OptionError("augment noise_snr_min must not exceed noise_snr_max")
        if not 0 <= self.pitch_shift <= 12:
            raise OptionError(f"augment pitch_shift must be within 0..12 semitones, got {self.pitch_shift}")
        if not 0 <= self.tuning_cents <= 50:
            raise OptionError(f"augment tuning_cents must be within 0..50, got {self.tuning_cents}")
        if not 0 < self.reverb_rt60_min <= self.reverb_rt60_max <= 10:
            raise OptionError("augment needs 0 < reverb_rt60_min <= reverb_rt60_max <= 10 seconds")
        if not 0 < self.room_rt60_min <= self.room_rt60_max <= 5:
            raise OptionError("augment needs 0 < room_rt60_min <= room_rt60_max <= 5 seconds")
        if not 0 < self.highpass_min_hz <= self.highpass_max_hz <= 2000:
            raise OptionError("augment needs 0 < highpass_min_hz <= highpass_max_hz <= 2000 Hz")
        if not 0 <= self.reverb_wet_min <= self.reverb_wet_max <= 1:
            raise OptionError("augment needs 0 <= reverb_wet_min <= reverb_wet_max <= 1")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> AugmentConfig:
        """Defaults overridden by ``values`` (typed values or strings such as ``"0.3"``)."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in (values or {}).items():
            if key not in fields:
                raise OptionError(f"unknown augment option {key!r}", f"accepted: {', '.join(fields)}")
            kwargs[key] = _typed(key, value, fields[key].default)
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _typed(key: str, value: Any, default: Any) -> Any:
    """``value`` as the type of ``default``; :class:`OptionError` when it does not fit."""
    from transcribe_cli.options import coerce

    if isinstance(value, str):
        return coerce(f"augment {key}", value.strip(), default)
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value):
        return float(value)
    raise OptionError(f"augment option {key}={value!r} is not a valid {type(default).__name__}",
                      f"default is {default!r}")


# --------------------------------------------------------------------------- pitch


def resample_ratio(semitones: float, cents: float = 0.0) -> float:
    """The speed-up ``r = 2 ** ((semitones + cents / 100) / 12)`` that raises pitch by that much."""
    return float(2.0 ** ((semitones + cents / 100.0) / 12.0))


def draw_pitch(rng: np.random.Generator, cfg: AugmentConfig) -> tuple[int, float]:
    """``(semitones, cents)`` for one segment: a shift with ``pitch_prob`` (never 0),
    a detuning with ``tuning_prob``; ``(0, 0.0)`` when disabled."""
    semitones, cents = 0, 0.0
    if not cfg.enabled:
        return semitones, cents
    if cfg.pitch_shift > 0 and rng.random() < cfg.pitch_prob:
        step = int(rng.integers(1, cfg.pitch_shift + 1))
        semitones = step if rng.random() < 0.5 else -step
    if cfg.tuning_cents > 0 and rng.random() < cfg.tuning_prob:
        cents = float(rng.uniform(-cfg.tuning_cents, cfg.tuning_cents))
    return semitones, cents


# --------------------------------------------------------------------------- primitives


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0


def scale_db(audio: np.ndarray, db: float) -> np.ndarray:
    """``audio`` with its level changed by ``db`` decibels."""
    return (audio * np.float32(10.0 ** (db / 20.0))).astype(np.float32, copy=False)


def colored_noise(rng: np.random.Generator, n: int, color: str = "white") -> np.ndarray:
    """Unit-RMS noise of ``n`` samples: ``"white"`` (flat) or ``"pink"`` (1/f power,
    shaped in the frequency domain)."""
    import scipy.fft

    if color == "white" or (color == "pink" and n < 2):
        noise = rng.standard_normal(n, dtype=np.float32)
    elif color == "pink":
        bins = n // 2 + 1
        spectrum = rng.standard_normal(bins, dtype=np.float32) + 1j * rng.standard_normal(bins, dtype=np.float32)
        spectrum /= np.sqrt(np.maximum(np.arange(bins, dtype=np.float32), 1.0))
        spectrum[0] = 0.0  # no DC offset
        noise = scipy.fft.irfft(spectrum.astype(np.complex64), n)
    else:
        raise ValueError(f"unknown noise colour {color!r}")
    return (noise / np.float32(max(rms(noise), _EPS))).astype(np.float32, copy=False)


def mix_noise(audio: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``audio + noise`` with the noise scaled to ``snr_db`` below the audio's RMS."""
    level = rms(audio)
    if level <= _EPS:
        return audio
    scaled = noise * np.float32(level / max(rms(noise), _EPS) / 10.0 ** (snr_db / 20.0))
    return (audio + scaled).astype(np.float32, copy=False)


def room_impulse(rng: np.random.Generator, rt60: float, sample_rate: int) -> np.ndarray:
    """A synthetic room tail: noise whose level falls 60 dB in ``rt60`` seconds, unit energy."""
    n = max(int(rt60 * sample_rate), 1)
    t = np.arange(n) / sample_rate
    ir = rng.standard_normal(n) * np.exp(-3.0 * np.log(10.0) * t / rt60)  # -60 dB at rt60
    return (ir / max(float(np.sqrt(np.sum(ir**2))), _EPS)).astype(np.float32)


def convolve_reverb(audio: np.ndarray, impulse: np.ndarray, wet: float) -> np.ndarray:
    """``(1 - wet) * audio + wet * (audio * impulse)``, cut to the input length."""
    import scipy.fft

    n = audio.shape[0]
    if n == 0:
        return audio
    size = scipy.fft.next_fast_len(n + impulse.shape[0] - 1, real=True)
    tail = scipy.fft.irfft(scipy.fft.rfft(audio, size) * scipy.fft.rfft(impulse, size), size)[:n]
    return ((1.0 - wet) * audio + wet * tail).astype(np.float32, copy=False)


def spectral_gain(audio: np.ndarray, curve_db: np.ndarray, sample_rate: int) -> np.ndarray:
    """Filter ``audio`` (zero phase) with gains ``curve_db`` at log-spaced frequencies from
    50 Hz to Nyquist, linearly interpolated in dB over log frequency."""
    import scipy.fft

    n = audio.shape[0]
    if n < 2:
        return audio
    spectrum = scipy.fft.rfft(audio)
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    anchors = np.geomspace(50.0, sample_rate / 2.0, len(curve_db))
    gains_db = np.interp(np.log(np.maximum(freqs, 1.0)), np.log(anchors), curve_db)
    gains = (10.0 ** (gains_db / 20.0)).astype(np.float32)
    return scipy.fft.irfft(spectrum * gains, n).astype(np.float32, copy=False)


# --------------------------------------------------------------------------- random


def apply_gain(audio: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """A uniform random gain in ``[-gain_db, gain_db]`` dB."""
    if not cfg.enabled or cfg.gain_db <= 0:
        return audio
    return scale_db(audio, float(rng.uniform(-cfg.gain_db, cfg.gain_db)))


def add_noise(audio: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """With ``noise_prob``: white or pink noise at a uniform SNR in ``[noise_snr_min, noise_snr_max]``."""
    if not cfg.enabled or rng.random() >= cfg.noise_prob:
        return audio
    snr = float(rng.uniform(cfg.noise_snr_min, cfg.noise_snr_max))
    color = "pink" if rng.random() < 0.5 else "white"
    return mix_noise(audio, colored_noise(rng, audio.shape[0], color), snr)


def add_reverb(
    audio: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig, sample_rate: int
) -> np.ndarray:
    """With ``reverb_prob``: a synthetic room of random RT60, mixed in at a random wet fraction."""
    if not cfg.enabled or rng.random() >= cfg.reverb_prob:
        return audio
    rt60 = float(rng.uniform(cfg.reverb_rt60_min, cfg.reverb_rt60_max))
    wet = float(rng.uniform(cfg.reverb_wet_min, cfg.reverb_wet_max))
    return convolve_reverb(audio, room_impulse(rng, rt60, sample_rate), wet)


#: highest image-source order of the simulated rooms (the rest of the tail is diffuse)
ROOM_MAX_ORDER = 12
#: The smallest simulated room (metres).
ROOM_MIN_DIMS = np.array([3.0, 3.0, 2.4])


def simulated_room_impulse(rng: np.random.Generator, rt60: float, sample_rate: int) -> np.ndarray:
    """A room impulse response (unit energy): pyroomacoustics' image-source model of a random
    shoebox room with the absorption of ``rt60`` (early reflections to order
    :data:`ROOM_MAX_ORDER`), continued by a diffuse exponential tail with the same decay."""
    import pyroomacoustics as pra

    dims = rng.uniform(ROOM_MIN_DIMS, [15.0, 12.0, 5.0])
    while True:  # a short RT60 needs a small room (absorption cannot exceed 1): shrink it until it fits
        try:
            absorption, _ = pra.inverse_sabine(rt60, dims)
            break
        except ValueError:
            if np.all(dims <= ROOM_MIN_DIMS):
                absorption = 1.0  # the smallest room, fully absorbing: as dry as a room gets
                break
            dims = np.maximum(dims * 0.85, ROOM_MIN_DIMS)
    room = pra.ShoeBox(dims, fs=sample_rate, materials=pra.Material(float(absorption)), max_order=ROOM_MAX_ORDER)
    room.add_source(rng.uniform(0.5, dims - 0.5))
    room.add_microphone(rng.uniform(0.5, dims - 0.5))
    room.compute_rir()
    early = np.asarray(room.rir[0][0], dtype=np.float64)
    n = max(int(rt60 * sample_rate), early.size)
    t = np.arange(n) / sample_rate
    decay = np.exp(-3.0 * np.log(10.0) * t / rt60)
    tail = rng.standard_normal(n) * decay
    # the diffuse tail takes over where the image sources thin out, at their level
    start = int(np.argmax(np.abs(early))) if early.size else 0
    onset = np.clip((np.arange(n) - start) / max(early.size - start, 1), 0.0, 1.0)
    level = np.sqrt(np.mean(early[start:] ** 2)) / max(np.sqrt(np.mean(tail[start:early.size] ** 2)), _EPS) \
        if early.size > start + 1 else 1.0
    ir = np.zeros(n)
    ir[: early.size] = early
    ir += tail * onset * level * 0.5
    return (ir / max(float(np.sqrt(np.sum(ir**2))), _EPS)).astype(np.float32)


def add_room(audio: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig, sample_rate: int) -> np.ndarray:
    """With ``room_prob``: a simulated room (:func:`simulated_room_impulse`), mostly wet."""
    if not cfg.enabled or rng.random() >= cfg.room_prob:
        return audio
    rt60 = float(rng.uniform(cfg.room_rt60_min, cfg.room_rt60_max))
    wet = float(rng.uniform(cfg.reverb_wet_min, 1.0))
    impulse = simulated_room_impulse(rng, rt60, sample_rate)
    out = convolve_reverb(audio, impulse, wet)
    return out if rms(out) <= _EPS else (out * np.float32(rms(audio) / rms(out))).astype(np.float32)


def compress(audio: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig, sample_rate: int) -> np.ndarray:
    """With ``compress_prob``: a random compressor (pedalboard), level restored to the input RMS."""
    if not cfg.enabled or rng.random() >= cfg.compress_prob or rms(audio) <= _EPS:
        return audio
    import pedalboard

    level_db = 20 * np.log10(max(float(np.max(np.abs(audio))), _EPS))
    effect = pedalboard.Compressor(
        threshold_db=float(level_db + rng.uniform(-35.0, -10.0)), ratio=float(rng.uniform(2.0, 8.0)),
        attack_ms=float(rng.uniform(1.0, 30.0)), release_ms=float(rng.uniform(50.0, 400.0)))
    out = effect(audio.astype(np.float32)[None, :], sample_rate)[0]
    return (out * np.float32(rms(audio) / max(rms(out), _EPS))).astype(np.float32)


def codec_round_trip(audio: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig, sample_rate: int) -> np.ndarray:
    """With ``codec_prob``: an MP3 round trip (pedalboard's LAME encoder, random VBR quality)."""
    if not cfg.enabled or rng.random() >= cfg.codec_prob or audio.size == 0:
        return audio
    import pedalboard

    out = pedalboard.MP3Compressor(vbr_quality=float(rng.uniform(2.0, 9.0)))(audio.astype(np.float32)[None, :],
                                                                            sample_rate)[0]
    out = np.nan_to_num(out[: audio.size]).astype(np.float32)
    return np.pad(out, (0, audio.size - out.size)) if out.size < audio.size else out


#: Control points of the random EQ curve (log-spaced from 50 Hz to Nyquist).
EQ_POINTS = 6


def apply_eq(audio: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig, sample_rate: int) -> np.ndarray:
    """With ``eq_prob``: a smooth random spectral gain curve within ``±eq_db``."""
    if not cfg.enabled or cfg.eq_db <= 0 or rng.random() >= cfg.eq_prob:
        return audio
    return spectral_gain(audio, rng.uniform(-cfg.eq_db, cfg.eq_db, EQ_POINTS), sample_rate)


#: Order of the random high-pass (24 dB an octave below the cut-off).
HIGHPASS_ORDER = 4


def apply_highpass(audio: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig, sample_rate: int) -> np.ndarray:
    """With ``highpass_prob``: a causal Butterworth high-pass at a log-uniform cut-off in
    ``[highpass_min_hz, highpass_max_hz]`` (capped below Nyquist). Draws nothing from ``rng``
    when ``highpass_prob`` is 0, so configurations without it augment as they did before."""
    if not cfg.enabled or cfg.highpass_prob <= 0 or rng.random() >= cfg.highpass_prob:
        return audio
    import scipy.signal

    low, high = np.log(cfg.highpass_min_hz), np.log(cfg.highpass_max_hz)
    cutoff = min(float(np.exp(rng.uniform(low, high))), 0.45 * sample_rate)
    sos = scipy.signal.butter(HIGHPASS_ORDER, cutoff, btype="highpass", fs=sample_rate, output="sos")
    return scipy.signal.sosfilt(sos, audio).astype(np.float32, copy=False)


def augment(audio: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig, sample_rate: int) -> np.ndarray:
    """Room → reverb → EQ → high-pass → compressor → noise → codec → gain (pitch and tuning are the
    sampler's; see the module doc)."""
    if not cfg.enabled:
        return audio
    audio = add_room(audio, rng, cfg, sample_rate)
    audio = add_reverb(audio, rng, cfg, sample_rate)
    audio = apply_eq(audio, rng, cfg, sample_rate)
    audio = apply_highpass(audio, rng, cfg, sample_rate)
    audio = compress(audio, rng, cfg, sample_rate)
    audio = add_noise(audio, rng, cfg)
    audio = codec_round_trip(audio, rng, cfg, sample_rate)
    return apply_gain(audio, rng, cfg)
