"""Copy a training run's best weights into the package (meta + state_dict only), and beside
them the same weights as one ONNX graph, frontend included (``OUT`` with ``.onnx``; format 2
of :mod:`transcribe_cli.onnx_export`, checked against torch on random audio, synthetic tones
and ``--check-audio`` before it is written), which ``--runtime auto`` runs on onnxruntime
without torch.

    python scripts/bundle_weights.py runs/piano-synth/best.pt src/transcribe_cli/data/piano_synth.pt

``--no-onnx`` writes the .pt only (a model left on torch: see
``benchmarks/results/memory.md``). A model's spec names its graph in
``WeightsSource.onnx``; a test keeps the graph's ``source_sha256`` equal to the .pt's digest,
so bundling new weights without the graph fails the tests.

Prints what the model's spec and card need: the tuned decoder options (put them in the
spec's ``decoder_options``; a test keeps them equal to the file's meta), the sha256, the
size and the parameter count, and the ONNX file's size and its largest difference from torch.
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
    parser.add_argument("--no-onnx", action="store_true", help="write the .pt only")
    parser.add_argument("--check-audio", type=Path, default=Path(__file__).resolve().parents[1] / "examples"
                        / "pop909_003.flac", help="a recording the ONNX graph is also checked on")
    args = parser.parse_args()
    checkpoint = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    state = {key: value.clone() for key, value in checkpoint["state_dict"].items()}
    meta = dict(checkpoint["meta"])
    from transcribe_cli.models.neural import save_weights

    save_weights(args.out, {"meta": meta, "state_dict": state})
    data = args.out.read_bytes()
    parameters = sum(v.numel() for k, v in state.items() if not k.endswith(("running_mean", "running_var",
                                                                             "num_batches_tracked")))
    report = {"decoder_options": meta.get("decoder_options"), "sha256": hashlib.sha256(data).hexdigest(),
              "size": len(data), "parameters": parameters, "validation": meta.get("validation"),
              "trained": meta.get("trained")}
    if not args.no_onnx:
        from transcribe_cli.onnx_export import export_and_check

        graph = export_and_check(args.out, args.out.with_suffix(".onnx"), with_frontend=True,
                                 check_audio=args.check_audio if args.check_audio.is_file() else None)
        report["onnx"] = {"path": str(graph.path), "size": graph.size, "max_abs_diff": graph.max_abs_diff}
    print(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
