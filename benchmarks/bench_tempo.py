"""Beat and bar tracking accuracy of ``--tempo auto`` on rendered pieces with known tempo maps.

Usage (from the repository root):

    python benchmarks/bench_tempo.py [--pieces 10] [--start 20] [--seconds 30] [--json out.json]

Pieces: the first ``--pieces`` POP909 songs of the *test* split (never used to tune the
``nmf`` model), an excerpt of each rendered with FluidSynth (cached), plus the bundled
example. POP909 MIDI is written on a beat grid, so the reference beats are the MIDI's own
tempo map (``pretty_midi.get_beats``). Its time signatures are not reliable (most files say
1/4), so bar lines are scored only where the time signature says 2/4 or 4/4; the reference
bar lines are then every 2 resp. 4 beats.

Methods, each on the ``nmf`` transcription of the render:

* ``both`` — librosa's DP beat tracker on the sum of the audio's spectral-flux onset envelope
  and one made from the transcribed notes;
* ``notes`` — the same tracker on the notes' envelope alone;
* ``audio`` — the same tracker on the audio's envelope alone (what ``--tempo auto`` does);
* ``madmom`` — madmom's RNN beat/downbeat activations + DBN (only when madmom imports).

The notes of POP909 sit a constant offset after the file's beat grid (:func:`grid_offset`:
a fraction of a sixteenth plus the whole sixteenths that put the most onsets on the beat);
the reference beats are shifted by it.

Scores: beat F-measure (mir_eval.beat, ±70 ms), AMLt (continuity at any metrical level),
and for bars: the share of estimated bar
lines within 70 ms of a reference bar line ("bars on a bar line") and mir_eval's downbeat
F-measure (a 4/4 estimate against a 2/4 reference can reach only 2/3).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


def reference(midi_path: Path, start: float, seconds: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Reference beats and (if the time signature is 2/4 or 4/4) bar lines of an excerpt."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(midi_path))
    shift = grid_offset(pm)
    beats = pm.get_beats() + shift
    keep = (beats >= start) & (beats < start + seconds)
    signatures = [ts for ts in pm.time_signature_changes if ts.time <= start] or pm.time_signature_changes[:1]
    bars = None
    if signatures and signatures[-1].numerator in (2, 4) and signatures[-1].denominator == 4:
        downbeats = pm.get_downbeats() + shift
        bars = downbeats[(downbeats >= start) & (downbeats < start + seconds)] - start
    return beats[keep] - start, bars


def grid_offset(pm) -> float:
    """Seconds by which the music's beats sit after the MIDI's beat grid. POP909 notes lie
    on a sixteenth-note grid shifted from the file's tempo grid by a constant amount (the
    transcribers aligned the notes to the recording, not to tick 0): the fraction of a
    sixteenth is the circular mean of the onsets' phase, the whole sixteenths (0..3) the
    position within the beat where most onsets fall (on the beat, in pop music)."""
    beats = pm.get_beats()
    beat = float(np.median(np.diff(beats)))
    sixteenth = beat / 4
    onsets = np.array([n.start for i in pm.instruments for n in i.notes]) - beats[0]
    phase = float(np.angle(np.mean(np.exp(2j * np.pi * onsets / sixteenth))) / (2 * np.pi)) % 1.0
    fraction = phase * sixteenth
    slots = np.round((onsets - fraction) / sixteenth).astype(int) % 4
    whole = int(np.argmax(np.bincount(slots, minlength=4)))
    return (fraction + whole * sixteenth) % beat


def bar_scores(estimated: np.ndarray, bars: np.ndarray) -> tuple[float, float]:
    import mir_eval

    if len(estimated) == 0:
        return 0.0, 0.0
    near = np.min(np.abs(estimated[:, None] - bars[None, :]), axis=1) <= 0.07
    return float(near.mean()), float(mir_eval.beat.f_measure(bars, estimated))


def madmom_track(wav: Path) -> tuple[np.ndarray, np.ndarray]:
    from madmom.features.downbeats import DBNDownBeatTrackingProcessor, RNNDownBeatProcessor

    activations = RNNDownBeatProcessor()(str(wav))
    result = DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=100)(activations)
    return result[:, 0], result[result[:, 1] == 1, 0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pieces", type=int, default=10)
    parser.add_argument("--start", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--model", default="nmf")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import mir_eval

    from learn_nmf_templates import clip_notes, piece_midi, pop909_pieces
    from transcribe_cli.io.audio import load_audio
    from transcribe_cli.pipeline import Transcriber
    from transcribe_cli.io.midi import read_midi, write_midi
    from transcribe_cli.rendering import render
    from transcribe_cli.tempo import track_tempo

    try:
        import madmom  # noqa: F401

        methods = ["both", "notes", "audio", "madmom"]
    except Exception:  # noqa: BLE001 - optional comparison only
        methods = ["both", "notes", "audio"]
    transcriber = Transcriber(args.model)
    sr = transcriber.sample_rate
    items = [(p, piece_midi(p), args.start, args.seconds) for p in pop909_pieces("test")[: args.pieces]]
    items.append(("example pop909/003", piece_midi("pop909/003"), 16.0, 20.0))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, midi, start, seconds in items:
            ref_beats, ref_bars = reference(midi, start, seconds)
            excerpt = Path(tmp) / "excerpt.mid"
            write_midi(clip_notes(read_midi(midi, sustain_pedal=True), seconds, start=start), excerpt)
            wav = render(excerpt, sample_rate=44100, soundfont="MuseScore_General_Full.sf2")
            audio = load_audio(wav, sr)
            notes = transcriber.transcribe_audio(audio)
            row = {"piece": name, "bpm": round(float(60 / np.median(np.diff(ref_beats))), 1)}
            for method in methods:
                t0 = time.perf_counter()
                if method == "madmom":
                    beats, downbeats = madmom_track(wav)
                else:
                    tempo_map = track_tempo(notes, audio=audio, sample_rate=sr, source=method)
                    beats = np.asarray(tempo_map.beats) if tempo_map else np.zeros(0)
                    downbeats = tempo_map.downbeats() if tempo_map else np.zeros(0)
                row[f"{method}_seconds"] = round(time.perf_counter() - t0, 2)
                row[f"{method}_beat_f"] = round(float(mir_eval.beat.f_measure(ref_beats, beats)), 3)
                # AMLt: continuity allowing double/half tempo and off-beat (mir_eval.beat.continuity)
                row[f"{method}_amlt"] = round(float(mir_eval.beat.continuity(ref_beats, beats)[3]), 3)
                row[f"{method}_bpm"] = round(float(60 / np.median(np.diff(beats))), 1) if len(beats) > 1 else None
                if ref_bars is not None and len(ref_bars) >= 2:
                    on_bar, down_f = bar_scores(np.asarray(downbeats), ref_bars)
                    row[f"{method}_bars_on_barline"] = round(on_bar, 3)
                    row[f"{method}_downbeat_f"] = round(down_f, 3)
            rows.append(row)
            print(json.dumps(row), flush=True)
    summary = {}
    for method in methods:
        for key in ("beat_f", "amlt", "bars_on_barline", "downbeat_f", "seconds"):
            values = [r[f"{method}_{key}"] for r in rows if f"{method}_{key}" in r]
            if values:
                summary[f"{method}_{key}_mean"] = round(float(np.mean(values)), 3)
                summary[f"{method}_{key}_n"] = len(values)
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "summary": summary, "args": vars(args) | {"json": str(args.json)}},
                                        indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
