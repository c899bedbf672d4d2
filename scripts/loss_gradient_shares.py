"""How much of the shared layers' gradient each loss part gives, for a training config.

    python scripts/loss_gradient_shares.py configs/piano-balanced-cpu.yaml --pieces 6 --batches 6 [--equal]

Builds the run as ``transcribe train`` would (same data, augmentation, initial weights; the
first ``--pieces`` training pieces only, no validation), then, for ``--batches`` batches,
takes the gradient of each loss part alone (weighted as the config weights it, or with every
weight 1 with ``--equal``) with respect to the *shared* parameters — those that more than one
part reaches, i.e. the trunk, not the heads — and prints the mean L2 norm per part. A part
whose norm is a small fraction of the others' barely shapes the shared features: its head
learns on top of features trained for the other outputs (why the piano model's defaults weight
onset and offset up: ``transcribe_cli.models.PIANO_LOSS_WEIGHTS``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from transcribe_cli.training.config import build_config
from transcribe_cli.training.loop import Trainer, batch_rng


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="a transcribe train config (YAML)")
    parser.add_argument("--pieces", type=int, default=6, help="training pieces to draw batches from")
    parser.add_argument("--batches", type=int, default=6, help="batches to average over")
    parser.add_argument("--equal", action="store_true", help="every loss weight 1 instead of the config's")
    parser.add_argument("--init-weights", help="start from this weight file instead of the config's")
    args = parser.parse_args()

    from transcribe_cli.registry import get_registry

    flags = {"validation_split": "", "threads": 1, "jobs": 1}
    if args.init_weights:
        flags["init_weights"] = args.init_weights
    config = build_config(flags, config_file=args.config)
    defaults = get_registry().model(config.model).train_defaults
    config = build_config(flags, config_file=args.config, model_defaults=defaults)
    config.dataset_options["limit"] = args.pieces
    trainer = Trainer(config, Path(tempfile.mkdtemp()) / "run", reporter=print)
    trainer._prepare_data()
    network = trainer.network
    network.train()
    params = dict(network.named_parameters())
    norms: dict[str, list[float]] = {}
    for step in range(args.batches):
        batch = trainer.source.batch(batch_rng(config, step, 0), config.batch_size)
        audio = torch.from_numpy(batch["audio"])
        with torch.no_grad():
            features = trainer.frontend(audio)[:, : trainer.segment_frames]
        logits = network.forward_logits(features)
        grads: dict[str, dict[str, torch.Tensor]] = {}
        for key in logits:
            weight = 1.0 if args.equal else float(config.loss_weights.get(key, 1.0))
            targets = {k: torch.from_numpy(batch[k]) for k in batch if k != "audio"}
            loss, _ = network.loss({key: logits[key]}, targets, weights={key: weight},
                                   focal_gamma=config.focal_gamma, focal_alpha=config.focal_alpha,
                                   dice_weight=config.dice_weight)
            values = torch.autograd.grad(loss, list(params.values()), retain_graph=True, allow_unused=True)
            grads[key] = {name: g for name, g in zip(params, values) if g is not None and bool(g.abs().sum() > 0)}
        shared = [name for name in params if sum(name in g for g in grads.values()) > 1]
        for key, g in grads.items():
            total = sum(float((g[name] ** 2).sum()) for name in shared if name in g)
            norms.setdefault(key, []).append(total ** 0.5)
        print(f"batch {step}: " + ", ".join(f"{k} {v[-1]:.4g}" for k, v in norms.items()), flush=True)
    print(f"shared parameters: {len(shared)} tensors; mean gradient norm per part "
          f"({'weights 1' if args.equal else 'config weights'}):")
    for key, values in norms.items():
        print(f"  {key:9s} {sum(values) / len(values):.4g}")


if __name__ == "__main__":
    main()
