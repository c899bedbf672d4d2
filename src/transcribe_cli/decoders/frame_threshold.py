"""``frame-threshold``: notes from a frame activation alone (for frame-only models).

1. Binarise: active where ``frame > threshold``.
2. Median-filter the binary roll along time over ``median_frames`` frames (odd; 1 = off).
   This equals thresholding a median-filtered activation, and removes blips and holes
   shorter than half the window.
3. Runs of active frames on a key become notes ``[start, end)``; runs separated by at
   most ``gap_frames`` inactive frames are merged first.
4. Notes shorter than ``min_duration`` seconds are dropped.
5. Velocity: with ``velocity_from_activation``, the mean frame activation over the note
   mapped like a velocity activation (``round(127 v)``, :func:`transcribe_cli.labels.target_to_velocity`); otherwise the velocity
   activation at the note's first frame when the model has one; otherwise the
   ``velocity`` option.

Two notes of one key that touch without a gap cannot be told apart here: they come out
as one note. Use an onset-based decoder when the model predicts onsets.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from transcribe_cli.decoders import FRAME_THRESHOLD_OPTIONS
from transcribe_cli.decoders.common import (
    active_runs,
    bridge_gaps,
    build_notes,
    median_filter_mask,
    prepare_activations,
    segment_means,
    velocity_to_midi,
)
from transcribe_cli.notes import Note
from transcribe_cli.options import resolve_options

NAME = "frame-threshold"
REQUIRES = ("frame",)


def decode(activations: Mapping[str, np.ndarray], frame_rate: float, **options: Any) -> list[Note]:
    """Decode a ``frame`` activation ``[T, 88]`` (and optional ``velocity``) into sorted
    notes. See the module docstring for the algorithm and
    ``transcribe_cli.decoders.FRAME_THRESHOLD_OPTIONS`` for the options."""
    opts = resolve_options(NAME, FRAME_THRESHOLD_OPTIONS, options)
    acts, n_frames = prepare_activations(NAME, activations, frame_rate, REQUIRES)
    if n_frames == 0:
        return []
    frame = acts["frame"]
    active = median_filter_mask(frame > opts["threshold"], opts["median_frames"])
    keys, starts, ends = bridge_gaps(*active_runs(active), max_gap=opts["gap_frames"])

    if opts["velocity_from_activation"]:
        velocities: np.ndarray | int = velocity_to_midi(segment_means(frame, keys, starts, ends))
    elif "velocity" in acts:
        velocities = velocity_to_midi(acts["velocity"][starts, keys])
    else:
        velocities = opts["velocity"]
    return build_notes(keys, starts, ends, velocities, frame_rate, opts["min_duration"])
