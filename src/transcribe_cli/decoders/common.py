"""Shared machinery for the built-in decoders (pure numpy, vectorised).

Conventions every decoder follows:

* An activation is an array ``[T, 88]`` of floats in [0, 1]; column ``k`` is MIDI pitch
  ``21 + k`` (A0 … C8); row ``t`` is the frame centred on time ``t / frame_rate`` seconds.
* An activation is *active* at a frame when it is **strictly above** its threshold, so
  all-zero activations never produce notes, whatever the threshold.
* A note covering frames ``[s, e)`` (``e`` exclusive) has onset ``s / frame_rate`` and
  offset ``e / frame_rate``; onsets may carry a sub-frame correction.
* A velocity activation ``v`` in [0, 1] maps to MIDI velocity ``round(127 v)``, clipped
  to 1..127 — the inverse of the training target ``velocity / 127``
  (:func:`transcribe_cli.labels.target_to_velocity`, the project's one velocity codec).
* Event arrays (runs, peaks) are ordered key-major: by key index, then by frame. This is
  what lets "the next event on the same key" be found with one shift or ``searchsorted``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Mapping

import numpy as np

from transcribe_cli.errors import OptionError, PluginError
from transcribe_cli.labels import target_to_velocity
from transcribe_cli.specs import NOTE_ACTIVATIONS
from transcribe_cli.notes import PIANO_KEYS, PIANO_LOWEST, Note, sort_notes


# Activations a hair outside [0, 1] (float rounding in a model) are clipped, not rejected.
_RANGE_TOLERANCE = 1e-4


# ----------------------------------------------------------------------- activations


def prepare_activations(
    decoder: str,
    activations: Mapping[str, Any],
    frame_rate: float,
    requires: tuple[str, ...],
) -> tuple[dict[str, np.ndarray], int]:
    """Check and normalise a decoder's inputs.

    Returns the known activations (``onset``, ``frame``, ``offset``, ``velocity`` —
    others are ignored) as C-contiguous float32 arrays clipped to [0, 1], and the number
    of frames ``T``. A missing required key raises :class:`OptionError` (the decoder does
    not fit the model); a malformed array or frame rate raises :class:`PluginError` (the
    model or frontend broke its contract).
    """
    missing = [key for key in requires if key not in activations]
    if missing:
        present = ", ".join(sorted(activations)) or "none"
        raise OptionError(
            f"decoder {decoder!r} needs activation{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}, but the model produced only: {present}",
            hint="choose a decoder whose required activations the model provides",
        )
    if not (isinstance(frame_rate, numbers.Real) and math.isfinite(frame_rate) and frame_rate > 0):
        raise PluginError(
            f"decoder {decoder!r}: frame rate must be a positive number, got {frame_rate!r}"
        )

    arrays: dict[str, np.ndarray] = {}
    n_frames: int | None = None
    for key in NOTE_ACTIVATIONS:
        if key not in activations:
            continue
        array = np.ascontiguousarray(activations[key], dtype=np.float32)
        if array.ndim != 2 or array.shape[1] != PIANO_KEYS:
            raise PluginError(
                f"decoder {decoder!r}: activation {key!r} has shape {array.shape}, "
                f"expected [frames, {PIANO_KEYS}]"
            )
        if n_frames is None:
            n_frames = array.shape[0]
        elif array.shape[0] != n_frames:
            raise PluginError(
                f"decoder {decoder!r}: activations disagree on the number of frames "
                f"({key!r} has {array.shape[0]}, expected {n_frames})"
            )
        if array.size:
            low, high = float(array.min()), float(array.max())
            # NaN fails both comparisons, so it is rejected here too.
            if not (low >= -_RANGE_TOLERANCE and high <= 1 + _RANGE_TOLERANCE):
                raise PluginError(
                    f"decoder {decoder!r}: activation {key!r} must lie in [0, 1], "
                    f"found values in [{low:g}, {high:g}]"
                )
            if low < 0 or high > 1:
                array = np.clip(array, 0.0, 1.0)
        arrays[key] = array
    return arrays, int(n_frames or 0)


# ------------------------------------------------------------------ time and velocity


def frames_to_seconds(frames: np.ndarray | float, frame_rate: float) -> np.ndarray:
    """Frame positions (possibly fractional) → seconds: ``t / frame_rate``."""
    return np.asarray(frames, dtype=np.float64) / float(frame_rate)


def seconds_to_frames(seconds: np.ndarray | float, frame_rate: float) -> np.ndarray:
    """Seconds → (fractional) frame positions: ``seconds * frame_rate``."""
    return np.asarray(seconds, dtype=np.float64) * float(frame_rate)


#: velocity activations in [0, 1] → MIDI velocities (the inverse of the training target)
velocity_to_midi = target_to_velocity


# ------------------------------------------------------------------- runs and peaks


def active_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximal runs of ``True`` along time in a boolean ``[T, K]`` mask.

    Returns ``(keys, starts, ends)`` — int64 arrays, one entry per run, ``ends``
    exclusive — ordered key-major (by key, then start).
    """
    n_frames, n_keys = mask.shape
    padded = np.zeros((n_keys, n_frames + 2), dtype=np.int8)
    padded[:, 1:-1] = mask.T
    edges = np.diff(padded, axis=1)  # [K, T + 1]; +1 where a run starts, -1 after it ends
    keys, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)
    return keys.astype(np.int64), starts.astype(np.int64), ends.astype(np.int64)


