"""Export a trained neural checkpoint to ONNX (``transcribe export RUN --onnx``).

The exported graph is the network's :meth:`~transcribe_cli.models.neural.TranscriptionNet.forward`:
one input ``features`` ``[batch, time, n_bins]`` (float32, the frontend's output) and one
output per key of ``network.outputs`` (``onset``, ``frame``, …), named by the key,
``[batch, time, 88]`` probabilities. Batch and time are dynamic axes. The frontend and the
decoder stay outside the graph: they run in transcribe-cli, as for the torch network.

The model's ``metadata_props`` entry ``transcribe_cli`` holds a JSON object with what
inference needs without torch or the checkpoint (:data:`ONNX_FORMAT` = 1)::

    {"format": 1, "model": NAME, "architecture": {...},
     "frontend": {"name": "cqt", "sample_rate": 16000, "hop_length": 320, "n_bins": 352},
     "decoder": "onset-peaks", "decoder_options": {...},   # the latter only when tuned
     "outputs": ["onset", "frame", ...], "context_frames": 16, "audio_normalization": "peak",
     "transcribe_cli": VERSION, "source_sha256": SHA256 of the checkpoint, "opset": 17}

Nothing is written unless the graph passes ``onnx.checker`` and onnxruntime reproduces the
torch network on random features of three lengths (up to one inference window) and two batch
sizes (``rtol = atol = 1e-4``). Instance norms are exported as explicit reductions, one axis at
a time (see :func:`_precise_norms`), so long windows stay as exact as in torch.
Uses the TorchScript exporter (``dynamo=False``); torch's dynamo exporter does not handle
these recurrent networks reliably.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from transcribe_cli.errors import TranscribeError
from transcribe_cli.weights.hub import file_digest
from transcribe_cli.inference import DEFAULT_WINDOW_SECONDS
from transcribe_cli.models.onnx_runtime import META_KEY, first_line, require_module
from transcribe_cli.registry import Registry, get_registry

ONNX_FORMAT = 1
INPUT_NAME = "features"
DEFAULT_OPSET = 17
TOLERANCE = 1e-4  # rtol and atol of the onnxruntime vs torch check (probabilities)
# (batch, frames) of the check inputs: two lengths and batch sizes, neither the traced one;
# then one window of the length inference uses (DEFAULT_WINDOW_SECONDS of frames)
CHECK_SHAPES = ((2, 37), (1, 101))
TRACE_SHAPE = (1, 64)  # batch 1: what the exporter recommends for LSTMs with dynamic axes


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`export_and_check` wrote and measured."""

    path: Path
    size: int
    max_abs_diff: float  # largest |onnxruntime - torch| over the check inputs and outputs
    model: str


def _ordered(network: Any, keys: tuple[str, ...]) -> Any:
    """``network`` returning its outputs as a tuple in ``keys`` order (the ONNX outputs)."""
    from torch import nn

    class Ordered(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, features):
            result = self.network(features)
            return tuple(result[key] for key in keys)

    return Ordered().eval()


def onnx_metadata(spec: Any, frontend: Any, checkpoint_meta: dict[str, Any], outputs: tuple[str, ...],
                  *, source_sha256: str, opset: int) -> dict[str, Any]:
    """The ``transcribe_cli`` metadata object of an exported model (see the module docstring)."""
    from transcribe_cli import __version__

    meta: dict[str, Any] = {
        "format": ONNX_FORMAT,
        "model": spec.name,
        "architecture": {**spec.architecture, **dict(checkpoint_meta.get("architecture") or {})},
        "frontend": {"name": frontend.name, "sample_rate": frontend.sample_rate,
                     "hop_length": frontend.hop_length, "n_bins": frontend.n_bins},
        "decoder": checkpoint_meta.get("decoder") or spec.decoder,
        "outputs": list(outputs),
        "context_frames": spec.context_frames_at(frontend.frame_rate),
        "audio_normalization": spec.audio_normalization,
        "transcribe_cli": __version__,
        "source_sha256": source_sha256,
        "opset": opset,
    }
    if isinstance(checkpoint_meta.get("decoder_options"), dict):
        meta["decoder_options"] = dict(checkpoint_meta["decoder_options"])
    return meta


def _precise_norms(network: Any) -> Any:
    """A copy of ``network`` whose instance norms reduce one axis at a time.

    onnxruntime's float32 ``InstanceNormalization`` (like a ``ReduceMean`` over several axes)
    sums naively: over a 20 s window (~1000 frames x 352 bins per channel) hppnet's outputs
    drift ~1e-4 from torch's, enough to flip activations that sit on a decoder threshold.
    The replacement (ReduceMean per axis, Sub, Mul, Sqrt, Div; same parameters) keeps them
    within ~1e-6 for ~20 % more onnxruntime time on hppnet; float64 statistics would cost 60 %."""
    import copy

    import torch
    from torch import nn

    class AxisWiseInstanceNorm(nn.Module):
        def __init__(self, norm: Any) -> None:
            super().__init__()
            self.eps, self.weight, self.bias = norm.eps, norm.weight, norm.bias

        def forward(self, x):
            dims = tuple(range(2, x.dim()))
            centred = x - _mean(x, dims)
            y = centred / torch.sqrt(_mean(centred * centred, dims) + self.eps)
            if self.weight is not None:
                shape = (1, -1, *([1] * len(dims)))
                y = y * self.weight.reshape(shape) + self.bias.reshape(shape)
            return y

    def _mean(x, dims):
        for dim in reversed(dims):  # one axis at a time: short float32 sums, small rounding error
            x = x.mean(dim=dim, keepdim=True)
        return x

    norms = (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)
    network = copy.deepcopy(network)
    for parent in list(network.modules()):
        for child_name, child in parent.named_children():
            if isinstance(child, norms) and not child.track_running_stats:
                setattr(parent, child_name, AxisWiseInstanceNorm(child))
    return network


