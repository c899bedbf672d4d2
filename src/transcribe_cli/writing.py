"""From a :class:`~transcribe_cli.notes.Transcription` to the files a musician opens.

:class:`OutputOptions` carries the ``run`` command's output choices to every worker (a
NamedTuple, so :func:`dataclasses.asdict` of the batch config keeps it intact), and
:func:`write_transcription` applies them in a fixed order:

1. **pedal** — ``cc``: the pedal intervals are written as CC64; ``extend``: notes are
   extended over the pedal (done by the transcriber) and no CC is written; ``none``: neither;
2. **tempo** — ``auto``: a tempo map tracked from the audio and the notes
   (:func:`transcribe_cli.tempo.track_tempo`; a fixed 120 BPM if too little to track),
   a number: that fixed tempo, ``none``: today's 120 BPM grid;
3. **quantize** — onsets/offsets (and pedals) snapped to the grid (MusicXML without
   ``--quantize`` uses 1/16);
4. **hands** — left/right split (:mod:`transcribe_cli.hands`) into two tracks / parts;
5. the main file in its format, then the side files (``--preview`` PNG, ``--sonify`` WAV).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .notes import Note, Transcription

__all__ = ["OutputOptions", "side_path", "write_transcription"]

NOTATION_DEFAULT_GRID = 16


class OutputOptions(NamedTuple):
    tempo: str | float = "none"  # "auto" | "none" | BPM
    pedal: str = "cc"
    quantize: int | None = None  # steps per whole note (16 = sixteenths)
    split_hands: bool = False
    preview: str | None = None  # a .png file (one input) or a folder
    sonify: str | None = None  # a .wav file (one input) or a folder
    side_folder: bool = False  # preview / sonify name folders (several inputs)


def side_path(option: str, target: Path, suffix: str, folder: bool) -> Path:
    """Where a ``--preview`` / ``--sonify`` file for output ``target`` goes."""
    return Path(option) / f"{target.stem}{suffix}" if folder else Path(option)


def write_transcription(
    transcription: Transcription,
    target: Path,
    fmt: str,
    options: OutputOptions = OutputOptions(),
    *,
    metadata: Mapping[str, Any] | None = None,
    audio: Any = None,
    sample_rate: int | None = None,
) -> int:
    """Write ``transcription`` to ``target`` in ``fmt`` (mid, csv, json, musicxml, png) with
    ``options``, plus the side files; returns the number of notes written. ``audio`` (for
    ``--tempo auto``): the samples, a block source (:func:`transcribe_cli.tempo.audio_onset_envelope`)
    or a :class:`transcribe_cli.tempo.AudioOnsets` fed by the transcription's reads."""
    from .io.outputs import write_notes
    from .quantize import quantize_notes, quantize_pedals
    from .tempo import TempoMap, track_tempo

    notes = list(transcription.notes)
    pedals = list(transcription.pedals) if options.pedal == "cc" else []
    end = max([n.offset for n in notes] + [p.offset for p in pedals] + [1.0])

    tempo_map: TempoMap | None = None
    if options.tempo == "auto":
        tempo_map = track_tempo(notes, audio=audio, sample_rate=sample_rate)
    elif isinstance(options.tempo, (int, float)):
        tempo_map = TempoMap.constant(float(options.tempo), end)
    steps = options.quantize or (NOTATION_DEFAULT_GRID if fmt == "musicxml" else None)
    if steps and tempo_map is None:
        tempo_map = TempoMap.constant(120.0, end)
    if steps:
        notes = quantize_notes(notes, tempo_map, steps)
        pedals = quantize_pedals(pedals, tempo_map, steps)

    parts: dict[str, list[Note]] | None = None
    if options.split_hands:
        from .hands import split_hands

        left, right = split_hands(notes)
        parts = {"Right hand": right, "Left hand": left}

    def midi_to(path: Path) -> None:
        from .io.midi import write_midi

        write_midi(parts or notes, path, pedals=pedals, tempo_map=tempo_map)

    if fmt == "musicxml":
        from .notation import midi_to_musicxml, require_music21

        require_music21()
        with tempfile.TemporaryDirectory(prefix="transcribe-") as tmp:
            midi = Path(tmp) / "score.mid"
            midi_to(midi)
            midi_to_musicxml(midi, target, steps=steps, bpm=tempo_map.bpm)
    elif fmt == "png":
        _preview(notes, pedals, tempo_map, parts, target)
    elif fmt == "mid":
        midi_to(target)
    else:
        write_notes(notes, target, fmt, metadata=metadata, pedals=pedals)

    if options.preview:
        _preview(notes, pedals, tempo_map, parts, side_path(options.preview, target, ".png", options.side_folder))
    if options.sonify:
        from .preview import sonify

        with tempfile.TemporaryDirectory(prefix="transcribe-") as tmp:
            midi = Path(tmp) / "sonify.mid"
            midi_to(midi)
            sonify(midi, side_path(options.sonify, target, ".wav", options.side_folder))
    return len(notes)


def _preview(notes, pedals, tempo_map, parts, path: Path) -> None:
    from .preview import save_roll_png

    save_roll_png(
        notes, path, pedals=pedals,
        beats=tempo_map.beats if tempo_map else (), downbeats=tempo_map.downbeats() if tempo_map else (),
        parts=list(parts.values()) if parts else None, title=path.stem,
    )
