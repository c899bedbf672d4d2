"""Which registered model a checkpoint file belongs to, read from the checkpoint itself.

A checkpoint published outside this project (``--model hf://owner/repo@rev/file`` or
``--model path/to/file``) must say which registered model builds it. Convention (see
``docs/model-cards.md``): a metadata object whose ``"model"`` entry is a registered model
name, stored

- ``.npz``: as an entry ``meta`` holding a JSON object string
  (``np.savez(f, meta=json.dumps({"model": "nmf"}), ...)``);
- ``.pt`` / ``.pth`` / ``.ckpt`` / ``.bin`` (``torch.save`` of a dict): as an entry ``meta``,
  a dict or a JSON object string — not a top-level ``"model"`` entry, which by common usage
  often holds the state dict itself; read with ``torch.load(weights_only=True)``;
- ``.safetensors``: in the header's ``__metadata__`` (``{"model": "nmf"}``);
- ``.onnx`` (written by ``transcribe export --onnx``): in the model's ``metadata_props``
  entry ``transcribe_cli``, a JSON object string (see :mod:`transcribe_cli.onnx_export`);
  read with ``onnx`` (weights not loaded) or, without it, ``onnxruntime``; no torch needed;
- or, for any format, in a ``config.json`` beside the checkpoint (same folder, or same Hub
  repository and revision) holding a JSON object with a ``"model"`` entry.

The checkpoint's own metadata wins over ``config.json``.

Beyond naming the model, the metadata adjusts that model's spec for this checkpoint
(:func:`checkpoint_spec`): ``decoder`` / ``decoder_options`` (tuned on validation by
``transcribe train``) replace the model's defaults, ``settings`` (the model options it was
tuned with, e.g. an ``nmf`` template file's) become the defaults of the options the model
declares, and an ``.onnx`` file is run by
onnxruntime with the frontend, outputs and context it was exported with.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path
from typing import Any

from transcribe_cli.errors import TranscribeError
from transcribe_cli.specs import ModelSpec

SIDECAR = "config.json"
TORCH_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
ONNX_SUFFIX = ".onnx"
CHECKPOINT_SUFFIXES = (".npz", ".safetensors", ONNX_SUFFIX, *TORCH_SUFFIXES)


def _as_mapping(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise TranscribeError(f"{where}: metadata is not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise TranscribeError(f"{where}: metadata must be a JSON object, got {type(value).__name__}")
    return value


def _npz_meta(path: Path) -> dict[str, Any]:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            if "meta" not in data.files:
                return {}
            meta = data["meta"]
            return _as_mapping(meta.item() if meta.shape == () else meta.tobytes(), str(path))
    except TranscribeError:
        raise
    except Exception as exc:
        raise TranscribeError(f"cannot read checkpoint {path}: {exc}", "is it a valid .npz file?") from None


def _torch_meta(path: Path) -> dict[str, Any]:
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TranscribeError(f"cannot read checkpoint {path}: {first}",
                              "only tensors, numbers, strings, lists and dicts are loaded") from None
    if isinstance(checkpoint, dict) and "meta" in checkpoint:
        return _as_mapping(checkpoint["meta"], str(path))
    return {}


def _safetensors_meta(path: Path) -> dict[str, Any]:
    """The ``__metadata__`` of a safetensors header (8-byte little-endian length + JSON)."""
    try:
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if length > 100_000_000:
                raise ValueError("header too large")
            header = json.loads(f.read(length))
    except Exception as exc:
        raise TranscribeError(f"cannot read checkpoint {path}: {exc}", "is it a valid .safetensors file?") from None
    return dict(header.get("__metadata__") or {})


def _onnx_meta(path: Path) -> dict[str, Any]:
    """The JSON object in ``metadata_props["transcribe_cli"]`` of an ``.onnx`` model."""
    from transcribe_cli.models.onnx_runtime import META_KEY, first_line, require_module

    try:
        import onnx
    except ImportError:  # onnxruntime alone can read it too (it builds a session, slower)
        ort = require_module("onnxruntime", "reading an .onnx model")
        try:
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise TranscribeError(f"cannot read ONNX model {path}: {first_line(exc)}",
                                  "is it a valid .onnx file?") from None
        props = dict(session.get_modelmeta().custom_metadata_map)
    else:
        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as exc:
            raise TranscribeError(f"cannot read ONNX model {path}: {first_line(exc)}",
                                  "is it a valid .onnx file?") from None
        props = {prop.key: prop.value for prop in model.metadata_props}
    return _as_mapping(props[META_KEY], str(path)) if META_KEY in props else {}


def read_checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """The checkpoint's own metadata object (``{}`` when it has none or the format has no slot)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _npz_meta(path)
    if suffix == ".safetensors":
        return _safetensors_meta(path)
    if suffix in TORCH_SUFFIXES:
        return _torch_meta(path)
    if suffix == ONNX_SUFFIX:
        return _onnx_meta(path)
    return {}


