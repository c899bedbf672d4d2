"""``transcribe eval``: scoring (hand-worked cases), sweeps, aggregation, reports, plots, and
end-to-end runs on tiny datasets built here (numpy-synthesised audio always; FluidSynth
renders of a MAESTRO layout when FluidSynth is installed)."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REAL, have_fluidsynth, needs_fluidsynth
from fixtures.eval_data import (
    PIECES,
    PLUGINS,
    build_maestro,
    build_pairs,
    synth_audio,
    write_numpy_pair,
    write_pedal_midi,
    write_rendered_pair,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from transcribe_cli.errors import OptionError
from transcribe_cli.evaluation.aggregate import best_point, summarize
from transcribe_cli.evaluation.run import (
    Entry,
    EvalJob,
    FileResult,
    PointScore,
    output_stems,
    relative_output,
    safe_folder_names,
)
from transcribe_cli.evaluation.scoring import (
    METRIC_KEYS,
    match_onsets,
    metric_key,
    pitch_counts,
    pitch_precision_recall,
    score,
)
from transcribe_cli.notes import Note
from transcribe_cli.evaluation.sweep import SweepSpec, describe_point, grid

F1_KEYS = [k for k in METRIC_KEYS if k.endswith("_f1")]


def write_notes(notes, path: Path) -> None:
    from transcribe_cli.io.outputs import write_notes as write

    path.parent.mkdir(parents=True, exist_ok=True)
    write(notes, path)



# -- hand-worked scores ---------------------------------------------------------------------

REF = [
    Note(0.50, 1.50, 60, 60),
    Note(1.00, 2.00, 64, 80),
    Note(2.00, 2.50, 67, 100),
    Note(3.00, 4.00, 72, 120),
]
# E1 exact; E2 onset and offset +30 ms (both within tolerance); E3 onset +70 ms (a miss and a
# false positive); E4 offset cut by 0.5 s (> 20 % of 1 s); E5 an extra note.
EST = [
    Note(0.50, 1.50, 60, 60),
    Note(1.03, 2.03, 64, 80),
    Note(2.07, 2.57, 67, 100),
    Note(3.00, 3.50, 72, 120),
    Note(5.00, 5.50, 80, 50),
]


def test_reference_against_itself_scores_one():
    scores = score(REF, REF)
    assert set(scores) == set(METRIC_KEYS)
    assert all(value == pytest.approx(1.0) for value in scores.values()), scores


def test_perturbed_copy_matches_hand_computed_values():
    s = score(REF, EST)
    # onset: E1, E2, E4 match -> P 3/5, R 3/4
    assert s["onset_precision"] == pytest.approx(3 / 5)
    assert s["onset_recall"] == pytest.approx(3 / 4)
    assert s["onset_f1"] == pytest.approx(2 / 3)
    # onset + offset: E1, E2 -> P 2/5, R 2/4
    assert s["onset_offset_precision"] == pytest.approx(2 / 5)
    assert s["onset_offset_recall"] == pytest.approx(2 / 4)
    assert s["onset_offset_f1"] == pytest.approx(4 / 9)
    # estimated velocities equal the reference ones: the least-squares rescaling is exact,
    # so velocity never removes a match
    assert s["onset_velocity_f1"] == pytest.approx(2 / 3)
    assert s["onset_offset_velocity_f1"] == pytest.approx(4 / 9)


def test_velocity_metric_hand_computed():
    ref = [Note(float(i), i + 0.5, 60 + i, v) for i, v in enumerate((40, 60, 80, 100))]
    est = [Note(n.onset, n.offset, n.pitch, v) for n, v in zip(ref, (40, 60, 80, 40))]
    # normalised reference velocities 0, 1/3, 2/3, 1; least squares of est -> ref gives
    # slope 1/330, intercept 1/3: predictions 0.4545, 0.5152, 0.5758, 0.4545, so only the
    # third note is within 0.1
    s = score(ref, est)
    assert s["onset_offset_f1"] == pytest.approx(1.0)
    assert s["onset_offset_velocity_precision"] == pytest.approx(1 / 4)
    assert s["onset_offset_velocity_recall"] == pytest.approx(1 / 4)
    assert s["onset_velocity_f1"] == pytest.approx(1 / 4)


def test_frame_metrics_hand_computed():
    # 10 ms frames: reference frames 0..99, estimate 50..149, overlap 50
    s = score([Note(0.0, 1.0, 60)], [Note(0.5, 1.5, 60)])
    assert s["frame_precision"] == pytest.approx(0.5)
    assert s["frame_recall"] == pytest.approx(0.5)
    assert s["frame_f1"] == pytest.approx(0.5)
    assert s["onset_f1"] == 0.0


@pytest.mark.parametrize(
    "shift, onset_f1, offset_f1, frame_p",
    [
        (0.03, 1.0, 1.0, 32 / 35),  # 35-frame notes, shifted by 3 frames
        (0.06, 0.0, 0.0, 29 / 35),  # onsets 60 ms late: no note matches
        (-0.049, 1.0, 1.0, 30 / 35),  # just inside the 50 ms window (5 frames off)
    ],
)
def test_shifted_copy(shift, onset_f1, offset_f1, frame_p):
    ref = PIECES["scale"]
    est = [Note(n.onset + shift, n.offset + shift, n.pitch, n.velocity) for n in ref]
    s = score(ref, est)
    assert s["onset_f1"] == pytest.approx(onset_f1)
    assert s["onset_offset_f1"] == pytest.approx(offset_f1)
    assert s["frame_precision"] == pytest.approx(frame_p)
    assert s["frame_recall"] == pytest.approx(frame_p)


_notes = st.lists(
    st.builds(
        lambda onset, length, pitch, velocity: Note(onset, onset + length, pitch, velocity),
        st.floats(0, 3, allow_nan=False), st.floats(0.005, 1.0, allow_nan=False),
        st.integers(21, 108), st.integers(1, 127),
    ),
    min_size=1, max_size=12,
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(ref=_notes, est=_notes)
def test_frame_metrics_equal_mir_eval_multipitch_metrics(ref, est):
    """Our frame counting equals mir_eval.multipitch.metrics wherever the latter accepts the
    pitches (piano range here), fed with the same 10 ms rolls converted to Hz."""
    import warnings

    from mir_eval import multipitch

    from transcribe_cli.evaluation.metrics import frame_metrics
    from transcribe_cli.labels import notes_to_roll

    end = max(n.offset for n in (*ref, *est))
    n_frames = int(np.ceil(end * 100.0)) + 1
    times = np.arange(n_frames) / 100.0
    hz = 440.0 * 2.0 ** ((np.arange(128) - 69.0) / 12.0)
    ref_f, est_f = ([hz[np.flatnonzero(row)] for row in notes_to_roll(notes, 100.0, n_frames, lowest=0, n_keys=128)]
                    for notes in (ref, est))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p, r, acc = multipitch.metrics(times, ref_f, times, est_f)[:3]
    ours = frame_metrics(ref, est, frame_rate=100.0)
    assert ours["frame_precision"] == pytest.approx(p, abs=1e-12)
    assert ours["frame_recall"] == pytest.approx(r, abs=1e-12)
    assert ours["frame_accuracy"] == pytest.approx(acc, abs=1e-12)


def test_frame_metrics_accept_every_midi_pitch():
    # mir_eval.multipitch.validate rejects > 5 kHz (pitch 112+) and < 20 Hz (pitch 15-)
    ref = [Note(0.0, 1.0, 120), Note(0.0, 1.0, 10), Note(0.0, 1.0, 60)]
    est = [Note(0.0, 0.5, 120), Note(0.0, 1.0, 60)]
    s = score(ref, est)
    # frames 0..99: ref 300 pitch-frames, est 150, all of est correct
    assert s["frame_precision"] == pytest.approx(1.0)
    assert s["frame_recall"] == pytest.approx(150 / 300)
    assert s["onset_recall"] == pytest.approx(2 / 3)


def test_empty_cases():
    assert all(v == 1.0 for v in score([], []).values())
    assert all(v == 0.0 for v in score(REF, []).values())
    assert all(v == 0.0 for v in score([], EST).values())


def test_matching_and_pitch_counts():
    matches = match_onsets(REF, EST)
    assert sorted(matches) == [(0, 0), (1, 1), (3, 3)]
    counts = pitch_counts(REF, EST, matches)
    assert counts.shape == (128, 3)
    expected = {60: (1, 0, 0), 64: (1, 0, 0), 67: (0, 1, 1), 72: (1, 0, 0), 80: (0, 1, 0)}
    for pitch in range(128):
        assert tuple(counts[pitch]) == expected.get(pitch, (0, 0, 0)), pitch
    precision, recall = pitch_precision_recall(counts)
    assert precision[60] == 1.0 and recall[67] == 0.0 and precision[67] == 0.0
    assert math.isnan(recall[80]) and math.isnan(precision[10])


def test_metric_names_and_aliases():
    assert metric_key("note_f1") == "onset_f1"
    assert metric_key("frame_f1") == "frame_f1"
    with pytest.raises(OptionError, match="unknown metric"):
        metric_key("f1")


# -- sweep parsing --------------------------------------------------------------------------

def test_sweep_range_list_and_types():
    assert SweepSpec.parse("onset_threshold=0.2:0.8:0.05").values(0.5) == tuple(
        round(0.2 + 0.05 * i, 10) for i in range(13)
    )
    assert SweepSpec.parse("decoder.peak_window=1:5:2").values(2) == (1, 3, 5)
    assert SweepSpec.parse("refine_onsets=true,false").values(True) == (True, False)
    assert SweepSpec.parse("threshold=0.3").values(0.5) == (0.3,)
    assert SweepSpec.parse("threshold=0.3").key == "threshold"


@pytest.mark.parametrize(
    "text, default, message",
    [
        ("model.n_iter=1:5:1", 1, "only decoder options"),
        ("threshold=", 0.5, "no values"),
        ("threshold=0.8:0.2:0.1", 0.5, "stop is below start"),
        ("threshold=0.2:0.8:0", 0.5, "step must be positive"),
        ("threshold=0.2:0.8", 0.5, "start:stop:step"),
        ("threshold=a:b:c", 0.5, "must be numbers"),
        ("peak_window=1:5:0.5", 2, "integer"),
        ("refine_onsets=0:1:1", True, "numeric option"),
        ("threshold=0.1,,0.2", 0.5, "empty value"),
        ("threshold=0:1:0.00001", 0.5, "at most"),
    ],
)
def test_sweep_errors(text, default, message):
    with pytest.raises(OptionError, match=message):
        SweepSpec.parse(text).values(default)


@settings(max_examples=200, deadline=None)
@given(
    start=st.integers(0, 100),
    width=st.integers(0, 100),
    step=st.integers(1, 30),
)
def test_sweep_range_property(start, width, step):
    lo, hi, dx = start / 100, (start + width) / 100, step / 100
    values = SweepSpec.parse(f"x={lo}:{hi}:{dx}").values(0.5)
    assert values[0] == pytest.approx(lo)
    assert len(values) == width // step + 1
    assert all(lo - 1e-9 <= v <= hi + 1e-9 for v in values)
    assert np.allclose(np.diff(values), dx) if len(values) > 1 else True


def test_grid_is_every_combination_and_checks_names():
    specs = [SweepSpec.parse("a=0.1,0.2"), SweepSpec.parse("b=1:3:1")]
    points = grid(specs, {"a": 0.5, "b": 2}, "dec")
    assert points == [{"a": 0.1, "b": 1}, {"a": 0.1, "b": 2}, {"a": 0.1, "b": 3},
                      {"a": 0.2, "b": 1}, {"a": 0.2, "b": 2}, {"a": 0.2, "b": 3}]  # fmt: skip
    assert grid([], {"a": 0.5}, "dec") == [{}]
    with pytest.raises(OptionError, match="no option 'c'"):
        grid([SweepSpec.parse("c=1")], {"a": 0.5}, "dec")
    with pytest.raises(OptionError, match="twice"):
        grid([SweepSpec.parse("a=1"), SweepSpec.parse("a=2")], {"a": 0.5}, "dec")
    assert describe_point({"a": 0.25, "b": 3}) == "a=0.25, b=3"
    assert describe_point({}) == "defaults"


# -- paths and aggregation ------------------------------------------------------------------

def test_output_names_never_escape():
    assert relative_output("2004/a.wav", ".mid").as_posix() == "2004/a.mid"
    assert relative_output("../../etc/passwd", ".mid").as_posix() == "etc/passwd.mid"
    assert relative_output("/abs/x.flac", ".png").as_posix() == "abs/x.png"
    assert relative_output("noext", ".mid").as_posix() == "noext.mid"
    stems = output_stems(["take.wav", "take.flac", "a.b.wav", "2004/x.wav", "other/x.wav"])
    assert {k: v.as_posix() for k, v in stems.items()} == {
        "take.wav": "take.wav", "take.flac": "take.flac", "a.b.wav": "a.b", "2004/x.wav": "2004/x",
        "other/x.wav": "other/x",
    }  # fmt: skip
    assert safe_folder_names(["nmf", "hf://a/b@1/c.pt", "nmf!", "nmf?"]) == ["nmf", "hf_a_b_1_c.pt", "nmf_2", "nmf_3"]


class _Item:
    def __init__(self, name):
        self.name = name


def _result(entry, name, f1, status="ok"):
    metrics = {key: f1 for key in METRIC_KEYS}
    counts = np.zeros((128, 3), dtype=np.int64)
    counts[60] = (1, 2, 3)
    points = [PointScore(metrics, counts, 4)] if status == "ok" else []
    return FileResult(EvalJob(_Item(name), entry), status, points=points, n_ref=5)


def test_summary_is_population_mean_and_std_of_ok_files():
    entry = Entry("m", "m")
    results = [_result(entry, "a", 0.5), _result(entry, "b", 1.0), _result(entry, "c", 0.0, status="failed")]
    s = summarize(results, 0, {})
    assert s.files == 2
    assert s.mean["onset_f1"] == pytest.approx(0.75)
    assert s.std["onset_f1"] == pytest.approx(0.25)
    assert tuple(s.pitch_counts[60]) == (2, 4, 6)
    assert (s.n_ref, s.n_est) == (10, 8)
    empty = summarize([results[2]], 0, {})
    assert empty.files == 0 and math.isnan(empty.mean["onset_f1"])


def test_best_point_prefers_first_on_ties_and_ignores_nan():
    entry = Entry("m", "m")
    summaries = [summarize([_result(entry, "a", v)], 0, {}) for v in (0.2, 0.9, 0.9)]
    assert best_point(summaries, "onset_f1") == 1
    nan = summarize([_result(entry, "a", 0.0, status="failed")], 0, {})
    assert best_point([nan, summaries[0]], "onset_f1") == 1
    assert best_point([nan], "onset_f1") == 0


# -- end to end (numpy audio, no FluidSynth) ---------------------------------------------------

@pytest.fixture(scope="module")
def pairs_root(tmp_path_factory):
    """A pairs folder: three synthesised pieces and a silent recording with no notes."""
    import soundfile as sf

    from transcribe_cli.io.midi import write_midi

    root = build_pairs(tmp_path_factory.mktemp("pairs"))
    # near-silence: a -60 dBFS tone, above the conditioning's silence floor (-70 dBFS), so the
    # models do run on it (true silence never reaches a model)
    quiet = 1e-3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    sf.write(root / "silence.wav", quiet.astype(np.float32), 16000)
    from transcribe_cli.notes import Note

    write_midi([Note(0.0, 1.0, 69, 64)], root / "silence.mid")
    return root


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _entry(doc: dict, label: str) -> dict:
    return next(e for e in doc["entries"] if e["label"] == label)


def test_reference_against_itself_through_the_cli(cli, pairs_root, tmp_path):
    report = tmp_path / "self.json"
    result = cli("eval", "-d", "pairs", "--root", pairs_root, "--estimates", pairs_root, "--json", report)
    assert result.exit_code == 0, result.stderr
    assert "Note F1" in result.stdout and "1.000 ± 0.000" in result.stdout
    entry = _json(report)["entries"][0]
    assert entry["kind"] == "estimates" and entry["files_scored"] == 4
    for file in entry["files"]:
        assert all(file["metrics"][k] == pytest.approx(1.0) for k in F1_KEYS), file


def test_perturbed_estimates_through_the_cli(cli, tmp_path):
    root = tmp_path / "data"
    write_numpy_pair(root / "piece.wav", root / "piece.mid", REF)
    estimates = tmp_path / "estimates"
    write_notes(EST, estimates / "piece.csv")
    report, table = tmp_path / "r.json", tmp_path / "r.csv"
    result = cli("eval", "-d", "pairs", "--root", root, "--estimates", estimates, "--json", report, "--csv", table)
    assert result.exit_code == 0, result.stderr
    metrics = _json(report)["entries"][0]["files"][0]["metrics"]
    assert metrics["onset_f1"] == pytest.approx(2 / 3, abs=1e-6)
    assert metrics["onset_offset_f1"] == pytest.approx(4 / 9, abs=1e-6)
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    assert [r["kind"] for r in rows] == ["file", "mean", "std"]
    assert float(rows[0]["onset_precision"]) == pytest.approx(0.6)
    assert float(rows[2]["onset_f1"]) == 0.0  # one file: no spread


def test_sustain_pedal_extends_reference_offsets(cli, tmp_path):
    notes = [Note(0.1, 0.4, 60, 80), Note(0.5, 0.8, 64, 80)]
    root = tmp_path / "data"
    import soundfile as sf

    root.mkdir()
    sf.write(root / "p.wav", synth_audio(notes, 2.0), 16000)
    write_pedal_midi(root / "p.mid", notes, [(0.3, 1.5)])  # both notes sustained to 1.5 s
    estimates = tmp_path / "est"
    write_notes(notes, estimates / "p.csv")  # the keys as played, without the pedal

    def offset_f1(*flags):
        report = tmp_path / "r.json"
        result = cli("eval", "-d", "pairs", "--root", root, "--estimates", estimates, "--json", report, *flags)
        assert result.exit_code == 0, result.stderr
        return _json(report)["entries"][0]["files"][0]["metrics"]["onset_offset_f1"]

    assert offset_f1("--no-sustain-pedal") == pytest.approx(1.0)
    assert offset_f1() == pytest.approx(0.0)  # offsets 0.4/0.8 vs 1.5: both outside 20 %


def test_models_side_by_side_with_a_failing_file(cli, pairs_root, tmp_path):
    report, table = tmp_path / "r.json", tmp_path / "r.csv"
    midi, plots = tmp_path / "midi", tmp_path / "plots"
    result = cli(
        "--plugins-dir", PLUGINS, "eval", "-d", "pairs", "--root", pairs_root,
        "-m", "tone-peaks", "-m", "fragile", "--json", report, "--csv", table, "--save-midi", midi,
        "--plot", plots, "-O", "fragile:floor=0.4",
    )  # fmt: skip
    assert result.exit_code == 1  # fragile failed on the silent file
    failures = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert failures == ["error: fragile: silence.wav: unexpected RuntimeError: fragile model cannot handle silence"]
    assert "tone-peaks" in result.stdout and "fragile" in result.stdout and "1 failed" in result.stdout

    doc = _json(report)
    assert doc["format"] == "transcribe-cli-eval"
    assert doc["environment"]["mir_eval"] and doc["environment"]["transcribe_cli"]
    assert doc["scoring"]["frame_rate"] == 100.0 and doc["scoring"]["onset_tolerance"] == 0.05
    assert doc["dataset"]["recordings"] == 4 and doc["dataset"]["sustain_pedal"] is True
    peaks, fragile = _entry(doc, "tone-peaks"), _entry(doc, "fragile")
    assert peaks["pipeline"]["model"] == "tone-peaks"
    assert peaks["pipeline"]["decoder"] == "frame-threshold"
    assert peaks["pipeline"]["decoder_options"]["threshold"] == 0.3
    assert peaks["pipeline"]["model_options"] == {"floor": 0.5}
    assert fragile["pipeline"]["model_options"] == {"floor": 0.4}  # the scoped option
    assert peaks["pipeline"]["plugin"] == "file:eval_test_models"
    assert (peaks["files_scored"], peaks["files_failed"]) == (4, 0)
    assert (fragile["files_scored"], fragile["files_failed"]) == (3, 1)
    assert [f["name"] for f in peaks["files"]] == ["bass.wav", "chords.wav", "scale.wav", "silence.wav"]
    # a crude model, but it must find most notes of clean harmonic tones
    assert peaks["aggregate"]["onset_recall"]["mean"] > 0.5
    assert peaks["aggregate"]["frame_f1"]["mean"] > 0.7
    f1s = [f["metrics"]["onset_f1"] for f in peaks["files"]]
    assert peaks["aggregate"]["onset_f1"]["mean"] == pytest.approx(np.mean(f1s))
    assert peaks["aggregate"]["onset_f1"]["std"] == pytest.approx(np.std(f1s))
    assert sum(p["tp"] + p["fn"] for p in peaks["per_pitch"]) == sum(len(n) for n in PIECES.values()) + 1  # + silence.wav's A4
    kinds = {row["kind"]: row for row in peaks["recall_by_kind"]}
    registers = sum(kinds[k]["notes"] for k in ("low", "middle", "high"))
    assert registers == sum(p["tp"] + p["fn"] for p in peaks["per_pitch"])
    assert sum(kinds[k]["found"] for k in ("low", "middle", "high")) == sum(p["tp"] for p in peaks["per_pitch"])
    assert "note recall by kind" in result.stdout

    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    assert len([r for r in rows if r["kind"] == "file"]) == 8
    assert {r["status"] for r in rows if r["entry"] == "fragile" and r["file"] == "silence.wav"} == {"failed"}

    # the saved transcriptions score the same when read back as estimates
    assert sorted(p.name for p in (midi / "tone-peaks").iterdir()) == ["bass.mid", "chords.mid", "scale.mid", "silence.mid"]
    again = tmp_path / "again.json"
    assert cli("eval", "-d", "pairs", "--root", pairs_root, "--estimates", midi / "tone-peaks", "--json", again).exit_code == 0
    # (MIDI stores times in ~1 ms ticks, which may move an offset across its tolerance edge,
    # so only onset and frame scores must agree)
    for first, second in zip(peaks["files"], _entry(_json(again), str(midi / "tone-peaks"))["files"]):
        assert second["n_est"] == first["n_est"]
        for key in ("onset_precision", "onset_recall", "frame_precision", "frame_recall"):
            assert second["metrics"][key] == pytest.approx(first["metrics"][key], abs=0.01), (first["name"], key)

    pngs = sorted(p.relative_to(plots).as_posix() for p in plots.rglob("*.png"))
    assert "tone-peaks/per_pitch.png" in pngs and "fragile/files/silence.png" not in pngs
    assert "tone-peaks/files/scale.png" in pngs and len(pngs) == 2 + 4 + 3
    assert (plots / "tone-peaks/files/scale.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_decodes_once_and_matches_plain_runs(cli, pairs_root, tmp_path):
    swept = tmp_path / "sweep.json"
    result = cli(
        "--plugins-dir", PLUGINS, "eval", "-d", "pairs", "--root", pairs_root, "-m", "tone-peaks",
        "--sweep", "threshold=0.1:0.9:0.4", "--sweep-metric", "frame_f1", "--json", swept,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "sweep: Frame F1" in result.stdout and "threshold=0.5" in result.stdout
    assert "tone-peaks: best threshold=" in result.stdout
    doc = _json(swept)
    assert doc["sweep"] == {"options": {"threshold": [0.1, 0.5, 0.9]}, "metric": "frame_f1"}
    entry = doc["entries"][0]
    means = [p["aggregate"]["frame_f1"]["mean"] for p in entry["sweep"]]
    best = int(np.argmax(means))
    assert entry["best"] == {"threshold": [0.1, 0.5, 0.9][best]}
    assert entry["aggregate"] == entry["sweep"][best]["aggregate"]
    assert entry["pipeline"]["decoder_options"]["threshold"] == [0.1, 0.5, 0.9][best]
    assert all(len(f["sweep_metrics"]) == 3 for f in entry["files"])

    plain = tmp_path / "plain.json"
    result = cli(
        "--plugins-dir", PLUGINS, "eval", "-d", "pairs", "--root", pairs_root, "-m", "tone-peaks",
        "-O", "threshold=0.9", "--json", plain,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert _json(plain)["entries"][0]["aggregate"] == entry["sweep"][2]["aggregate"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sweep", "model.floor=0.1:0.5:0.1"], "only decoder options"),
        (["--sweep", "nope=1,2"], "has no option 'nope'"),
        (["--sweep", "threshold=0.5:1.5:0.5"], "not valid for model 'tone-peaks'"),
        (["--sweep", "threshold=0.1,0.2", "-O", "threshold=0.3"], "both swept and set"),
        (["--sweep", "threshold=0.1,0.2", "--plot", "plots"], "cannot be combined"),
        (["-O", "other:threshold=0.3"], "not one of the --model values"),
        (["--sweep-metric", "f2"], "unknown metric"),
        (["-m", "tone-peaks"], "given twice"),
        (["-D", "colour=red"], "has no option 'colour'"),
    ],
)
def test_bad_arguments_fail_before_any_work(cli, pairs_root, tmp_path, args, message):
    result = cli("--plugins-dir", PLUGINS, "eval", "-d", "pairs", "--root", pairs_root, "-m", "tone-peaks", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (Path.cwd() / "plots").exists()


def test_unknown_names_and_missing_root(cli, pairs_root, tmp_path):
    result = cli("eval", "-d", "nope", "--root", pairs_root)
    assert result.exit_code == 2 and "unknown dataset 'nope'" in result.stderr and "maestro" in result.stderr
    result = cli("eval", "-d", "pairs", "--root", pairs_root, "-m", "no-such-model")
    assert result.exit_code == 2 and "no-such-model" in result.stderr
    result = cli("eval", "-d", "maestro")
    assert result.exit_code == 2 and "--root" in result.stderr
    result = cli("eval", "-d", "pairs", "--root", pairs_root, "--estimates", tmp_path / "missing")
    assert result.exit_code == 2 and "--estimates folder not found" in result.stderr


def test_missing_estimate_is_one_failed_file(cli, pairs_root, tmp_path):
    estimates = tmp_path / "est"
    write_notes(PIECES["scale"], estimates / "scale.mid")
    result = cli("eval", "-d", "pairs", "--root", pairs_root, "--estimates", estimates, "--limit", "3")
    assert result.exit_code == 1
    assert "no transcription of bass.wav" in result.stderr and "chords.wav" in result.stderr
    assert "1 (2 failed)" in result.stdout


def test_missing_matplotlib_is_one_clear_line(cli, pairs_root, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    result = cli("eval", "-d", "pairs", "--root", pairs_root, "--estimates", pairs_root, "--plot", tmp_path / "p")
    assert result.exit_code == 2
    expected = (
        "error: --plot needs matplotlib, which is not installed "
        "(pip install 'transcribe-cli[plot]' (or pip install matplotlib))"
    )
    assert result.stderr.strip().splitlines() == [expected]


def test_maestro_layout_without_rendering(cli, tmp_path):
    root = build_maestro(tmp_path / "maestro", {"scale": "test", "chords": "validation", "bass": "test"})
    report = tmp_path / "r.json"
    result = cli("--plugins-dir", PLUGINS, "eval", "-d", "maestro", "--root", root, "-m", "tone-peaks",
                 "--split", "validation", "--json", report)
    assert result.exit_code == 0, result.stderr
    doc = _json(report)
    assert doc["dataset"]["split"] == "validation"
    assert [f["name"] for f in doc["entries"][0]["files"]] == ["2005/MIDI-Unprocessed_chords.wav"]


def test_third_party_dataset_items_without_names(cli, pairs_root, tmp_path):
    report = tmp_path / "r.json"
    result = cli("--plugins-dir", PLUGINS, "eval", "-d", "wav-folder", "--root", pairs_root,
                 "--estimates", pairs_root, "--json", report)
    assert result.exit_code == 0, result.stderr
    files = _json(report)["entries"][0]["files"]
    assert [f["name"] for f in files] == ["bass.wav", "chords.wav", "scale.wav", "silence.wav"]
    assert all(f["metrics"]["onset_f1"] == 1.0 for f in files)


@pytest.mark.slow
def test_parallel_jobs_give_the_same_scores(cli, pairs_root, tmp_path):
    reports = []
    for jobs in ("1", "2"):
        report = tmp_path / f"r{jobs}.json"
        result = cli("--plugins-dir", PLUGINS, "eval", "-d", "pairs", "--root", pairs_root,
                     "-m", "tone-peaks", "-m", "fragile", "-j", jobs, "--json", report)
        assert result.exit_code == 1  # fragile fails on silence in both
        reports.append(_json(report))
    for a, b in zip(*(r["entries"] for r in reports)):
        assert a["aggregate"] == b["aggregate"]
        assert [f["metrics"] for f in a["files"]] == [f["metrics"] for f in b["files"]]


# -- FluidSynth-rendered MAESTRO layout -------------------------------------------------------

@pytest.fixture(scope="module")
def rendered_maestro(tmp_path_factory):
    if not have_fluidsynth():
        pytest.skip("FluidSynth or a SoundFont is not installed")
    root = tmp_path_factory.mktemp("maestro-v3.0.0")
    return build_maestro(root, {"scale": "test", "chords": "test", "bass": "train"}, write_pair=write_rendered_pair)


@pytest.mark.render
@needs_fluidsynth
def test_rendered_maestro_through_eval(cli, rendered_maestro, tmp_path):
    report = tmp_path / "r.json"
    result = cli("--plugins-dir", PLUGINS, "eval", "--dataset", "maestro", "--root", rendered_maestro,
                 "-m", "tone-peaks", "--json", report)
    assert result.exit_code == 0, result.stderr
    assert "transcribe eval: maestro" in result.stdout and "Note w/ offset & velocity F1" in result.stdout
    doc = _json(report)
    entry = doc["entries"][0]
    assert [f["name"] for f in entry["files"]] == [
        "2004/MIDI-Unprocessed_scale.wav", "2005/MIDI-Unprocessed_chords.wav",
    ]  # the default split is test
    assert all(f["audio_seconds"] > 1.5 for f in entry["files"])
    assert entry["aggregate"]["frame_recall"]["mean"] > 0.5  # the piano sound is found


@pytest.mark.render
@needs_fluidsynth
def test_synth_dataset_renders_and_scores(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSCRIBE_CACHE_DIR", str(tmp_path / "cache"))
    corpus = tmp_path / "midi"
    from transcribe_cli.io.midi import write_midi

    corpus.mkdir()
    for name, notes in PIECES.items():
        write_midi(notes, corpus / f"{name}.mid")
    report = tmp_path / "r.json"
    result = cli("--plugins-dir", PLUGINS, "eval", "-d", "synth", "--root", corpus, "--split", "all",
                 "-m", "tone-peaks", "--estimates", corpus, "--json", report)
    assert result.exit_code == 0, result.stderr
    doc = _json(report)
    model, oracle = doc["entries"]
    assert [f["name"] for f in model["files"]] == ["bass.mid", "chords.mid", "scale.mid"]
    assert all(f["audio_seconds"] > 1.5 for f in model["files"])
    assert all(f["metrics"]["onset_offset_velocity_f1"] == pytest.approx(1.0) for f in oracle["files"])
    assert len(list((tmp_path / "cache" / "renders").rglob("*.wav"))) == 3  # cached renders


def test_nmf_on_the_real_recordings(cli, tmp_path):
    from transcribe_cli.registry import get_registry

    if not REAL.is_dir():
        pytest.skip("../shared/data/real is not there")
    if "nmf" not in get_registry().names("model"):
        pytest.skip("the nmf model is not registered")
    bundled = get_registry().model("nmf").weights.bundled
    if bundled:
        import importlib.resources

        package, _, relative = bundled.partition(":")
        if not importlib.resources.files(package).joinpath(relative).is_file():
            pytest.skip(f"the nmf templates ({bundled}) have not been built yet")
    report = tmp_path / "r.json"
    result = cli("eval", "--dataset", "pairs", "--root", REAL, "--model", "nmf", "--json", report)
    assert result.exit_code == 0, result.stderr
    assert "Note F1" in result.stdout
    entry = _json(report)["entries"][0]
    assert entry["files_scored"] == len(list(REAL.glob("*.wav"))) + 2  # stereo_sample also as .flac/.m4a


def test_eval_help_lists_the_options(cli):
    result = cli("eval", "--help")
    assert result.exit_code == 0
    for flag in ("--dataset", "--sweep", "--sweep-metric", "--no-sustain-pedal", "--save-midi", "--plot", "--estimates"):
        assert flag in result.stdout
