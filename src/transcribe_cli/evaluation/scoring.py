"""Scoring one transcription against its reference, the way ``transcribe eval`` reports it.

Conventions (MIREX / MAESTRO papers; the arithmetic is mir_eval's, through
:mod:`transcribe_cli.evaluation.metrics`):

- **Frame** precision/recall/F1: piano rolls at :data:`FRAME_RATE` = 100 frames/s (10 ms),
  every MIDI pitch, from time 0 to the last offset of either side, compared with
  ``mir_eval.multipitch``'s own counting functions (:func:`transcribe_cli.evaluation.metrics.frame_metrics`). Not through
  ``mir_eval.multipitch.metrics``: its ``validate`` rejects frequencies outside 20 Hz–5 kHz,
  i.e. MIDI pitches below 16 or above 111, which real labels contain (the GuitarSet clip
  in ``../shared/data/real`` has notes at pitch 120).
- **Note** P/R/F1: same pitch (±50 cents) and onset within 50 ms.
- **Note with offset**: additionally the offset within ``max(0.2 × reference duration,
  50 ms)``.
- **Note with offset & velocity**: additionally the velocity within 0.1 after mir_eval's
  least-squares rescaling of estimated onto reference velocities
  (``mir_eval.transcription_velocity``). The onset + velocity group is computed as well.
- **Recall by kind of note** (:func:`kind_counts`): the share of the reference notes of each
  kind in :data:`NOTE_KINDS` that note F1's matching found: the register (below C3, C3–B4,
  C5 and up), soft notes (velocity below 40), repeated notes (the same key started within
  the 300 ms before), notes in chords (at least 4 reference onsets within ±30 ms) and the
  plain rest (none of low, soft, repeated, chord). A note can be of several kinds.
- **Per-pitch counts** and the true-positive / false-positive / missed colouring of the
  plots use mir_eval's own onset matching (:func:`match_onsets`), i.e. exactly the
  matching behind note F1.

:data:`METRICS` lists every metric key with its label, in report order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from transcribe_cli.notes import Note

#: Frames per second of the piano rolls behind the frame metrics (10 ms frames).
FRAME_RATE = 100.0
ONSET_TOLERANCE = 0.05
OFFSET_RATIO = 0.2
OFFSET_MIN_TOLERANCE = 0.05
VELOCITY_TOLERANCE = 0.1
PITCH_TOLERANCE_CENTS = 50.0


@dataclass(frozen=True)
class Metric:
    key: str  # as in the result dicts of transcribe_cli.evaluation.metrics
    group: str  # human label of the metric group
    measure: str  # "P", "R", "F1" or "Acc"


_GROUPS = (
    ("frame", "Frame"),
    ("onset", "Note"),
    ("onset_offset", "Note w/ offset"),
    ("onset_offset_velocity", "Note w/ offset & velocity"),
    ("onset_velocity", "Note w/ velocity"),
)
_MEASURES = (("precision", "P"), ("recall", "R"), ("f1", "F1"))

#: Every reported metric, in report order (frame accuracy last).
METRICS: tuple[Metric, ...] = tuple(
    Metric(f"{prefix}_{name}", label, short) for prefix, label in _GROUPS for name, short in _MEASURES
) + (Metric("frame_accuracy", "Frame", "Acc"),)
METRIC_KEYS: tuple[str, ...] = tuple(m.key for m in METRICS)
#: The metrics of the rich table: the four groups the MAESTRO papers report.
TABLE_GROUPS = ("frame", "onset", "onset_offset", "onset_offset_velocity")

#: Short names accepted by ``--sweep-metric`` besides the keys themselves.
METRIC_ALIASES = {
    "note_precision": "onset_precision",
    "note_recall": "onset_recall",
    "note_f1": "onset_f1",
    "note_offset_f1": "onset_offset_f1",
    "note_offset_velocity_f1": "onset_offset_velocity_f1",
    "note_velocity_f1": "onset_velocity_f1",
}


def metric_key(name: str) -> str:
    """A metric key from a key or an alias; :class:`OptionError` otherwise."""
    from transcribe_cli.errors import OptionError

    key = METRIC_ALIASES.get(name, name)
    if key not in METRIC_KEYS:
        names = ", ".join([*METRIC_ALIASES, *METRIC_KEYS])
        raise OptionError(f"unknown metric {name!r}", f"use one of {names}")
    return key


def score(ref: Sequence[Note], est: Sequence[Note]) -> dict[str, float]:
    """Every metric of :data:`METRICS` for one file."""
    from transcribe_cli.evaluation.metrics import frame_metrics, note_metrics

    scores = dict(
        note_metrics(
            ref,
            est,
            onset_tolerance=ONSET_TOLERANCE,
            offset_ratio=OFFSET_RATIO,
            offset_min_tolerance=OFFSET_MIN_TOLERANCE,
            velocity_tolerance=VELOCITY_TOLERANCE,
        )
    )
    scores.update(frame_metrics(ref, est, frame_rate=FRAME_RATE))
    return {key: float(scores[key]) for key in METRIC_KEYS}


def match_onsets(ref: Sequence[Note], est: Sequence[Note]) -> list[tuple[int, int]]:
    """mir_eval's optimal one-to-one matching of ``est`` to ``ref`` by pitch and onset
    (the matching of note F1): ``(ref index, est index)`` pairs."""
    if len(ref) == 0 or len(est) == 0:
        return []
    from mir_eval.transcription import match_notes

    from transcribe_cli.evaluation.metrics import notes_to_mir_eval

    ref_iv, ref_hz, _ = notes_to_mir_eval(ref)
    est_iv, est_hz, _ = notes_to_mir_eval(est)
    pairs = match_notes(
        ref_iv, ref_hz, est_iv, est_hz,
        onset_tolerance=ONSET_TOLERANCE, pitch_tolerance=PITCH_TOLERANCE_CENTS, offset_ratio=None,
    )  # fmt: skip
    return [(int(i), int(j)) for i, j in pairs]


def pitch_counts(
    ref: Sequence[Note], est: Sequence[Note], matches: Sequence[tuple[int, int]]
) -> np.ndarray:
    """``[128, 3]`` integer counts per MIDI pitch: true positives (matched reference notes,
    counted at the reference pitch), false positives (unmatched estimated notes) and
    misses (unmatched reference notes)."""
    counts = np.zeros((128, 3), dtype=np.int64)
    ref_hit = np.zeros(len(ref), dtype=bool)
    est_hit = np.zeros(len(est), dtype=bool)
    for i, j in matches:
        ref_hit[i] = est_hit[j] = True
    ref_pitch = np.array([n.pitch for n in ref], dtype=np.int64)
    est_pitch = np.array([n.pitch for n in est], dtype=np.int64)
    np.add.at(counts[:, 0], ref_pitch[ref_hit], 1)
    np.add.at(counts[:, 1], est_pitch[~est_hit], 1)
    np.add.at(counts[:, 2], ref_pitch[~ref_hit], 1)
    return counts


@dataclass(frozen=True)
class NoteKind:
    key: str
    label: str


#: The kinds of reference note :func:`kind_counts` counts, in report order.
NOTE_KINDS: tuple[NoteKind, ...] = (
    NoteKind("low", "below C3"),
    NoteKind("middle", "C3-B4"),
    NoteKind("high", "C5 and up"),
    NoteKind("soft", "soft (velocity < 40)"),
    NoteKind("repeated", "repeated (same key within 300 ms)"),
    NoteKind("chord", "in a chord (>= 4 onsets within 30 ms)"),
    NoteKind("plain", "none of low, soft, repeated, chord"),
)
LOW_BELOW, HIGH_FROM = 48, 72  # C3, C5
SOFT_BELOW = 40
REPEAT_SECONDS = 0.3
CHORD_SECONDS, CHORD_NOTES = 0.03, 4


def note_kinds(ref: Sequence[Note]) -> np.ndarray:
    """``[len(NOTE_KINDS), len(ref)]`` booleans: which kinds each reference note is of."""
    n = len(ref)
    pitch = np.array([note.pitch for note in ref], dtype=np.int64)
    onset = np.array([note.onset for note in ref], dtype=np.float64)
    velocity = np.array([note.velocity for note in ref], dtype=np.int64)
    repeated = np.zeros(n, dtype=bool)
    chord = np.zeros(n, dtype=bool)
    if n:
        # the latest strictly earlier onset on the same key, through one sorted key-major time line
        line = pitch * 1e6 + onset
        ordered = np.sort(line)
        before = np.searchsorted(ordered, line, "left") - 1
        earlier = ordered[np.maximum(before, 0)]
        repeated = (before >= 0) & (earlier >= pitch * 1e6) & (line - earlier <= REPEAT_SECONDS + 1e-9)
        times = np.sort(onset)
        around = (np.searchsorted(times, onset + CHORD_SECONDS + 1e-9, "right")
                  - np.searchsorted(times, onset - CHORD_SECONDS - 1e-9, "left"))
        chord = around >= CHORD_NOTES
    low, high = pitch < LOW_BELOW, pitch >= HIGH_FROM
    soft = velocity < SOFT_BELOW
    plain = ~(low | soft | repeated | chord)
    kinds = {"low": low, "middle": ~low & ~high, "high": high, "soft": soft,
             "repeated": repeated, "chord": chord, "plain": plain}
    return np.stack([kinds[kind.key] for kind in NOTE_KINDS]) if n else np.zeros((len(NOTE_KINDS), 0), dtype=bool)


def kind_counts(ref: Sequence[Note], matches: Sequence[tuple[int, int]]) -> np.ndarray:
    """``[len(NOTE_KINDS), 2]`` integer counts per kind: reference notes, and those found
    (matched by ``matches``, :func:`match_onsets`)."""
    kinds = note_kinds(ref)
    found = np.zeros(len(ref), dtype=bool)
    for i, _ in matches:
        found[i] = True
    return np.stack([kinds.sum(axis=1), (kinds & found).sum(axis=1)], axis=1).astype(np.int64)


def pitch_precision_recall(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pitch precision and recall from :func:`pitch_counts` (NaN where undefined)."""
    tp, fp, fn = (counts[:, k].astype(np.float64) for k in range(3))
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
        recall = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
    return precision, recall


def scoring_settings() -> Mapping[str, float | str]:
    """The scoring constants, for reports."""
    return {
        "frame_rate": FRAME_RATE,
        "onset_tolerance": ONSET_TOLERANCE,
        "offset_ratio": OFFSET_RATIO,
        "offset_min_tolerance": OFFSET_MIN_TOLERANCE,
        "velocity_tolerance": VELOCITY_TOLERANCE,
        "pitch_tolerance_cents": PITCH_TOLERANCE_CENTS,
    }
