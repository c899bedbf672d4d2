"""The Transkun adapter gives the peer's own notes and pedals, through our CLI, options and card.

Short segments (``segment_size=2 segment_hop=1``, passed to both sides) keep the CPU runs to
seconds; the peer's defaults (16 s / 8 s) only change how much audio each Transformer pass sees.
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
FAST = {"segment_size": 2.0, "segment_hop": 1.0}


@pytest.fixture(scope="module")
def peer_events(piano_clip):
    """Transkun's own API as its CLI uses it (the file read as 16-bit samples / 2**15, like its pydub reader)."""
    import torch

    model = load_peer_model()
    audio, rate = soundfile.read(piano_clip, dtype="int16", always_2d=True)
    assert rate == model.fs == 44100
    x = torch.from_numpy(np.float32(audio) / 2**15)
    with torch.no_grad():
        return model.transcribe(x, stepInSecond=FAST["segment_hop"], segmentSizeInSecond=FAST["segment_size"],
                                discardSecondHalf=False)


def test_registers_through_its_entry_point(cli):
    spec = get_registry().model("transkun")
    assert spec.windowing == "model" and spec.options == {"segment_size": 16.0, "segment_hop": 8.0}
    code, out, err = cli("plugins", "--json")
    assert code == 0, err
    mine = {p["name"]: p for p in json.loads(out)}["transkun"]
    assert mine["version"] == transcribe_transkun.__version__ and mine["error"] is None
    assert mine["registers"]["models"] == ["transkun"]


def test_cli_notes_equal_the_peers_own(piano_clip, peer_events, tmp_path, cli):
    code, _, err = cli(piano_clip, "-o", tmp_path / "clip.json", "--model", "transkun", "-q",
                       *(f"-O{k}={v}" for k, v in FAST.items()))
    assert code == 0, err
    ours = sorted((n.pitch, n.onset, n.offset, n.velocity) for n in read_notes(tmp_path / "clip.json"))
    expected = sorted((e.pitch, e.start, e.end, e.velocity) for e in peer_events if e.pitch > 0)
    assert {p for p, *_ in expected} >= {60, 64, 67}  # it hears the clip
    assert len(ours) == len(expected)
    for (p1, s1, e1, v1), (p2, s2, e2, v2) in zip(ours, expected):
        assert p1 == p2 and v1 == max(1, v2)
        assert abs(s1 - s2) <= TOLERANCE and abs(e1 - e2) <= TOLERANCE


def test_pedal_activation_marks_the_peers_sustain(piano_clip, peer_events):
    """The ``pedal`` activation ([T, 1] at 44100/1024 frames/s) is 1 exactly on the frames of
    the peer's sustain intervals, so the pipeline's pedal decoding (threshold 0.5) recovers them."""
    from transcribe_cli.audio import load_audio
    from transcribe_cli.inference import Transcriber

    transcriber = Transcriber("transkun", options=[f"{k}={v}" for k, v in FAST.items()], device="cpu")
    audio = load_audio(piano_clip, transcriber.sample_rate)
    pedal = transcriber.activations(audio)["pedal"]
    frame_rate = transcriber.frontend_spec.frame_rate
    assert pedal.shape == (audio.shape[0] // 1024 + 1, 1)
    sustain = [(e.start, e.end) for e in peer_events if e.pitch == SUSTAIN]
    assert sustain, "the rendered clip holds the sustain pedal from 0.1 s to 1.2 s"
    expected = np.zeros(pedal.shape[0], dtype=bool)
    for start, end in sustain:
        expected[int(np.rint(start * frame_rate)):max(int(np.rint(end * frame_rate)), int(np.rint(start * frame_rate)) + 1)] = True
    assert np.array_equal(pedal[:, 0] > 0.5, expected)
    on = np.flatnonzero(pedal[:, 0] > 0.5)
    assert abs(on[0] / frame_rate - 0.1) < 0.1 and abs(on[-1] / frame_rate - 1.2) < 0.15


def test_bad_segment_options_are_one_line(piano_clip, tmp_path, cli):
    code, _, err = cli(piano_clip, "-o", tmp_path / "x.mid", "--model", "transkun", "-O", "segment_hop=0")
    assert code != 0 and "segment_hop" in err and "Traceback" not in err


def test_card_matches_the_registered_model():
    from transcribe_cli.model_cards import find_card, validate_card

    spec = get_registry().model("transkun")
    card = find_card(spec)
    assert card is not None and card.license
    assert validate_card(card, spec) == []
