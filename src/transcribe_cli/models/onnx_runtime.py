"""Run exported ``.onnx`` models with onnxruntime (``--model model.onnx``, ``--runtime onnx``).

Two kinds of file (``metadata["format"]``, see :mod:`transcribe_cli.onnx_export`):

- format 2, **audio → activations** (frontend and network in one graph):
  :class:`OnnxAudioModel` runs it on numpy arrays, with no torch at all — the path of the
  bundled ``piano`` model under ``--runtime auto``;
- format 1, **features → activations** (the network only): :class:`OnnxNetwork` runs it
  behind the torch frontend.

:class:`OnnxNetwork` wraps an ``onnxruntime.InferenceSession`` so that the
:class:`~transcribe_cli.pipeline.Transcriber` uses it exactly like the torch network it was
exported from: ``network(features[B, T, bins]) -> {key: Tensor[B, T, 88]}`` (probabilities,
one output per key, named by the key; see :mod:`transcribe_cli.onnx_export`), the tensors on
the network's device. ``.to(device)`` picks the execution provider (CUDA when the device is
a GPU and onnxruntime has CUDA support, else CPU) and ``.eval()`` does nothing; both return
the network.

The metadata an exported file carries (``metadata_props["transcribe_cli"]``, a JSON object)
is described in :mod:`transcribe_cli.onnx_export` and read by
:mod:`transcribe_cli.weights.checkpoint_meta`. Importing this module imports neither torch nor
onnxruntime.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from transcribe_cli.errors import OptionError, TranscribeError
from transcribe_cli.inference import CpuModel, pad_frames

META_KEY = "transcribe_cli"  # metadata_props entry holding the JSON metadata object
#: how to install each package: onnxruntime is a dependency of transcribe-cli (missing only when
#: removed by hand), onnx (writing graphs) comes with the ``onnx`` extra
INSTALL_HINTS = {"onnxruntime": "install it with: pip install onnxruntime",
                 "onnx": "install it with: pip install 'transcribe-cli[onnx]'"}


def require_module(name: str, purpose: str) -> ModuleType:
    """Import ``onnx`` or ``onnxruntime``; a one-line error saying how to install it when missing."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise TranscribeError(f"{purpose} needs the {name} package, which is not installed", INSTALL_HINTS[name]) from None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _providers(ort: ModuleType, device: Any) -> list[Any]:
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        return [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def session_options(ort: ModuleType, threads: int) -> Any:
    """onnxruntime session options for ``threads`` intra-op threads (one process's share of
    the cores, like ``torch.set_num_threads``), no inter-op pool, every graph optimisation,
    threads that sleep rather than spin while they wait (as ``OMP_WAIT_POLICY=PASSIVE`` does
    for torch: spinning threads take the cores of a loaded machine), no memory pattern (the
    arena then reuses its blocks: 70 MB less peak on a 20 s ``piano`` window, no slower;
    ``benchmarks/results/memory.md``), errors-only logging."""
    options = ort.SessionOptions()
    options.enable_mem_pattern = False
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: no provider chatter on stderr
    return options


def open_session(ort: ModuleType, model: str | Path | bytes, threads: int, providers: list[Any] | None = None) -> Any:
    """An ``InferenceSession`` of ``model`` (a path or the serialised bytes) with :func:`session_options`."""
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=session_options(ort, threads),
                                providers=providers or ["CPUExecutionProvider"])


