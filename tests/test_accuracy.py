"""Acceptance figures of the bundled models through the real ``transcribe`` command.

These run the same pipeline a user runs (CLI → audio decoding → frontend → model → decoder →
output file) and score what was written with mir_eval against the reference labels, or compare
it with the notes stored in ``tests/golden`` when the pipeline last changed on purpose. The
tests on the bundled example need only files in the repository; those on the real recording
need ``../shared/data/real``.
"""

from __future__ import annotations

import pytest

from conftest import REAL, ROOT
from transcribe_cli.evaluation.metrics import note_metrics
from transcribe_cli.io.midi import read_midi

needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/real is not present")
GOLDEN = ROOT / "tests" / "golden"
EXAMPLE = ROOT / "examples" / "pop909_003.flac"


def transcribe_to_notes(cli, audio, out, model="nmf"):
    """The nmf golden figures (the default model has its own golden test below)."""
    result = cli(audio, "-o", out, "--model", model)
    assert result.exit_code == 0, result.stderr
    return read_midi(out, sustain_pedal=False)


@needs_real
def test_real_recording_onset_f1(cli, tmp_path):
    est = transcribe_to_notes(cli, REAL / "stereo_sample.wav", tmp_path / "x.mid")
    ref = read_midi(REAL / "stereo_sample.mid")
    scores = note_metrics(ref, est)
    assert scores["onset_f1"] >= 0.6, scores


@needs_real
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
    from transcribe_cli.evaluation.metrics import frame_metrics

    est = transcribe_to_notes(cli, ROOT / "examples" / "pop909_003.flac", tmp_path / "ex.mid")
    ref = read_midi(ROOT / "examples" / "pop909_003.mid")
    assert note_metrics(ref, est)["onset_f1"] >= 0.86
    assert frame_metrics(ref, est)["frame_f1"] >= 0.74


# -- the bundled hppnet weights (model_cards/hppnet.md) ------------------------------------

def test_bundled_hppnet_golden_scores(cli, tmp_path):
    """The tiny HPPNet trained on renders: example 0.905 onset / 0.892 frame F1 when the
    weights were made (tolerances for machine noise)."""
    from transcribe_cli.evaluation.metrics import frame_metrics

    out = tmp_path / "ex.mid"
    assert cli(ROOT / "examples" / "pop909_003.flac", "--model", "hppnet", "-o", out).exit_code == 0
    est, ref = read_midi(out, sustain_pedal=False), read_midi(ROOT / "examples" / "pop909_003.mid")
    assert note_metrics(ref, est)["onset_f1"] >= 0.87
    assert frame_metrics(ref, est)["frame_f1"] >= 0.85


@needs_real
def test_bundled_hppnet_real_recording(cli, tmp_path):
    """Real stereo_sample: 0.842 onset F1 when the weights were made."""
    out = tmp_path / "real.mid"
    assert cli(REAL / "stereo_sample.wav", "--model", "hppnet", "-o", out).exit_code == 0
    # 0.842 at the checkpoint's first evaluation, decoded at the decoder's default 0.5; the
    # bundled model now decodes at its own tuned 0.3 (model issue), which finds more extra notes
    # on this real take: 0.593 measured (tests/test_accuracy.py, 2026-12-01)
    assert note_metrics(read_midi(REAL / "stereo_sample.mid"), read_midi(out, sustain_pedal=False))["onset_f1"] >= 0.55


# -- stored notes ---------------------------------------------------------------------------

#: how far a note may move from its stored value before the golden test fails: onsets by
#: less than one cqt frame (20 ms), offsets by three, velocities by 8; and how many stored
#: notes may be missing or new (numeric noise across machines and BLAS builds)
ONSET_TOLERANCE, OFFSET_TOLERANCE, VELOCITY_TOLERANCE, UNMATCHED_NOTES = 0.015, 0.06, 8, 2


def _unmatched(stored, est):
    """Notes of ``stored`` without a partner in ``est`` (same pitch, within the tolerances),
    and the partners left over in ``est``; greedy by onset."""
    left = list(est)
    missing = []
    for note in stored:
        partner = next((e for e in left if e.pitch == note.pitch and abs(e.onset - note.onset) <= ONSET_TOLERANCE
                        and abs(e.offset - note.offset) <= OFFSET_TOLERANCE
                        and abs(e.velocity - note.velocity) <= VELOCITY_TOLERANCE), None)
        if partner is None:
            missing.append(note)
        else:
            left.remove(partner)
    return missing, left


@pytest.mark.parametrize("model", ["nmf", "piano"])
def test_bundled_example_gives_the_stored_notes(cli, tmp_path, model):
    """``transcribe examples/pop909_003.flac -m MODEL -o x.csv`` gives the notes stored in
    ``tests/golden/pop909_003.MODEL.csv`` (written by that command when a change to the
    pipeline's output was intended), within the tolerances above."""
    from transcribe_cli.io.outputs import read_notes

    out = tmp_path / f"{model}.csv"
    result = cli(EXAMPLE, "-m", model, "-o", out)
    assert result.exit_code == 0, result.stderr
    stored, est = read_notes(GOLDEN / f"pop909_003.{model}.csv"), read_notes(out)
    assert len(stored) > 100
    missing, extra = _unmatched(stored, est)
    assert len(missing) <= UNMATCHED_NOTES and len(extra) <= UNMATCHED_NOTES, (missing[:5], extra[:5])


def test_the_golden_comparison_can_fail():
    """The tolerance check rejects a shifted, a transposed and a dropped note."""
    from transcribe_cli.notes import Note

    stored = [Note(1.0, 1.5, 60, 80), Note(2.0, 2.5, 64, 80), Note(3.0, 3.5, 67, 80)]
    assert _unmatched(stored, stored) == ([], [])
    moved = [Note(1.05, 1.5, 60, 80), Note(2.0, 2.5, 65, 80)]
    missing, extra = _unmatched(stored, moved)
    assert missing == stored and extra == moved
