"""Acceptance figures of the bundled ``nmf`` model through the real ``transcribe`` command.

These run the same pipeline a user runs (CLI → audio decoding → cqt → nmf → decoder → MIDI
file) and score the written MIDI with mir_eval against the reference labels.
"""

from __future__ import annotations

import pytest

from conftest import REAL
from transcribe_cli.evaluation import note_metrics
from transcribe_cli.midi import read_midi

pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/real is not present")


def transcribe_to_notes(cli, audio, out, model="nmf"):
    """The nmf golden figures (the default model has its own golden test below)."""
    result = cli(audio, "-o", out, "--model", model)
    assert result.exit_code == 0, result.stderr
    return read_midi(out, sustain_pedal=False)


def test_real_recording_onset_f1(cli, tmp_path):
    est = transcribe_to_notes(cli, REAL / "stereo_sample.wav", tmp_path / "x.mid")
    ref = read_midi(REAL / "stereo_sample.mid")
    scores = note_metrics(ref, est)
    assert scores["onset_f1"] >= 0.6, scores


@pytest.mark.parametrize("container", ["flac", "m4a"])
def test_containers_of_the_same_take_give_the_same_notes(cli, tmp_path, container):
    wav = transcribe_to_notes(cli, REAL / "stereo_sample.wav", tmp_path / "wav.mid")
    other = transcribe_to_notes(cli, REAL / f"stereo_sample.{container}", tmp_path / f"{container}.mid")
    assert [n.pitch for n in other] == [n.pitch for n in wav]
    # flac is lossless (identical); m4a is lossy AAC: onsets may move by < one 20 ms frame
    tolerance = 1e-3 if container == "flac" else 0.02
    for a, b in zip(wav, other):
        assert abs(a.onset - b.onset) <= tolerance, (a, b)


def test_held_out_rendered_piece_golden_scores(cli, tmp_path):
    """The bundled example (POP909 song 003, test split: never used to learn or tune nmf).

    Measured 0.892 onset F1 / 0.768 frame F1 when the templates were made; the bounds keep a
    small tolerance for numeric differences across machines, far above the issue's 0.5 / 0.6.
    """
    from conftest import ROOT
    from transcribe_cli.evaluation import frame_metrics

    est = transcribe_to_notes(cli, ROOT / "examples" / "pop909_003.flac", tmp_path / "ex.mid")
    ref = read_midi(ROOT / "examples" / "pop909_003.mid")
    assert note_metrics(ref, est)["onset_f1"] >= 0.86
    assert frame_metrics(ref, est)["frame_f1"] >= 0.74


# -- the bundled hppnet weights (model_cards/hppnet.md) ------------------------------------

def test_bundled_hppnet_golden_scores(cli, tmp_path):
    """The tiny HPPNet trained on renders: example 0.905 onset / 0.892 frame F1 and real
    stereo_sample 0.842 onset F1 when the weights were made (tolerances for machine noise)."""
    from conftest import ROOT
    from transcribe_cli.evaluation import frame_metrics

    out = tmp_path / "ex.mid"
    assert cli(ROOT / "examples" / "pop909_003.flac", "--model", "hppnet", "-o", out).exit_code == 0
    est, ref = read_midi(out, sustain_pedal=False), read_midi(ROOT / "examples" / "pop909_003.mid")
    assert note_metrics(ref, est)["onset_f1"] >= 0.87
    assert frame_metrics(ref, est)["frame_f1"] >= 0.85
    out = tmp_path / "real.mid"
    assert cli(REAL / "stereo_sample.wav", "--model", "hppnet", "-o", out).exit_code == 0
    # 0.842 at the checkpoint's first evaluation, decoded at the decoder's default 0.5; the
    # bundled model now decodes at its own tuned 0.3 (model issue), which finds more extra notes
    # on this real take: 0.593 measured (tests/test_accuracy.py, 2026-12-01)
    assert note_metrics(read_midi(REAL / "stereo_sample.mid"), read_midi(out, sustain_pedal=False))["onset_f1"] >= 0.55
