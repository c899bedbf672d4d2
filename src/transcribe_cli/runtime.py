"""Which runtime runs a model's frontend and network: torch, onnxruntime on a format-2
ONNX graph (audio → activations, :mod:`transcribe_cli.onnx_export`) with numpy only, or numpy
alone for a model written in numpy (``nmf``).

``--runtime`` (:data:`RUNTIMES`):

- ``auto`` (the default): numpy when the model runs on numpy (:attr:`ModelSpec.numpy_inference`),
  its frontend has a numpy form (:attr:`FrontendSpec.numpy_factory`) and ``--device`` is ``auto``
  or ``cpu`` (the model computes on the CPU anyway); else onnxruntime when the resolved model has a matching audio graph —
  the model's bundled one (:attr:`transcribe_cli.specs.WeightsSource.onnx`, ``piano``) or the
  ``--model FILE.onnx`` itself — and the inference runs on the CPU; torch otherwise. Matching:
  the graph was exported from the very weights file in use (its ``source_sha256``), for the
  same model, with the frontend options in use, and onnxruntime is importable. The defaults
  follow ``benchmarks/results/memory.md``: a model ships a graph only where onnxruntime measured
  faster and leaner than torch (``piano`` and ``hppnet``; ``nmf`` runs on numpy);
- ``numpy``: numpy, or one error line saying why it cannot;
- ``onnx``: onnxruntime, or one error line saying why it cannot (and what to do);
- ``torch``: torch (a format-2 ``.onnx`` file cannot run there: it has no torch network).

Nothing here imports torch, except to ask whether a CUDA GPU is usable when one is present
(``--device auto`` on a machine with an NVIDIA device).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transcribe_cli.errors import OptionError, TranscribeError

RUNTIMES = ("auto", "torch", "onnx", "numpy")
#: metadata ``format`` of an audio → activations graph
AUDIO_GRAPH_FORMAT = 2

log = logging.getLogger(__name__)


def check_runtime(name: str) -> str:
    """``name`` lower-cased, or one error line listing :data:`RUNTIMES`."""
    value = (name or "auto").lower()
    if value not in RUNTIMES:
        raise OptionError(f"unknown runtime {name!r}", f"use one of {', '.join(RUNTIMES)}")
    return value


@dataclass(frozen=True)
class Choice:
    """The runtime picked: ``model`` is the audio model (numpy in and out) that runs it — an
    :class:`~transcribe_cli.models.onnx_runtime.OnnxAudioModel` for onnxruntime, an
    :class:`~transcribe_cli.inference.ArrayModel` for numpy — ``None`` for torch; ``reason``
    says why (for ``--verbose``)."""

    runtime: str
    model: Any = None
    reason: str = ""


def _cuda_present() -> bool:
    """Whether an NVIDIA GPU may be usable (device nodes visible, not hidden by CUDA_VISIBLE_DEVICES)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return os.path.exists("/dev/nvidia0") or os.path.exists("/dev/nvidiactl")


def _cpu_inference(device: str) -> tuple[bool, str]:
    """Whether ``--device`` means the CPU here (``auto`` asks torch only when a GPU is present)."""
    name = (device or "auto").lower()
    if name == "cpu":
        return True, ""
    if name == "auto":
        if not _cuda_present():
            return True, ""
        import torch

        if not torch.cuda.is_available():
            return True, ""
    return False, f"--device {device} runs on a GPU, and onnxruntime runs the audio graph on the CPU here"


def _bundled_graph(spec: Any) -> Path | None:
    from transcribe_cli.weights.hub import bundled_path

    location = getattr(spec.weights, "onnx", None)
    if not location:
        return None
    try:
        return bundled_path(location)
    except TranscribeError:
        return None


def _open(path: Path, threads: int | None) -> tuple[Any, dict[str, Any]]:
    from transcribe_cli.models.onnx_runtime import first_line, open_session, require_module, session_metadata
    from transcribe_cli.workers import usable_cores

    ort = require_module("onnxruntime", "--runtime onnx")
    try:
        session = open_session(ort, path, threads or usable_cores())
    except Exception as exc:
        raise TranscribeError(f"cannot load ONNX model {path}: {first_line(exc)}", "is it a valid .onnx file?") from None
    return session, session_metadata(session, str(path))


def _mismatch(meta: dict[str, Any], resolved: Any, weights: Path | None) -> str:
    """Why the graph of ``meta`` does not compute the resolved model ('' when it does)."""
    from transcribe_cli.weights.hub import file_digest

    spec = resolved.model_spec
    if meta.get("format") != AUDIO_GRAPH_FORMAT:
        return "it holds the network only (format 1), the frontend runs in torch"
    if meta.get("model") != spec.name:
        return f"it was exported for model {meta.get('model')!r}, not {spec.name!r}"
    if weights is not None and meta.get("source_sha256") != file_digest(weights):
        return f"it was exported from other weights than {weights.name}"
    frontend = meta.get("frontend") if isinstance(meta.get("frontend"), dict) else {}
    if frontend.get("name") != resolved.frontend_spec.name:
        return f"it was exported with frontend {frontend.get('name')!r}, not {resolved.frontend_spec.name!r}"
    if dict(frontend.get("options") or {}) != {**resolved.frontend_spec.options, **resolved.frontend_options}:
        return "its frontend options differ from those given (-O)"
    if resolved.model_options:
        return "model options were given (-O), and the graph's are fixed"
    return ""


