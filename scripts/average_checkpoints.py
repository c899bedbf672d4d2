"""Average the weights of checkpoints of one architecture (a uniform "model soup", Wortsman
et al. 2022; or the checkpoints of one run, as stochastic weight averaging does).

    python scripts/average_checkpoints.py OUT.pt A.pt B.pt [C.pt ...] [--weights 2,1,1]

Checkpoints fine-tuned from the same weights usually sit in one basin, where their average
transcribes at least as well as each and generalises better; from different starts it
generally does not work (check on validation). Every floating-point tensor of the
``state_dict`` is averaged (batch-norm running statistics included), integer ones
(``num_batches_tracked``) are taken from the first file. ``meta`` is the first file's, with
``averaged_from`` (the files, their sha256 and weights) added and its ``validation`` entry
dropped (it described the first file only). The optimizer state is not written: the result is
weights to evaluate, bundle or fine-tune (``init_weights``), not a run to resume.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("--weights", help="comma-separated weights, one per checkpoint (default: equal)")
    args = parser.parse_args()
    from transcribe_cli.models.neural import load_checkpoint, save_weights

    if len(args.checkpoints) < 2:
        parser.error("give at least two checkpoints")
    weights = [float(w) for w in args.weights.split(",")] if args.weights else [1.0] * len(args.checkpoints)
    if len(weights) != len(args.checkpoints) or min(weights) < 0 or sum(weights) <= 0:
        parser.error("--weights needs one non-negative weight per checkpoint, not all zero")
    loaded = [load_checkpoint(path) for path in args.checkpoints]
    first = loaded[0]
    architecture = first["meta"].get("architecture")
    for path, checkpoint in zip(args.checkpoints[1:], loaded[1:]):
        if checkpoint["meta"].get("model") != first["meta"].get("model") or \
                checkpoint["meta"].get("architecture") != architecture or \
                set(checkpoint["state_dict"]) != set(first["state_dict"]):
            parser.error(f"{path} is not the same model and architecture as {args.checkpoints[0]}")
    total = sum(weights)
    state = {}
    for key, value in first["state_dict"].items():
        if value.is_floating_point():
            state[key] = sum(w / total * c["state_dict"][key].double() for w, c in zip(weights, loaded)).to(value.dtype)
        else:
            state[key] = value.clone()
    meta = {k: v for k, v in first["meta"].items() if k != "validation"}
    meta["averaged_from"] = [{"file": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "weight": w}
                             for path, w in zip(args.checkpoints, weights)]
    save_weights(args.out, {"meta": meta, "state_dict": state})
    print(f"wrote {args.out}: the average of {len(loaded)} checkpoints (weights {', '.join(f'{w:g}' for w in weights)})")


if __name__ == "__main__":
    main()
