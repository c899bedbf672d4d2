"""Score transcriptions with mir_eval: note-level and frame-level metrics.

Conventions:

- Inputs are lists of :class:`~transcribe_cli.notes.Note` (seconds, MIDI pitches, MIDI
  velocities). This module is the only place they become mir_eval arrays: intervals
  ``[N, 2]`` in seconds and pitches in Hz (:func:`notes_to_mir_eval`).
- Note metrics follow the MIREX / MAESTRO protocol: an estimated note matches a reference
  note of the same pitch (±50 cents) whose onset is within ``onset_tolerance`` (50 ms);
  "onset_offset" additionally requires the offset within ``max(offset_ratio * ref duration,
  offset_min_tolerance)`` (20 %, at least 50 ms); "velocity" metrics additionally require
  the velocity, after mir_eval's least-squares rescaling, within 0.1 of the reference
  (``mir_eval.transcription_velocity``).
- Frame metrics compare piano rolls sampled at ``frame_rate`` (100 frames/s by default)
  with ``mir_eval.multipitch``; F1 is computed from its precision and recall.
- Empty inputs are handled here rather than by mir_eval (which warns and returns zeros):
  an empty reference scored against an empty estimate is a perfect transcription of
  silence (every score 1.0); when exactly one side is empty every score is 0.0.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from ..notes import Note

#: Note-metric groups in the order they are reported.
NOTE_GROUPS = ("onset", "onset_offset", "onset_velocity", "onset_offset_velocity")
FRAME_KEYS = ("frame_precision", "frame_recall", "frame_f1", "frame_accuracy")


def notes_to_mir_eval(notes: Sequence[Note]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(intervals [N, 2] s, pitches [N] Hz, velocities [N])`` in mir_eval's format."""
    if len(notes) == 0:
        return np.zeros((0, 2)), np.zeros(0), np.zeros(0)
    arr = np.array([(n.onset, n.offset, n.pitch, n.velocity) for n in notes], dtype=np.float64)
    pitches_hz = 440.0 * 2.0 ** ((arr[:, 2] - 69.0) / 12.0)
    return arr[:, :2].copy(), pitches_hz, arr[:, 3].copy()


def _prf(precision: float, recall: float) -> tuple[float, float, float]:
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return float(precision), float(recall), float(f1)


def _empty_score(ref_empty: bool, est_empty: bool) -> float:
    return 1.0 if ref_empty and est_empty else 0.0


def note_metrics(
    ref: Sequence[Note],
    est: Sequence[Note],
    *,
    onset_tolerance: float = 0.05,
    offset_ratio: float = 0.2,
    offset_min_tolerance: float = 0.05,
    velocity_tolerance: float = 0.1,
) -> OrderedDict[str, float]:
    """Note-level precision/recall/F1 of ``est`` against ``ref``.

    Keys: ``{group}_precision``, ``{group}_recall``, ``{group}_f1`` for each group in
    :data:`NOTE_GROUPS` (onset only; onset + offset; onset + velocity; onset + offset +
    velocity).
    """
    from mir_eval import transcription, transcription_velocity

    scores: OrderedDict[str, float] = OrderedDict()
    if len(ref) == 0 or len(est) == 0:
        value = _empty_score(len(ref) == 0, len(est) == 0)
        for group in NOTE_GROUPS:
            for name in ("precision", "recall", "f1"):
                scores[f"{group}_{name}"] = value
        return scores

    ref_iv, ref_hz, ref_vel = notes_to_mir_eval(ref)
    est_iv, est_hz, est_vel = notes_to_mir_eval(est)
    common = {"onset_tolerance": onset_tolerance, "offset_min_tolerance": offset_min_tolerance}
    for group in NOTE_GROUPS:
        ratio = offset_ratio if "offset" in group else None
        if "velocity" in group:
            p, r, _, _ = transcription_velocity.precision_recall_f1_overlap(
                ref_iv, ref_hz, ref_vel, est_iv, est_hz, est_vel,
                offset_ratio=ratio, velocity_tolerance=velocity_tolerance, **common,
            )  # fmt: skip
        else:
            p, r, _, _ = transcription.precision_recall_f1_overlap(
                ref_iv, ref_hz, est_iv, est_hz, offset_ratio=ratio, **common
            )
        for name, value in zip(("precision", "recall", "f1"), _prf(p, r)):
            scores[f"{group}_{name}"] = value
    return scores


def frame_metrics(
    ref: Sequence[Note], est: Sequence[Note], frame_rate: float = 100.0
) -> OrderedDict[str, float]:
    """Frame-level precision/recall/F1 (and mir_eval's accuracy) over piano rolls at
    ``frame_rate`` covering every MIDI pitch, from time 0 to the last offset of either side.

    The same numbers as ``mir_eval.multipitch.metrics`` on the two rolls (both on one time
    grid, so no resampling), for any MIDI pitch: ``multipitch.validate`` rejects pitches
    outside 20 Hz–5 kHz (MIDI 16..111), so rows become arrays of MIDI numbers and
    mir_eval's own ``compute_num_freqs``, ``compute_num_true_positives`` (±0.5 semitone)
    and ``compute_accuracy`` count them.
    """
    from mir_eval import multipitch

    from ..labels import notes_to_roll

    if len(ref) == 0 or len(est) == 0:
        value = _empty_score(len(ref) == 0, len(est) == 0)
        return OrderedDict((key, value) for key in FRAME_KEYS)

    end = max(n.offset for n in (*ref, *est))
    n_frames = int(np.ceil(end * frame_rate)) + 1
    rolls = [notes_to_roll(notes, frame_rate, n_frames, lowest=0, n_keys=128) for notes in (ref, est)]
    ref_midi, est_midi = ([np.flatnonzero(row).astype(np.float64) for row in roll] for roll in rolls)
    true_positives = multipitch.compute_num_true_positives(ref_midi, est_midi)
    precision, recall, accuracy = multipitch.compute_accuracy(
        true_positives, multipitch.compute_num_freqs(ref_midi), multipitch.compute_num_freqs(est_midi)
    )
    p, r, f1 = _prf(float(precision), float(recall))
    return OrderedDict(zip(FRAME_KEYS, (p, r, f1, float(accuracy))))


def evaluate_notes(
    ref: Sequence[Note], est: Sequence[Note], *, frame_rate: float = 100.0
) -> OrderedDict[str, float]:
    """:func:`note_metrics` followed by :func:`frame_metrics`, in one ordered dict."""
    scores = note_metrics(ref, est)
    scores.update(frame_metrics(ref, est, frame_rate=frame_rate))
    return scores
