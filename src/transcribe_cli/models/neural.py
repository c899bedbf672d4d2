"""What every trainable (neural) model shares: the network contract and its weight files.

Network contract (:class:`TranscriptionNet`):

- input ``features[B, T, n_bins]`` from the model's frontend (``log1p``-compressed
  magnitudes, see :mod:`transcribe_cli.frontends.base`);
- :meth:`~TranscriptionNet.forward_logits` returns a dict ``{key: Tensor[B, T, 88]}`` of
  *pre-sigmoid* values for each key in ``outputs`` (a subset of onset, frame, offset,
  velocity); losses are computed on these;
- :meth:`~TranscriptionNet.forward` returns the same keys passed through a sigmoid, in
  [0, 1]: what inference, the decoders and ONNX export use. Velocity in [0, 1] means
  MIDI velocity / 127.

Weight files (``torch.save`` of a dict, read with ``weights_only=True``)::

    {"meta": {"format": 1, "model": NAME, "architecture": {...}, ...},
     "state_dict": {...}}

``meta["architecture"]`` holds the options the network was built with (``spec.network(
**architecture)``), so a checkpoint rebuilds itself without flags. Training checkpoints
are the same dict with more entries (optimizer, scheduler, RNG state, step…), so
``transcribe --model runs/NAME/best.pt`` works on them directly. ``meta`` may also carry
``decoder_options`` (tuned on validation; applied with the model's default decoder).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from transcribe_cli.errors import TranscribeError
from transcribe_cli.specs import NOTE_ACTIVATIONS

if TYPE_CHECKING:
    from transcribe_cli.specs import ModelSpec

CHECKPOINT_FORMAT = 1
N_KEYS = 88


class TranscriptionNet(nn.Module):
    """Base class of the neural models: subclasses set ``outputs`` and implement
    :meth:`forward_logits`."""

    outputs: tuple[str, ...] = NOTE_ACTIVATIONS
    #: whether a frame's outputs depend only on the features within the model's
    #: ``context_frames`` of it (no norm or recurrence over the whole window). Then inference
    #: runs the network on a chunk's frames less the frontend's margin
    #: (:func:`transcribe_cli.inference.network_trim`); ``hppnet``'s instance norms and BiLSTMs
    #: see the whole chunk, so it keeps the default.
    window_independent: bool = False

    def forward_logits(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Activations in [0, 1]. Without gradients (inference), the items of a batch run one
        at a time: the intermediate maps of one window, not of the batch, are held at once
        (``benchmarks/results/memory.md``); the outputs are those of the batched call."""
        if (features.shape[0] > 1 and not torch.is_grad_enabled()
                and not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export()):
            items = [self.forward(features[i : i + 1]) for i in range(features.shape[0])]
            return {key: torch.cat([item[key] for item in items]) for key in items[0]}
        return {key: torch.sigmoid(value) for key, value in self.forward_logits(features).items()}

    def exportable(self) -> nn.Module:
        """The module ONNX export traces, computing :meth:`forward` (``features -> {key:
        probabilities}``); a network with a faster inference form returns that (see
        :meth:`transcribe_cli.models.piano.PianoNet.exportable`)."""
        return self

    def loss(
        self, logits: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor], **settings: Any
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The training loss of ``logits`` (:meth:`forward_logits`) against ``targets`` (the
        labels of :data:`~transcribe_cli.specs.ACTIVATIONS`): the weighted total and each part.
        ``settings`` are the training config's ``weights``, ``focal_gamma``, ``focal_alpha`` and
        ``dice_weight``. The default scores the built-in outputs
        (:func:`transcribe_cli.training.losses.transcription_loss`); a model with other outputs
        overrides this."""
        from transcribe_cli.training.losses import transcription_loss

        return transcription_loss(logits, targets, **settings)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build_network(spec: "ModelSpec", architecture: Mapping[str, Any] | None = None) -> TranscriptionNet:
    """A freshly initialised network of ``spec`` with ``architecture`` over its defaults."""
    from transcribe_cli.errors import OptionError

    if spec.network is None:
        raise TranscribeError(f"model {spec.name!r} cannot be trained", "pick a neural model (transcribe models)")
    given = dict(architecture or {})
    unknown = sorted(set(given) - set(spec.architecture))
    if unknown:
        raise OptionError(
            f"model {spec.name!r} has no architecture option {', '.join(map(repr, unknown))}",
            f"available: {', '.join(sorted(spec.architecture)) or 'none'}",
        )
    return spec.network(**{**spec.architecture, **given})


def network_meta(spec: "ModelSpec", architecture: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """The ``meta`` entry of a weight file for ``spec`` built with ``architecture``."""
    from transcribe_cli import __version__

    return {
        "format": CHECKPOINT_FORMAT,
        "model": spec.name,
        "architecture": {**spec.architecture, **architecture},
        "frontend": spec.frontend,
        "transcribe_cli": __version__,
        **extra,
    }


def save_weights(path: str | Path, state: Mapping[str, Any]) -> Path:
    """Write a checkpoint dict (``meta`` + ``state_dict`` + anything else) atomically."""
    from transcribe_cli.io.fileio import atomic_write

    path = Path(path)
    if "meta" not in state or "state_dict" not in state:
        raise ValueError("a checkpoint needs 'meta' and 'state_dict' entries")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as f:
        torch.save(dict(state), f)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint dict, read safely (``weights_only=True``); one-line errors."""
    path = Path(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TranscribeError(f"checkpoint not found: {path}") from None
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TranscribeError(f"cannot read checkpoint {path}: {first}") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "meta" not in checkpoint:
        raise TranscribeError(f"{path} is not a transcribe-cli checkpoint (no 'meta'/'state_dict')",
                              "train one with: transcribe train --model NAME --out runs/NAME")
    return checkpoint


def load_network(spec: "ModelSpec", weights_path: str | Path | None) -> TranscriptionNet:
    """The network stored in ``weights_path`` (architecture from its metadata)."""
    if weights_path is None:
        raise TranscribeError(
            f"model {spec.name!r} has no published weights yet",
            f"train it (transcribe train --model {spec.name} --out runs/{spec.name}) and pass "
            f"--model runs/{spec.name}/best.pt, or pass --weights FILE",
        )
    checkpoint = load_model_checkpoint(spec, weights_path)
    meta = checkpoint["meta"]
    architecture = dict(meta.get("architecture", {})) if isinstance(meta, Mapping) else {}
    network = build_network(spec, architecture)
    load_state(network, checkpoint, f"weights in {weights_path} do not fit model {spec.name!r}")
    return network.eval()


def load_model_checkpoint(spec: "ModelSpec", weights_path: str | Path) -> dict[str, Any]:
    """:func:`load_checkpoint`, refusing weights of another model than ``spec``."""
    checkpoint = load_checkpoint(weights_path)
    meta = checkpoint["meta"]
    if isinstance(meta, Mapping) and meta.get("model") not in (None, spec.name):
        raise TranscribeError(f"{weights_path} holds weights of model {meta.get('model')!r}, not {spec.name!r}",
                              f"use --model {meta.get('model')}")
    return checkpoint


def load_state(network: torch.nn.Module, checkpoint: Mapping[str, Any], mismatch: str, hint: str | None = None) -> None:
    """Load ``checkpoint``'s weights into ``network``; a shape or key mismatch is one
    ``TranscribeError`` line: ``mismatch``, then the first line of torch's message."""
    try:
        network.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise TranscribeError(f"{mismatch}: {first}", hint) from None


def neural_factory(name: str, network: Any, architecture: Mapping[str, Any]):
    """A :attr:`ModelSpec.factory` for the neural model ``name`` built by ``network`` with
    ``architecture`` defaults: ``factory(weights_path, **options)`` loads the network from
    the weight file (no registry lookup, so loose and entry-point plugins work alike)."""
    from types import SimpleNamespace

    spec = SimpleNamespace(name=name, network=network, architecture=dict(architecture))

    def factory(weights_path: Path | None = None, **options: Any) -> TranscriptionNet:
        from transcribe_cli.errors import OptionError

        if options:
            raise OptionError(
                f"model {name!r} takes no inference options ({', '.join(sorted(options))})",
                "its architecture comes from the checkpoint",
            )
        return load_network(spec, weights_path)  # type: ignore[arg-type]

    factory.__name__ = f"build_{name.replace('-', '_')}"
    return factory
