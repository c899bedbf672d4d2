"""A loose plugin whose models need weights, for the Hub, card and CLI tests.

``peaks-test`` builds a spectral-peak piano model whose only trained number, ``floor`` (the
log-magnitude range below the loudest bin that still counts as a note), comes from its
checkpoint; it declares no weights of its own, so it is used through ``hf://`` URIs, local
checkpoints and ``--weights``. ``peaks-hub`` is the same model with weights pinned on the
(fake) Hub, as a published pretrained model would be.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np

PLUGIN = '''
from transcribe_cli.hookspecs import hookimpl
from transcribe_cli.specs import ModelSpec, WeightsSource


def _build(weights_path=None, **options):
    import numpy as np
    import torch

    if weights_path is None:
        raise ValueError("this model needs weights")
    with np.load(weights_path, allow_pickle=False) as data:
        floor = float(data["floor"])

    class Peaks(torch.nn.Module):
        def forward(self, features):
            keys = features[..., : 4 * 88 : 4]
            top = features.amax(dim=-1, keepdim=True)
            relative = (keys - top + floor) / floor
            return {{"frame": relative.clamp(0, 1) * (top > 0.05).float()}}

    return Peaks()


COMMON = dict(
    family="spectral peaks", frontend="cqt", decoder="frame-threshold", factory=_build,
    outputs=("frame",), context_frames=0, audio_normalization="peak",
    decoder_options={{"threshold": 0.5, "median_frames": 3, "min_duration": 0.05}},
)


@hookimpl
def register_models(register):
    register(ModelSpec(name="peaks-test", description="weights from --weights or a checkpoint", **COMMON))
    register(ModelSpec(
        name="peaks-hub", description="pinned on the Hub",
        weights=WeightsSource(hub_repo={repo!r}, revision={revision!r}, filename={filename!r}, sha256={sha256!r}),
        **COMMON,
    ))
'''

FLOOR = 0.8  # nepers (~7 dB) below the loudest bin: keeps the fundamental, drops the harmonics


def checkpoint_bytes(tmp: Path, model: str | None = "peaks-test", floor: float = FLOOR) -> bytes:
    """An ``.npz`` checkpoint of the peaks model (with ``meta`` naming ``model`` unless None)."""
    arrays = {"floor": np.array(floor, dtype=np.float32)}
    if model is not None:
        arrays["meta"] = np.array(json.dumps({"model": model, "format": 1}))
    path = tmp / "ckpt.npz"
    np.savez(path, **arrays)
    data = path.read_bytes()
    path.unlink()
    return data


def write_plugin(folder: Path, *, repo: str = "acme/peaks", revision: str = "0" * 40,
                 filename: str = "weights.npz", sha256: str = "0" * 64) -> Path:
    """Write the plugin file into ``folder`` (for ``--plugins-dir``); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    source = PLUGIN.format(repo=repo, revision=revision, filename=filename, sha256=sha256)
    (folder / "peaks_plugin.py").write_text(textwrap.dedent(source))
    return folder
