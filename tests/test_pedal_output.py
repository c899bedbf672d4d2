"""The bundled `piano` model's sustain pedal reaches the MIDI file: a rendered, pedalled
piece gives CC64 events where the pedal was pressed (``--pedal cc``, the default), notes
extended over the pedal and no CC64 with ``--pedal extend``, neither with ``--pedal none``."""

from __future__ import annotations

import mido
import numpy as np
import pytest

from conftest import needs_fluidsynth
from transcribe_cli.io.midi import read_midi, read_pedals
from transcribe_cli.notes import Note, Pedal

pytestmark = [pytest.mark.render, needs_fluidsynth]


def pedalled_piece(path) -> list[Pedal]:
    """Broken chords held by the pedal for 1.6 s, released, then dry staccato notes."""
    from transcribe_cli.io.midi import write_midi

    notes, pedals = [], []
    for bar, root in enumerate([48, 53, 55, 48]):
        start = bar * 2.0
        for i, step in enumerate((0, 7, 12, 16)):
            notes.append(Note(start + 0.2 * i, start + 0.2 * i + 0.15, root + step, 80))
        pedals.append(Pedal(start + 0.05, start + 1.65))
    for i in range(6):
        notes.append(Note(8.2 + 0.3 * i, 8.35 + 0.3 * i, 60 + 2 * i, 70))
    write_midi(notes, path, pedals=pedals)
    return pedals


def cc64(path) -> list[tuple[float, int]]:
    midi = mido.MidiFile(path)
    events, now = [], 0.0
    for message in midi:
        now += message.time
        if message.type == "control_change" and message.control == 64:
            events.append((now, message.value))
    return events


def overlap(a: list[Pedal], b: list[Pedal]) -> float:
    """Seconds both sets hold the pedal down."""
    return sum(max(0.0, min(x.offset, y.offset) - max(x.onset, y.onset)) for x in a for y in b)


def test_pedal_events_reach_the_midi(cli, tmp_path):
    from transcribe_cli.rendering import render

    reference = tmp_path / "piece.mid"
    truth = pedalled_piece(reference)
    assert [(round(p.onset, 3), round(p.offset, 3)) for p in read_pedals(reference)] == \
        [(round(p.onset, 3), round(p.offset, 3)) for p in truth]
    audio = render(reference, tmp_path / "piece.wav", soundfont="FluidR3_GM.sf2")
    out = tmp_path / "cc.mid"
    assert cli(audio, "-o", out, "--tempo", "none").exit_code == 0  # the default model and --pedal cc
    predicted = read_pedals(out)
    assert cc64(out), "no CC64 events written"
    held = sum(p.offset - p.onset for p in truth)
    assert overlap(predicted, truth) >= 0.5 * held  # mostly where the pedal really was down
    assert sum(p.offset - p.onset for p in predicted) <= 1.5 * held

    extended = tmp_path / "extend.mid"
    assert cli(audio, "-o", extended, "--tempo", "none", "--pedal", "extend").exit_code == 0
    assert not cc64(extended)
    key_release, sustained = read_midi(out, sustain_pedal=False), read_midi(extended, sustain_pedal=False)
    assert len(key_release) == len(sustained)
    assert np.mean([n.duration for n in sustained]) > np.mean([n.duration for n in key_release])

    dry = tmp_path / "none.mid"
    assert cli(audio, "-o", dry, "--tempo", "none", "--pedal", "none").exit_code == 0
    assert not cc64(dry)
