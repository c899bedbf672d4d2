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
- or, for any format, in a ``config.json`` beside the checkpoint (same folder, or same Hub
  repository and revision) holding a JSON object with a ``"model"`` entry.

The checkpoint's own metadata wins over ``config.json``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from transcribe_cli.errors import TranscribeError

SIDECAR = "config.json"
TORCH_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
CHECKPOINT_SUFFIXES = (".npz", ".safetensors", *TORCH_SUFFIXES)


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
