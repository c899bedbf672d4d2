"""Notes → frame-level targets (piano rolls), vectorised with numpy.

Frame convention (the same as every frontend): frame ``t`` is centred on time
``t / frame_rate`` seconds. A note sounding from ``onset`` to ``offset`` seconds starts at
frame ``round(onset * frame_rate)`` and ends (exclusive) at frame
``round(offset * frame_rate)``; every note covers at least its onset frame, so short notes
never vanish. Columns are piano keys: column ``k`` is MIDI pitch ``lowest + k``; notes
outside ``[lowest, lowest + n_keys)`` and frames outside ``[0, n_frames)`` are dropped.

Used for training targets and for frame-level evaluation, so the rounding rule here is
the one the decoders invert (a note at frame ``f`` ↔ time ``f / frame_rate``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .notes import PIANO_KEYS, PIANO_LOWEST, Note


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
    """Boolean offset roll ``[n_frames, n_keys]``: True on each note's last sounding frame."""
    _, end, key, _ = note_frames(notes, frame_rate, lowest=lowest, n_keys=n_keys)
    out = np.zeros((n_frames, n_keys), dtype=bool)
    f = end - 1
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
    """Float roll ``[n_frames, n_keys]``: velocity / 127 on each note's onset frames, else 0
    (the loudest note wins where two onsets share a frame)."""
    start, end, key, velocity = note_frames(notes, frame_rate, lowest=lowest, n_keys=n_keys)
    values = velocity.astype(np.float32) / 127.0
    return _scatter_onsets(start, end, key, values, n_frames, n_keys, width)
