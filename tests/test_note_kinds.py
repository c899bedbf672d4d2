"""Recall by kind of note (``transcribe eval``'s breakdown): which reference notes are low,
soft, repeated, in chords or plain, and how many of each the matching found."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from transcribe_cli.evaluation.aggregate import summarize
from transcribe_cli.evaluation.report import kind_recall
from transcribe_cli.evaluation.scoring import NOTE_KINDS, kind_counts, match_onsets, note_kinds
from transcribe_cli.notes import Note

KEYS = [kind.key for kind in NOTE_KINDS]


def kinds_of(notes):
    table = note_kinds(notes)
    return [{KEYS[k] for k in range(len(KEYS)) if table[k, i]} for i in range(len(notes))]


def test_each_kind_on_known_notes():
    notes = [
        Note(0.0, 0.5, 40, 80),  # low
        Note(1.0, 1.2, 60, 80),  # middle, plain
        Note(1.25, 1.5, 60, 80),  # the same key 250 ms later: repeated
        Note(2.0, 2.2, 60, 80),  # 750 ms later: not repeated
        Note(3.0, 3.5, 76, 30),  # high and soft
        # a 4-note chord spread over 25 ms
        Note(4.0, 4.5, 60, 70), Note(4.01, 4.5, 64, 70), Note(4.02, 4.5, 67, 70), Note(4.025, 4.5, 72, 70),
        # three notes together are not a chord of 4
        Note(6.0, 6.5, 62, 70), Note(6.0, 6.5, 65, 70), Note(6.0, 6.5, 69, 70),
    ]
    got = kinds_of(notes)
    assert got[0] == {"low"}
    assert got[1] == {"middle", "plain"}
    assert got[2] == {"middle", "repeated"}
    assert got[3] == {"middle", "plain"}
    assert got[4] == {"high", "soft"}
    assert got[5:9] == [{"middle", "chord"}] * 3 + [{"high", "chord"}]
    assert got[9:] == [{"middle", "plain"}] * 3


def test_counts_follow_the_matching():
    ref = [Note(0.0, 0.5, 40, 80), Note(1.0, 1.2, 60, 80), Note(1.25, 1.5, 60, 80)]
    est = [Note(0.01, 0.5, 40, 80), Note(1.02, 1.2, 60, 80)]  # the repeat is missed
    counts = kind_counts(ref, match_onsets(ref, est))
    table = dict(zip(KEYS, counts.tolist()))
    assert table["low"] == [1, 1] and table["middle"] == [2, 1] and table["repeated"] == [1, 0]
    assert table["plain"] == [1, 1] and table["chord"] == [0, 0]


def test_summary_sums_files_and_recall_is_nan_without_notes():
    from types import SimpleNamespace

    from transcribe_cli.evaluation.run import PointScore
    from transcribe_cli.evaluation.scoring import METRIC_KEYS

    ref = [Note(0.0, 0.5, 40, 80), Note(1.0, 1.2, 60, 80)]
    point = PointScore({k: 1.0 for k in METRIC_KEYS}, np.zeros((128, 3), dtype=np.int64), 1,
                       kind_counts(ref, [(0, 0)]))
    results = [SimpleNamespace(status="ok", points=[point], n_ref=2) for _ in range(2)]
    rows = {row[0]: row for row in kind_recall(summarize(results, 0, {}))}
    assert rows["low"][2:] == (2, 2, 1.0)
    assert rows["middle"][2:] == (2, 0, 0.0)
    assert np.isnan(rows["soft"][4])


notes_strategy = st.lists(
    st.builds(lambda onset, length, pitch, velocity: Note(onset, onset + length, pitch, velocity),
              st.floats(0, 5, allow_nan=False), st.floats(0.01, 1), st.integers(21, 108), st.integers(1, 127)),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(notes_strategy, st.data())
def test_kind_properties(ref, data):
    kinds = note_kinds(ref)
    assert kinds.shape == (len(NOTE_KINDS), len(ref))
    register = kinds[[KEYS.index(k) for k in ("low", "middle", "high")]]
    assert (register.sum(axis=0) == 1).all()  # every note has exactly one register
    others = kinds[[KEYS.index(k) for k in ("low", "soft", "repeated", "chord")]].any(axis=0)
    assert (kinds[KEYS.index("plain")] == ~others).all()
    # reversing the order of the notes changes nothing
    assert (note_kinds(ref[::-1])[:, ::-1] == kinds).all()
    found = data.draw(st.sets(st.integers(0, max(len(ref) - 1, 0)), max_size=len(ref))) if ref else set()
    counts = kind_counts(ref, [(i, i) for i in found])
    assert (counts[:, 1] <= counts[:, 0]).all()
    assert counts[KEYS.index("middle"), 0] + counts[KEYS.index("low"), 0] + counts[KEYS.index("high"), 0] == len(ref)
