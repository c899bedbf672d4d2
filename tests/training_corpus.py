"""Small labelled corpora for training tests: synthesized piano-like tones with their MIDI
labels (``pairs`` layout, no FluidSynth needed) and bare MIDI folders (``synth``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from transcribe_cli.io.midi import write_midi
from transcribe_cli.notes import Note


def random_notes(rng: np.random.Generator, seconds: float, count: int) -> list[Note]:
    notes = []
    for _ in range(count):
        onset = float(rng.uniform(0.0, seconds - 0.6))
        duration = float(rng.uniform(0.2, 0.6))
        notes.append(Note(onset, onset + duration, int(rng.integers(48, 84)), int(rng.integers(40, 120))))
    return sorted(notes, key=lambda n: (n.onset, n.pitch))


def synthesize(notes: list[Note], seconds: float, sr: int) -> np.ndarray:
    audio = np.zeros(int(seconds * sr), dtype=np.float32)
    for note in notes:
        start, stop = int(note.onset * sr), min(int(note.offset * sr), audio.size)
        t = np.arange(stop - start) / sr
        freq = 440.0 * 2 ** ((note.pitch - 69) / 12)
        tone = sum(np.sin(2 * np.pi * h * freq * t) / h for h in range(1, 5))
        audio[start:stop] += (note.velocity / 127) * 0.2 * tone * np.exp(-3 * t)
    return audio


def make_pairs_corpus(folder: Path, files: int = 3, seconds: float = 3.0, sr: int = 16000, seed: int = 0) -> Path:
    """``files`` wav + same-stem .mid pairs of synthesized tones."""
    import soundfile

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        notes = random_notes(rng, seconds, 8)
        soundfile.write(folder / f"piece{i}.wav", synthesize(notes, seconds, sr), sr)
        write_midi(notes, folder / f"piece{i}.mid")
    return folder


def make_midi_corpus(folder: Path, files: int = 4, seconds: float = 4.0, seed: int = 1) -> Path:
    """``files`` short MIDI files of random piano notes (render with the ``synth`` dataset)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        write_midi(random_notes(rng, seconds, 10), folder / f"song{i}.mid")
    return folder
