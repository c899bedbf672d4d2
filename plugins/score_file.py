"""Score one model on one labelled recording with ``transcribe eval``'s metrics (mir_eval).

    python plugins/score_file.py MODEL AUDIO LABELS [-O key=value ...]

What the plugin cards' figures were measured with; ``transcribe eval --dataset pairs`` gives
the same scores (it calls the same ``eval_scoring.score`` on the same pipeline).
"""

from __future__ import annotations

import json
import sys
import time

from transcribe_cli.io.audio import load_audio
from transcribe_cli.evaluation.scoring import score
from transcribe_cli.pipeline import Transcriber
from transcribe_cli.io.outputs import read_notes


def main(argv: list[str]) -> None:
    model, audio_path, labels, *rest = argv
    options = [value for flag, value in zip(rest[::2], rest[1::2]) if flag == "-O"]
    transcriber = Transcriber(model, options=options, device="cpu")
    audio = load_audio(audio_path, transcriber.sample_rate)
    start = time.perf_counter()
    notes = transcriber.transcribe_audio(audio)
    seconds = time.perf_counter() - start
    scores = score(read_notes(labels), notes)
    keys = ("onset_precision", "onset_recall", "onset_f1", "onset_offset_f1", "frame_f1")
    print(json.dumps({"model": model, "notes": len(notes), "seconds": round(seconds, 1),
                      **{k: round(float(scores[k]), 3) for k in keys if k in scores}}))


if __name__ == "__main__":
    main(sys.argv[1:])