def median_filter_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Median filter of a boolean ``[T, K]`` mask along time (axis 0), window ``size`` (odd).

    For binary data the median is a majority vote, computed here with a cumulative sum.
    Edges are handled like ``scipy.ndimage.median_filter``'s default ``mode="reflect"``
    (``d c b a | a b c d | d c b a``). Because the median commutes with thresholding,
    ``median_filter_mask(x > thr, n) == (median_filter(x, n) > thr)``.
    """
    if size % 2 != 1 or size < 1:
        raise ValueError(f"median filter size must be odd and positive, got {size}")
    if size == 1 or mask.shape[0] == 0:
        return mask.copy()
    half = size // 2
    padded = np.pad(mask, ((half, half), (0, 0)), mode="symmetric")
    counts = np.zeros((padded.shape[0] + 1, padded.shape[1]), dtype=np.int32)
    np.cumsum(padded, axis=0, dtype=np.int32, out=counts[1:])
    window_sums = counts[size:] - counts[:-size]
    return window_sums > half


def bridge_gaps(
    keys: np.ndarray, starts: np.ndarray, ends: np.ndarray, max_gap: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge consecutive runs on the same key separated by at most ``max_gap`` frames.

    Inputs and outputs are key-major run arrays as returned by :func:`active_runs`.
    """
    if max_gap <= 0 or keys.size < 2:
        return keys, starts, ends
    joins_previous = np.zeros(keys.size, dtype=bool)
    joins_previous[1:] = (keys[1:] == keys[:-1]) & (starts[1:] - ends[:-1] <= max_gap)
    first = np.flatnonzero(~joins_previous)
    last = np.append(first[1:] - 1, keys.size - 1)
    return keys[first], starts[first], ends[last]


def local_peaks(activation: np.ndarray, threshold: float, window: int) -> np.ndarray:
    """Boolean ``[T, K]`` mask of peaks along time: frames strictly above ``threshold``
    that are the maximum within ``± window`` frames.

    Ties are broken towards the earliest frame (a frame must be strictly greater than
    its left neighbours and at least equal to its right ones), so a plateau yields one
    peak, at its first frame, and two peaks on one key are always more than ``window``
    frames apart. Frames beyond the edges count as ``-inf``.
    """
    peaks = activation > threshold
    for shift in range(1, min(window, activation.shape[0] - 1) + 1):
        peaks[shift:] &= activation[shift:] > activation[:-shift]
        peaks[:-shift] &= activation[:-shift] >= activation[shift:]
    return peaks


