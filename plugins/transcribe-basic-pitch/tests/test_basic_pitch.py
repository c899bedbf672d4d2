"""The basic-pitch adapter gives the peer's own notes, through our CLI, options and card."""

from __future__ import annotations

import json

import numpy as np
import pytest

import transcribe_basic_pitch
from transcribe_basic_pitch.adapter import peer
from transcribe_cli.io.outputs import read_notes
from transcribe_cli.registry import get_registry

TOLERANCE = 1e-3  # seconds


def peer_notes(clip, **options):
    """basic-pitch's own Python API on the file (its librosa loading, windowing, ONNX run, note creation)."""
    bp = peer()
    path = bp.build_icassp_2022_model_path(bp.FilenameSuffix.onnx)
    _, _, events = bp.inference.predict(clip, path, **options)
    return sorted((int(p), float(s), float(e), int(np.round(127 * a))) for s, e, p, a, _ in events)


def ours(notes):
    return sorted((n.pitch, n.onset, n.offset, n.velocity) for n in notes)


def assert_same(ours_list, peer_list):
    assert len(ours_list) == len(peer_list), (ours_list, peer_list)
    for (p1, s1, e1, v1), (p2, s2, e2, v2) in zip(ours_list, peer_list):
        assert p1 == p2 and v1 == v2
        assert abs(s1 - s2) <= TOLERANCE and abs(e1 - e2) <= TOLERANCE


def test_registers_through_its_entry_point(cli):
    registry = get_registry()
    assert registry.model("basic-pitch").windowing == "model"
    assert "basic-pitch" in registry.names("decoder") and "basic-pitch-audio" in registry.names("frontend")
    code, out, err = cli("plugins", "--json")
    assert code == 0, err
    mine = {p["name"]: p for p in json.loads(out)}["basic-pitch"]
    assert mine["version"] == transcribe_basic_pitch.__version__ and mine["error"] is None
    assert mine["registers"]["models"] == ["basic-pitch"]


def test_cli_notes_equal_the_peers_own(piano_clip, tmp_path, cli):
    code, _, err = cli(piano_clip, "-o", tmp_path / "clip.json", "--model", "basic-pitch", "-q")
    assert code == 0, err
    notes = ours(read_notes(tmp_path / "clip.json"))
    expected = peer_notes(piano_clip)
    assert {p for p, *_ in expected} >= {48, 55, 64, 72, 74, 76}  # it hears the clip
    assert_same(notes, expected)


def test_decoder_options_are_the_peers(piano_clip):
    """One model run, decoded with non-default options, equals the peer's predict() with them."""
    from transcribe_cli.pipeline import Transcriber

    options = {"onset_threshold": 0.7, "frame_threshold": 0.4, "minimum_note_length": 200.0,
               "minimum_frequency": 150.0, "maximum_frequency": 1000.0, "melodia_trick": False}
    transcriber = Transcriber("basic-pitch", options=[f"{k}={v}" for k, v in options.items()], device="cpu")
    from transcribe_cli.io.audio import load_audio

    notes = transcriber.transcribe_audio(load_audio(piano_clip, transcriber.sample_rate))
    assert_same(ours(notes), peer_notes(piano_clip, **options))
    assert all(150 <= 440 * 2 ** ((n.pitch - 69) / 12) <= 1000 for n in notes)


def test_out_of_range_option_is_one_line(piano_clip, tmp_path, cli):
    code, _, err = cli(piano_clip, "-o", tmp_path / "x.mid", "--model", "basic-pitch", "-O", "onset_threshold=2")
    assert code != 0 and "onset_threshold must be in [0, 1]" in err and "Traceback" not in err


def test_card_matches_the_registered_model():
    from transcribe_cli.weights.cards import find_card, validate_card

    spec = get_registry().model("basic-pitch")
    card = find_card(spec)
    assert card is not None and card.license
    assert validate_card(card, spec) == []
