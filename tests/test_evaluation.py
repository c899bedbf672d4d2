"""mir_eval wrappers: self-scores, a hand-worked case, empty inputs, the Hz boundary."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transcribe_cli.evaluation.metrics import (
    FRAME_KEYS,
    NOTE_GROUPS,
    evaluate_notes,
    frame_metrics,
    note_metrics,
    notes_to_mir_eval,
)
from transcribe_cli.notes import Note

REF = [
    Note(0.0, 1.0, 60, 80),
    Note(0.5, 1.0, 64, 60),
    Note(1.0, 2.0, 67, 100),
]


def test_reference_scored_against_itself_is_perfect():
    scores = evaluate_notes(REF, REF)
    assert list(scores) == [f"{g}_{m}" for g in NOTE_GROUPS for m in ("precision", "recall", "f1")] + list(
        FRAME_KEYS
    )
    assert all(value == 1.0 for value in scores.values()), scores


def test_hand_worked_perturbation():
    est = [
        Note(0.03, 1.0, 60, 80),  # onset 30 ms late: matches; offset exact
        Note(0.58, 1.0, 64, 60),  # onset 80 ms late: no match
        Note(1.0, 2.5, 67, 100),  # onset exact, offset 0.5 s late (> 20 % of 1 s): onset-only match
        Note(1.0, 2.0, 70, 64),  # no reference at this pitch
    ]
    scores = note_metrics(REF, est)
    # onsets: 2 of 4 estimates match 2 of 3 references
    assert scores["onset_precision"] == pytest.approx(2 / 4)
    assert scores["onset_recall"] == pytest.approx(2 / 3)
    assert scores["onset_f1"] == pytest.approx(2 * (1 / 2) * (2 / 3) / (1 / 2 + 2 / 3))
    # onset + offset: only the first note
    assert scores["onset_offset_precision"] == pytest.approx(1 / 4)
    assert scores["onset_offset_recall"] == pytest.approx(1 / 3)
    # matched notes keep their reference velocities exactly → velocity does not remove matches
    assert scores["onset_velocity_f1"] == pytest.approx(scores["onset_f1"])
    assert scores["onset_offset_velocity_f1"] == pytest.approx(scores["onset_offset_f1"])

    frames = frame_metrics(REF, est, frame_rate=100)
    # at 10 ms frames, reference: 60 → [0, 100), 64 → [50, 100), 67 → [100, 200): 250 frames
    # estimate: 60 → [3, 100) 97, 64 → [58, 100) 42, 67 → [100, 250) 150, 70 → [100, 200) 100
    true_positive = 97 + 42 + 100
    precision, recall = true_positive / 389, true_positive / 250
    assert frames["frame_precision"] == pytest.approx(precision)
    assert frames["frame_recall"] == pytest.approx(recall)
    assert frames["frame_f1"] == pytest.approx(2 * precision * recall / (precision + recall))


def test_wrong_velocity_fails_only_velocity_metrics():
    ref = [Note(0.0, 0.5, 60, 20), Note(1.0, 1.5, 62, 60), Note(2.0, 2.5, 64, 100)]
    # est velocities after mir_eval's least-squares rescaling cannot fit the middle note
    est = [Note(0.0, 0.5, 60, 20), Note(1.0, 1.5, 62, 127), Note(2.0, 2.5, 64, 100)]
    scores = note_metrics(ref, est)
    assert scores["onset_f1"] == 1.0
    assert scores["onset_velocity_f1"] < 1.0


@pytest.mark.parametrize("ref, est, expected", [([], [], 1.0), (REF, [], 0.0), ([], REF, 0.0)])
def test_empty_inputs_are_handled_without_mir_eval_warnings(ref, est, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = evaluate_notes(ref, est)
    assert set(scores.values()) == {expected}


def test_notes_to_mir_eval_converts_pitches_to_hz():
    intervals, hz, velocities = notes_to_mir_eval([Note(0.5, 1.25, 69, 90), Note(0.0, 1.0, 57)])
    np.testing.assert_allclose(intervals, [[0.5, 1.25], [0.0, 1.0]])
    np.testing.assert_allclose(hz, [440.0, 220.0])
    np.testing.assert_array_equal(velocities, [90, 64])


notes_strategy = st.lists(
    st.builds(
        lambda onset, length, pitch, velocity: Note(onset, onset + length, pitch, velocity),
        st.floats(0, 5, allow_nan=False),
        st.floats(0.06, 2, allow_nan=False),
        st.integers(21, 108),
        st.integers(1, 127),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=30, deadline=None)
@given(ref=notes_strategy, est=notes_strategy)
def test_scores_are_probabilities_and_f1_is_harmonic_mean(ref, est):
    scores = evaluate_notes(ref, est)
    for key, value in scores.items():
        assert 0.0 <= value <= 1.0, key
    for group in (*NOTE_GROUPS, "frame"):
        p, r, f = scores[f"{group}_precision"], scores[f"{group}_recall"], scores[f"{group}_f1"]
        assert f == pytest.approx(0.0 if p + r == 0 else 2 * p * r / (p + r))
        assert math.isfinite(f)


# -- frame targets (transcribe_cli.labels), which frame_metrics is built on ----------------

from transcribe_cli.labels import (
    notes_to_offsets,
    notes_to_onsets,
    notes_to_roll,
    notes_to_velocity,
)


def test_roll_follows_the_frame_time_convention():
    notes = [Note(0.10, 0.30, 60, 100), Note(0.205, 0.206, 21), Note(0.0, 1.0, 120), Note(0.5, 0.9, 20)]
    roll = notes_to_roll(notes, 100.0, 50)
    assert roll.shape == (50, 88) and roll.dtype == bool
    assert np.flatnonzero(roll[:, 60 - 21]).tolist() == list(range(10, 30))  # [round(10), round(30))
    assert np.flatnonzero(roll[:, 0]).tolist() == [20]  # a 1 ms note still covers its onset frame
    assert roll.sum() == 21  # pitches 120 and 20 lie outside the piano


def test_roll_clips_to_the_frame_range_and_merges_overlaps():
    notes = [Note(0.0, 0.3, 64), Note(0.2, 0.5, 64), Note(0.9, 5.0, 64)]
    roll = notes_to_roll(notes, 10.0, 8)
    assert np.flatnonzero(roll[:, 64 - 21]).tolist() == [0, 1, 2, 3, 4]
    wide = notes_to_roll(notes, 10.0, 12, lowest=0, n_keys=128)
    assert wide.shape == (12, 128) and np.flatnonzero(wide[:, 64]).tolist() == [0, 1, 2, 3, 4, 9, 10, 11]


def test_onsets_offsets_and_velocities():
    notes = [Note(0.1, 0.5, 60, 127), Note(0.3, 0.35, 62, 64), Note(0.1, 0.2, 64, 1)]
    onsets = notes_to_onsets(notes, 10.0, 8, width=3)
    assert np.flatnonzero(onsets[:, 60 - 21]).tolist() == [1, 2, 3]
    assert np.flatnonzero(onsets[:, 62 - 21]).tolist() == [3]  # width capped by the note's length
    offsets = notes_to_offsets(notes, 10.0, 8)
    assert np.flatnonzero(offsets[:, 60 - 21]).tolist() == [5]  # the end frame (first silent one)
    velocity = notes_to_velocity(notes, 10.0, 8)
    assert velocity[1, 60 - 21] == pytest.approx(1.0) and velocity[1, 64 - 21] == pytest.approx(1 / 127)
    assert velocity.sum() == pytest.approx(1.0 + 64 / 127 + 1 / 127)


@settings(max_examples=40, deadline=None)
@given(notes=notes_strategy, frame_rate=st.sampled_from([31.25, 50.0, 100.0]))
def test_roll_agrees_with_a_per_note_loop(notes, frame_rate):
    n_frames = 300
    expected = np.zeros((n_frames, 88), dtype=bool)
    for n in notes:
        start = int(np.rint(n.onset * frame_rate))
        end = max(int(np.rint(n.offset * frame_rate)), start + 1)
        expected[max(start, 0) : min(end, n_frames), n.pitch - 21] = True
    np.testing.assert_array_equal(notes_to_roll(notes, frame_rate, n_frames), expected)
    onsets = notes_to_onsets(notes, frame_rate, n_frames)
    assert not (onsets & ~expected).any()  # an onset frame is always a sounding frame
