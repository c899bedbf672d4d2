"""Run an exported ``.onnx`` network in place of its torch module (``--model model.onnx``).

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

META_KEY = "transcribe_cli"  # metadata_props entry holding the JSON metadata object
INSTALL_HINT = "install it with: pip install 'transcribe-cli[onnx]'"


def require_module(name: str, purpose: str) -> ModuleType:
    """Import ``onnx`` or ``onnxruntime``; a one-line error naming the extra when missing."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise TranscribeError(f"{purpose} needs the {name} package, which is not installed", INSTALL_HINT) from None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _providers(ort: ModuleType, device: Any) -> list[Any]:
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        return [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


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

        options = self._ort.SessionOptions()
        options.intra_op_num_threads = max(1, torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: no provider chatter on stderr
        try:
            return self._ort.InferenceSession(str(self.path), sess_options=options, providers=providers)
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
        try:
            results = self.session.run(None, {self.input_name: array})
        except Exception as exc:
            raise TranscribeError(
                f"ONNX model {self.path.name} failed on features of shape {tuple(array.shape)}: {first_line(exc)}"
            ) from None
        return {key: torch.from_numpy(value).to(self.device) for key, value in zip(self.outputs, results)}

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
