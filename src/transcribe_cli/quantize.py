"""Snapping notes to a beat grid for notation (``--quantize 1/16``, ``1/12``, …).

A grid ``1/D`` divides the whole note into ``D`` steps, i.e. a quarter-note beat into
``D / 4`` steps (``1/16``: 4 per beat, ``1/8``: 2, ``1/12``: triplet eighths, 3 per beat;
``1/24``: triplet sixteenths). Positions are measured in beats along the
:class:`~transcribe_cli.tempo.TempoMap` (linear between beats), so a grid step follows the
tempo. Each onset is moved to the nearest step; each offset too, but a note keeps at least
one step, so nothing vanishes. Quantizing moves notes by up to half a step in time — it is
for notation and never on by default.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from .errors import OptionError
from .notes import Note, Pedal
from .tempo import TempoMap

__all__ = ["parse_grid", "quantize_notes", "quantize_pedals"]


def parse_grid(value: str) -> int:
    """``"1/16"`` (or ``"16"``) → steps per whole note (16). Allowed: 1/1 … 1/64 where a
    beat holds a whole number of steps or a step a whole number of beats."""
    text = str(value).strip()
    denominator = text.split("/", 1)[1] if text.startswith("1/") else text
    try:
        steps = int(denominator)
    except ValueError:
        raise OptionError(f"--quantize must look like 1/16 or 1/12, not {value!r}", "e.g. --quantize 1/16") from None
    if not 1 <= steps <= 64 or (steps % 4 and 4 % steps):
        raise OptionError(f"--quantize 1/{denominator}: not a grid of the quarter-note beat",
                          "use 1/4, 1/8, 1/16, 1/32 or a triplet grid 1/6, 1/12, 1/24")
    return steps


def _snap(tempo_map: TempoMap, times: np.ndarray, steps_per_beat: float) -> np.ndarray:
    position = tempo_map.beat_position(times) * steps_per_beat
    return np.round(position)


def quantize_notes(notes: Sequence[Note], tempo_map: TempoMap, steps: int) -> list[Note]:
    """``notes`` with onsets and offsets snapped to ``1/steps`` notes along ``tempo_map``."""
    if not notes:
        return []
    per_beat = steps / 4.0
    onsets = _snap(tempo_map, np.array([n.onset for n in notes]), per_beat)
    offsets = _snap(tempo_map, np.array([n.offset for n in notes]), per_beat)
    offsets = np.maximum(offsets, onsets + 1)
    start = tempo_map.time_at(onsets / per_beat)
    end = tempo_map.time_at(offsets / per_beat)
    result = []
    for note, s, e in zip(notes, start, end, strict=True):
        s = max(0.0, float(s))
        result.append(Note(s, max(float(e), s + 1e-4), note.pitch, note.velocity))
    return result


def quantize_pedals(pedals: Iterable[Pedal], tempo_map: TempoMap, steps: int) -> list[Pedal]:
    """Pedal intervals snapped like notes (at least one step long)."""
    pedals = list(pedals)
    if not pedals:
        return []
    per_beat = steps / 4.0
    down = _snap(tempo_map, np.array([p.onset for p in pedals]), per_beat)
    up = np.maximum(_snap(tempo_map, np.array([p.offset for p in pedals]), per_beat), down + 1)
    start, end = tempo_map.time_at(down / per_beat), tempo_map.time_at(up / per_beat)
    return [Pedal(max(0.0, float(s)), max(float(e), max(0.0, float(s)) + 1e-4)) for s, e in zip(start, end, strict=True)]
