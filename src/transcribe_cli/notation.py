"""MusicXML for notation editors (``--format musicxml``), through music21.

The transcription is first written as a MIDI file with its tempo map and quantized to a
grid (:mod:`transcribe_cli.quantize`), so every note starts and ends on a grid step of a
beat; music21 reads that file (``quantizePost`` to the same grid, so nothing moves) and
makes the notation — measures from the time signature, ties over bar lines, chords, voices,
one part per track (the hands with ``--split-hands``) — and writes MusicXML 4. The tempo
map's per-beat tempo changes are reduced to one metronome mark, the median tempo.

music21 is the ``notation`` extra: ``pip install 'transcribe-cli[notation]'``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import TranscribeError
from .io.fileio import atomic_write

__all__ = ["midi_to_musicxml", "require_music21"]


def require_music21() -> None:
    """Fail with one clear line when music21 is not installed."""
    try:
        import music21  # noqa: F401
    except ImportError:
        raise TranscribeError(
            "--format musicxml needs music21, which is not installed",
            "pip install 'transcribe-cli[notation]' (or pip install music21)",
        ) from None


def midi_to_musicxml(midi_path: str | os.PathLike[str], path: str | os.PathLike[str], *, steps: int, bpm: float) -> None:
    """Convert a quantized, tempo-mapped MIDI file to MusicXML at ``path`` (atomically).
    ``steps``: the quantization grid in steps per whole note; ``bpm``: the metronome mark."""
    require_music21()
    from music21 import converter, tempo

    per_beat = max(1, steps // 4)
    divisors = (per_beat,) if steps >= 4 else (1,)
    score = converter.parse(str(midi_path), format="midi", quantizePost=True, quarterLengthDivisors=divisors)
    for mark in list(score.recurse().getElementsByClass(tempo.MetronomeMark)):
        mark.activeSite.remove(mark)
    if score.parts:
        first = score.parts[0].getElementsByClass("Measure")
        target = first[0] if first else score.parts[0]
        target.insert(0, tempo.MetronomeMark(number=round(bpm)))
    with tempfile.TemporaryDirectory(prefix="transcribe-xml-") as tmp:
        written = Path(score.write("musicxml", fp=str(Path(tmp) / "score.musicxml")))
        data = written.read_bytes()
    with atomic_write(path, "wb") as handle:
        handle.write(data)
