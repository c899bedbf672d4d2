"""How much note-with-offset F1 (MAESTRO convention) the sustain-pedal prediction costs, and
which pedal-decoding settings recover it.

For each recording of a ``synth`` split the model's activations are computed once; its
key-release notes are then extended over (a) the pedal decoded from its ``pedal`` activation
with each setting tried and (b) the reference pedal of the MIDI file (the ceiling). Scored
against the pedal-extended reference notes (mir_eval, as ``transcribe eval``), first
``--seconds`` of each file. Also reports the pedal's frame-level F1 (100 frames/s).

    python benchmarks/pedal_ceiling.py --split validation --limit 10 --seconds 60 \\
        --soundfont FluidR3_GM.sf2,MuseScore_General_Full.sf2,TimGM6mb.sf2,salamander \\
        --threshold 0.4,0.5,0.6 --gap 1,5,10 --min-length 0.06,0.2 --smooth 0,5,11

Settings are the product of the comma lists; ``--smooth N`` is a running mean of N frames over
the activation before the threshold (0: none).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys

import numpy as np


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def pedal_frame_f1(est, ref, seconds: float, rate: float = 100.0) -> float:
    """F1 of the pedal-down frames of two interval lists over ``seconds``."""
    n = int(round(seconds * rate))

    def roll(pedals):
        r = np.zeros(n, dtype=bool)
        for p in pedals:
            r[int(round(p.onset * rate)) : int(round(min(p.offset, seconds) * rate))] = True
        return r

    e, r = roll(est), roll(ref)
    tp = float(np.sum(e & r))
    if tp == 0:
        return 1.0 if not e.any() and not r.any() else 0.0
    precision, recall = tp / e.sum(), tp / r.sum()
    return 2 * precision * recall / (precision + recall)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="piano")
    parser.add_argument("--root", default="../shared/data/midi")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--soundfont", default="FluidR3_GM.sf2,MuseScore_General_Full.sf2,TimGM6mb.sf2")
    parser.add_argument("--presets", default="0,1")
    parser.add_argument("--variants", default="random")
    parser.add_argument("--threshold", default="0.5")
    parser.add_argument("--gap", default="1")
    parser.add_argument("--min-length", default="0.06")
    parser.add_argument("--smooth", default="0")
    parser.add_argument("--json", help="write the table as JSON here")
    args = parser.parse_args(argv)

    from transcribe_cli.datasets.synth import open_synth
    from transcribe_cli.decoders.pedal import decode_pedal
    from transcribe_cli.evaluation.metrics import evaluate_notes
    from transcribe_cli.io.audio import load_audio
    from transcribe_cli.io.midi import extend_over_pedal, read_pedals
    from transcribe_cli.pipeline import Transcriber

    items = open_synth(args.root, args.split, soundfont=args.soundfont, limit=args.limit,
                       presets=args.presets, variants=args.variants)
    transcriber = Transcriber(args.model)
    secs = args.seconds
    settings = list(itertools.product(_floats(args.threshold), _ints(args.gap),
                                      _floats(args.min_length), _ints(args.smooth)))
    scores: dict[str, list[tuple[float, float, float, float]]] = {}

    def clip(notes):
        return [dataclasses.replace(n, offset=min(n.offset, secs)) for n in notes if n.onset < secs]

    for number, item in enumerate(items, 1):
        audio = load_audio(item.audio_path, transcriber.sample_rate)[: int(secs * transcriber.sample_rate)]
        acts = transcriber.activations(audio)
        notes = transcriber.decode(acts)
        ref = clip(item.notes(sustain_pedal=True))
        ref_pedals = [p for p in read_pedals(item.labels_path) if p.onset < secs]
        pedal = np.asarray(acts["pedal"], dtype=np.float32).reshape(-1)
        rows = {}
        for threshold, gap, min_length, smooth in settings:
            values = pedal if smooth <= 1 else np.convolve(pedal, np.ones(smooth) / smooth, mode="same")
            est_pedals = decode_pedal(values, transcriber.frame_rate, threshold=threshold,
                                      gap_frames=gap, min_length=min_length)
            rows[f"threshold {threshold} gap {gap} min {min_length} smooth {smooth}"] = est_pedals
        rows["reference pedal (ceiling)"] = ref_pedals
        rows["no pedal"] = []
        for label, est_pedals in rows.items():
            s = evaluate_notes(ref, extend_over_pedal(notes, est_pedals))
            scores.setdefault(label, []).append(
                (s["onset_f1"], s["onset_offset_f1"], s["frame_f1"], pedal_frame_f1(est_pedals, ref_pedals, secs)))
        print(f"{number}/{len(items)} {item.name}", file=sys.stderr)

    table = {label: [float(x) for x in np.mean(v, axis=0)] for label, v in scores.items()}
    print("| pedal decoding | note F1 | note+offset F1 | frame F1 | pedal frame F1 |")
    print("|---|---|---|---|---|")
    for label, (a, b, c, d) in sorted(table.items(), key=lambda kv: -kv[1][1]):
        print(f"| {label} | {a:.4f} | {b:.4f} | {c:.4f} | {d:.4f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "files": len(items), "table": table}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
