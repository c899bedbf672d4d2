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
    stream = PedalStream(frame_rate, threshold=threshold, gap_frames=gap_frames, min_length=min_length)
    stream.feed(activation)
    return stream.finish()


class PedalStream:
    """:func:`decode_pedal` over consecutive chunks of the activation: :meth:`feed` each
    (``[n, 1]`` or ``[n]``), then :meth:`finish`."""

    def __init__(self, frame_rate: float, *, threshold: float = 0.5, gap_frames: int = 1,
                 min_length: float = 0.06):
        self.frame_rate, self.threshold = frame_rate, threshold
        self.gap_frames, self.min_length = gap_frames, min_length
        self._frames = 0
        self._down = False  # the pedal at the last frame fed
        self._starts: list[np.ndarray] = []
        self._ends: list[np.ndarray] = []

    def feed(self, activation: np.ndarray) -> None:
        values = np.asarray(activation, dtype=np.float32).reshape(-1)
        if values.size == 0:
            return
        down = np.concatenate([[self._down], values > self.threshold])
        edges = np.diff(down.astype(np.int8))
        self._starts.append(np.flatnonzero(edges == 1) + self._frames)
        self._ends.append(np.flatnonzero(edges == -1) + self._frames)
        self._frames += values.size
        self._down = bool(down[-1])

    def finish(self) -> list[Pedal]:
        if self._down:  # held to the end
            self._ends.append(np.array([self._frames]))
            self._down = False
        starts = np.concatenate(self._starts) if self._starts else np.zeros(0, dtype=np.int64)
        ends = np.concatenate(self._ends) if self._ends else np.zeros(0, dtype=np.int64)
        if starts.size == 0:
            return []
        if self.gap_frames > 0 and starts.size > 1:
            joins = starts[1:] - ends[:-1] <= self.gap_frames
            keep_start = np.concatenate([[True], ~joins])
            keep_end = np.concatenate([~joins, [True]])
            starts, ends = starts[keep_start], ends[keep_end]
        onsets = starts / float(self.frame_rate)
        offsets = ends / float(self.frame_rate)
        keep = offsets - onsets >= self.min_length - 1e-9
        return [Pedal(float(a), float(b)) for a, b in zip(onsets[keep], offsets[keep])]
