"""Copy a training run's best weights into the package (meta + state_dict only).

    python scripts/bundle_weights.py runs/piano-synth/best.pt src/transcribe_cli/data/piano_synth.pt

Prints what the model's spec and card need: the tuned decoder options (put them in the
spec's ``decoder_options``; a test keeps them equal to the file's meta), the sha256, the
size and the parameter count.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    checkpoint = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    state = {key: value.clone() for key, value in checkpoint["state_dict"].items()}
    meta = dict(checkpoint["meta"])
    from transcribe_cli.models.neural import save_weights

    save_weights(args.out, {"meta": meta, "state_dict": state})
    data = args.out.read_bytes()
    parameters = sum(v.numel() for k, v in state.items() if not k.endswith(("running_mean", "running_var",
                                                                             "num_batches_tracked")))
    print(json.dumps({"decoder_options": meta.get("decoder_options"), "sha256": hashlib.sha256(data).hexdigest(),
                      "size": len(data), "parameters": parameters, "validation": meta.get("validation"),
                      "trained": meta.get("trained")}, indent=1, default=str))


if __name__ == "__main__":
    main()
