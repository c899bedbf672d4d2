"""``onsets-frames``: the note extraction of Onsets and Frames (Hawthorne et al., 2018).

Follows ``extract_notes`` of jongwook/onsets-and-frames, vectorised over all keys:

1. Binarise: onset active where ``onset > onset_threshold``, frame active where
   ``frame > frame_threshold``.
2. A note starts at every rising edge of the binarised onset (first frame of each run
   of active onset frames).
3. It lasts while the onset **or** the frame is active; its offset is the first frame
   where neither is.
4. A new onset rising edge on the same key ends the previous note (as Magenta's
   ``pianoroll_to_note_sequence`` does). jongwook's loop would instead let the first note
   run on, overlapping the second — overlapping notes on one key are not valid MIDI.
5. Velocity is the mean velocity activation over the note's onset frames (the run of
   active onset frames that starts it), or the ``velocity`` option without a velocity
   activation.
6. Notes shorter than ``min_note_length`` seconds are dropped. Frames active without a
   preceding onset produce no note.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from transcribe_cli.decoders import ONSETS_FRAMES_OPTIONS
from transcribe_cli.decoders.common import (
    active_runs,
    build_notes,
    event_keys,
    next_on_same_key,
    prepare_activations,
    segment_means,
    velocity_to_midi,
)
from transcribe_cli.notes import Note
from transcribe_cli.options import resolve_options

NAME = "onsets-frames"
REQUIRES = ("onset", "frame")


def decode(activations: Mapping[str, np.ndarray], frame_rate: float, **options: Any) -> list[Note]:
    """Decode ``onset`` + ``frame`` (and optional ``velocity``) activations ``[T, 88]``
    into sorted notes. See the module docstring for the algorithm and
    ``transcribe_cli.decoders.ONSETS_FRAMES_OPTIONS`` for the options."""
    opts = resolve_options(NAME, ONSETS_FRAMES_OPTIONS, options)
    acts, n_frames = prepare_activations(NAME, activations, frame_rate, REQUIRES)
    if n_frames == 0:
        return []
    onset_active = acts["onset"] > opts["onset_threshold"]
    sounding = onset_active | (acts["frame"] > opts["frame_threshold"])

    keys, starts, onset_ends = active_runs(onset_active)
    if keys.size == 0:
        return []
    # Every onset frame is sounding, so each onset lies inside exactly one sounding run.
    run_keys, run_starts, run_ends = active_runs(sounding)
    run = np.searchsorted(
        event_keys(run_keys, run_starts, n_frames), event_keys(keys, starts, n_frames), "right"
    ) - 1
    ends = np.minimum(run_ends[run], next_on_same_key(keys, starts, sentinel=np.inf))

    if "velocity" in acts:
        means = segment_means(acts["velocity"], keys, starts, onset_ends)
        velocities: np.ndarray | int = velocity_to_midi(means)
    else:
        velocities = opts["velocity"]
    return build_notes(keys, starts, ends, velocities, frame_rate, opts["min_note_length"])
