"""The ``Note`` type shared by every part of the pipeline.

Conventions: times are seconds from the start of the audio, pitches are MIDI note
numbers (A4 = 69), velocities are MIDI velocities 1..127. Conversion to Hz happens only
at the mir_eval boundary (:mod:`transcribe_cli.evaluation.metrics`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Iterable, Sequence

PIANO_LOWEST = 21  # A0
PIANO_KEYS = 88


@dataclass(frozen=True, order=True, slots=True)
class Note:
    onset: float
    offset: float
    pitch: int
    velocity: int = 64

    def __post_init__(self) -> None:
        if not self.offset > self.onset:
            raise ValueError(f"note offset {self.offset} must be after onset {self.onset}")
        if not 0 <= self.pitch <= 127:
            raise ValueError(f"pitch {self.pitch} outside MIDI range 0..127")
        if not 1 <= self.velocity <= 127:
            raise ValueError(f"velocity {self.velocity} outside MIDI note-on range 1..127")

    @property
    def duration(self) -> float:
        return self.offset - self.onset


def sort_notes(notes: Iterable[Note]) -> list[Note]:
    """Notes ordered by onset, then pitch (the order every writer uses)."""
    return sorted(notes, key=lambda n: (n.onset, n.pitch, n.offset, n.velocity))


@dataclass(frozen=True, order=True, slots=True)
class Pedal:
    """The sustain pedal (MIDI CC64) held down from ``onset`` to ``offset`` seconds."""

    onset: float
    offset: float

    def __post_init__(self) -> None:
        if not self.offset > self.onset:
            raise ValueError(f"pedal offset {self.offset} must be after onset {self.onset}")


#: ``--pedal``: sustain pedal as CC64 events, notes extended over it, or neither
PEDAL_MODES = ("cc", "extend", "none")


@dataclass(frozen=True)
class Transcription:
    """What a transcription produces: key-press notes and sustain-pedal intervals.

    ``notes`` end where the key is released unless ``extended`` is true (then each note
    was already extended over the pedal, the MAESTRO scoring convention, and ``pedals``
    is what writers put into a MIDI file as CC64, usually empty for extended notes).
    """

    notes: list[Note]
    pedals: list[Pedal] = field(default_factory=list)
    extended: bool = False


def clip_notes(notes: Sequence[Note], seconds: float) -> list[Note]:
    """Notes starting before ``seconds``, their offsets cut at ``seconds``."""
    if seconds <= 0:
        return list(notes)
    out = []
    for note in notes:
        if note.onset < seconds:
            out.append(dataclasses.replace(note, offset=seconds) if note.offset > seconds else note)
    return out
