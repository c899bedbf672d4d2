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

Differences from bytedance's ``note_detection_with_onset_offset_regress``: onsets are
local maxima within a window rather than monotonic neighbourhoods (which reject
double-humped peaks entirely), the frame must confirm the onset, the end is the
*earliest* of offset peak and frame drop, and there is no 600-frame length cap.
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
from transcribe_cli.notes import Note
from transcribe_cli.options import resolve_options

NAME = "onset-peaks"
REQUIRES = ("onset", "frame")


def decode(activations: Mapping[str, np.ndarray], frame_rate: float, **options: Any) -> list[Note]:
    """Decode ``onset`` + ``frame`` (and optional ``offset``, ``velocity``) activations
    ``[T, 88]`` into sorted notes. See the module docstring for the algorithm and
    ``transcribe_cli.decoders.ONSET_PEAKS_OPTIONS`` for the options."""
    opts = resolve_options(NAME, ONSET_PEAKS_OPTIONS, options)
    acts, n_frames = prepare_activations(NAME, activations, frame_rate, REQUIRES)
    if n_frames == 0:
        return []
    onset = acts["onset"]
    window = opts["peak_window"]
    frame_active = acts["frame"] > opts["frame_threshold"]

    keys, frames = np.nonzero(local_peaks(onset, opts["onset_threshold"], window).T)
    keys, frames = keys.astype(np.int64), frames.astype(np.int64)
    confirmed_at = _confirmation_frames(frame_active, keys, frames, opts["confirm_frames"])
    kept = confirmed_at >= 0
    keys, frames, confirmed_at = keys[kept], frames[kept], confirmed_at[kept]
    if keys.size == 0:
        return []
    confirmed_keys = event_keys(keys, confirmed_at, n_frames)

    # End 1: the frame run containing the confirmation frame ends.
    run_keys, run_starts, run_ends = active_runs(frame_active)
    run = np.searchsorted(event_keys(run_keys, run_starts, n_frames), confirmed_keys, "right") - 1
    ends = run_ends[run].astype(np.float64)

    # End 2: the first offset peak after the confirmation frame, on the same key.
    if "offset" in acts:
        offset_peaks = local_peaks(acts["offset"], opts["offset_threshold"], window)
        off_keys, off_frames = np.nonzero(offset_peaks.T)
        if off_keys.size:
            following = np.searchsorted(
                event_keys(off_keys, off_frames, n_frames), confirmed_keys, "right"
            )
            clamped = np.minimum(following, off_keys.size - 1)
            same_key = (following < off_keys.size) & (off_keys[clamped] == keys)
            ends = np.where(same_key, np.minimum(ends, off_frames[clamped]), ends)

    # Onset positions (fractional frames), then End 3: the next kept onset on this key.
    positions = frames.astype(np.float64)
    if opts["refine_onsets"]:
        positions += parabolic_shift(onset, frames, keys)
    ends = np.minimum(ends, next_on_same_key(keys, positions, sentinel=np.inf))

    if "velocity" in acts:
        velocities: np.ndarray | int = velocity_to_midi(acts["velocity"][frames, keys])
    else:
        velocities = opts["velocity"]
    return build_notes(keys, positions, ends, velocities, frame_rate, opts["min_note_length"])


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

