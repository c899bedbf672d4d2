"""Deepen a trained ``piano`` network by more temporal blocks, keeping what it computes: a
weight file to start a fine-tuning run from (``init_weights`` in the run's config).

    python scripts/grow_piano_depth.py docs/runs/piano-stage2/best.pt runs/piano-deep-init.pt --add 1 2 4 8

The new :class:`~transcribe_cli.models.piano.TemporalBlock` s go after the existing ones
(residual ``x + ReLU(BN(conv(x)))``). Their convolutions keep PyTorch's random start, and
their batch norms' scale starts at ``--scale`` (bias 0), so each new block adds at most a
small perturbation at first and the grown network transcribes as the old one did, while
gradients reach the new weights (a scale of exactly 0 would leave the ReLU's input at 0
and the block dead). Prints the largest difference of the grown network's probabilities from
the original's on random features, and refuses a file that differs by more than ``--tolerance``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a piano weight file (a run's best.pt)")
    parser.add_argument("out", type=Path, help="the grown weight file to write")
    parser.add_argument("--add", type=int, nargs="+", required=True, metavar="DILATION",
                        help="dilations of the temporal blocks to append")
    parser.add_argument("--scale", type=float, default=0.01, help="initial batch-norm scale of the new blocks")
    parser.add_argument("--tolerance", type=float, default=0.05,
                        help="largest allowed change of any output probability")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from transcribe_cli.models.neural import build_network, load_model_checkpoint, network_meta, save_weights
    from transcribe_cli.registry import get_registry

    spec = get_registry().model("piano")
    checkpoint = load_model_checkpoint(spec, args.checkpoint)
    meta = dict(checkpoint["meta"])
    architecture = {**spec.architecture, **meta.get("architecture", {})}
    old = build_network(spec, architecture).eval()
    old.load_state_dict(checkpoint["state_dict"])
    grown_arch = {**architecture, "dilations": tuple(architecture["dilations"]) + tuple(args.add)}
    torch.manual_seed(args.seed)
    grown = build_network(spec, grown_arch)
    missing, unexpected = grown.load_state_dict(checkpoint["state_dict"], strict=False)
    if unexpected:
        raise SystemExit(f"unexpected weights in {args.checkpoint}: {unexpected[:3]}")
    first_new = len(architecture["dilations"])
    with torch.no_grad():
        for block in list(grown.temporal)[first_new:]:
            block.norm.weight.fill_(args.scale)
            block.norm.bias.zero_()
    grown.eval()

    features = torch.rand(2, 400, 352) * 3
    with torch.no_grad():
        before, after = old(features), grown(features)
    change = max(float((before[key] - after[key]).abs().max()) for key in before)
    print(f"grew {len(architecture['dilations'])} -> {len(grown_arch['dilations'])} temporal blocks "
          f"({sum(p.numel() for p in grown.parameters()):,} parameters, {len(missing)} new tensors); "
          f"largest output change {change:.4f}")
    if change > args.tolerance:
        raise SystemExit(f"the grown network differs by {change:.4f} > --tolerance {args.tolerance}: lower --scale")
    extra = {key: value for key, value in meta.items() if key not in ("format", "model", "architecture", "frontend",
                                                                      "transcribe_cli")}
    extra["grown_from"] = {"file": str(args.checkpoint), "added_dilations": list(args.add), "scale": args.scale}
    save_weights(args.out, {"meta": network_meta(spec, grown_arch, **extra), "state_dict": grown.state_dict()})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
