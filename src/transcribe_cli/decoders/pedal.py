"""Sustain-pedal activation → pedal intervals (pure numpy).

The pedal activation is ``[T, 1]`` (or ``[T]``) in [0, 1], frame ``t`` at ``t / frame_rate``
seconds, as :func:`transcribe_cli.labels.pedal_roll` encodes it: the pedal is *down* on
frames strictly above ``threshold``. Runs of down frames become :class:`Pedal` intervals
``[start / frame_rate, end / frame_rate)``; runs separated by at most ``gap_frames`` up
frames are merged (a pedal "flutter" is one press), then intervals shorter than
``min_length`` seconds are dropped. Decoding the roll of any set of intervals at least two
frames long and apart gives the same intervals back (``tests/test_label_roundtrip.py``).
"""

from __future__ import annotations

import numpy as np

from transcribe_cli.notes import Pedal

def decode_pedal(
    activation: np.ndarray,
    frame_rate: float,
    *,
    threshold: float = 0.5,
    gap_frames: int = 1,
    min_length: float = 0.06,
) -> list[Pedal]:
    """Pedal intervals from a sustain-pedal activation (see the module docstring)."""
    values = np.asarray(activation, dtype=np.float32).reshape(-1)
    if values.size == 0:
        return []
    down = np.concatenate([[False], values > threshold, [False]])
    edges = np.diff(down.astype(np.int8))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    if starts.size == 0:
        return []
    if gap_frames > 0 and starts.size > 1:
        joins = starts[1:] - ends[:-1] <= gap_frames
        keep_start = np.concatenate([[True], ~joins])
        keep_end = np.concatenate([~joins, [True]])
        starts, ends = starts[keep_start], ends[keep_end]
    onsets = starts / float(frame_rate)
    offsets = ends / float(frame_rate)
    keep = offsets - onsets >= min_length - 1e-9
    return [Pedal(float(a), float(b)) for a, b in zip(onsets[keep], offsets[keep])]
