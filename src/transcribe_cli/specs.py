"""Cheap descriptions of what plugins provide.

Hooks register *specs*, never loaded objects: building a spec must not import torch,
read weights or touch the network, so that listing plugins and ``--help`` stay instant.
Each spec carries a ``factory`` that does the expensive work when it is called.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

@dataclass(frozen=True)
class Option:
    """One option of a frontend, model, decoder or dataset: its default (whose type is the
    option's type and drives ``--option key=value`` parsing), a one-line help text, and
    constraints checked once by :func:`transcribe_cli.options.resolve_options`.

    ``low``/``high`` are inclusive bounds for numbers; ``positive`` requires a number above 0;
    ``odd`` requires an odd integer; ``choices`` restricts a string option.
    """

    default: Any
    help: str = ""
    low: float | None = None
    high: float | None = None
    odd: bool = False
    choices: tuple[str, ...] | None = None
    positive: bool = False


def option_defaults(table: Mapping[str, Option]) -> dict[str, Any]:
    """``{name: default}`` for an option table (what a spec's ``options`` holds)."""
    return {name: option.default for name, option in table.items()}


def declared_options(spec: Any) -> dict[str, Option]:
    """A spec's options as :class:`Option` s: its ``option_table`` where it gives one, else
    its plain ``options`` defaults (typed by their defaults, no bounds)."""
    table = getattr(spec, "option_table", None) or {}
    return {**{name: Option(default) for name, default in spec.options.items()}, **table}


#: the per-key activations a model may produce (each ``[T, 88]`` in [0, 1]) — the one list
#: frontends, models, decoders, training targets and exports share
NOTE_ACTIVATIONS: tuple[str, ...] = ("onset", "frame", "offset", "velocity")
#: the sustain-pedal activation (``[T, 1]`` in [0, 1]) of models that predict the pedal
PEDAL_ACTIVATION = "pedal"
#: every activation a built-in model may produce (the training targets, the loss weights)
ACTIVATIONS: tuple[str, ...] = (*NOTE_ACTIVATIONS, PEDAL_ACTIVATION)


@dataclass(frozen=True)
class FrontendSpec:
    """A spectrogram frontend. ``factory(**options)`` returns a ``torch.nn.Module``
    with ``sample_rate``, ``hop_length``, ``n_bins`` and
    ``forward(audio[B, samples]) -> features[B, frames, bins]``."""

    name: str
    factory: Callable[..., Any]
    sample_rate: int
    hop_length: int
    n_bins: int
    description: str = ""
    # every accepted option with its default; ``option_table``: their :class:`Option` s
    options: Mapping[str, Any] = field(default_factory=dict)
    option_table: Mapping[str, Option] = field(default_factory=dict)
    # optional: the same transform in numpy, for inference without torch (``--runtime numpy``,
    # :mod:`transcribe_cli.runtime`): ``numpy_factory(**options)`` returns an object with
    # ``sample_rate``, ``hop_length``, ``n_bins``, ``receptive_field`` and
    # ``__call__(audio ndarray[B, samples]) -> features ndarray[B, frames, bins]`` (float32), equal
    # to the torch module's to float32 rounding
    numpy_factory: Callable[..., Any] | None = None

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length


@dataclass(frozen=True)
class DecoderSpec:
    """Activations → notes. ``factory()`` returns a callable
    ``decode(activations: dict[str, ndarray[T, 88]], frame_rate, **options) -> list[Note]``.
    ``options`` holds every accepted option with its default (its type drives
    ``--option key=value`` parsing)."""

    name: str
    factory: Callable[[], Callable[..., Any]]
    requires: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    # optional: each option's help text and bounds (an :class:`Option` by name), checked before
    # any audio is read
    option_table: Mapping[str, Option] = field(default_factory=dict)
    # the options training's validation may tune on the validation files, each with the values it
    # tries (every combination is decoded; the best is stored in the checkpoint)
    tunable: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    # optional: ``stream()`` returns the decoder as a class ``cls(frame_rate, **options)`` with
    # ``feed(activations)`` for consecutive chunks of frames and ``finish() -> list[Note]``, so a
    # streamed transcription holds no whole-file activations; without it the chunks are joined
    stream: Callable[[], Callable[..., Any]] | None = None


@dataclass(frozen=True)
class WeightsSource:
    """Where a model's weights live. Exactly one of ``bundled`` (a path inside an installed
    package, as ``package:relative/path``), ``hub`` (``owner/repo``), ``peer`` (a peer's wheel) applies;
    ``None`` everywhere means the model needs no weights."""

    bundled: str | None = None
    hub_repo: str | None = None
    revision: str | None = None
    filename: str | None = None
    sha256: str | None = None
    # a peer project's own wheel, ``"distribution==version"``: ``filename`` is the weights file
    # inside it and ``sha256`` the wheel's; fetched without its dependencies (:mod:`transcribe_cli.peers`)
    peer: str | None = None
    # the same weights as an audio → activations ONNX graph (``package:relative/path``, format 2 of
    # :mod:`transcribe_cli.onnx_export`): ``--runtime auto`` runs it on onnxruntime, without torch,
    # when its ``source_sha256`` is the weights file's (:mod:`transcribe_cli.runtime`)
    onnx: str | None = None

    def describe(self) -> str:
        if self.peer:
            return f"{self.peer} wheel ({self.filename})"
        if self.bundled:
            return f"bundled ({self.bundled})"
        if self.hub_repo:
            rev = f"@{self.revision[:12]}" if self.revision else ""
            return f"hf://{self.hub_repo}{rev}/{self.filename}"
        return "none needed"


@dataclass(frozen=True)
class ModelSpec:
    """A transcription model. ``factory(weights_path: Path | None, **options)`` returns a
    ``torch.nn.Module`` whose ``forward(features[B, T, bins])`` returns a dict of
    activations ``[B, T, 88]`` in [0, 1] with keys from :data:`NOTE_ACTIVATIONS` (and
    ``pedal``, ``[B, T, 1]``, for models that predict the sustain pedal)."""

    name: str
    factory: Callable[..., Any]
    frontend: str
    decoder: str
    family: str = ""
    description: str = ""
    weights: WeightsSource = field(default_factory=WeightsSource)
    options: Mapping[str, Any] = field(default_factory=dict)
    option_table: Mapping[str, Option] = field(default_factory=dict)
    decoder_options: Mapping[str, Any] = field(default_factory=dict)
    # activation keys the model produces (decoders declare which ones they need)
    outputs: tuple[str, ...] = NOTE_ACTIVATIONS
    # context the model needs on each side of a window to be exact there: ``context_seconds``
    # when given (converted at the frontend's frame rate, :meth:`context_frames_at`), else
    # ``context_frames`` (a receptive field counted in frames)
    context_frames: int = 16
    context_seconds: float | None = None
    # the factory's model also runs on numpy, without torch: ``model(features ndarray[B, T, bins])
    # -> {key: ndarray}``; with a frontend that has a ``numpy_factory``, ``--runtime auto`` (on the
    # CPU) and ``--runtime numpy`` run it so (:mod:`transcribe_cli.runtime`)
    numpy_inference: bool = False
    # "peak": the pipeline peak-normalises the whole recording before the frontend
    audio_normalization: str | None = None
    # "pipeline": the frontend and model run window by window (:mod:`transcribe_cli.inference`);
    # "model": the model windows the whole recording itself (a peer's own segmenting, kept so the
    # results equal the peer's): ``model.activations(audio[samples]) -> dict[str, ndarray]`` at the
    # frontend's sample and frame rate, handed to the decoder as they are
    windowing: str = "pipeline"
    # Training (``transcribe train``). ``network(**architecture)`` builds a freshly initialised
    # :class:`transcribe_cli.models.neural.TranscriptionNet`; ``None``: not trainable.
    # ``architecture`` holds its options with their defaults (e.g. ``{"preset": "sp"}``); a
    # checkpoint stores the values it was built with, so inference needs no architecture flags.
    network: Callable[..., Any] | None = None
    architecture: Mapping[str, Any] = field(default_factory=dict)
    # training defaults this model prefers over the generic ones (config keys, e.g. learning_rate)
    train_defaults: Mapping[str, Any] = field(default_factory=dict)

    @property
    def trainable(self) -> bool:
        return self.network is not None

    def context_frames_at(self, frame_rate: float) -> int:
        """Frames of context each side of a window at the frontend's ``frame_rate``."""
        if self.context_seconds is None:
            return self.context_frames
        return int(round(self.context_seconds * frame_rate))


@dataclass(frozen=True)
class DatasetSpec:
    """A labelled dataset. ``factory(root, split, **options)`` returns an iterable of
    items with ``.audio_path`` and ``.notes()``."""

    name: str
    factory: Callable[..., Any]
    description: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
