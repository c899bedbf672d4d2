"""Accuracy and solver time of ``nmf`` inference settings on validation renders (issue 11).

Usage (from the repository root):

    python benchmarks/bench_nmf_settings.py "n_iter=50" "n_iter=20,bin_pool=2" \
        "n_iter=30,bin_pool=2,prune_after=3,prune_level=0.01" [--pieces 4] [--seconds 60]

Each argument is a set of :class:`transcribe_cli.models.nmf.NMFTranscriber` settings applied
over the bundled templates' own. Material: the first ``--pieces`` POP909 *validation* songs
(never test songs), the first ``--seconds`` of each rendered with the two template pianos and
the two "bright" presets the templates never saw (``scripts/learn_nmf_templates.py``'s
``validation_examples``; linear CQT cached under ``benchmarks/.cache``). For each
setting: the solver's seconds over all renders (``NMFTranscriber.gains``, 2 threads), then
mean onset F1 / frame F1 / onset+offset F1 (mir_eval) with the bundled ``onset-peaks``
options at each ``--thresholds`` onset threshold, and the *stability*: onset F1 of the notes
against those of the same features times ``1 + 2e-4 · N(0, 1)`` (rounding-size noise: 1.0 =
the same notes).

Activations are computed on each render's whole feature matrix at once: settings that make
the gains depend on the frames around (``prune_level > 0``) give somewhat other numbers through
the pipeline's windows.
"""

from __future__ import annotations

import argparse
import ast
import pickle
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from learn_nmf_templates import (  # noqa: E402
    build_frontend,
    decode,
    pop909_pieces,
    score,
    validation_examples,
)


def parse_settings(text: str) -> dict:
    """``"a=1,b=0.5"`` → ``{"a": 1, "b": 0.5}`` (values are Python literals)."""
    settings = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        settings[key.strip()] = ast.literal_eval(value.strip())
    return settings


def load_examples(pieces: int, seconds: float, cache: Path) -> list:
    path = cache / f"nmf_settings_{pieces}x{seconds:g}s.pkl"
    if path.exists():
        with open(path, "rb") as f:
            return pickle.load(f)
    examples = validation_examples(pop909_pieces("valid")[:pieces], build_frontend(), seconds)
    for example in examples:
        example.audio = None  # the CQT and the notes are all that is used
    cache.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(examples, f)
    return examples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("settings", nargs="+", help='e.g. "n_iter=20,bin_pool=2"')
    parser.add_argument("--pieces", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.74, 0.77, 0.8])
    parser.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / ".cache")
    args = parser.parse_args(argv)

    from transcribe_cli.models import NMF_DECODER_OPTIONS, build_nmf

    examples = load_examples(args.pieces, args.seconds, args.cache)
    frame_rate = build_frontend().frame_rate
    print(f"{len(examples)} renders of {args.seconds:g} s; onset F1 / frame F1 / onset+offset F1 per threshold")
    rng = np.random.default_rng(0)
    for text in args.settings:
        model = build_nmf(None, threads=2, **parse_settings(text))
        seconds, acts, stability = 0.0, [], []
        for example in examples:
            started = time.perf_counter()
            H = model.gains(example.V)
            seconds += time.perf_counter() - started
            acts.append(model.activations(model.key_gains(H)))
            noisy = (example.V * (1 + 2e-4 * rng.standard_normal(example.V.shape))).astype(np.float32)
            again = model.activations(model.key_gains(model.gains(noisy)))
            stability.append(score(decode("onset-peaks", acts[-1], frame_rate, **NMF_DECODER_OPTIONS),
                                   decode("onset-peaks", again, frame_rate, **NMF_DECODER_OPTIONS))["onset_f1"])
        cells = []
        for threshold in args.thresholds:
            options = {**NMF_DECODER_OPTIONS, "onset_threshold": threshold}
            scores = [score(ex.notes, decode("onset-peaks", a, frame_rate, **options)) for ex, a in zip(examples, acts)]
            mean = {key: float(np.mean([s[key] for s in scores])) for key in ("onset_f1", "frame_f1", "onset_offset_f1")}
            cells.append(f"{threshold:g}: {mean['onset_f1']:.3f}/{mean['frame_f1']:.3f}/{mean['onset_offset_f1']:.3f}")
        print(f"{text}: solver {seconds:.2f} s | " + " | ".join(cells)
              + f" | stability {np.mean(stability):.4f} (min {np.min(stability):.4f})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
