"""The Transkun adapter gives the peer's own notes and pedals, through our CLI, options and card.

Transkun is a 14 M-parameter Transformer; with its default 16 s segments even a 2 s file is three
16 s passes (about 30 s each on one busy CPU core), so the test at the defaults is ``slow``. With
``segment_size=4 segment_hop=2`` (shorter segments change its output, so the peer runs with the
same options) a 2 s real clip takes seconds: that test compares our CLI's MIDI — notes and
CC64 — with the peer's own ``TransKun.transcribe``. The pedal modes and the adapter's own logic
are checked on given peer events without running the network.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile

import transcribe_transkun
from transcribe_cli.io.outputs import read_notes
from transcribe_cli.registry import get_registry
from transcribe_transkun.adapter import SUSTAIN, load_peer_model

TOLERANCE = 1e-3  # seconds
FRAME = 1024 / 44100  # the pipeline's pedal frames (the pedal reaches the MIDI through a frame roll)
#: short segments: seconds on a CPU instead of minutes (the peer's defaults are 16 / 8)
FAST = {"segment_size": 4.0, "segment_hop": 2.0}
FAST_OPTIONS = [arg for key, value in FAST.items() for arg in ("-O", f"{key}={value}")]


def run_peer(path, segment_size=None, segment_hop=None):
    """Transkun's own API as its CLI uses it (soxr to 44.1 kHz, ``model.transcribe``), on the file
    mixed to mono as our loader does (its CLI's pydub reader keeps both channels)."""
    import soxr
    import torch

    model = load_peer_model()
    audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    if rate != model.fs:
        mono = soxr.resample(mono, rate, model.fs)
    x = torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float32)[:, None])
    with torch.no_grad():
        return model.transcribe(x, stepInSecond=segment_hop, segmentSizeInSecond=segment_size,
                                discardSecondHalf=False)


@pytest.fixture(scope="module")
def peer_events(piano_clip):
    return run_peer(piano_clip)


def assert_same_notes(ours, events):
    expected = sorted((e.pitch, e.start, e.end, e.velocity) for e in events if e.pitch > 0)
    assert len(ours) == len(expected), (ours, expected)
    for (p1, s1, e1, v1), (p2, s2, e2, v2) in zip(ours, expected):
        assert p1 == p2 and v1 == max(1, v2)
        assert abs(s1 - s2) <= TOLERANCE and abs(e1 - e2) <= TOLERANCE


def sustain_of_midi(path):
    """The CC64 intervals ``[(down, up)]`` of a MIDI file."""
    import pretty_midi

    changes = sorted((c.time, c.value) for i in pretty_midi.PrettyMIDI(str(path)).instruments
                     for c in i.control_changes if c.number == 64)
    intervals, down = [], None
    for time, value in changes:
        if value >= 64 and down is None:
            down = time
        elif value < 64 and down is not None:
            intervals.append((down, time))
            down = None
    return intervals


def test_registers_through_its_entry_point(cli):
    spec = get_registry().model("transkun")
    assert spec.windowing == "model" and spec.options == {"segment_size": 16.0, "segment_hop": 8.0}
    code, out, err = cli("plugins", "--json")
    assert code == 0, err
    mine = {p["name"]: p for p in json.loads(out)}["transkun"]
    assert mine["version"] == transcribe_transkun.__version__ and mine["error"] is None
    assert mine["registers"]["models"] == ["transkun"]


@pytest.mark.slow
def test_cli_notes_equal_the_peers_own(piano_clip, peer_events, tmp_path, cli):
    """At the peer's default segmenting (16 s / 8 s)."""
    code, _, err = cli(piano_clip, "-o", tmp_path / "clip.json", "--model", "transkun", "-q")
    assert code == 0, err
    assert {e.pitch for e in peer_events} >= {60, 64, 67}  # it hears the clip
    assert_same_notes(sorted((n.pitch, n.onset, n.offset, n.velocity) for n in read_notes(tmp_path / "clip.json")),
                      peer_events)


def test_midi_notes_and_sustain_equal_the_peers_own(real_clip, tmp_path, cli):
    """Real piano with the pedal down: our MIDI's notes are the peer's within 1 ms and its CC64
    the peer's sustain intervals within half a pedal frame (the same short segments on both)."""
    from transcribe_cli.io.midi import read_midi

    events = run_peer(real_clip, **FAST)
    sustain = [(e.start, e.end) for e in events if e.pitch == SUSTAIN and e.end > e.start]
    assert {e.pitch for e in events} >= {67, 72} and sustain  # it hears the notes and the pedal
    out = tmp_path / "clip.mid"
    code, _, err = cli(real_clip, "-o", out, "--model", "transkun", *FAST_OPTIONS, "--tempo", "none", "-q")
    assert code == 0, err
    notes = read_midi(out, sustain_pedal=False)
    assert_same_notes(sorted((n.pitch, n.onset, n.offset, n.velocity) for n in notes), events)
    written = sustain_of_midi(out)
    assert len(written) == len(sustain), (written, sustain)
    for (a1, b1), (a2, b2) in zip(written, sorted(sustain)):
        assert abs(a1 - a2) <= FRAME / 2 + TOLERANCE and abs(b1 - b2) <= FRAME / 2 + TOLERANCE


