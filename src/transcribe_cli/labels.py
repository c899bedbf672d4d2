"""Notes → frame-level targets (piano rolls), vectorised with numpy.

Frame convention (the same as every frontend): frame ``t`` is centred on time
``t / frame_rate`` seconds. A note sounding from ``onset`` to ``offset`` seconds starts at
frame ``round(onset * frame_rate)`` and ends (exclusive) at frame
``round(offset * frame_rate)``; every note covers at least its onset frame, so short notes
never vanish. Columns are piano keys: column ``k`` is MIDI pitch ``lowest + k``; notes
outside ``[lowest, lowest + n_keys)`` and frames outside ``[0, n_frames)`` are dropped.

Used for training targets and for frame-level evaluation, so the rounding rule here is
the one the decoders invert (a note at frame ``f`` ↔ time ``f / frame_rate``).

This module is the one encode/decode pair of the project:

* **onset**: the onset target sits on frame ``start``; a decoder's onset peak at frame ``f``
  is the onset time ``f / frame_rate``;
* **offset**: the offset target sits on frame ``end``, the first frame the note no longer
  sounds (exclusive end), so a decoder's offset peak at ``f`` is the offset time
  ``f / frame_rate`` — the same frame the frame roll's run ends at;
* **velocity**: :func:`velocity_to_target` (``v / 127``) and its inverse
  :func:`target_to_velocity` (``round(127 x)`` clipped to 1..127), used by every decoder;
* **pedal**: :func:`pedal_roll` marks the frames ``[round(on·fr), round(off·fr))`` of
  each sustain-pedal interval, the same rule as a note's frames.

A round-trip test (``tests/test_label_roundtrip.py``) checks notes → targets → decoder →
the same notes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .notes import PIANO_KEYS, PIANO_LOWEST, Note, Pedal


def velocity_to_target(velocity: np.ndarray | int) -> np.ndarray:
    """MIDI velocity 1..127 → training target in (0, 1]: ``v / 127``."""
    return np.asarray(velocity, dtype=np.float32) / np.float32(127.0)


def target_to_velocity(values: np.ndarray | float) -> np.ndarray:
    """A velocity activation in [0, 1] → MIDI velocity ``round(127 x)`` in 1..127
    (the inverse of :func:`velocity_to_target`)."""
    midi = np.rint(127.0 * np.asarray(values, dtype=np.float64))
    return np.clip(midi, 1, 127).astype(np.int64)


def note_frames(
    notes: Sequence[Note], frame_rate: float, *, lowest: int = PIANO_LOWEST, n_keys: int = PIANO_KEYS
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(start, end, key, velocity)`` arrays for the notes inside the key range.

    ``start``/``end`` are frame indices (end exclusive, ``end > start``), not yet clipped
    to a roll length; ``key`` is the column (pitch - lowest); ``velocity`` is the MIDI velocity.
    """
    if len(notes) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, empty
    arr = np.array([(n.onset, n.offset, n.pitch, n.velocity) for n in notes], dtype=np.float64)
    key = arr[:, 2].astype(np.int64) - lowest
    keep = (key >= 0) & (key < n_keys)
    arr, key = arr[keep], key[keep]
    start = np.rint(arr[:, 0] * frame_rate).astype(np.int64)
    end = np.maximum(np.rint(arr[:, 1] * frame_rate).astype(np.int64), start + 1)
    return start, end, key, arr[:, 3].astype(np.int64)


def notes_to_roll(
    notes: Sequence[Note],
    frame_rate: float,
    n_frames: int,
    *,
    lowest: int = PIANO_LOWEST,
    n_keys: int = PIANO_KEYS,
) -> np.ndarray:
    """Boolean piano roll ``[n_frames, n_keys]``: True while a note sounds (see module doc)."""
    start, end, key, _ = note_frames(notes, frame_rate, lowest=lowest, n_keys=n_keys)
    counts = np.zeros((n_frames + 1, n_keys), dtype=np.int32)
    start = np.clip(start, 0, n_frames)
    end = np.clip(end, 0, n_frames)
    np.add.at(counts, (start, key), 1)
    np.add.at(counts, (end, key), -1)
    return np.cumsum(counts, axis=0)[:n_frames] > 0


def _scatter_onsets(
    start: np.ndarray,
    end: np.ndarray,
    key: np.ndarray,
    values: np.ndarray,
    n_frames: int,
    n_keys: int,
    width: int,
) -> np.ndarray:
    """Max-scatter ``values`` on the first ``width`` frames of each note (capped at its length)."""
    out = np.zeros((n_frames, n_keys), dtype=values.dtype if values.size else np.float32)
    for i in range(max(width, 1)):
        f = start + i
        inside = (f >= 0) & (f < n_frames) & (f < end)
        np.maximum.at(out, (f[inside], key[inside]), values[inside])
    return out


def notes_to_onsets(
    notes: Sequence[Note],
    frame_rate: float,
    n_frames: int,
    *,
    lowest: int = PIANO_LOWEST,
    n_keys: int = PIANO_KEYS,
    width: int = 1,
) -> np.ndarray:
    """Boolean onset roll ``[n_frames, n_keys]``: True on the first ``width`` frames of each
    note (never past its end)."""
    start, end, key, _ = note_frames(notes, frame_rate, lowest=lowest, n_keys=n_keys)
    ones = np.ones(len(start), dtype=np.float32)
    return _scatter_onsets(start, end, key, ones, n_frames, n_keys, width) > 0


def notes_to_offsets(
    notes: Sequence[Note],
    frame_rate: float,
    n_frames: int,
    *,
    lowest: int = PIANO_LOWEST,
    n_keys: int = PIANO_KEYS,
) -> np.ndarray:
    """Boolean offset roll ``[n_frames, n_keys]``: True on each note's end frame (the first
    frame it no longer sounds; see the module doc)."""
    _, end, key, _ = note_frames(notes, frame_rate, lowest=lowest, n_keys=n_keys)
    out = np.zeros((n_frames, n_keys), dtype=bool)
    f = end
    inside = (f >= 0) & (f < n_frames)
    out[f[inside], key[inside]] = True
    return out


def notes_to_velocity(
    notes: Sequence[Note],
    frame_rate: float,
    n_frames: int,
    *,
    lowest: int = PIANO_LOWEST,
    n_keys: int = PIANO_KEYS,
    width: int = 1,
) -> np.ndarray:
    """Float roll ``[n_frames, n_keys]``: :func:`velocity_to_target` on each note's onset frames, else 0
    (the loudest note wins where two onsets share a frame)."""
    start, end, key, velocity = note_frames(notes, frame_rate, lowest=lowest, n_keys=n_keys)
    values = velocity_to_target(velocity)
    return _scatter_onsets(start, end, key, values, n_frames, n_keys, width)


def pedal_roll(pedals: Sequence[Pedal], frame_rate: float, n_frames: int) -> np.ndarray:
    """Float roll ``[n_frames, 1]``: 1 on the frames where the sustain pedal is down
    (``[round(onset·fr), round(offset·fr))``, at least one frame each), else 0."""
    out = np.zeros((n_frames + 1,), dtype=np.int32)
    for pedal in pedals:
        start = int(np.rint(pedal.onset * frame_rate))
        end = max(int(np.rint(pedal.offset * frame_rate)), start + 1)
        start, end = min(max(start, 0), n_frames), min(max(end, 0), n_frames)
        if end > start:
            out[start] += 1
            out[end] -= 1
    return (np.cumsum(out)[:n_frames] > 0).astype(np.float32)[:, None]
