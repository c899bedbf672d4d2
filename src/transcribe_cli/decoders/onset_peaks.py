"""``onset-peaks``: onset peak picking confirmed by frame activation.

In the spirit of the note extraction of "High-resolution Piano Transcription with Pedals
by Regressing Onset and Offset Times" (Kong et al., bytedance/piano_transcription) and
of HPPNet-style onset/frame/offset models, rewritten to be vectorised over all keys:

1. **Onsets** are peaks of the onset activation along time: frames strictly above
   ``onset_threshold`` that are the maximum within ``± peak_window`` frames (a plateau
   counts once, at its first frame).
2. **Confirmation**: an onset at frame ``t`` is kept only if the frame activation is
   active (> ``frame_threshold``) at some frame ``c`` in ``t … t + confirm_frames``;
   the earliest such ``c`` is the confirmation frame. Unconfirmed onsets are dropped and
   do not split other notes.
3. **End**: the note ends at the earliest of
   * the first frame after ``c`` where the frame activation is no longer active,
   * the first offset peak after ``c`` (peaks of the ``offset`` activation above
     ``offset_threshold``, picked like onsets; only when an offset activation exists),
   * the next kept onset on the same key (re-onsets split held notes),
   * the end of the activations.
4. **Onset time**: ``t / frame_rate``, refined by parabolic interpolation through the
   peak and its neighbours when ``refine_onsets`` (shift within ±0.5 frame). When a
   note is ended by a re-onset, its offset is the next note's refined onset, so notes
   on one key never overlap.
5. **Velocity**: the velocity activation at the onset frame, or the ``velocity`` option
   when the model has no velocity activation.
6. Notes shorter than ``min_note_length`` seconds are **dropped** (not extended).
7. **Overtone ghosts** (``harmonic_ratio`` > 0, off by default): an onset peak on key ``k``
   is dropped before confirmation when it is weaker than ``harmonic_ratio`` times the
   strongest onset activation within ``± peak_window`` frames on a key
   :data:`HARMONIC_BELOW` keys below — the keys whose 2nd–5th partial falls on ``k``, the
   octave-, twelfth- and double-octave-above ghosts of a piano the model never heard. A
   dropped peak splits no note, like an unconfirmed one.

Differences from bytedance's ``note_detection_with_onset_offset_regress``: onsets are
local maxima within a window rather than monotonic neighbourhoods (which reject
double-humped peaks entirely), the frame must confirm the onset, the end is the
*earliest* of offset peak and frame drop, and there is no 600-frame length cap.

**Streaming** (:class:`OnsetPeaksStream`): the activations may come in consecutive chunks
(a transcription's windows); the stream keeps only the last ``max(peak_window,
confirm_frames) + peak_window`` frames, settles onsets and offset peaks once the frames
after them have arrived, and carries each key's open note (its frame run has not ended
yet) across chunk boundaries. Memory grows with the number of notes, not frames, and the
notes equal those of one :func:`decode` over the joined arrays (which is the stream fed once).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from transcribe_cli.decoders import ONSET_PEAKS_OPTIONS
from transcribe_cli.decoders.common import (
    active_runs,
    build_notes,
    event_keys,
    local_peaks,
    next_on_same_key,
    parabolic_shift,
    prepare_activations,
    velocity_to_midi,
)
from transcribe_cli.notes import PIANO_KEYS, Note
from transcribe_cli.options import resolve_options

NAME = "onset-peaks"
REQUIRES = ("onset", "frame")
#: ``k - j`` for the keys ``j`` whose partials 2–5 fall on key ``k`` (``harmonic_ratio``)
HARMONIC_BELOW = (12, 19, 24, 28)


def decode(activations: Mapping[str, np.ndarray], frame_rate: float, **options: Any) -> list[Note]:
    """Decode ``onset`` + ``frame`` (and optional ``offset``, ``velocity``) activations
    ``[T, 88]`` into sorted notes. See the module docstring for the algorithm and
    ``transcribe_cli.decoders.ONSET_PEAKS_OPTIONS`` for the options."""
    stream = OnsetPeaksStream(frame_rate, **options)
    stream.feed(activations)
    return stream.finish()


class OnsetPeaksStream:
    """:func:`decode` over activations that arrive in consecutive chunks of frames:
    :meth:`feed` each chunk (a mapping like :func:`decode`'s, every array ``[n, 88]``),
    then :meth:`finish` for the notes."""

    def __init__(self, frame_rate: float, **options: Any):
        self.opts = resolve_options(NAME, ONSET_PEAKS_OPTIONS, options)
        self.frame_rate = frame_rate
        self._window = self.opts["peak_window"]
        # frames after an onset (or offset peak) needed before it is settled: its peak window
        # and its confirmation frames
        self._lookahead = max(self._window, self.opts["confirm_frames"])
        self._buffer: dict[str, np.ndarray] = {}  # the activations of frames [_start, _end)
        self._start = self._end = 0
        self._done = 0  # onsets and offset peaks of the frames before this are extracted
        # kept onsets, chunk by chunk: keys, frames, positions, confirmation frames, run ends, velocities
        self._onsets: list[tuple[np.ndarray, ...]] = []
        self._offsets: list[tuple[np.ndarray, np.ndarray]] = []  # offset peaks: keys, frames
        # onsets whose frame run was still open at _end: (run-end array, indices into it, keys)
        self._open: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def feed(self, activations: Mapping[str, np.ndarray]) -> None:
        """The next ``n`` frames of every activation."""
        acts, n_frames = prepare_activations(NAME, activations, self.frame_rate, REQUIRES)
        if n_frames == 0:
            return
        if self._buffer and set(acts) != set(self._buffer):
            raise ValueError(f"every chunk needs the same activations ({', '.join(sorted(self._buffer))})")
        self._close_runs(acts["frame"] > self.opts["frame_threshold"])
        self._buffer = {key: np.concatenate([self._buffer[key], value]) if self._buffer else value
                        for key, value in acts.items()}
        self._end += n_frames
        self._extract(self._end - self._lookahead)

    def finish(self) -> list[Note]:
        """The notes of everything fed (the stream is spent)."""
        if self._end == 0:
            return []
        self._extract(self._end)
        self._close_runs(None)
        if not self._onsets:
            return []
        keys, frames, positions, confirmed_at, ends, velocities = (np.concatenate(parts) for parts in
                                                                   zip(*self._onsets))
        order = np.lexsort((frames, keys))  # key-major, as the vectorised steps below expect
        keys, frames, positions, confirmed_at, ends = (a[order] for a in (keys, frames, positions, confirmed_at, ends))
        n_frames = self._end
        # End 2: the first offset peak after the confirmation frame, on the same key.
        if self._offsets:
            off_keys, off_frames = (np.concatenate(parts) for parts in zip(*self._offsets))
            off_order = np.lexsort((off_frames, off_keys))
            off_keys, off_frames = off_keys[off_order], off_frames[off_order]
            if off_keys.size:
                following = np.searchsorted(event_keys(off_keys, off_frames, n_frames),
                                            event_keys(keys, confirmed_at, n_frames), "right")
                clamped = np.minimum(following, off_keys.size - 1)
                same_key = (following < off_keys.size) & (off_keys[clamped] == keys)
                ends = np.where(same_key, np.minimum(ends, off_frames[clamped]), ends)
        # End 3: the next kept onset on this key (its refined position).
        ends = np.minimum(ends, next_on_same_key(keys, positions, sentinel=np.inf))
        vel: np.ndarray | int = velocities[order] if "velocity" in self._buffer else self.opts["velocity"]
        return build_notes(keys, positions, ends, vel, self.frame_rate, self.opts["min_note_length"])

    # -- internals ---------------------------------------------------------------------

    def _close_runs(self, frame_active: np.ndarray | None) -> None:
        """End 1 of the open notes whose frame run ends in the next frames ``frame_active``
        (``None``: the activations end, every open run ends there)."""
        if not self._open:
            return
        if frame_active is None:
            first_inactive = np.zeros(PIANO_KEYS, dtype=np.int64)
        else:
            inactive = ~frame_active
            first_inactive = np.where(inactive.any(axis=0), inactive.argmax(axis=0), -1)
        still_open = []
        for ends, index, keys in self._open:
            at = first_inactive[keys]
            closes = at >= 0
            ends[index[closes]] = self._end + at[closes]
            if not closes.all():
                still_open.append((ends, index[~closes], keys[~closes]))
        self._open = still_open

    def _extract(self, until: int) -> None:
        """Onsets (with confirmation, position, velocity, run end when known) and offset peaks
        of frames ``[_done, until)``; their peak windows and confirmation frames are in the buffer."""
        if until <= self._done:
            return
        opts, window, start = self.opts, self._window, self._start
        lo, hi = self._done - start, until - start  # buffer rows
        onset = self._buffer["onset"]
        frame_active = self._buffer["frame"] > opts["frame_threshold"]
        keys, frames = np.nonzero(local_peaks(onset, opts["onset_threshold"], window)[lo:hi].T)
        keys, frames = keys.astype(np.int64), frames.astype(np.int64) + lo
        if opts["harmonic_ratio"] > 0 and keys.size:
            ghost = _overtone_ghosts(onset, keys, frames, window, opts["harmonic_ratio"])
            keys, frames = keys[~ghost], frames[~ghost]
        confirmed_at = _confirmation_frames(frame_active, keys, frames, opts["confirm_frames"])
        kept = confirmed_at >= 0
        keys, frames, confirmed_at = keys[kept], frames[kept], confirmed_at[kept]
        if keys.size:
            positions = (frames + start).astype(np.float64)  # global frames, so rounding is chunk-free
            if opts["refine_onsets"]:
                positions += parabolic_shift(onset, frames, keys)
            # End 1: the frame run containing the confirmation frame ends at the first inactive
            # frame after it; not in the buffer yet: the run is open, closed by a later chunk
            rows = frame_active.shape[0]
            run_keys, run_starts, run_ends = active_runs(frame_active)
            run = np.searchsorted(event_keys(run_keys, run_starts, rows), event_keys(keys, confirmed_at, rows),
                                  "right") - 1
            ends = run_ends[run].astype(np.float64) + start
            open_runs = np.flatnonzero(ends >= self._end)
            if open_runs.size:
                self._open.append((ends, open_runs, keys[open_runs]))
            velocities = (velocity_to_midi(self._buffer["velocity"][frames, keys]) if "velocity" in self._buffer
                          else np.zeros(keys.shape, dtype=np.int64))
            self._onsets.append((keys, frames + start, positions, confirmed_at + start, ends, velocities))
        if "offset" in self._buffer:
            peaks = local_peaks(self._buffer["offset"], opts["offset_threshold"], window)[lo:hi]
            off_keys, off_frames = np.nonzero(peaks.T)
            if off_keys.size:
                self._offsets.append((off_keys.astype(np.int64), off_frames.astype(np.int64) + lo + start))
        self._done = until
        # keep the frames the next onsets' peak windows reach back to
        keep_from = max(until - window, 0)
        self._buffer = {key: value[keep_from - start:] for key, value in self._buffer.items()}
        self._start = keep_from


def _overtone_ghosts(onset: np.ndarray, keys: np.ndarray, frames: np.ndarray, window: int,
                     ratio: float) -> np.ndarray:
    """Which onset peaks ``(frames[i], keys[i])`` are weaker than ``ratio`` times the strongest
    onset within ``± window`` frames on a key :data:`HARMONIC_BELOW` keys below (frames beyond
    the buffer do not count: the stream keeps ``window`` frames on each side of a peak)."""
    n_frames = onset.shape[0]
    strongest_below = np.zeros(keys.shape, dtype=onset.dtype)
    for shift in range(-window, window + 1):
        at = frames + shift
        inside = (at >= 0) & (at < n_frames)
        row = np.minimum(np.maximum(at, 0), n_frames - 1)
        for below in HARMONIC_BELOW:
            lower = keys - below
            ok = inside & (lower >= 0)
            values = onset[row, np.maximum(lower, 0)]
            strongest_below = np.where(ok, np.maximum(strongest_below, values), strongest_below)
    return onset[frames, keys] < ratio * strongest_below


def _confirmation_frames(
    frame_active: np.ndarray, keys: np.ndarray, frames: np.ndarray, max_delay: int
) -> np.ndarray:
    """For each onset ``(frames[i], keys[i])``, the earliest frame in
    ``frames[i] … frames[i] + max_delay`` where the frame activation is active, or -1."""
    n_frames = frame_active.shape[0]
    confirmed_at = np.full(frames.shape, -1, dtype=np.int64)
    for delay in range(max_delay, -1, -1):  # nearest last, so the earliest frame wins
        at = frames + delay
        ok = (at < n_frames) & frame_active[np.minimum(at, n_frames - 1), keys]
        confirmed_at[ok] = at[ok]
    return confirmed_at
