"""The one encode/decode pair: notes → training targets → decoder → the same notes.

Targets are built exactly as training builds them (:mod:`transcribe_cli.labels`) and decoded
by the decoder the neural models use (``onset-peaks``), so any disagreement between what the
models are taught and how their outputs are read fails here: onsets and offsets within one
frame, velocity exactly.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from transcribe_cli.decoders.onset_peaks import decode
from transcribe_cli.decoders.pedal import decode_pedal
from transcribe_cli.labels import (
    notes_to_offsets,
    notes_to_onsets,
    notes_to_roll,
    notes_to_velocity,
    pedal_roll,
    target_to_velocity,
    velocity_to_target,
)
from transcribe_cli.notes import PIANO_LOWEST, Note, Pedal

FRAME_RATE = 50.0
N_FRAMES = 400
#: the decoder's peak window: peaks of one key closer than this are one peak
MIN_GAP_FRAMES = 3


@st.composite
def note_sets(draw) -> list[Note]:
    """Notes on up to 6 keys; on each key, notes at least 3 frames long that do not overlap
    and start at least 3 frames after the previous one ended (or exactly at its end)."""
    notes = []
    for key in draw(st.lists(st.integers(0, 87), min_size=1, max_size=6, unique=True)):
        frame = draw(st.integers(0, 20))
        for _ in range(draw(st.integers(1, 5))):
            length = draw(st.integers(MIN_GAP_FRAMES, 60))
            if frame + length >= N_FRAMES:
                break
            # a sub-frame jitter that rounds to the same frames
            jitter = draw(st.floats(-0.4, 0.4))
            onset = (frame + jitter) / FRAME_RATE
            offset = (frame + length + draw(st.floats(-0.4, 0.4))) / FRAME_RATE
            notes.append(Note(max(onset, 0.0), offset, PIANO_LOWEST + key, draw(st.integers(1, 127))))
            legato = draw(st.booleans())
            frame += length + (0 if legato else draw(st.integers(MIN_GAP_FRAMES, 30)))
    return notes


def targets(notes: list[Note]) -> dict[str, np.ndarray]:
    return {
        "onset": notes_to_onsets(notes, FRAME_RATE, N_FRAMES).astype(np.float32),
        "frame": notes_to_roll(notes, FRAME_RATE, N_FRAMES).astype(np.float32),
        "offset": notes_to_offsets(notes, FRAME_RATE, N_FRAMES).astype(np.float32),
        "velocity": notes_to_velocity(notes, FRAME_RATE, N_FRAMES),
    }


@settings(max_examples=60, deadline=None)
@given(note_sets())
def test_notes_to_targets_to_notes(notes):
    decoded = decode(targets(notes), FRAME_RATE, onset_threshold=0.5, frame_threshold=0.5,
                     offset_threshold=0.5, refine_onsets=True)
    def per_key(ns):  # the order of notes on one key is their time order; keys are independent
        return sorted(ns, key=lambda n: (n.pitch, round(n.onset * FRAME_RATE)))

    expected = per_key(notes)
    assert len(decoded) == len(expected)
    for got, want in zip(per_key(decoded), expected):
        assert got.pitch == want.pitch
        assert abs(got.onset - want.onset) <= 1 / FRAME_RATE
        assert abs(got.offset - want.offset) <= 1 / FRAME_RATE
        assert got.velocity == want.velocity


def test_velocity_codec_is_exact_for_every_midi_velocity():
    velocities = np.arange(1, 128)
    assert np.array_equal(target_to_velocity(velocity_to_target(velocities)), velocities)


def test_a_note_from_0_2_to_1_0_s_decodes_to_1_0_s():
    """The case the model issue found: the offset target was on the last sounding frame
    while the decoder read the offset peak as the exclusive end (1.0 s came back 0.98 s)."""
    [note] = decode(targets([Note(0.2, 1.0, 60, 80)]), FRAME_RATE)
    assert (note.onset, note.offset, note.velocity) == (0.2, 1.0, 80)


@st.composite
def pedal_sets(draw) -> list[Pedal]:
    pedals, frame = [], draw(st.integers(0, 10))
    for _ in range(draw(st.integers(0, 6))):
        length = draw(st.integers(4, 80))
        if frame + length >= N_FRAMES:
            break
        pedals.append(Pedal(frame / FRAME_RATE, (frame + length) / FRAME_RATE))
        frame += length + draw(st.integers(2, 40))
    return pedals


@settings(max_examples=60, deadline=None)
@given(pedal_sets())
def test_pedals_to_roll_to_pedals(pedals):
    decoded = decode_pedal(pedal_roll(pedals, FRAME_RATE, N_FRAMES), FRAME_RATE)
    assert len(decoded) == len(pedals)
    for got, want in zip(decoded, pedals):
        assert abs(got.onset - want.onset) <= 1 / FRAME_RATE
        assert abs(got.offset - want.offset) <= 1 / FRAME_RATE
