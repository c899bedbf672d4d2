"""Built-in models. Registration only: no torch import here; each factory imports its
model module when called.

* ``nmf`` — supervised NMF with piano templates learned from SoundFont renders
  (:mod:`.nmf`, templates bundled in ``transcribe_cli/data/nmf_piano_cqt.npz`` and learned by
  ``scripts/learn_nmf_templates.py``). Needs no neural network and no download.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..hookspecs import hookimpl
from ..specs import ModelSpec, WeightsSource

NMF_TEMPLATES = "transcribe_cli:data/nmf_piano_cqt.npz"

#: Model options of ``nmf`` (``--option model.KEY=VALUE``); the defaults are the settings the
#: bundled templates were tuned with (``meta["settings"]`` of the .npz; a test keeps them equal).
NMF_OPTIONS: dict[str, Any] = {"n_iter": 50, "beta": 0.5, "sparsity": 0.0, "onset_suppression": 0.5}

#: ``onset-peaks`` settings tuned on validation renders by ``scripts/learn_nmf_templates.py``
#: (``meta["decoder_options"]`` of the .npz; a test keeps them equal).
NMF_DECODER_OPTIONS: dict[str, Any] = {
    "onset_threshold": 0.77,
    "frame_threshold": 0.0,
    "peak_window": 2,
    "confirm_frames": 2,
    "min_note_length": 0.0,
    "refine_onsets": True,
}


def build_nmf(weights_path: Path | None = None, **options: Any) -> Any:
    """The ``nmf`` model from ``weights_path`` (default: the bundled templates)."""
    from .nmf import build

    if weights_path is None:
        import importlib.resources

        package, _, relative = NMF_TEMPLATES.partition(":")
        with importlib.resources.as_file(importlib.resources.files(package).joinpath(relative)) as path:
            return build(path, options)
    return build(weights_path, options)


NMF_SPEC = ModelSpec(
    name="nmf",
    family="nmf",
    factory=build_nmf,
    frontend="cqt",
    decoder="onset-peaks",
    description=(
        "Supervised NMF (beta-divergence) with fixed piano templates learned from SoundFont renders; "
        "no neural network, CPU-friendly."
    ),
    weights=WeightsSource(bundled=NMF_TEMPLATES),
    options=NMF_OPTIONS,
    decoder_options=NMF_DECODER_OPTIONS,
    outputs=("onset", "frame", "velocity"),
    context_frames=1,  # the onset activation compares each frame with the previous one
    audio_normalization="peak",
)


@hookimpl
def register_models(register: Callable[[Any], None]) -> None:
    """Register the built-in models."""
    register(NMF_SPEC)