def choose_runtime(resolved: Any, runtime: str = "auto", device: str = "auto", threads: int | None = None) -> Choice:
    """The runtime for a :class:`~transcribe_cli.resolution.ResolvedTranscriber` (see the
    module docstring); with ``runtime="onnx"`` a graph that cannot be used is an error."""
    from transcribe_cli.models.onnx_runtime import OnnxAudioModel

    runtime = check_runtime(runtime)
    weights: Path | None = resolved.weights_path
    own_file = weights is not None and weights.suffix.lower() == ".onnx"
    if runtime in ("auto", "numpy") and not own_file:
        why = _numpy_mismatch(resolved, device)
        if not why:
            return Choice("numpy", _numpy_model(resolved, threads), reason="numpy (no torch)")
        if runtime == "numpy":
            raise TranscribeError(f"--runtime numpy: {why}", "use --runtime auto or torch")
    graph = weights if own_file else _bundled_graph(resolved.model_spec)
    if runtime == "torch" and not own_file:
        return Choice("torch", reason="--runtime torch")
    if graph is None:
        return _fallback(runtime, resolved, f"model {resolved.model_spec.name!r} has no ONNX graph",
                         f"export one with: transcribe export CHECKPOINT --onnx --with-frontend, "
                         f"then --model FILE.onnx; or use --runtime torch")
    cpu, why_not = _cpu_inference(device)
    if not cpu and not own_file:
        return _fallback(runtime, resolved, why_not, "use --device cpu, or --runtime torch")
    if runtime == "auto" and not own_file:
        import importlib.util

        if importlib.util.find_spec("onnxruntime") is None:
            return Choice("torch", reason="onnxruntime is not installed")
    session, meta = _open(graph, threads)
    why = _mismatch(meta, resolved, None if own_file else weights)
    if own_file:
        if why and meta.get("format") == AUDIO_GRAPH_FORMAT:
            raise TranscribeError(f"{graph}: {why}", "export it again: transcribe export CHECKPOINT --onnx --with-frontend")
        if meta.get("format") != AUDIO_GRAPH_FORMAT:  # format 1: the network behind the torch frontend
            return _fallback(runtime, resolved, f"{graph.name}: {why}",
                             "export it with: transcribe export CHECKPOINT --onnx --with-frontend", own_file=True)
        if runtime == "torch":
            raise TranscribeError(f"{graph.name} holds frontend and network as one ONNX graph: it runs on onnxruntime only",
                                  "drop --runtime torch, or pass the .pt checkpoint it was exported from")
        if not cpu:
            raise TranscribeError(f"{graph.name}: {why_not}", "use --device cpu")
    elif why:
        return _fallback(runtime, resolved, f"the bundled ONNX graph of {resolved.model_spec.name!r} does not fit: {why}",
                         "use --runtime torch")
    return Choice("onnx", OnnxAudioModel(graph, session=session, metadata=meta), reason=f"ONNX graph {graph.name}")


def _numpy_mismatch(resolved: Any, device: str) -> str:
    """Why the resolved model cannot run on numpy ('' when it can)."""
    spec = resolved.model_spec
    if not spec.numpy_inference:
        return f"model {spec.name!r} has no numpy implementation"
    if resolved.frontend_spec.numpy_factory is None:
        return f"frontend {resolved.frontend_spec.name!r} has no numpy implementation"
    if (device or "auto").lower() not in ("auto", "cpu"):
        return f"--device {device}: numpy runs on the CPU"
    return ""


def _numpy_model(resolved: Any, threads: int | None) -> Any:
    """The frontend's numpy form and the model, as one audio model."""
    from transcribe_cli.inference import ArrayModel

    frontend = resolved.frontend_spec.numpy_factory(**resolved.frontend_options)
    model = resolved.model_spec.factory(resolved.weights_path, **resolved.model_options)
    return ArrayModel(frontend, model, threads=threads)


def _fallback(runtime: str, resolved: Any, why: str, hint: str, own_file: bool = False) -> Choice:
    """torch, with ``why`` logged; an error under ``--runtime onnx``."""
    if runtime == "onnx":
        raise TranscribeError(f"--runtime onnx: {why}", hint)
    log.debug("runtime torch for %s: %s", resolved.model_spec.name, why)
    return Choice("torch", reason=why)