def _events():
    """Transkun-style events (``transkun.Data.Note``): two notes and two sustain-pedal presses."""
    from types import SimpleNamespace as Event

    return [Event(start=0.149, end=0.475, pitch=60, velocity=0), Event(start=0.1, end=1.2, pitch=SUSTAIN, velocity=127),
            Event(start=0.448, end=0.5, pitch=64, velocity=71), Event(start=1.5, end=1.9, pitch=SUSTAIN, velocity=90),
            Event(start=1.0, end=1.3, pitch=-67, velocity=127)]  # the soft pedal: not a note, not sustain


def test_activations_and_decoder_from_the_peers_events(monkeypatch):
    """The notes rows and the ``pedal`` activation ([T, 1] at 44100/1024 frames/s, the pipeline's
    pedal convention) built from the peer's events; the decoder gives the notes back."""
    from transcribe_cli.labels import pedal_roll
    from transcribe_cli.notes import Note, Pedal
    from transcribe_transkun.adapter import TranskunModel, decode

    model = TranskunModel.__new__(TranskunModel)  # no network: the peer's events are given
    monkeypatch.setattr(TranskunModel, "transcribe", lambda self, audio: _events())
    acts = model.activations(np.zeros(2 * 44100, dtype=np.float32))
    frame_rate = 44100 / 1024
    assert acts["pedal"].shape == (2 * 44100 // 1024 + 1, 1)
    assert np.array_equal(acts["pedal"], pedal_roll([Pedal(0.1, 1.2), Pedal(1.5, 1.9)], frame_rate, acts["pedal"].shape[0]))
    assert acts["pedal"][round(0.5 * frame_rate), 0] == 1 and acts["pedal"][round(1.35 * frame_rate), 0] == 0
    assert decode(acts, frame_rate) == [Note(0.149, 0.475, 60, 1), Note(0.448, 0.5, 64, 71)]  # velocity 0 -> 1


@pytest.fixture
def given_events(monkeypatch):
    """The adapter with the network replaced by :func:`_events` (nothing is loaded or run)."""
    import torch

    from transcribe_transkun import adapter

    monkeypatch.setattr(adapter, "load_peer_model", lambda weights_path=None: torch.nn.Module())
    monkeypatch.setattr(adapter.TranskunModel, "transcribe", lambda self, audio: _events())


@pytest.mark.parametrize("mode", ["cc", "extend", "none"])
def test_pedal_modes_reach_the_midi(mode, given_events, tmp_path, cli):
    """``--pedal cc``: the peer's sustain as CC64 and key-release notes; ``extend``: notes
    lengthened over it, no CC64; ``none``: neither (our model's rules, transcribe_cli.io.midi)."""
    from transcribe_cli.io.midi import extend_over_pedal, read_midi
    from transcribe_cli.notes import Note, Pedal

    wav = tmp_path / "quiet.wav"
    soundfile.write(wav, np.zeros(2 * 44100, dtype=np.float32), 44100)
    out = tmp_path / f"{mode}.mid"
    code, _, err = cli(wav, "-o", out, "--model", "transkun", "--pedal", mode, "--tempo", "none", "-q")
    assert code == 0, err
    notes = [(n.pitch, n.onset, n.offset) for n in read_midi(out, sustain_pedal=False)]
    released = [Note(0.149, 0.475, 60, 1), Note(0.448, 0.5, 64, 71)]
    sustain = sustain_of_midi(out)
    if mode == "cc":
        assert [(round(a / FRAME), round(b / FRAME)) for a, b in sustain] == [(round(0.1 / FRAME), round(1.2 / FRAME)),
                                                                            (round(1.5 / FRAME), round(1.9 / FRAME))]
    else:
        assert sustain == []
    if mode == "extend":
        released = extend_over_pedal(released, [Pedal(a, b) for a, b in ((0.1, 1.2), (1.5, 1.9))])
        assert max(n.offset for n in released) > 1.1  # the pedal lengthened them
    expected = [(n.pitch, n.onset, n.offset) for n in released]
    assert len(notes) == len(expected)
    for (p1, s1, e1), (p2, s2, e2) in zip(sorted(notes), sorted(expected)):
        # extended ends move with the pedal, which reaches the pipeline as frames
        assert p1 == p2 and abs(s1 - s2) <= TOLERANCE and abs(e1 - e2) <= (FRAME if mode == "extend" else TOLERANCE)


def test_decoder_rejects_other_activations():
    from transcribe_cli.errors import TranscribeError
    from transcribe_transkun.adapter import decode

    with pytest.raises(TranscribeError, match="note rows"):
        decode({"notes": np.zeros((2, 88), dtype=np.float32)}, 43.0)


def test_bad_segment_options_are_one_line(piano_clip, tmp_path, cli):
    code, _, err = cli(piano_clip, "-o", tmp_path / "x.mid", "--model", "transkun", "-O", "segment_hop=0")
    assert code != 0 and "segment_hop" in err and "Traceback" not in err


def test_card_matches_the_registered_model():
    from transcribe_cli.weights.cards import find_card, validate_card

    spec = get_registry().model("transkun")
    card = find_card(spec)
    assert card is not None and card.license
    assert validate_card(card, spec) == []
