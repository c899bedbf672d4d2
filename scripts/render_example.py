#!/usr/bin/env python3
"""Render the bundled example: a short POP909 excerpt as FLAC plus its reference MIDI.

    python scripts/render_example.py [--piece pop909/003] [--start 16] [--seconds 20]

Writes ``examples/<corpus>_<number>.flac`` (mono, 16-bit, 22.05 kHz — not the model's
16 kHz, so the example also exercises resampling) and ``examples/<corpus>_<number>.mid``.

The excerpt's notes are the piece's notes that start in ``[start, start + seconds)``,
shifted to start at 0, with the sustain pedal already applied to their offsets
(``read_midi(sustain_pedal=True)``) and cut at the end of the excerpt. The *same* MIDI is
rendered with FluidSynth (MuseScore_General_Full.sf2, preset "Grand Piano", bank 0 program 0), so the
audio and the reference agree note for note. Only pieces of the POP909 *test* split are
accepted: they were never used to learn or tune the ``nmf`` model (see
``learn_nmf_templates.piece_split``). POP909 is MIT-licensed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learn_nmf_templates import ROOT, clip_notes, file_sha256, piece_midi, piece_split

SOUNDFONT = "MuseScore_General_Full.sf2"
PROGRAM = 0
GAIN = 0.8
SAMPLE_RATE = 22050
MAX_BYTES = 1_000_000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--piece", default="pop909/003")
    parser.add_argument("--start", type=float, default=16.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out-dir", type=Path, default=ROOT / "examples")
    args = parser.parse_args(argv)

    import soundfile as sf

    from transcribe_cli.io.midi import read_midi, write_midi
    from transcribe_cli.rendering import render, resolve_soundfont

    if piece_split(args.piece) != "test":
        raise SystemExit(f"{args.piece} is in the {piece_split(args.piece)} split; pick a test-split piece")
    source = piece_midi(args.piece)
    notes = clip_notes(read_midi(source, sustain_pedal=True), args.seconds, start=args.start)
    if not notes:
        raise SystemExit("no notes in that excerpt")
    stem = args.piece.replace("/", "_")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    midi_out = args.out_dir / f"{stem}.mid"
    write_midi(notes, midi_out)

    with tempfile.TemporaryDirectory() as tmp:
        wav = render(midi_out, Path(tmp) / "excerpt.wav", sample_rate=SAMPLE_RATE, soundfont=SOUNDFONT,
                     program=PROGRAM, gain=GAIN, use_cache=False)
        audio, rate = sf.read(wav, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    mono = mono[: round((args.seconds + 1.0) * rate)]  # keep one second of release tail
    peak = float(np.abs(mono).max())
    mono = mono * (0.9 / peak)
    flac_out = args.out_dir / f"{stem}.flac"
    sf.write(flac_out, mono, rate, subtype="PCM_16", format="FLAC")
    size = flac_out.stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{flac_out} is {size} bytes, over the {MAX_BYTES}-byte budget: use fewer seconds")
    print(f"{flac_out}: {len(mono) / rate:.2f} s, {size} bytes, sha256 {file_sha256(flac_out)}")
    print(f"{midi_out}: {len(notes)} notes, sha256 {file_sha256(midi_out)}")
    print(f"source: {source.name} (sha256 {file_sha256(source)}), {args.start:g}–{args.start + args.seconds:g} s, "
          f"rendered with {resolve_soundfont(SOUNDFONT).name} program {PROGRAM}, gain {GAIN}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
