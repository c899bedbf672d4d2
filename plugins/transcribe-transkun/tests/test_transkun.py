"""The Transkun adapter gives the peer's own notes and pedals, through our CLI, options and card.

Transkun is a 14 M-parameter Transformer that always runs 16 s segments (shorter ones change
its output): one run on a 4 s clip takes minutes on a busy 2-core CPU, so the two tests that
run it (peer vs our CLI) are ``slow``; the others check the adapter's own logic on the peer's
events without running the network.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile

import transcribe_transkun
from transcribe_cli.outputs import read_notes
from transcribe_cli.registry import get_registry
from transcribe_transkun.adapter import SUSTAIN, load_peer_model

TOLERANCE = 1e-3  # seconds


@pytest.fixture(scope="module")
def peer_events(piano_clip):
    """Transkun's own API as its CLI uses it, on the clip mixed to mono as our loader does
    (its CLI's pydub reader keeps both channels and divides 16-bit samples by 2**15)."""
    import torch

    model = load_peer_model()
    audio, rate = soundfile.read(piano_clip, dtype="float32", always_2d=True)
    assert rate == model.fs == 44100
    x = torch.from_numpy(audio.mean(axis=1, keepdims=True))
    with torch.no_grad():
        return model.transcribe(x, discardSecondHalf=False)


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
    code, _, err = cli(piano_clip, "-o", tmp_path / "clip.json", "--model", "transkun", "-q")
    assert code == 0, err
    ours = sorted((n.pitch, n.onset, n.offset, n.velocity) for n in read_notes(tmp_path / "clip.json"))
    expected = sorted((e.pitch, e.start, e.end, e.velocity) for e in peer_events if e.pitch > 0)
    assert {p for p, *_ in expected} >= {60, 64, 67}  # it hears the clip
    assert len(ours) == len(expected)
    for (p1, s1, e1, v1), (p2, s2, e2, v2) in zip(ours, expected):
        assert p1 == p2 and v1 == max(1, v2)
        assert abs(s1 - s2) <= TOLERANCE and abs(e1 - e2) <= TOLERANCE


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


@pytest.mark.slow
def test_pipeline_pedal_follows_the_peers_sustain(piano_clip, peer_events):
    from transcribe_cli.audio import load_audio
    from transcribe_cli.pipeline import Transcriber
    from transcribe_cli.labels import pedal_roll
    from transcribe_cli.notes import Pedal

    transcriber = Transcriber("transkun", device="cpu")
    pedal = transcriber.activations(load_audio(piano_clip, transcriber.sample_rate))["pedal"]
    # the peer's sustain intervals, whatever it heard in this render, on the pipeline's pedal frames
    sustain = [Pedal(e.start, e.end) for e in peer_events if e.pitch == SUSTAIN and e.end > e.start]
    assert np.array_equal(pedal, pedal_roll(sustain, transcriber.frontend_spec.frame_rate, pedal.shape[0]))


def test_decoder_rejects_other_activations():
    from transcribe_cli.errors import TranscribeError
    from transcribe_transkun.adapter import decode

    with pytest.raises(TranscribeError, match="note rows"):
        decode({"notes": np.zeros((2, 88), dtype=np.float32)}, 43.0)


def test_bad_segment_options_are_one_line(piano_clip, tmp_path, cli):
    code, _, err = cli(piano_clip, "-o", tmp_path / "x.mid", "--model", "transkun", "-O", "segment_hop=0")
    assert code != 0 and "segment_hop" in err and "Traceback" not in err


def test_card_matches_the_registered_model():
    from transcribe_cli.model_cards import find_card, validate_card

    spec = get_registry().model("transkun")
    card = find_card(spec)
    assert card is not None and card.license
    assert validate_card(card, spec) == []
