"""Where an audio-to-activations ONNX graph (format 2, e.g. the bundled ``piano`` graph) spends
its time on the CPU: onnxruntime's own profiler over a few runs of one window, summed per operator
type and per node, with the median and best wall time of a run.

    python benchmarks/profile_onnx.py src/transcribe_cli/data/piano_synth.onnx --threads 1
    python benchmarks/profile_onnx.py src/transcribe_cli/data/piano_synth.onnx --int8

    python benchmarks/profile_onnx.py NEW.onnx --against OLD.onnx --seconds 25.72 --runs 15

``--against OLD`` times the two graphs on the same input instead, interleaved (A B A B …, no
profiler), and prints each one's median and the ratio.
``--int8`` also builds a statically quantised copy (onnxruntime's ``quantize_static``: QDQ int8
convolutions of the network, weights per channel, activations calibrated on the bundled example;
the frontend and the pedal head left in float) and profiles it the same way, to compare.
The input is ``--seconds`` of random noise at the graph's sample rate (the cost of a
convolutional graph does not depend on the values).
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pop909_003.flac"


def session(path: Path, threads: int, profile_prefix: str | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def sample_rate_of(path: Path, opened=None) -> int:
    """The graph's sample rate (its metadata), from ``opened`` when given."""
    from transcribe_cli.models.onnx_runtime import session_metadata

    return int(session_metadata(opened or session(path, 1), str(path))["frontend"]["sample_rate"])


def noise(seconds: float, rate: int) -> np.ndarray:
    """``[1, samples]`` of seeded noise, the input every timing here runs on."""
    return (0.1 * np.random.default_rng(0).standard_normal((1, int(seconds * rate)))).astype(np.float32)


def profile(path: Path, threads: int, seconds: float, runs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        s = session(path, threads, str(Path(tmp) / "profile"))
        audio = noise(seconds, sample_rate_of(path, s))
        name = s.get_inputs()[0].name
        s.run(None, {name: audio})  # warm-up (not in the totals below: divided by runs + 1)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            s.run(None, {name: audio})
            times.append(time.perf_counter() - start)
        events = json.loads(Path(s.end_profiling()).read_text())
    per_op: collections.Counter = collections.Counter()
    per_node: collections.Counter = collections.Counter()
    shapes = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            node = event["name"][: -len("_kernel_time")]
            per_op[event["args"]["op_name"]] += event["dur"] / (runs + 1) / 1e3
            per_node[node] += event["dur"] / (runs + 1) / 1e3
            shapes[node] = [list(t.values())[0] for t in event["args"].get("input_type_shape", [])][:2]
    return {"median_s": statistics.median(times), "best_s": min(times), "per_op_ms": per_op,
            "per_node_ms": per_node, "shapes": shapes}


def quantized_copy(path: Path, out: Path) -> Path:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from transcribe_cli.io.audio import load_audio

    rate = sample_rate_of(path)
    prepared = out.with_suffix(".pre.onnx")
    quant_pre_process(str(path), str(prepared), skip_symbolic_shape=True)
    model = onnx.load(str(prepared))
    keep_float = [n.name for n in model.graph.node if n.name.startswith("/network/frontend") or "pedal" in n.name]
    audio = load_audio(EXAMPLE, rate)
    audio = audio / max(float(np.abs(audio).max()), 1e-9)
    window = 8 * rate

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = [{"audio": audio[i : i + window][None].astype(np.float32)}
                          for i in range(0, len(audio) - window, window // 2)]

        def get_next(self):
            return self.items.pop() if self.items else None

    quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ, nodes_to_exclude=keep_float,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                    op_types_to_quantize=["Conv"])
    return out


def interleaved(paths: list[Path], threads: int, seconds: float, runs: int) -> list[list[float]]:
    """Wall seconds of ``runs`` runs of each graph on the same noise, alternating between them."""
    sessions = [session(path, threads) for path in paths]
    audio = noise(seconds, sample_rate_of(paths[0], sessions[0]))
    feeds = [{s.get_inputs()[0].name: audio} for s in sessions]
    for s, feed in zip(sessions, feeds):
        s.run(None, feed)  # warm-up
    times: list[list[float]] = [[] for _ in paths]
    for _ in range(runs):
        for i, (s, feed) in enumerate(zip(sessions, feeds)):
            start = time.perf_counter()
            s.run(None, feed)
            times[i].append(time.perf_counter() - start)
    return times


def report(label: str, result: dict, top: int) -> None:
    total = sum(result["per_op_ms"].values())
    print(f"## {label}: a run {result['median_s'] * 1e3:.1f} ms median, {result['best_s'] * 1e3:.1f} ms best\n")
    print("| operator | ms a run | share |\n|---|---:|---:|")
    for op, ms in result["per_op_ms"].most_common(top):
        print(f"| {op} | {ms:.1f} | {100 * ms / total:.1f} % |")
    print("\n| node | ms a run | input shapes |\n|---|---:|---|")
    for node, ms in result["per_node_ms"].most_common(top):
        print(f"| `{node}` | {ms:.1f} | {result['shapes'].get(node)} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("graph", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=22.0, help="input length (a 20-s window and its margins)")
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--int8", action="store_true", help="also profile a statically quantised int8 copy")
    parser.add_argument("--against", type=Path, help="time this graph against GRAPH instead, interleaved")
    args = parser.parse_args()
    if args.against is not None:
        new, old = interleaved([args.graph, args.against], args.threads, args.seconds, args.runs)
        for path, times in ((args.against, old), (args.graph, new)):
            print(f"{path}: {statistics.median(times) * 1e3:.1f} ms median, {min(times) * 1e3:.1f} ms best "
                  f"({len(times)} runs of {args.seconds:g} s, {args.threads} thread(s))")
        print(f"ratio new / old: {statistics.median(new) / statistics.median(old):.3f} (medians)")
        return
    report(f"{args.graph.name}, {args.threads} thread(s)", profile(args.graph, args.threads, args.seconds, args.runs),
           args.top)
    if args.int8:
        with tempfile.TemporaryDirectory() as tmp:
            quantized = quantized_copy(args.graph, Path(tmp) / "int8.onnx")
            report(f"int8 copy, {args.threads} thread(s)", profile(quantized, args.threads, args.seconds, args.runs),
                   args.top)


if __name__ == "__main__":
    main()
