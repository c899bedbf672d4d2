"""Export a trained neural checkpoint to ONNX (``transcribe export RUN --onnx [--with-frontend]``).

Two formats (``metadata["format"]``):

- **1** (the default): the network's :meth:`~transcribe_cli.models.neural.TranscriptionNet.forward`,
  one input ``features`` ``[batch, time, n_bins]`` (float32, the frontend's output); the
  frontend runs in torch beside it (:class:`~transcribe_cli.models.onnx_runtime.OnnxNetwork`).
- **2** (``--with-frontend``): frontend and network in one graph, one input ``audio``
  ``[batch, samples]`` (float32 at the frontend's rate, normalised as the model expects);
  inference needs onnxruntime and numpy only, no torch
  (:class:`~transcribe_cli.models.onnx_runtime.OnnxAudioModel`). The bundled ``piano``
  weights ship with one (``scripts/bundle_weights.py``).

A format-2 graph of a ``window_independent`` network (``piano``) runs the network on the
audio's frames less ``network_trim`` at each end, the frontend's margin
(:func:`transcribe_cli.inference.network_trim`): its outputs have ``2 · network_trim``
fewer frames than the audio (the input must have more than that), and
:class:`~transcribe_cli.models.onnx_runtime.OnnxAudioModel` pads them back with zeros.

Both have one output per key of ``network.outputs`` (``onset``, ``frame``, …), named by the
key, ``[batch, time, 88]`` probabilities (``[batch, time, 1]`` for the pedal); batch and
time (samples) are dynamic axes. The decoder stays outside the graph. The network traced is
its :meth:`~transcribe_cli.models.neural.TranscriptionNet.exportable` form (``piano``: its
folded inference path).

The model's ``metadata_props`` entry ``transcribe_cli`` holds a JSON object with what
inference needs without torch or the checkpoint::

    {"format": 1 or 2, "model": NAME, "architecture": {...},
     "frontend": {"name": "cqt", "sample_rate": 16000, "hop_length": 320, "n_bins": 352,
                  # format 2 only: the samples each side of a frame that reach it, the options
                  "context_samples": 22679, "options": {"log_gain": 1000.0}},
     "network_trim": 72,   # format 2, a window_independent network only: see below
     "input": "features" or "audio",
     "decoder": "onset-peaks", "decoder_options": {...},   # the latter only when tuned
     "outputs": ["onset", "frame", ...], "context_frames": 16, "audio_normalization": "peak",
     "transcribe_cli": VERSION, "source_sha256": SHA256 of the checkpoint, "opset": 17}

Nothing is written unless the graph passes ``onnx.checker`` and onnxruntime reproduces
torch (``rtol = atol = 1e-4``; a model listed in :data:`MODEL_TOLERANCE` up to its own
tolerance, provided its default decoder finds the same notes in both): format 1 on random features of three lengths (up to one
inference window) and two batch sizes; format 2 on random audio of three lengths and two
batch sizes, one inference chunk of synthetic piano tones and, given ``check_audio``, one of
a real recording. Instance norms are exported as explicit reductions, one axis at
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
AUDIO_FORMAT = 2  # frontend + network (``--with-frontend``)
INPUT_NAME = "features"
AUDIO_INPUT = "audio"
DEFAULT_OPSET = 17
TOLERANCE = 1e-4  # rtol and atol of the onnxruntime vs torch check (probabilities)
#: models whose graphs may differ from torch by more than :data:`TOLERANCE` (up to the value
#: here), and only where the notes decoded from them are the same. ``hppnet``: its instance
#: norms over whole windows and BiLSTM recurrences over 1,344 frames amplify float32 summation
#: order (onnxruntime's kernels vs oneDNN's) to 1.9e-3 on the check's synthetic piano tones,
#: while random audio and the example recording stay within 2e-5; the decoded notes of every
#: check input (the tones included), of ``examples/pop909_003.flac`` and of its 60-s loop are
#: identical (``benchmarks/results/memory.md``). A difference that changed a note would still
#: fail the export.
MODEL_TOLERANCE: dict[str, float] = {"hppnet": 3e-3}
#: "the same notes" (:func:`_notes_check`): same count, pitches and velocities, onsets and
#: offsets within this many seconds (0.1 ms: the CSV's resolution; sub-frame onset refinement
#: moves ~1e-7 s with the activations, a frame is 20 ms)
NOTE_TIME_TOLERANCE = 1e-4
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
                  *, source_sha256: str, opset: int, audio_frontend: Any = None, trim: int = 0) -> dict[str, Any]:
    """The ``transcribe_cli`` metadata object of an exported model (see the module docstring);
    ``audio_frontend``: the frontend module in the graph (format 2); ``trim``: the frames at
    each end of the audio's frames the graph gives no outputs for (format 2)."""
    from transcribe_cli import __version__

    meta: dict[str, Any] = {
        "format": ONNX_FORMAT if audio_frontend is None else AUDIO_FORMAT,
        "input": INPUT_NAME if audio_frontend is None else AUDIO_INPUT,
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
    if audio_frontend is not None:
        meta["frontend"].update(context_samples=int(audio_frontend.context_samples), options=dict(frontend.options))
        if trim:
            meta["network_trim"] = int(trim)
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


def _with_frontend(frontend: Any, network: Any, trim: int = 0) -> Any:
    """``audio -> network(frontend(audio)[:, trim:-trim])`` as one module (what a format-2
    graph computes; ``trim`` 0: all the frames)."""
    from torch import nn

    class AudioGraph(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.frontend, self.network = frontend, network

        def forward(self, audio):
            features = self.frontend(audio)
            return self.network(features[:, trim:-trim] if trim else features)

    return AudioGraph().eval()


def _trace(network: Any, n_bins: int, opset: int, name: str, frontend: Any = None, trim: int = 0) -> bytes:
    """The ONNX bytes of ``network`` (its :meth:`exportable` form), behind ``frontend`` when
    given (the network then runs on its features less ``trim`` frames at each end)."""
    import torch

    keys = tuple(network.outputs)
    exportable = getattr(network, "exportable", None)
    network = _precise_norms(exportable() if exportable is not None else network)
    if frontend is None:
        input_name, example = INPUT_NAME, torch.rand(*TRACE_SHAPE, n_bins) * 8
    else:
        network = _with_frontend(frontend, network, trim)
        input_name = AUDIO_INPUT
        example = (torch.rand(TRACE_SHAPE[0], (TRACE_SHAPE[1] + 2 * trim) * frontend.hop_length) - 0.5) * 0.5
    dynamic = {key: {0: "batch", 1: "time"} for key in keys}
    dynamic[input_name] = {0: "batch", 1: "time" if frontend is None else "samples"}
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # legacy-exporter deprecation, tracer and LSTM notices
            torch.onnx.export(
                _ordered(network, keys), (example,), buffer, input_names=[input_name],
                output_names=list(keys), dynamic_axes=dynamic, opset_version=opset, dynamo=False,
            )
    except Exception as exc:
        raise TranscribeError(f"cannot export model {name!r} to ONNX (opset {opset}): {first_line(exc)}",
                              "try another --opset") from None
    return buffer.getvalue()


def _feature_inputs(n_bins: int, window_frames: int) -> list[tuple[str, Any]]:
    """Format 1's check inputs: random features of :data:`CHECK_SHAPES` and one window."""
    import torch

    generator = torch.Generator().manual_seed(0)
    return [(f"{frames} frames", torch.rand(batch, frames, n_bins, generator=generator) * 8)
            for batch, frames in (*CHECK_SHAPES, (1, window_frames))]


def piano_tones(samples: int, sample_rate: int, seed: int = 0) -> np.ndarray:
    """Music-like check audio: 24 decaying harmonic tones at random keys and onsets, peak 0.9."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / sample_rate
    audio = np.zeros(samples)
    for _ in range(24):
        key, onset = rng.integers(21, 100), rng.uniform(0, max(t[-1] - 0.2, 0.0))
        f0, on = 440.0 * 2 ** ((key - 69) / 12), t >= onset
        for k in range(1, 9):
            if k * f0 < sample_rate / 2:
                audio[on] += np.sin(2 * np.pi * k * f0 * (t[on] - onset)) * np.exp(-3 * (t[on] - onset)) / k
    return (0.9 * audio / max(np.max(np.abs(audio)), 1e-9)).astype(np.float32)


def _audio_inputs(frontend: Any, chunk_samples: int, normalization: str | None,
                  check_audio: Path | None, trim: int = 0) -> list[tuple[str, Any]]:
    """Format 2's check inputs: random audio of :data:`CHECK_SHAPES` frames (plus the ``2 ·
    trim`` frames a trimmed graph drops; not a whole number of hops), one inference chunk of
    :func:`piano_tones` and, given, one of ``check_audio``."""
    import torch

    from transcribe_cli.inference import normalize_audio

    generator = torch.Generator().manual_seed(0)
    hop = frontend.hop_length
    inputs = [(f"random audio of {(frames + 2 * trim) * hop + 7} samples",
               (torch.rand(batch, (frames + 2 * trim) * hop + 7, generator=generator) - 0.5) * 0.5)
              for batch, frames in CHECK_SHAPES]
    inputs.append((f"synthetic piano tones ({chunk_samples} samples)",
                   torch.from_numpy(piano_tones(chunk_samples, frontend.sample_rate))[None]))
    if check_audio is not None:
        from transcribe_cli.io.audio import load_audio

        audio = normalize_audio(load_audio(check_audio, frontend.sample_rate), normalization, frontend.sample_rate)
        chunk = np.zeros(chunk_samples, dtype=np.float32)
        chunk[: min(audio.size, chunk_samples)] = audio[:chunk_samples]
        inputs.append((f"{Path(check_audio).name} ({chunk_samples} samples)", torch.from_numpy(chunk)[None]))
    return inputs


def _check(reference: Any, model_bytes: bytes, inputs: list[tuple[str, Any]], keys: tuple[str, ...],
           name: str, input_name: str, tolerance: float = TOLERANCE,
           same_notes: Any = None) -> float:
    """Largest |onnxruntime - torch| over ``inputs`` (``reference(x) -> {key: Tensor}`` is the
    torch computation); raises when beyond ``tolerance``, or beyond :data:`TOLERANCE` on an
    input where ``same_notes(torch_outputs, onnx_outputs)`` (dicts of ``[B, T, 88]`` arrays)
    is false."""
    import torch

    from transcribe_cli.models.onnx_runtime import open_session

    ort = require_module("onnxruntime", "checking the exported model")
    session = open_session(ort, model_bytes, torch.get_num_threads())
    worst = 0.0
    for label, value in inputs:
        with torch.no_grad():
            expected = reference(value)
        try:
            got = session.run(None, {input_name: value.numpy()})
        except Exception as exc:
            raise TranscribeError(f"exported model {name!r} fails in onnxruntime on {label}: "
                                  f"{first_line(exc)}") from None
        strict = True
        for key, result in zip(keys, got):
            wanted = expected[key].numpy()
            if result.shape != wanted.shape:
                raise TranscribeError(f"exported model {name!r} gives {key} of shape {result.shape} on "
                                      f"{label}, torch {wanted.shape}",
                                      "the network's time axis does not export dynamically")
            worst = max(worst, float(np.max(np.abs(result - wanted))) if result.size else 0.0)
            if not np.allclose(result, wanted, rtol=tolerance, atol=tolerance):
                raise TranscribeError(f"exported model {name!r} disagrees with torch on {key} ({label}: "
                                      f"max abs difference {worst:.2e} > {tolerance:g})",
                                      "nothing was written; try another --opset")
            strict = strict and np.allclose(result, wanted, rtol=TOLERANCE, atol=TOLERANCE)
        if not strict and not (same_notes is not None and same_notes(
                {key: expected[key].numpy() for key in keys}, dict(zip(keys, got)))):
            raise TranscribeError(f"exported model {name!r} disagrees with torch on {label}: max abs difference "
                                  f"{worst:.2e} > {TOLERANCE:g}, and the notes decoded differ",
                                  "nothing was written; try another --opset")
    return worst


def _notes_check(spec: Any, registry: Registry, frame_rate: float) -> Any:
    """``same_notes(a, b)`` of :func:`_check`: whether ``spec``'s default decoder, with its
    tuned options, finds the same notes (to :data:`NOTE_TIME_TOLERANCE`) in the activations
    ``a`` and ``b`` (each item of the batch)."""
    from transcribe_cli.options import effective_options

    decoder_spec = registry.decoder(spec.decoder)
    decode = decoder_spec.factory()
    options = effective_options(spec, decoder_spec).decoder

    def same(x: Any, y: Any) -> bool:
        return (len(x) == len(y) and all(
            (m.pitch, m.velocity) == (n.pitch, n.velocity) and abs(m.onset - n.onset) <= NOTE_TIME_TOLERANCE
            and abs(m.offset - n.offset) <= NOTE_TIME_TOLERANCE for m, n in zip(sorted(x), sorted(y))))

    def same_notes(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
        batch = next(iter(a.values())).shape[0]
        return all(same(decode({k: v[i] for k, v in a.items()}, frame_rate, **options),
                        decode({k: v[i] for k, v in b.items()}, frame_rate, **options)) for i in range(batch))

    return same_notes


def export_and_check(checkpoint: str | Path, out: str | Path, *, registry: Registry | None = None,
                     opset: int = DEFAULT_OPSET, with_frontend: bool = False,
                     check_audio: str | Path | None = None) -> OnnxExport:
    """Export the network in ``checkpoint`` to ``out`` (written atomically) after checking it;
    ``with_frontend``: format 2 (audio in), also checked on the recording ``check_audio``."""
    onnx = require_module("onnx", "ONNX export")
    require_module("onnxruntime", "ONNX export")
    from transcribe_cli.inference import frontend_margin_frames
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
    module = frontend.factory().eval() if with_frontend else None
    if check_audio is not None and module is None:
        raise TranscribeError("checking on a recording needs --with-frontend (the graph takes features otherwise)")

    from transcribe_cli.inference import network_trim

    trim = network_trim(module, network) if module is not None else 0
    model = onnx.load_from_string(_trace(network, frontend.n_bins, opset, name, module, trim))
    metadata = onnx_metadata(spec, frontend, meta, outputs, source_sha256=file_digest(checkpoint), opset=opset,
                             audio_frontend=module, trim=trim)
    entry = model.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(metadata, sort_keys=True)
    model.doc_string = f"transcribe-cli model {name!r} exported from {checkpoint.name}"
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise TranscribeError(f"exported model {name!r} is not valid ONNX: {first_line(exc)}") from None
    data = model.SerializeToString()
    window_frames = round(DEFAULT_WINDOW_SECONDS * frontend.sample_rate / frontend.hop_length)
    tolerance = max(MODEL_TOLERANCE.get(name, TOLERANCE), TOLERANCE)
    same_notes = (_notes_check(spec, registry, frontend.frame_rate)
                  if tolerance > TOLERANCE else None)
    if module is None:
        worst = _check(network, data, _feature_inputs(frontend.n_bins, window_frames), outputs, name, INPUT_NAME,
                       tolerance, same_notes)
    else:
        margin = frontend_margin_frames(module) + metadata["context_frames"]
        chunk_samples = (window_frames + 2 * margin - 1) * frontend.hop_length + 1
        inputs = _audio_inputs(module, chunk_samples, spec.audio_normalization,
                               Path(check_audio) if check_audio is not None else None, trim)
        worst = _check(_with_frontend(module, network, trim), data, inputs, outputs, name, AUDIO_INPUT,
                       tolerance, same_notes)
    with atomic_write(out, "wb") as f:
        f.write(data)
    return OnnxExport(out, len(data), worst, name)


def export_onnx(checkpoint: str | Path, out: str | Path, *, registry: Registry | None = None,
                opset: int = DEFAULT_OPSET, with_frontend: bool = False) -> Path:
    """Export ``checkpoint`` (a neural checkpoint, see :mod:`~transcribe_cli.models.neural`) to
    the ONNX file ``out``; returns its path. Raises :class:`TranscribeError`."""
    return export_and_check(checkpoint, out, registry=registry, opset=opset, with_frontend=with_frontend).path
