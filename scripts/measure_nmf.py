#!/usr/bin/env python3
"""Measure the ``nmf`` model the way users run it, and print the figures for its model card.

    python scripts/measure_nmf.py [--test-pieces 6] [--weights FILE] [--option KEY=VALUE] [--json OUT]

Every file goes through :class:`transcribe_cli.pipeline.Transcriber` — the ``transcribe``
command's pipeline: ``load_audio`` at 16 kHz, peak normalisation, the ``cqt`` frontend over
20 s windows, the model, and the registered default decoder with the model's tuned
options — and is scored with :func:`transcribe_cli.evaluation.metrics.evaluate_notes` (mir_eval:
onset F1 at ±50 ms, frame F1 at 10 ms).

Sets:

* ``real``: the real piano recordings in ``../shared/data/real`` (``stereo_sample.wav``,
  ``maestro_2018_chamber3_clip.wav``) against their MIDI labels;
* ``example``: the bundled ``examples/pop909_*.flac`` against its MIDI;
* ``rendered``: the first ``--test-pieces`` POP909 pieces of the *test* split (never used
  for learning or tuning, see ``learn_nmf_templates.piece_split``), whole pieces rendered
  with each SoundFont piano the templates were learned from, against
  ``read_midi(..., sustain_pedal=True)``;
* ``rendered-unseen``: the same pieces rendered with the two "bright" piano presets that
  the templates never saw (``learn_nmf_templates.UNSEEN_PIANOS``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learn_nmf_templates import (
    PIANOS,
    REAL,
    RENDER_GAIN,
    ROOT,
    SAMPLE_RATE,
    UNSEEN_PIANOS,
    piece_midi,
    pop909_pieces,
)

REAL_FILES = ("stereo_sample.wav", "maestro_2018_chamber3_clip.wav")
KEYS = ("onset_precision", "onset_recall", "onset_f1", "onset_offset_f1", "onset_velocity_f1", "frame_f1")


def measure(transcriber, audio_path: Path, midi_path: Path) -> dict[str, Any]:
    from transcribe_cli.evaluation.metrics import evaluate_notes
    from transcribe_cli.io.midi import read_midi

    started = time.perf_counter()
    est = transcriber.transcribe_file(audio_path)
    seconds = time.perf_counter() - started
    ref = read_midi(midi_path, sustain_pedal=True)
    scores = evaluate_notes(ref, est)
    return {
        "audio": str(audio_path),
        "reference": str(midi_path),
        "notes_ref": len(ref),
        "notes_est": len(est),
        "seconds": round(seconds, 2),
        **{key: round(float(scores[key]), 4) for key in KEYS},
    }


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    return {key: round(float(np.mean([row[key] for row in rows])), 4) for key in KEYS}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--test-pieces", type=int, default=6)
    parser.add_argument("--weights", type=Path, default=None, help="template file (default: bundled)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="model/decoder option, as `transcribe --option` (repeatable)")
    parser.add_argument("--json", type=Path, default=None, help="write all rows and summaries here")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch

    from transcribe_cli.pipeline import Transcriber
    from transcribe_cli.rendering import render

    torch.set_num_threads(args.threads)
    transcriber = Transcriber("nmf", device="cpu", weights=args.weights, options=args.option)
    print(f"model nmf, decoder {transcriber.decoder_spec.name} {transcriber.decoder_options}")
    results: dict[str, Any] = {"decoder": transcriber.decoder_spec.name, "decoder_options": transcriber.decoder_options}

    real = [measure(transcriber, REAL / name, (REAL / name).with_suffix(".mid")) for name in REAL_FILES]
    examples = sorted((ROOT / "examples").glob("pop909_*.flac"))
    bundled = [measure(transcriber, path, path.with_suffix(".mid")) for path in examples]
    rendered: dict[str, list[dict[str, Any]]] = {"rendered": [], "rendered-unseen": []}
    for piece in pop909_pieces("test")[: args.test_pieces]:
        for group, pianos in (("rendered", PIANOS), ("rendered-unseen", UNSEEN_PIANOS)):
            for name, soundfont, program in pianos:
                wav = render(piece_midi(piece), sample_rate=SAMPLE_RATE, soundfont=soundfont, program=program,
                             gain=RENDER_GAIN)
                row = measure(transcriber, wav, piece_midi(piece))
                row.update(piece=piece, piano=name)
                rendered[group].append(row)
                print(f"{piece} {name}: " + ", ".join(f"{k} {row[k]:.3f}" for k in KEYS), flush=True)

    for title, rows in (("real", real), ("example", bundled), *rendered.items()):
        print(f"\n== {title}")
        for row in rows:
            label = row.get("piece", Path(row["audio"]).name) + (f" @{row['piano']}" if "piano" in row else "")
            print(f"{label:40s} notes {row['notes_ref']:5d}/{row['notes_est']:5d}  "
                  + "  ".join(f"{k} {row[k]:.3f}" for k in KEYS))
        if rows:
            print(f"{'mean':40s} {'':17s}" + "  ".join(f"{k} {v:.3f}" for k, v in summarise(rows).items()))
        results[title] = {"rows": rows, "mean": summarise(rows) if rows else {}}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