def parabolic_shift(activation: np.ndarray, frames: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Sub-frame offset of each peak ``(frames[i], keys[i])`` in [-0.5, 0.5], from the
    parabola through the peak and its two neighbours (0 at the edges or where the
    three points are not strictly concave). For a plateau of two equal frames the
    shift is +0.5: the peak is placed between them.
    """
    n_frames = activation.shape[0]
    shift = np.zeros(frames.shape, dtype=np.float64)
    inner = (frames > 0) & (frames < n_frames - 1)
    t, k = frames[inner], keys[inner]
    before = activation[t - 1, k].astype(np.float64)
    peak = activation[t, k].astype(np.float64)
    after = activation[t + 1, k].astype(np.float64)
    curvature = before - 2.0 * peak + after
    concave = curvature < 0
    values = np.zeros(t.shape, dtype=np.float64)
    values[concave] = 0.5 * (before[concave] - after[concave]) / curvature[concave]
    shift[inner] = np.clip(values, -0.5, 0.5)
    return shift


def segment_means(
    values: np.ndarray, keys: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """Mean of ``values[starts[i]:ends[i], keys[i]]`` for each (non-empty) segment.

    Gathers only the frames inside segments, so the cost is proportional to their total
    length, not to the size of ``values``.
    """
    lengths = ends - starts
    if lengths.size == 0:
        return np.zeros(0, dtype=np.float64)
    segment = np.repeat(np.arange(lengths.size), lengths)
    first_of_segment = np.cumsum(lengths) - lengths
    frames = starts[segment] + (np.arange(segment.size) - first_of_segment[segment])
    sums = np.bincount(segment, weights=values[frames, keys[segment]], minlength=lengths.size)
    return sums / lengths


def event_keys(keys: np.ndarray, frames: np.ndarray, n_frames: int) -> np.ndarray:
    """One sortable int64 per (key, frame) event, ordered key-major; used with
    ``np.searchsorted`` to find "the next event on the same key"."""
    return keys.astype(np.int64) * (n_frames + 1) + frames.astype(np.int64)


def next_on_same_key(keys: np.ndarray, values: np.ndarray, sentinel: float) -> np.ndarray:
    """For key-major events, ``values`` of the next event on the same key, or ``sentinel``
    for the last event of each key (float64)."""
    following = np.full(keys.shape, sentinel, dtype=np.float64)
    if keys.size > 1:
        same = keys[1:] == keys[:-1]
        following[:-1][same] = values[1:][same]
    return following


# ---------------------------------------------------------------------------- notes


def build_notes(
    keys: np.ndarray,
    onset_frames: np.ndarray,
    offset_frames: np.ndarray,
    velocities: np.ndarray | int,
    frame_rate: float,
    min_duration: float = 0.0,
) -> list[Note]:
    """Turn per-note arrays (key index, onset/offset in fractional frames, MIDI velocity)
    into sorted :class:`Note` objects, dropping notes shorter than ``min_duration``
    seconds (and any of zero length)."""
    onsets = frames_to_seconds(onset_frames, frame_rate)
    offsets = frames_to_seconds(offset_frames, frame_rate)
    velocity = np.broadcast_to(np.asarray(velocities, dtype=np.int64), onsets.shape)
    # The tolerance keeps a note of exactly ``min_duration`` despite float rounding.
    keep = (offsets > onsets) & (offsets - onsets >= min_duration - 1e-9)
    onsets, offsets, velocity = onsets[keep], offsets[keep], velocity[keep]
    pitches = np.asarray(keys, dtype=np.int64)[keep] + PIANO_LOWEST
    # Pre-order in numpy (same key as sort_notes), so the final sort only checks one run.
    order = np.lexsort((velocity, offsets, pitches, onsets))
    return sort_notes(
        Note(onset=on, offset=off, pitch=pitch, velocity=vel)
        for on, off, pitch, vel in zip(
            onsets[order].tolist(),
            offsets[order].tolist(),
            pitches[order].tolist(),
            velocity[order].tolist(),
        )
    )