def session_metadata(session: Any, where: str) -> dict[str, Any]:
    """The ``transcribe_cli`` metadata object of an open session (``{}`` without one)."""
    import json

    text = session.get_modelmeta().custom_metadata_map.get(META_KEY)
    if text is None:
        return {}
    try:
        meta = json.loads(text)
    except ValueError:
        raise TranscribeError(f"{where}: metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise TranscribeError(f"{where}: metadata must be a JSON object")
    return meta


class OnnxAudioModel(CpuModel):
    """A format-2 ONNX graph (audio → activations) as an *audio model* of
    :func:`transcribe_cli.inference.window_activations`: ``model(chunks[B, samples]) ->
    {key: ndarray[B, T, 88]}`` (``[B, T, 1]`` for the pedal), numpy in and out; the framing
    (``sample_rate``, ``hop_length``, ``receptive_field``) comes from the file's metadata;
    a graph that trims its network's frames (``network_trim``) has its outputs padded back
    to the chunk's frames with zeros.
    ``threads``: intra-op threads (default: the usable cores). Neither this class nor
    onnxruntime imports torch."""

    def __init__(self, path: str | Path, *, threads: int | None = None, session: Any = None,
                 metadata: dict[str, Any] | None = None):
        self.path = Path(path)
        if session is None:
            from transcribe_cli.workers import usable_cores

            ort = require_module("onnxruntime", "running an .onnx model")
            try:
                session = open_session(ort, self.path, threads or usable_cores())
            except Exception as exc:
                raise TranscribeError(f"cannot load ONNX model {self.path}: {first_line(exc)}",
                                      "is it a valid .onnx file? (transcribe export RUN --onnx --with-frontend)") from None
        self.session = session
        meta = metadata if metadata is not None else session_metadata(session, str(self.path))
        frontend = meta.get("frontend") if isinstance(meta.get("frontend"), dict) else {}
        try:
            self.sample_rate = int(frontend["sample_rate"])
            self.hop_length = int(frontend["hop_length"])
            self.receptive_field = 2 * int(frontend["context_samples"]) + 1
        except (KeyError, TypeError, ValueError):
            raise TranscribeError(f"{self.path} is not an audio-to-activations ONNX model (format 2)",
                                  "export it with: transcribe export RUN --onnx --with-frontend") from None
        self.input_name = session.get_inputs()[0].name
        self.outputs = tuple(output.name for output in session.get_outputs())
        self.trim = int(meta.get("network_trim") or 0)  # a graph older than the trim: 0

    def __call__(self, chunks: Any) -> dict[str, Any]:
        import numpy as np

        array = np.ascontiguousarray(chunks, dtype=np.float32)
        return pad_frames(run_session(self, array, "audio"), self.trim)

    def __repr__(self) -> str:
        return f"OnnxAudioModel({str(self.path)!r})"


def run_session(model: Any, array: Any, what: str) -> dict[str, Any]:
    """``model.session`` on ``array`` as ``{output name: numpy array}``; a failure is one line
    naming the model file and the shape of the ``what`` it was given."""
    try:
        results = model.session.run(None, {model.input_name: array})
    except Exception as exc:
        raise TranscribeError(
            f"ONNX model {model.path.name} failed on {what} of shape {tuple(array.shape)}: {first_line(exc)}"
        ) from None
    return dict(zip(model.outputs, results))


class OnnxNetwork:
    """An ONNX transcription network with the calling convention of a torch ``TranscriptionNet``."""

    def __init__(self, path: str | Path, device: Any = "cpu"):
        self.path = Path(path)
        self._ort = require_module("onnxruntime", "running an .onnx model")
        self.session: Any = None
        self.providers: list[Any] = []
        self.to(device)

    def _open(self, providers: list[Any]) -> Any:
        import torch

        try:
            return open_session(self._ort, self.path, torch.get_num_threads(), providers)
        except Exception as exc:
            raise TranscribeError(f"cannot load ONNX model {self.path}: {first_line(exc)}",
                                  "is it a valid .onnx file? (transcribe export RUN --onnx)") from None

    def to(self, device: Any) -> OnnxNetwork:
        import torch

        device = torch.device(device)
        providers = _providers(self._ort, device)
        if self.session is None or providers != self.providers:
            self.session = self._open(providers)
            self.providers = providers
            self.input_name = self.session.get_inputs()[0].name
            self.outputs = tuple(output.name for output in self.session.get_outputs())
        self.device = device
        return self

    def eval(self) -> OnnxNetwork:
        return self

    def __call__(self, features: Any) -> dict[str, Any]:
        import torch

        array = features.detach().to("cpu", torch.float32).contiguous().numpy()
        return {key: torch.from_numpy(value).to(self.device) for key, value in run_session(self, array, "features").items()}

    def __repr__(self) -> str:
        return f"OnnxNetwork({str(self.path)!r}, device={str(self.device)!r})"


def onnx_factory(name: str) -> Callable[..., OnnxNetwork]:
    """A :attr:`ModelSpec.factory` for model ``name`` exported to ONNX: ``factory(path)``
    opens the file on the CPU (the Transcriber moves it with ``.to(device)``)."""

    def factory(weights_path: Path | None = None, **options: Any) -> OnnxNetwork:
        if options:
            raise OptionError(
                f"model {name!r} takes no inference options ({', '.join(sorted(options))})",
                "its architecture is fixed in the .onnx file",
            )
        if weights_path is None:
            raise TranscribeError(f"an ONNX model of {name!r} needs its .onnx file")
        return OnnxNetwork(weights_path)

    factory.__name__ = f"build_{name.replace('-', '_')}_onnx"
    return factory
