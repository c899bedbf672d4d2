"""How well ``--split-hands`` puts notes in the hand that plays them, on POP909.

Usage (from the repository root):

    python benchmarks/bench_hands.py [--pieces 40] [--split test] [--json out.json]

No corpus in ``shared/data`` labels hands (ASAP's performance MIDIs have one note track each;
SUPRA's two tracks are a fixed pitch split at 66/67). The closest honest measure: POP909's
arrangements have a MELODY track (the sung line, which a pianist plays with the right hand)
and BRIDGE/PIANO tracks (accompaniment). Every note of the file goes through
:func:`transcribe_cli.hands.split_hands` (the MIDI's own notes, no audio, so transcription
errors play no part), and we count:

* ``melody_right`` — the share of MELODY notes put in the right hand (the main measure);
* ``low_left`` — the share of BRIDGE/PIANO notes below middle C (MIDI 60) put in the left hand;
* ``fixed_melody_right`` / ``fixed_low_left`` — the same for a fixed split at middle C, the
  baseline a user gets by splitting the track in a DAW.

Neither is full hand accuracy: accompaniment above middle C may belong to either hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pieces", type=int, default=40)
    parser.add_argument("--split", default="test")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import pretty_midi

    from learn_nmf_templates import piece_midi, pop909_pieces
    from transcribe_cli.hands import split_hands
    from transcribe_cli.notes import Note

    rows = []
    for piece in pop909_pieces(args.split)[: args.pieces]:
        pm = pretty_midi.PrettyMIDI(str(piece_midi(piece)))
        notes, melody, low = [], set(), set()
        for instrument in pm.instruments:
            for n in instrument.notes:
                note = Note(float(n.start), float(n.end), int(n.pitch), int(n.velocity))
                notes.append(note)
                if instrument.name.upper() == "MELODY":
                    melody.add(note)
                elif n.pitch < 60:
                    low.add(note)
        left, right = split_hands(notes)
        left, right = set(left), set(right)
        row = {"piece": piece, "melody": len(melody), "low": len(low),
               "melody_right": round(len(melody & right) / max(len(melody), 1), 3),
               "low_left": round(len(low & left) / max(len(low), 1), 3),
               "fixed_melody_right": round(sum(n.pitch >= 60 for n in melody) / max(len(melody), 1), 3),
               "fixed_low_left": 1.0}
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {key: round(float(np.mean([r[key] for r in rows])), 3)
               for key in ("melody_right", "low_left", "fixed_melody_right", "fixed_low_left")}
    summary["pieces"] = len(rows)
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "summary": summary, "args": vars(args) | {"json": str(args.json)}},
                                        indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
