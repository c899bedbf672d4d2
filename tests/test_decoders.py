"""Tests for the built-in decoders (``transcribe_cli.decoders``): no model involved.

Synthetic activations are rendered from known notes; the vectorised decoders are also
checked against straightforward per-key loop implementations of the documented
algorithms (``reference_*`` below) on random activations.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any, Callable

import numpy as np
import pluggy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from transcribe_cli import decoders, hookspecs
from transcribe_cli.decoders import common
from transcribe_cli.decoders.frame_threshold import decode as frame_threshold
from transcribe_cli.decoders.onset_peaks import decode as onset_peaks
from transcribe_cli.decoders.onsets_frames import decode as onsets_frames
from transcribe_cli.errors import OptionError, PluginError
from transcribe_cli.notes import Note, sort_notes
from transcribe_cli.options import resolve_options
from transcribe_cli.specs import NOTE_ACTIVATIONS, option_defaults

RATE = 50.0  # 20 ms hops
KEYS = 88
DECODERS: dict[str, Callable[..., list[Note]]] = {
    "onset-peaks": onset_peaks,
    "onsets-frames": onsets_frames,
    "frame-threshold": frame_threshold,
}
# The option that thresholds each decoder's main activation.
MAIN_THRESHOLD = {
    "onset-peaks": "onset_threshold",
    "onsets-frames": "onset_threshold",
    "frame-threshold": "threshold",
}
# Options under which frame-threshold keeps every run of active frames as it is.
PLAIN_FRAMES = {"median_frames": 1, "gap_frames": 0, "min_duration": 0.0}

SIMPLE = [
    # (key, start frame, end frame exclusive, velocity activation)
    (39, 10, 50, 0.5),  # C4
    (39, 52, 80, 0.25),
    (0, 0, 5, 1.0),  # A0 at the very first frame
    (87, 190, 200, 0.0),  # C8 running to the very last frame
    (50, 20, 23, 0.75),  # short note overlapping another key
]


# --------------------------------------------------------------------------- helpers


def render(
    notes: list[tuple[int, int, int, float]], n_frames: int, *, level: float = 1.0
) -> dict[str, np.ndarray]:
    """Activations for known notes: onset at the first frame, frame over [start, end),
    offset at ``end``, velocity over the note."""
    acts = {key: np.zeros((n_frames, KEYS), np.float32) for key in NOTE_ACTIVATIONS}
    for key, start, end, velocity in notes:
        acts["onset"][start, key] = level
        acts["frame"][start:end, key] = level
        if end < n_frames:
            acts["offset"][end, key] = level
        acts["velocity"][start:end, key] = velocity
    return acts


def expected(notes: list[tuple[int, int, int, float]], rate: float = RATE) -> list[Note]:
    return sort_notes(
        Note(s / rate, e / rate, 21 + k, int(np.clip(round(127 * float(np.float32(v))), 1, 127)))
        for k, s, e, v in notes
    )


def as_tuples(notes: list[Note]) -> list[tuple[float, float, int, int]]:
    return [(n.onset, n.offset, n.pitch, n.velocity) for n in notes]


def check_invariants(notes: list[Note]) -> None:
    for note in notes:
        assert note.offset > note.onset
        assert 21 <= note.pitch <= 108
        assert 1 <= note.velocity <= 127
        assert isinstance(note.pitch, int) and isinstance(note.velocity, int)
        assert isinstance(note.onset, float) and isinstance(note.offset, float)
    keys = [(n.onset, n.pitch, n.offset, n.velocity) for n in notes]
    assert keys == sorted(keys)


@st.composite
def note_lists(draw: Any, min_gap: int = 0) -> tuple[list[tuple[int, int, int, float]], int]:
    """Random notes: per key, non-overlapping, at least 3 frames long (so onsets on a key
    are more than ``peak_window=2`` frames apart), separated by ``min_gap``+ frames."""
    n_frames = draw(st.integers(10, 80))
    keys = draw(st.lists(st.integers(0, KEYS - 1), min_size=1, max_size=4, unique=True))
    notes = []
    for key in keys:
        cursor = draw(st.integers(0, 5))
        for _ in range(draw(st.integers(1, 4))):
            length = draw(st.integers(3, 15))
            if cursor + length > n_frames:
                break
            velocity = draw(st.integers(0, 126)) / 126
            notes.append((key, cursor, cursor + length, velocity))
            cursor += length + draw(st.integers(min_gap, 6))
    return notes, n_frames


@st.composite
def random_activations(draw: Any) -> dict[str, np.ndarray]:
    """Arbitrary activations on a few keys, rich in ties and values at the thresholds."""
    n_frames = draw(st.integers(1, 40))
    keys = draw(st.lists(st.integers(0, KEYS - 1), min_size=1, max_size=3, unique=True))
    values = st.one_of(
        st.sampled_from([0.0, 0.3, 0.5, 0.6, 0.9, 1.0]),
        st.floats(0, 1, width=32),
    )
    acts = {}
    for name in NOTE_ACTIVATIONS:
        columns = draw(hnp.arrays(np.float32, (n_frames, len(keys)), elements=values))
        full = np.zeros((n_frames, KEYS), np.float32)
        full[:, keys] = columns
        acts[name] = full
    return acts


def runs_of(column: np.ndarray) -> list[tuple[int, int]]:
    runs, start = [], None
    for t, on in enumerate(list(column) + [False]):
        if on and start is None:
            start = t
        elif not on and start is not None:
            runs.append((start, t))
            start = None
    return runs


# Straightforward loop implementations of the documented algorithms (small inputs only).


def reference_onset_peaks(acts, rate, thr=0.5, fthr=0.5, othr=0.5, window=2, confirm=2):
    on, fr, off, vel = (acts.get(k) for k in NOTE_ACTIVATIONS)
    n_frames = len(on)

    def peaks(x, threshold):
        return [
            t
            for t in range(n_frames)
            if x[t] > threshold
            and all(x[t] > x[t - d] for d in range(1, window + 1) if t - d >= 0)
            and all(x[t] >= x[t + d] for d in range(1, window + 1) if t + d < n_frames)
        ]

    out = []
    for k in range(KEYS):
        kept = []
        for t in peaks(on[:, k], thr):
            c = next((u for u in range(t, min(t + confirm + 1, n_frames)) if fr[u, k] > fthr), None)
            if c is not None:
                kept.append((t, c))
        offsets = peaks(off[:, k], othr) if off is not None else []
        for i, (t, c) in enumerate(kept):
            end = next((u for u in range(c + 1, n_frames) if not fr[u, k] > fthr), n_frames)
            end = min([end] + [u for u in offsets if u > c][:1])
            if i + 1 < len(kept):
                end = min(end, kept[i + 1][0])
            v = max(1, min(127, round(127 * float(vel[t, k])))) if vel is not None else 64
            out.append(Note(t / rate, end / rate, 21 + k, int(np.clip(v, 1, 127))))
    return sort_notes(out)


def reference_onsets_frames(acts, rate, thr=0.5, fthr=0.5):
    """jongwook/onsets-and-frames ``extract_notes``, plus: a new onset ends the note."""
    onsets, frames, vel = acts["onset"] > thr, acts["frame"] > fthr, acts.get("velocity")
    n_frames = len(onsets)
    out = []
    for k in range(KEYS):
        for t in range(n_frames):
            if not onsets[t, k] or (t > 0 and onsets[t - 1, k]):
                continue
            end, samples = t, []
            while end < n_frames and (onsets[end, k] or frames[end, k]):
                if end > t and onsets[end, k] and not onsets[end - 1, k]:
                    break  # re-onset
                if onsets[end, k]:
                    samples.append(float(vel[end, k]) if vel is not None else 0.0)
                end += 1
            v = max(1, min(127, round(127 * float(np.mean(samples))))) if vel is not None else 64
            out.append(Note(t / rate, end / rate, 21 + k, int(np.clip(v, 1, 127))))
    return sort_notes(out)


def reference_frame_threshold(acts, rate, threshold=0.5, median=3, gap=0, min_duration=0.0):
    from scipy.ndimage import median_filter

    active = median_filter(acts["frame"], size=(median, 1), mode="reflect") > threshold
    vel = acts.get("velocity")
    out = []
    for k in range(KEYS):
        merged: list[list[int]] = []
        for s, e in runs_of(active[:, k]):
            if merged and s - merged[-1][1] <= gap:
                merged[-1][1] = e
            else:
                merged.append([s, e])
        for s, e in merged:
            if (e - s) / rate >= min_duration:
                v = max(1, min(127, round(127 * float(vel[s, k])))) if vel is not None else 64
                out.append(Note(s / rate, e / rate, 21 + k, int(np.clip(v, 1, 127))))
    return sort_notes(out)


# ------------------------------------------------------------------ known notes decode


@pytest.mark.parametrize("name", ["onset-peaks", "onsets-frames"])
def test_onset_decoders_recover_known_notes(name):
    assert DECODERS[name](render(SIMPLE, 200), RATE) == expected(SIMPLE)


def test_frame_threshold_recovers_known_notes():
    acts = render(SIMPLE, 200)
    assert frame_threshold(acts, RATE, **PLAIN_FRAMES) == expected(SIMPLE)
    assert frame_threshold({"frame": acts["frame"]}, RATE, **PLAIN_FRAMES) == [
        Note(n.onset, n.offset, n.pitch, 64) for n in expected(SIMPLE)
    ]


@pytest.mark.parametrize("rate", [31.25, 50.0, 62.5, 100.0])
def test_times_follow_the_frame_rate(rate):
    notes = [(40, 7, 19, 0.5)]
    for decode in DECODERS.values():
        (note,) = decode(render(notes, 30), rate)
        assert note.onset == 7 / rate and note.offset == 19 / rate


@settings(max_examples=60, deadline=None)
@given(note_lists(min_gap=0))
def test_onset_decoders_recover_random_notes(case):
    notes, n_frames = case
    acts = render(notes, n_frames)
    assert onset_peaks(acts, RATE) == expected(notes)
    assert onsets_frames(acts, RATE) == expected(notes)


@settings(max_examples=60, deadline=None)
@given(note_lists(min_gap=1))
def test_frame_threshold_recovers_random_notes(case):
    notes, n_frames = case
    assert frame_threshold(render(notes, n_frames), RATE, **PLAIN_FRAMES) == expected(notes)


def test_velocity_option_used_without_velocity_activation():
    acts = render(SIMPLE, 200)
    del acts["velocity"]
    for decode in DECODERS.values():
        notes = decode(acts, RATE, velocity=90)
        assert notes and {n.velocity for n in notes} == {90}


def test_velocity_mapping():
    v = np.array([0.0, 0.5, 1.0, 1 / 127, 2 / 127, -0.5, 2.0])
    assert common.velocity_to_midi(v).tolist() == [1, 64, 127, 1, 2, 1, 127]


def test_onsets_frames_velocity_is_mean_over_onset_frames():
    acts = render([(30, 10, 30, 0.0)], 40)
    acts["onset"][10:13, 30] = 1.0
    acts["velocity"][10:13, 30] = [0.2, 0.4, 0.6]
    acts["velocity"][13:30, 30] = 1.0  # not onset frames: ignored
    (note,) = onsets_frames(acts, RATE)
    assert note.velocity == round(127 * 0.4)
    assert (note.onset, note.offset) == (10 / RATE, 30 / RATE)


def test_frame_threshold_velocity_from_activation():
    acts = {"frame": np.zeros((40, KEYS), np.float32)}
    acts["frame"][5:15, 10] = np.linspace(0.6, 1.0, 10)
    (note,) = frame_threshold(acts, RATE, velocity_from_activation=True)
    assert note.velocity == round(127 * 0.8)


# -------------------------------------------------------- onset-peaks specifics


def test_onset_peaks_ends_at_offset_peak_before_frame_drop():
    acts = render([(40, 10, 60, 0.5)], 80)
    acts["offset"][60, 40] = 0.0
    acts["offset"][44:47, 40] = [0.4, 0.8, 0.3]  # offset peak at 45, frame goes on to 60
    (note,) = onset_peaks(acts, RATE)
    assert note.offset == 45 / RATE
    (note,) = onset_peaks(acts, RATE, offset_threshold=0.9)
    assert note.offset == 60 / RATE
    del acts["offset"]
    (note,) = onset_peaks(acts, RATE)
    assert note.offset == 60 / RATE


@pytest.mark.parametrize("below", [12, 19, 24, 28])
def test_onset_peaks_drops_overtone_ghosts_only_when_asked(below):
    """``harmonic_ratio``: an onset peak weaker than ratio x a nearby onset on a key whose
    partial it is goes; an equally strong one (an octave really played), a ghost of a key not
    harmonically below, and everything at ratio 0 stay."""
    acts = render([(30, 10, 60, 0.5), (30 + below, 11, 40, 0.5), (60, 30, 50, 0.5), (70, 31, 50, 0.5)], 80)
    acts["onset"][10, 30] = 0.9
    acts["onset"][11, 30 + below] = 0.55  # a weak onset one frame later, partial of key 30
    acts["onset"][30, 60] = acts["onset"][31, 70] = 0.8  # 10 keys apart: not a partial
    pitches = lambda notes: sorted(n.pitch for n in notes)  # noqa: E731
    assert pitches(onset_peaks(acts, RATE)) == sorted([51, 51 + below, 81, 91])
    assert pitches(onset_peaks(acts, RATE, harmonic_ratio=0.7)) == [51, 81, 91]
    assert pitches(onset_peaks(acts, RATE, harmonic_ratio=0.5)) == sorted([51, 51 + below, 81, 91])
    acts["onset"][11, 30 + below] = 0.9  # as strong as the lower note: an octave really played
    assert pitches(onset_peaks(acts, RATE, harmonic_ratio=0.9)) == sorted([51, 51 + below, 81, 91])
    acts["onset"][11, 30 + below] = 0.55
    acts["onset"][10, 30] = 0.0  # the lower onset more than peak_window frames away
    acts["onset"][14, 30] = 0.9
    assert 51 + below in pitches(onset_peaks(acts, RATE, harmonic_ratio=0.7, peak_window=2))


def test_onset_peaks_needs_frame_confirmation():
    acts = render([(40, 10, 60, 0.5)], 80)
    acts["frame"][10:12, 40] = 0.0  # frame confirms two frames after the onset
    (note,) = onset_peaks(acts, RATE)
    assert (note.onset, note.offset) == (10 / RATE, 60 / RATE)
    assert onset_peaks(acts, RATE, confirm_frames=1) == []
    acts["frame"][:, 40] = 0.0  # onset without any frame support
    assert onset_peaks(acts, RATE) == []


def test_onset_peaks_one_note_per_peak_window():
    acts = render([(40, 10, 60, 0.5)], 80)
    acts["onset"][9:14, 40] = [0.1, 0.9, 0.6, 0.8, 0.1]  # double hump: peaks at 10 and 12
    assert len(onset_peaks(acts, RATE, refine_onsets=False)) == 1
    split = onset_peaks(acts, RATE, refine_onsets=False, peak_window=1)
    assert [(n.onset, n.offset) for n in split] == [(10 / RATE, 12 / RATE), (12 / RATE, 60 / RATE)]


def test_onset_peaks_plateau_counts_once():
    acts = render([(40, 10, 60, 0.5)], 80)
    acts["onset"][10:12, 40] = 1.0
    (note,) = onset_peaks(acts, RATE, refine_onsets=False)
    assert note.onset == 10 / RATE
    (note,) = onset_peaks(acts, RATE)
    assert note.onset == pytest.approx(10.5 / RATE)  # between the two equal frames


@pytest.mark.parametrize("centre", [20.0, 20.2, 20.45, 19.7, 19.55])
def test_onset_refinement_is_subframe_accurate(centre):
    acts = render([(40, 20, 60, 0.5)], 80)
    t = np.arange(80)
    acts["onset"][:, 40] = np.exp(-0.5 * ((t - centre) / 1.2) ** 2)
    (refined,) = onset_peaks(acts, RATE)
    (coarse,) = onset_peaks(acts, RATE, refine_onsets=False)
    assert abs(refined.onset * RATE - centre) < 0.1
    assert abs(refined.onset * RATE - centre) <= abs(coarse.onset * RATE - centre) + 1e-9
    assert coarse.onset == round(centre) / RATE


def test_refined_reonset_never_overlaps_previous_note():
    acts = render([(40, 10, 60, 0.5)], 80)
    t = np.arange(80)
    acts["onset"][:, 40] = np.maximum(
        np.exp(-0.5 * ((t - 10) / 1.2) ** 2), np.exp(-0.5 * ((t - 29.7) / 1.2) ** 2)
    )
    first, second = onset_peaks(acts, RATE)
    assert first.offset == second.onset == pytest.approx(29.7 / RATE, abs=0.1 / RATE)


# ------------------------------------------------------------------------ re-onsets


@pytest.mark.parametrize("name", ["onset-peaks", "onsets-frames"])
def test_reonset_splits_held_note(name):
    acts = render([(40, 10, 60, 0.5)], 80)
    acts["onset"][35, 40] = 1.0
    acts["velocity"][35:60, 40] = 0.75
    notes = DECODERS[name](acts, RATE)
    assert as_tuples(notes) == [
        (10 / RATE, 35 / RATE, 61, 64),
        (35 / RATE, 60 / RATE, 61, 95),  # round(127 * 0.75)
    ]


# -------------------------------------------------------------- blips and thresholds


@pytest.mark.parametrize(("name", "option"), [
    ("onset-peaks", "min_note_length"),
    ("onsets-frames", "min_note_length"),
    ("frame-threshold", "min_duration"),
])
def test_min_length_drops_short_notes(name, option):
    notes = [(40, 10, 12, 0.5), (41, 10, 30, 0.5)]  # a 40 ms note and a 400 ms one
    extra = PLAIN_FRAMES if name == "frame-threshold" else {}
    decode = DECODERS[name]
    assert len(decode(render(notes, 40), RATE, **extra)) == 2
    kept = decode(render(notes, 40), RATE, **{**extra, option: 0.05})
    assert [n.pitch for n in kept] == [62]
    # A note exactly as long as the minimum is kept.
    assert len(decode(render(notes, 40), RATE, **{**extra, option: 0.04})) == 2


def test_median_filter_removes_blips_and_fills_holes():
    frame = np.zeros((60, KEYS), np.float32)
    frame[10:40, 5] = 1.0
    frame[25, 5] = 0.0  # a one-frame hole
    frame[50, 6] = 1.0  # a one-frame blip
    acts = {"frame": frame}
    plain = frame_threshold(acts, RATE, **PLAIN_FRAMES)
    assert [(n.pitch, round(n.onset * RATE), round(n.offset * RATE)) for n in plain] == [
        (26, 10, 25), (26, 26, 40), (27, 50, 51)
    ]
    (note,) = frame_threshold(acts, RATE, median_frames=3, min_duration=0.0)
    assert (note.pitch, note.onset, note.offset) == (26, 10 / RATE, 40 / RATE)


def test_gap_frames_bridges_short_gaps():
    frame = np.zeros((60, KEYS), np.float32)
    frame[10:20, 5] = frame[22:30, 5] = frame[34:40, 5] = 1.0  # gaps of 2 and 4 frames
    acts = {"frame": frame}
    bridged = frame_threshold(acts, RATE, **{**PLAIN_FRAMES, "gap_frames": 2})
    spans = [(round(n.onset * RATE), round(n.offset * RATE)) for n in bridged]
    assert spans == [(10, 30), (34, 40)]
    assert len(frame_threshold(acts, RATE, **{**PLAIN_FRAMES, "gap_frames": 4})) == 1


@pytest.mark.parametrize("name", list(DECODERS))
def test_threshold_option_changes_result(name):
    acts = render([(40, 10, 30, 0.5)], 40, level=0.6)
    extra = PLAIN_FRAMES if name == "frame-threshold" else {}
    option = MAIN_THRESHOLD[name]
    assert len(DECODERS[name](acts, RATE, **extra, **{option: 0.5})) == 1
    assert DECODERS[name](acts, RATE, **extra, **{option: 0.7}) == []


def test_frame_threshold_option_of_onset_decoders():
    acts = render([(40, 10, 30, 0.5)], 40)
    acts["frame"] *= 0.6
    for decode in (onset_peaks, onsets_frames):
        assert decode(acts, RATE, frame_threshold=0.5)[0].offset == 30 / RATE
    # onset-peaks needs the frame to confirm; onsets-frames keeps the onset frame alone.
    assert onset_peaks(acts, RATE, frame_threshold=0.7) == []
    (note,) = onsets_frames(acts, RATE, frame_threshold=0.7)
    assert note.offset == 11 / RATE


@pytest.mark.parametrize("name", list(DECODERS))
@pytest.mark.parametrize("n_frames", [0, 1, 500])
def test_all_zero_activations_give_no_notes(name, n_frames):
    acts = {k: np.zeros((n_frames, KEYS), np.float32) for k in NOTE_ACTIVATIONS}
    assert DECODERS[name](acts, RATE) == []
    assert DECODERS[name](acts, RATE, **{MAIN_THRESHOLD[name]: 0.0}) == []


# ----------------------------------------------------------------------- properties


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_activations())
def test_decoders_match_loop_references(acts):
    assert onset_peaks(acts, RATE, refine_onsets=False) == reference_onset_peaks(acts, RATE)
    no_offset = {k: v for k, v in acts.items() if k != "offset"}
    assert onset_peaks(no_offset, RATE, refine_onsets=False) == reference_onset_peaks(
        no_offset, RATE
    )
    assert onsets_frames(acts, RATE) == reference_onsets_frames(acts, RATE)
    for median, gap in [(1, 0), (3, 0), (5, 2)]:
        got = frame_threshold(acts, RATE, median_frames=median, gap_frames=gap, min_duration=0.0)
        assert got == reference_frame_threshold(acts, RATE, median=median, gap=gap)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_activations(), st.floats(0.0, 1.0), st.booleans())
def test_decoded_notes_are_always_valid(acts, threshold, refine):
    check_invariants(onset_peaks(acts, RATE, onset_threshold=threshold, refine_onsets=refine))
    check_invariants(onset_peaks(acts, RATE, frame_threshold=threshold, peak_window=1))
    check_invariants(onsets_frames(acts, RATE, onset_threshold=threshold))
    check_invariants(frame_threshold(acts, RATE, threshold=threshold, median_frames=1))
    check_invariants(frame_threshold(acts, RATE, velocity_from_activation=True))


@settings(max_examples=80, deadline=None)
@given(
    hnp.arrays(np.bool_, st.tuples(st.integers(1, 60), st.just(KEYS))),
    st.floats(0.05, 0.95),
)
def test_frame_threshold_recovers_runs_of_binary_rolls(roll, threshold):
    # Active cells sit above the threshold, inactive ones below it.
    frame = np.where(roll, (1 + threshold) / 2, threshold / 2).astype(np.float32)
    notes = frame_threshold({"frame": frame}, RATE, threshold=threshold, **PLAIN_FRAMES)
    want = sort_notes(
        Note(s / RATE, e / RATE, 21 + k, 64) for k in range(KEYS) for s, e in runs_of(roll[:, k])
    )
    assert notes == want


@settings(max_examples=60, deadline=None)
@given(note_lists(min_gap=1), st.integers(0, 2**32 - 1), st.sampled_from([0.05, 0.49]))
def test_noise_below_thresholds_changes_nothing(case, seed, amplitude):
    notes, n_frames = case
    clean = render(notes, n_frames)
    rng = np.random.default_rng(seed)
    noisy = {k: v.copy() for k, v in clean.items()}
    for key in ("onset", "frame", "offset"):
        quiet = noisy[key] < 0.5
        noisy[key][quiet] += (amplitude * rng.random(quiet.sum())).astype(np.float32)
    for name, decode in DECODERS.items():
        extra = {"refine_onsets": False} if name == "onset-peaks" else {}
        assert decode(noisy, RATE, **extra) == decode(clean, RATE, **extra), name
    # Parabolic refinement moves onsets only by a sliver when the noise is tiny.
    if amplitude < 0.1:
        def by_pitch(notes):
            return sorted(notes, key=lambda n: (n.pitch, n.onset))

        got, want = by_pitch(onset_peaks(noisy, RATE)), by_pitch(onset_peaks(clean, RATE))
        assert [(n.pitch, n.velocity) for n in got] == [(n.pitch, n.velocity) for n in want]
        for a, b in zip(got, want):
            assert a.onset == pytest.approx(b.onset, abs=0.05 / RATE)
            assert a.offset == pytest.approx(b.offset, abs=0.05 / RATE)


@settings(max_examples=100, deadline=None)
@given(
    hnp.arrays(np.bool_, st.tuples(st.integers(1, 30), st.integers(1, 4))),
    st.sampled_from([1, 3, 5, 7, 9]),
)
def test_median_filter_mask_matches_scipy(mask, size):
    from scipy.ndimage import median_filter

    want = median_filter(mask.astype(np.uint8), size=(size, 1), mode="reflect").astype(bool)
    np.testing.assert_array_equal(common.median_filter_mask(mask, size), want)


# ---------------------------------------------------------------- errors and options


@pytest.mark.parametrize(("name", "missing"), [
    ("onset-peaks", "onset"),
    ("onset-peaks", "frame"),
    ("onsets-frames", "onset"),
    ("frame-threshold", "frame"),
])
def test_missing_required_activation(name, missing):
    acts = render(SIMPLE, 200)
    del acts[missing]
    with pytest.raises(OptionError, match=rf"{name}.*needs activation {missing}\b"):
        DECODERS[name](acts, RATE)


@pytest.mark.parametrize("name", list(DECODERS))
def test_unknown_option_lists_accepted_ones(name):
    with pytest.raises(OptionError) as info:
        DECODERS[name](render(SIMPLE, 200), RATE, treshold=0.3)
    message = str(info.value)
    assert "'treshold'" in message and name in message
    table = {spec.name: spec.options for spec in decoders.SPECS}[name]
    assert all(option in message for option in table)


@pytest.mark.parametrize(("name", "option", "value"), [
    ("onset-peaks", "onset_threshold", 1.5),
    ("onset-peaks", "onset_threshold", -0.1),
    ("onset-peaks", "onset_threshold", "high"),
    ("onset-peaks", "onset_threshold", True),
    ("onset-peaks", "onset_threshold", float("nan")),
    ("onset-peaks", "peak_window", 0),
    ("onset-peaks", "peak_window", 1.5),
    ("onset-peaks", "confirm_frames", -1),
    ("onset-peaks", "refine_onsets", "yes"),
    ("onset-peaks", "min_note_length", -0.01),
    ("onsets-frames", "velocity", 0),
    ("onsets-frames", "velocity", 128),
    ("frame-threshold", "median_frames", 2),
    ("frame-threshold", "median_frames", 0),
    ("frame-threshold", "gap_frames", -1),
    ("frame-threshold", "min_duration", float("inf")),
    ("frame-threshold", "velocity_from_activation", 1),
])
def test_bad_option_values_are_rejected(name, option, value):
    with pytest.raises(OptionError, match=rf"{name}.*option {option}=.*must be"):
        DECODERS[name](render(SIMPLE, 200), RATE, **{option: value})


def test_option_values_are_coerced_to_the_default_type():
    acts = render(SIMPLE, 200)
    resolved = resolve_options(
        "frame-threshold",
        decoders.FRAME_THRESHOLD_OPTIONS,
        {"threshold": 1, "median_frames": 3.0, "velocity": np.int64(70)},
    )
    assert resolved["threshold"] == 1.0 and isinstance(resolved["threshold"], float)
    assert resolved["median_frames"] == 3 and isinstance(resolved["median_frames"], int)
    assert resolved["velocity"] == 70 and isinstance(resolved["velocity"], int)
    assert frame_threshold(acts, RATE, median_frames=3.0, threshold=0) == frame_threshold(
        acts, RATE, median_frames=3, threshold=0.0
    )


@pytest.mark.parametrize("bad", [
    {"frame": np.zeros((10, 87), np.float32)},
    {"frame": np.zeros(10, np.float32)},
    {"frame": np.full((10, KEYS), 1.5, np.float32)},
    {"frame": np.full((10, KEYS), np.nan, np.float32)},
    {"frame": np.zeros((10, KEYS)), "velocity": np.zeros((11, KEYS))},
])
def test_malformed_activations_are_plugin_errors(bad):
    with pytest.raises(PluginError):
        frame_threshold(bad, RATE)


@pytest.mark.parametrize("rate", [0, -50.0, float("nan"), float("inf")])
def test_bad_frame_rate(rate):
    with pytest.raises(PluginError, match="frame rate"):
        frame_threshold({"frame": np.zeros((10, KEYS))}, rate)


def test_accepts_float64_and_rounding_noise_outside_unit_range():
    acts = render(SIMPLE, 200)
    acts64 = {k: v.astype(np.float64) for k, v in acts.items()}
    acts64["frame"][acts64["frame"] == 0] = -1e-6
    acts64["frame"][acts64["frame"] == 1] = 1 + 1e-6
    for decode in DECODERS.values():
        assert decode(acts64, RATE) == decode(acts, RATE)


# ------------------------------------------------------------------- registration


def registered_specs():
    manager = pluggy.PluginManager("transcribe_cli")
    manager.add_hookspecs(hookspecs)
    manager.register(decoders)
    specs = []
    manager.hook.register_decoders(register=specs.append)
    return {spec.name: spec for spec in specs}


def test_registration():
    specs = registered_specs()
    assert set(specs) == {"onset-peaks", "onsets-frames", "frame-threshold"}
    assert specs["onset-peaks"].requires == ("onset", "frame")
    assert specs["onsets-frames"].requires == ("onset", "frame")
    assert specs["frame-threshold"].requires == ("frame",)
    tables = {
        "onset-peaks": decoders.ONSET_PEAKS_OPTIONS,
        "onsets-frames": decoders.ONSETS_FRAMES_OPTIONS,
        "frame-threshold": decoders.FRAME_THRESHOLD_OPTIONS,
    }
    acts = render(SIMPLE, 200)
    for name, spec in specs.items():
        assert spec.description
        assert dict(spec.options) == option_defaults(tables[name])
        for option in tables[name].values():
            assert type(option.default) in (bool, int, float, str)
            assert option.help
        decode = spec.factory()
        assert decode is DECODERS[name]
        # Every declared default passes validation and is what decode uses anyway.
        assert decode(acts, RATE, **spec.options) == decode(acts, RATE)


def test_threshold_defaults_are_floats():
    for spec in decoders.SPECS:
        for name, default in spec.options.items():
            if "threshold" in name or name.startswith("min_"):
                assert type(default) is float, (spec.name, name)


def test_registration_module_is_cheap_to_import():
    code = (
        "import sys, transcribe_cli.decoders as d; "
        "bad = [m for m in ('numpy', 'torch', 'scipy') if m in sys.modules]; "
        "assert not bad, bad; assert len(d.SPECS) == 3"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=_src_env())


def _src_env() -> dict[str, str]:
    import os
    from pathlib import Path

    import transcribe_cli

    src = str(Path(transcribe_cli.__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{path}" if path else src}


# ------------------------------------------------------------------- performance


def hour_of_activations(rate: float = RATE, seconds: float = 3600.0, seed: int = 0):
    """Realistic-looking activations for an hour: ~10 notes/s with onset bumps, frames,
    offset spikes and velocities, over a floor of noise below the thresholds."""
    rng = np.random.default_rng(seed)
    n_frames = int(seconds * rate)
    acts = {k: rng.random((n_frames, KEYS), dtype=np.float32) * 0.3 for k in NOTE_ACTIVATIONS}
    n_notes = int(10 * seconds)
    keys = rng.integers(0, KEYS, n_notes)
    starts = rng.integers(1, n_frames - 160, n_notes)
    ends = starts + rng.integers(3, 150, n_notes)
    for k, s, e, v in zip(keys, starts, ends, rng.random(n_notes)):
        acts["onset"][s - 1 : s + 2, k] = np.maximum(acts["onset"][s - 1 : s + 2, k], (0.6, 1, 0.6))
        acts["frame"][s:e, k] = 0.9
        acts["offset"][e, k] = 1.0
        acts["velocity"][s:e, k] = v
    return acts


def test_one_hour_decodes_in_seconds():
    """CPU time of this process, not wall time: other load on shared cores cannot fail it."""
    acts = hour_of_activations()
    assert acts["frame"].shape == (180_000, KEYS)
    timings = {}
    for name, decode in DECODERS.items():
        start = time.process_time()
        notes = decode(acts, RATE)
        timings[name] = time.process_time() - start
        assert len(notes) > 20_000
    print("decode 1 h (180000 x 88), CPU s:", {k: f"{v:.2f}s" for k, v in timings.items()})
    assert max(timings.values()) < 10.0, timings