def _trace(network: Any, n_bins: int, opset: int, name: str) -> bytes:
    import torch

    keys = tuple(network.outputs)
    network = _precise_norms(network)
    dynamic = {key: {0: "batch", 1: "time"} for key in (INPUT_NAME, *keys)}
    example = torch.rand(*TRACE_SHAPE, n_bins) * 8
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # legacy-exporter deprecation, tracer and LSTM notices
            torch.onnx.export(
                _ordered(network, keys), (example,), buffer, input_names=[INPUT_NAME],
                output_names=list(keys), dynamic_axes=dynamic, opset_version=opset, dynamo=False,
            )
    except Exception as exc:
        raise TranscribeError(f"cannot export model {name!r} to ONNX (opset {opset}): {first_line(exc)}",
                              "try another --opset") from None
    return buffer.getvalue()


def _check(network: Any, model_bytes: bytes, n_bins: int, name: str, window_frames: int) -> float:
    """Largest |onnxruntime - torch| on random features; raises when beyond :data:`TOLERANCE`."""
    import torch

    ort = require_module("onnxruntime", "checking the exported model")
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    options.log_severity_level = 3
    session = ort.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for batch, frames in (*CHECK_SHAPES, (1, window_frames)):
        features = torch.rand(batch, frames, n_bins, generator=generator) * 8
        with torch.no_grad():
            expected = network(features)
        try:
            got = session.run(None, {INPUT_NAME: features.numpy()})
        except Exception as exc:
            raise TranscribeError(f"exported model {name!r} fails in onnxruntime on {frames} frames: "
                                  f"{first_line(exc)}") from None
        for key, value in zip(network.outputs, got):
            reference = expected[key].numpy()
            if value.shape != reference.shape:
                raise TranscribeError(f"exported model {name!r} gives {key} of shape {value.shape} on "
                                      f"{frames} frames, torch {reference.shape}",
                                      "the network's time axis does not export dynamically")
            worst = max(worst, float(np.max(np.abs(value - reference))) if value.size else 0.0)
            if not np.allclose(value, reference, rtol=TOLERANCE, atol=TOLERANCE):
                raise TranscribeError(f"exported model {name!r} disagrees with torch on {key} "
                                      f"(max abs difference {worst:.2e} > {TOLERANCE:g})",
                                      "nothing was written; try another --opset")
    return worst


def export_and_check(checkpoint: str | Path, out: str | Path, *, registry: Registry | None = None,
                     opset: int = DEFAULT_OPSET) -> OnnxExport:
    """Export the network in ``checkpoint`` to ``out`` (written atomically) after checking it."""
    onnx = require_module("onnx", "ONNX export")
    require_module("onnxruntime", "ONNX export")
    from transcribe_cli.io.fileio import atomic_write
    from transcribe_cli.models.neural import load_checkpoint, load_network

    checkpoint, out = Path(checkpoint), Path(out)
    registry = registry or get_registry()
    meta = load_checkpoint(checkpoint)["meta"]
    meta = dict(meta) if isinstance(meta, dict) else {}
    name = meta.get("model")
    if not isinstance(name, str) or not name:
        raise TranscribeError(f"{checkpoint} does not say which model it holds (no meta['model'])")
    spec = registry.model(name)
    network = load_network(spec, checkpoint)
    frontend = registry.frontend(meta["frontend"] if isinstance(meta.get("frontend"), str) else spec.frontend)
    outputs = tuple(network.outputs)

    model = onnx.load_from_string(_trace(network, frontend.n_bins, opset, name))
    metadata = onnx_metadata(spec, frontend, meta, outputs, source_sha256=file_digest(checkpoint), opset=opset)
    entry = model.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(metadata, sort_keys=True)
    model.doc_string = f"transcribe-cli model {name!r} exported from {checkpoint.name}"
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise TranscribeError(f"exported model {name!r} is not valid ONNX: {first_line(exc)}") from None
    data = model.SerializeToString()
    window_frames = round(DEFAULT_WINDOW_SECONDS * frontend.sample_rate / frontend.hop_length)
    worst = _check(network, data, frontend.n_bins, name, window_frames)
    with atomic_write(out, "wb") as f:
        f.write(data)
    return OnnxExport(out, len(data), worst, name)


def export_onnx(checkpoint: str | Path, out: str | Path, *, registry: Registry | None = None,
                opset: int = DEFAULT_OPSET) -> Path:
    """Export ``checkpoint`` (a neural checkpoint, see :mod:`~transcribe_cli.models.neural`) to
    the ONNX file ``out``; returns its path. Raises :class:`TranscribeError`."""
    return export_and_check(checkpoint, out, registry=registry, opset=opset).path
