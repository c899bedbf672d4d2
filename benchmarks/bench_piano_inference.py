"""The ``piano`` network's inference path (``InferenceTrunk``) against its training path,
in-process, one window (1,144 frames = 20 s + context), one thread, median CPU seconds.

    python benchmarks/bench_piano_inference.py [RUNS]
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import torch


def main(runs: int = 7) -> None:
    from transcribe_cli.pipeline import Transcriber

    torch.set_num_threads(1)
    net = Transcriber("piano").model.eval()
    x = torch.rand(1, 1144, 352) * 6

    def training_path(features: torch.Tensor) -> dict[str, torch.Tensor]:
        trunk = net.trunk(features)
        logits = net.heads(trunk)
        logits["pedal"] = net.pedal(trunk)
        return logits

    def median_cpu(fn) -> float:
        fn(x)
        times = []
        for _ in range(runs):
            start = time.process_time()
            fn(x)
            times.append(time.process_time() - start)
        return statistics.median(times)

    with torch.inference_mode():
        old, new = [], []
        for _ in range(2):  # interleaved
            old.append(median_cpu(training_path))
            new.append(median_cpu(net.forward_logits))
        a, b = training_path(x), net.forward_logits(x)
        diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"training path {min(old):.3f} s, inference path {min(new):.3f} s per window "
          f"(ratio {min(old) / min(new):.2f}x; max logit difference {diff:.1e}; load {load})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
