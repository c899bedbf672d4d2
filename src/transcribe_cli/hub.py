"""Where a model's weights come from.

Resolution order: an explicit local path (``--weights``) → weights bundled in an installed
package. (Hugging Face Hub download with pinned revision and sha256 lands with the Hub
issue; until then a model that only names a Hub repo reports that clearly.)
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from transcribe_cli.errors import TranscribeError
from transcribe_cli.specs import ModelSpec, WeightsSource


def bundled_path(ref: str) -> Path:
    """``"package:relative/path"`` → the file inside the installed package."""
    package, sep, relative = ref.partition(":")
    if not sep or not relative:
        raise TranscribeError(f"bad bundled weights reference {ref!r}", "expected 'package:relative/path'")
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError:
        raise TranscribeError(
            f"weights package {package!r} is not installed", f"pip install {package}"
        ) from None
    path = Path(str(root.joinpath(relative)))
    if not path.is_file():
        raise TranscribeError(
            f"bundled weights {ref!r} are missing from the installed package",
            "reinstall the package that provides this model",
        )
    return path


def resolve_weights(spec: ModelSpec, weights: str | Path | None = None) -> Path | None:
    """The local file holding ``spec``'s weights, or ``None`` if it needs none."""
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise TranscribeError(f"weights file not found: {path}", "check the --weights path")
        return path
    source: WeightsSource = spec.weights
    if source.bundled:
        return bundled_path(source.bundled)
    if source.hub_repo:
        raise TranscribeError(
            f"model {spec.name!r} needs weights from {source.describe()}",
            "download them yourself and pass --weights PATH",
        )
    return None
