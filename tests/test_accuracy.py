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


def transcribe_to_notes(cli, audio, out):
    result = cli(audio, "-o", out)
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
