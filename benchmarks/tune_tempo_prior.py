"""Choose the beat tracker's tempo prior on POP909 *train* pieces (the benchmark scores test pieces).

Usage (from the repository root):

    python benchmarks/tune_tempo_prior.py [--pieces 60] [--start 20] [--seconds 30] [--json out.json]

Each piece's excerpt is rendered with FluidSynth (cached), its audio onset envelope
(:func:`transcribe_cli.tempo.audio_onset_envelope`, what ``--tempo auto`` uses) computed once,
and librosa's beat tracker run on it under each candidate log-normal tempo prior
(``start_bpm``, ``std_bpm`` in octaves; librosa's own is 120 / 1.0 and ``--tempo auto`` used
100 / 1.0 before). Reference beats: the MIDI's own tempo grid
(``bench_tempo.reference``). Scores: mean beat F (mir_eval, ±70 ms) and the share of pieces
tracked at double or half the reference tempo.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))

CANDIDATES = [(100.0, 1.0), (120.0, 1.0), (90.0, 1.0), (80.0, 1.0), (90.0, 0.5), (80.0, 0.5),
              (70.0, 0.5), (80.0, 0.3), (70.0, 0.3)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pieces", type=int, default=60)
    parser.add_argument("--start", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import mir_eval

    from bench_tempo import reference
    from learn_nmf_templates import clip_notes, piece_midi, pop909_pieces
    from transcribe_cli.io.audio import load_audio
    from transcribe_cli.io.midi import read_midi, write_midi
    from transcribe_cli.rendering import render
    from transcribe_cli.tempo import ENVELOPE_RATE, audio_onset_envelope, track_beats

    sr = 16000
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for piece in pop909_pieces("train")[: args.pieces]:
            midi = piece_midi(piece)
            ref_beats, _ = reference(midi, args.start, args.seconds)
            if len(ref_beats) < 8:
                continue
            excerpt = Path(tmp) / "excerpt.mid"
            write_midi(clip_notes(read_midi(midi, sustain_pedal=True), args.seconds, start=args.start), excerpt)
            audio = load_audio(render(excerpt, sample_rate=44100, soundfont="MuseScore_General_Full.sf2"), sr)
            envelope = audio_onset_envelope(audio, sr)
            rate = sr / round(sr / ENVELOPE_RATE)
            ref_bpm = float(60 / np.median(np.diff(ref_beats)))
            row = {"piece": piece, "bpm": round(ref_bpm, 1)}
            for start_bpm, std_bpm in CANDIDATES:
                beats = track_beats(envelope, rate=rate, start_bpm=start_bpm, std_bpm=std_bpm)
                key = f"{start_bpm:g}/{std_bpm:g}"
                bpm = float(60 / np.median(np.diff(beats))) if len(beats) > 1 else 0.0
                ratio = bpm / ref_bpm
                row[key] = {"f": round(float(mir_eval.beat.f_measure(ref_beats, beats)), 3), "bpm": round(bpm, 1),
                            "octave": bool(abs(ratio - 2) < 0.2 or abs(ratio - 0.5) < 0.05)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    summary = {}
    for start_bpm, std_bpm in CANDIDATES:
        key = f"{start_bpm:g}/{std_bpm:g}"
        summary[key] = {"beat_f": round(float(np.mean([r[key]["f"] for r in rows])), 3),
                        "octave_errors": round(float(np.mean([r[key]["octave"] for r in rows])), 3)}
    summary["n"] = len(rows)
    summary["reference_bpm_quartiles"] = [round(float(q), 1) for q in np.percentile([r["bpm"] for r in rows], [25, 50, 75])]
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