def read_sidecar_meta(path: str | Path) -> dict[str, Any]:
    """The object in a ``config.json`` file (``{}`` when it is not a JSON object)."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TranscribeError(f"cannot read {path}: {exc}") from None
    return value if isinstance(value, dict) else {}


def model_name_from(meta: dict[str, Any], where: str) -> str | None:
    """``meta["model"]`` when present; it must be a non-empty string."""
    if "model" not in meta:
        return None
    name = meta["model"]
    if not isinstance(name, str) or not name.strip():
        raise TranscribeError(f"{where}: metadata entry 'model' must name a registered model, got {name!r}")
    return name.strip()


def _frontend_name(meta: dict[str, Any]) -> str | None:
    frontend = meta.get("frontend")  # a name (.pt) or {"name": ..., "sample_rate": ...} (.onnx)
    if isinstance(frontend, dict):
        frontend = frontend.get("name")
    return frontend if isinstance(frontend, str) and frontend else None


def checkpoint_spec(spec: ModelSpec, path: str | Path, meta: dict[str, Any]) -> ModelSpec:
    """``spec`` as the checkpoint at ``path`` with metadata ``meta`` runs it.

    ``meta["decoder"]`` / ``meta["decoder_options"]`` replace the model's default decoder
    and update its tuned options (for any format). An ``.onnx`` file is built by
    :class:`~transcribe_cli.models.onnx_runtime.OnnxNetwork` (no model options) with the
    frontend, outputs, context and audio normalisation recorded at export."""
    changes: dict[str, Any] = {}
    if isinstance(meta.get("decoder"), str) and meta["decoder"]:
        changes["decoder"] = meta["decoder"]
    tuned = meta.get("decoder_options")
    if tuned is not None:
        if not isinstance(tuned, dict):
            raise TranscribeError(f"{path}: metadata entry 'decoder_options' must be an object, "
                                  f"got {type(tuned).__name__}")
        base = spec.decoder_options if changes.get("decoder", spec.decoder) == spec.decoder else {}
        changes["decoder_options"] = {**base, **tuned}
    settings = meta.get("settings")
    if settings is not None:
        if not isinstance(settings, dict):
            raise TranscribeError(f"{path}: metadata entry 'settings' must be an object, "
                                  f"got {type(settings).__name__}")
        changes.update(_with_defaults(spec, settings))
    if Path(path).suffix.lower() == ONNX_SUFFIX:
        from transcribe_cli.models.onnx_runtime import onnx_factory

        changes.update(factory=onnx_factory(spec.name), options={})
        if _frontend_name(meta):
            changes["frontend"] = _frontend_name(meta)
        outputs = meta.get("outputs")
        if isinstance(outputs, list) and outputs and all(isinstance(key, str) for key in outputs):
            changes["outputs"] = tuple(outputs)
        if isinstance(meta.get("context_frames"), int) and not isinstance(meta["context_frames"], bool):
            changes.update(context_frames=meta["context_frames"], context_seconds=None)
        if "audio_normalization" in meta and isinstance(meta["audio_normalization"], (str, type(None))):
            changes["audio_normalization"] = meta["audio_normalization"]
    return dataclasses.replace(spec, **changes) if changes else spec


def _with_defaults(spec: ModelSpec, settings: dict[str, Any]) -> dict[str, Any]:
    """The ``options`` / ``option_table`` of ``spec`` with the defaults of the model options it
    declares taken from ``settings`` (a checkpoint's ``meta["settings"]``: what it was tuned
    with); settings the spec does not declare are left to the model's factory."""
    declared = {key: value for key, value in settings.items() if key in spec.options or key in spec.option_table}
    if not declared:
        return {}
    changes: dict[str, Any] = {"options": {**spec.options,
                                           **{k: v for k, v in declared.items() if k in spec.options}}}
    if any(key in spec.option_table for key in declared):
        changes["option_table"] = {
            name: dataclasses.replace(option, default=declared[name]) if name in declared else option
            for name, option in spec.option_table.items()
        }
    return changes
