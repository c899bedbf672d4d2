"""Built-in models. Registration only: no torch import here; each factory imports its
model module when called.

* ``nmf`` — supervised NMF with piano templates learned from SoundFont renders
  (:mod:`.nmf`, templates bundled in ``transcribe_cli/data/nmf_piano_cqt.npz`` and learned by
  ``scripts/learn_nmf_templates.py``). Needs no neural network and no download, and runs
  without torch (numpy, with the ``cqt`` frontend's numpy form).

Neural models (trainable with ``transcribe train``; no published weights yet, so they run
from a checkpoint: ``--model runs/NAME/best.pt``). Each spec's ``network`` builds a fresh
:class:`~.neural.TranscriptionNet` from its ``architecture`` options:

* ``hppnet`` — HPPNet (Wei et al. 2022) on ``cqt`` (:mod:`.hppnet`);
* ``onsets-frames`` — Onsets and Frames, MAESTRO version (Hawthorne et al. 2019) on
  ``logmel`` (:mod:`.onsets_frames`);
* ``crnn``, ``bilstm`` — small onset + frame baselines on ``logmel`` (:mod:`.baselines`);
* ``pitchvis-mlp`` — PitchVis' causal real-time frame model on ``vqt`` (:mod:`.pitchvis`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..hookspecs import hookimpl
from ..specs import ACTIVATIONS, ModelSpec, WeightsSource

NMF_TEMPLATES = "transcribe_cli:data/nmf_piano_cqt.npz"
HPPNET_WEIGHTS = "transcribe_cli:data/hppnet_tiny_synth.pt"
#: the bundled hppnet weights as one ONNX graph, frontend included (exported from the .pt by
#: ``onnx_export.export_and_check(..., with_frontend=True)``; a test keeps its ``source_sha256``
#: equal to the .pt's digest): 232-239 MB peak RSS on onnxruntime from 1 to 20 min, 538-572 MB on torch
#: (benchmarks/results/memory.md)
HPPNET_ONNX = "transcribe_cli:data/hppnet_tiny_synth.onnx"
PIANO_WEIGHTS = "transcribe_cli:data/piano_synth.pt"
#: the bundled piano weights as one ONNX graph, frontend included (``scripts/bundle_weights.py``
#: writes both; a test keeps its ``source_sha256`` equal to the .pt's digest)
PIANO_ONNX = "transcribe_cli:data/piano_synth.onnx"

#: Model options of ``nmf`` (``--option model.KEY=VALUE``); the defaults are the settings the
#: bundled templates were tuned with (``meta["settings"]`` of the .npz; a test keeps them equal).
NMF_OPTIONS: dict[str, Any] = {
    "n_iter": 25,  # over-relaxed (relaxation 2): the fit of 50 plain updates (nmf_speed.md)
    "beta": 0.5,
    "sparsity": 0.0,
    "onset_suppression": 0.5,
    "bin_pool": 1,
    "prune_after": 0,
    "prune_level": 0.0,
    "relaxation": 2.0,
    "reference": 19.572452545166016,  # the key gain that maps to activation 1 (learned)
}

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
    numpy_inference=True,  # numpy throughout: runs without torch (--runtime auto|numpy)
)


# -- neural models ---------------------------------------------------------------------------


def _neural_factory(name: str, module: str, function: str = "build", **architecture: Any) -> Callable[..., Any]:
    """``neural.neural_factory`` for the network ``module.function``, imported when called
    (:mod:`.neural` imports torch)."""

    def factory(weights_path: Path | None = None, **options: Any) -> Any:
        from .neural import neural_factory

        return neural_factory(name, _network(module, function), architecture)(weights_path, **options)

    factory.__name__ = f"build_{name.replace('-', '_')}"
    return factory


def _network(module: str, function: str = "build") -> Callable[..., Any]:
    """A ``ModelSpec.network`` that imports ``.module`` when called and returns ``function(**architecture)``."""

    def network(**architecture: Any) -> Any:
        return getattr(importlib.import_module(f"{__name__}.{module}"), function)(**architecture)

    network.__name__ = f"{module}_{function}"
    return network


def _neural_spec(name: str, module: str, architecture: dict[str, Any], function: str = "build", **fields: Any) -> ModelSpec:
    """A neural model's spec: network ``module.function``, loaded from checkpoints by
    :func:`_neural_factory`, fed peak-normalised audio like every built-in model."""
    return ModelSpec(
        name=name,
        factory=_neural_factory(name, module, function, **architecture),
        network=_network(module, function),
        architecture=architecture,
        **{"audio_normalization": "peak", **fields},
    )


#: seconds of context on each side of an inference window for the recurrent models (the pipeline
#: converts it to frames at the frontend's rate); a BiLSTM has mostly forgotten a window's edge by then
LSTM_CONTEXT_SECONDS = 2.0

#: architecture options of each network with their defaults (checkpoints store their own)
PIANO_ARCHITECTURE: dict[str, Any] = {"channels": 32, "front_channels": 8, "dilations": (1, 2, 4, 8, 16, 32)}
#: frames of context each side of a ``piano`` window: its receptive field
#: (``models.piano.receptive_frames`` of the default dilations, + 1; a test keeps them equal)
PIANO_CONTEXT_FRAMES = 72
#: decoder options tuned into the bundled piano checkpoint (its ``meta["decoder_options"]``; a test keeps them equal)
PIANO_DECODER_OPTIONS: dict[str, Any] = {"onset_threshold": 0.3, "harmonic_ratio": 0.7}
#: loss weights that give every output a share of the shared trunk's gradient: with equal
#: weights the onset and offset parts' gradient norms on the shared layers were 0.5 % of the frame
#: part's and 0.2 % of the pedal's; with these, 0.5-0.9 of the frame part's
#: (``scripts/loss_gradient_shares.py``; docs/runs/piano-balanced)
PIANO_LOSS_WEIGHTS: dict[str, float] = {"onset": 150.0, "offset": 100.0, "frame": 1.0, "velocity": 2.0, "pedal": 0.25}
#: decoder options tuned into the bundled hppnet checkpoint (its ``meta["decoder_options"]``; a
#: test keeps them equal), so ``--model hppnet`` decodes as the checkpoint was tuned
HPPNET_DECODER_OPTIONS: dict[str, Any] = {"onset_threshold": 0.3}
HPPNET_ARCHITECTURE: dict[str, Any] = {"preset": "sp", "channels": 0, "lstm_hidden": 0}
ONSETS_FRAMES_ARCHITECTURE: dict[str, Any] = {"preset": "full", "model_complexity": 0}
CRNN_ARCHITECTURE: dict[str, Any] = {"conv_channels": 16, "embedding": 256, "lstm_hidden": 128, "lstm_layers": 2}
BILSTM_ARCHITECTURE: dict[str, Any] = {"lstm_hidden": 192, "lstm_layers": 2}
PITCHVIS_ARCHITECTURE: dict[str, Any] = {"hidden": 1024, "layers": 2, "conv_channels": 16, "dropout": 0.1}
#: what the two log-mel baselines share
BASELINE_FIELDS: dict[str, Any] = {
    "family": "baseline", "frontend": "logmel", "decoder": "onsets-frames", "outputs": ("onset", "frame"),
    "context_seconds": LSTM_CONTEXT_SECONDS, "train_defaults": {"learning_rate": 1e-3},
}

NEURAL_SPECS: tuple[ModelSpec, ...] = (
    _neural_spec(
        "piano",
        "piano",
        PIANO_ARCHITECTURE,
        family="piano",
        frontend="cqt",
        decoder="onset-peaks",
        description=(
            "The default piano model: harmonic convolutions and pitch-shared dilated temporal convolutions on "
            "the cqt (no recurrent layers, fast on a CPU); onset, frame, offset, velocity and sustain pedal."
        ),
        outputs=ACTIVATIONS,
        context_frames=PIANO_CONTEXT_FRAMES,
        audio_normalization="loudness",
        # trained 95 min on one CPU core on rendered piano (model_cards/piano.md; configs/piano-synth-cpu.yaml)
        weights=WeightsSource(bundled=PIANO_WEIGHTS, onnx=PIANO_ONNX),
        decoder_options=PIANO_DECODER_OPTIONS,
        train_defaults={"learning_rate": 2e-3, "sustain_pedal": False, "loss_weights": PIANO_LOSS_WEIGHTS},
    ),
    _neural_spec(
        "hppnet",
        "hppnet",
        HPPNET_ARCHITECTURE,
        family="hppnet",
        frontend="cqt",
        decoder="onset-peaks",
        description=(
            "HPPNet (Wei et al., ISMIR 2022): harmonic dilated convolutions on a 48 bins/octave CQT and "
            "pitch-shared BiLSTMs; presets sp (1.2 M parameters), base (0.8 M), tiny (0.24 M). Bundled weights: "
            "tiny, trained 81 min on 2 CPU cores on rendered piano."
        ),
        context_seconds=LSTM_CONTEXT_SECONDS,
        # the tiny preset trained on rendered piano (model_cards/hppnet.md; configs/hppnet-tiny-synth-cpu.yaml)
        weights=WeightsSource(bundled=HPPNET_WEIGHTS, onnx=HPPNET_ONNX),
        decoder_options=HPPNET_DECODER_OPTIONS,
        train_defaults={"learning_rate": 6e-4},
    ),
    _neural_spec(
        "onsets-frames",
        "onsets_frames",
        ONSETS_FRAMES_ARCHITECTURE,
        family="onsets-frames",
        frontend="logmel",
        decoder="onsets-frames",
        description=(
            "Onsets and Frames (Hawthorne et al. 2018/2019, MAESTRO version): conv stacks + BiLSTMs on log-mel; "
            "presets full (26.5 M parameters) and small (3.2 M)."
        ),
        context_seconds=LSTM_CONTEXT_SECONDS,
        train_defaults={"learning_rate": 6e-4},
    ),
    _neural_spec(
        "crnn",
        "baselines",
        CRNN_ARCHITECTURE,
        function="build_crnn",
        description="Baseline CRNN: log-mel -> conv stack -> 2-layer BiLSTM -> onset and frame (small, CPU-friendly).",
        **BASELINE_FIELDS,
    ),
    _neural_spec(
        "bilstm",
        "baselines",
        BILSTM_ARCHITECTURE,
        function="build_bilstm",
        description="Baseline: log-mel -> 2-layer BiLSTM -> onset and frame (no convolutions).",
        **BASELINE_FIELDS,
    ),
    _neural_spec(
        "pitchvis-mlp",
        "pitchvis",
        PITCHVIS_ARCHITECTURE,
        family="pitchvis",
        frontend="vqt",
        decoder="frame-threshold",
        description=(
            "PitchVis real-time model: causal 5-frame VQT history -> conv1d -> MLP -> 88 frame activations "
            "(no look-ahead; frame-only, so no onsets or velocities)."
        ),
        decoder_options={"threshold": 0.5, "median_frames": 3},
        outputs=("frame",),
        context_frames=4,  # causal: frames t-4 … t
        train_defaults={"learning_rate": 3e-4},
    ),
)


@hookimpl
def register_models(register: Callable[[Any], None]) -> None:
    """Register the built-in models."""
    register(NMF_SPEC)
    for spec in NEURAL_SPECS:
        register(spec)
