"""Validation during training: the network transcribes the validation files exactly as
``transcribe`` would (windowed activations, the model's decoder), and the notes are scored
with the metrics of ``transcribe eval`` (:func:`transcribe_cli.eval_scoring.score`).

With ``tune`` the decoder's main threshold (:data:`TUNED_OPTION`) is swept over
:data:`THRESHOLDS` on the same activations (decoding is cheap, the network runs once) and
the value with the best mean ``metric`` wins; the checkpoint stores it as the model's
decoder option, so inference uses the tuned threshold.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transcribe_cli.notes import Note, clip_notes  # noqa: F401  (clip_notes: part of this module's API)

#: The option each built-in decoder's threshold tuning sweeps.
TUNED_OPTION = {"onset-peaks": "onset_threshold", "onsets-frames": "onset_threshold", "frame-threshold": "threshold"}
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


@dataclass
class ValidationSet:
    """Validation audio (normalised like inference) and reference notes, loaded once."""

    names: list[str]
    audio: list[np.ndarray]
    references: list[list[Note]]

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class ValidationResult:
    metrics: dict[str, float]  # mean over files
    decoder_options: dict[str, Any]  # the options that produced them
    per_threshold: dict[float, float] = field(default_factory=dict)  # tuned value -> mean metric


def load_validation_set(
    items: Sequence[Any], *, sample_rate: int, normalization: str | None, seconds: float, sustain_pedal: bool
) -> ValidationSet:
    from transcribe_cli.training.audio_store import load_normalized

    names, audio, refs = [], [], []
    for item in items:
        names.append(item.name)
        audio.append(load_normalized(item, sample_rate, normalization, max_seconds=seconds or None))
        refs.append(clip_notes(item.notes(sustain_pedal=sustain_pedal), seconds))
    return ValidationSet(names, audio, refs)


def _mean(scores: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([s[key] for s in scores])) for key in scores[0]} if scores else {}


def validate(
    network: Any,
    frontend: Any,
    data: ValidationSet,
    *,
    decoder: Any,  # DecoderSpec
    decoder_options: Mapping[str, Any],
    context_frames: int,
    device: Any,
    metric: str = "onset_f1",
    tune: bool = False,
    window_seconds: float = 20.0,
) -> ValidationResult:
    """Transcribe and score every file of ``data``; ``network`` is switched to eval mode and back."""
    from transcribe_cli.eval_scoring import score
    from transcribe_cli.inference import compute_activations

    decode = decoder.factory()
    frame_rate = frontend.sample_rate / frontend.hop_length
    was_training = network.training
    network.eval()
    try:
        activations = [
            compute_activations(
                audio, frontend, network, context_frames=context_frames,
                window_frames=max(1, int(round(window_seconds * frame_rate))), batch_size=4, device=device,
            )
            for audio in data.audio
        ]
    finally:
        network.train(was_training)

    base = {**decoder.options, **decoder_options}
    option = TUNED_OPTION.get(decoder.name) if tune else None
    candidates = [base] if option is None else [{**base, option: t} for t in THRESHOLDS]
    best: ValidationResult | None = None
    per_threshold: dict[float, float] = {}
    for options in candidates:
        scores = [score(ref, decode(act, frame_rate, **options)) for ref, act in zip(data.references, activations)]
        mean = _mean(scores)
        if option is not None:
            per_threshold[float(options[option])] = mean.get(metric, 0.0)
        if best is None or mean.get(metric, 0.0) > best.metrics.get(metric, 0.0):
            best = ValidationResult(mean, dict(options))
    assert best is not None
    best.per_threshold = per_threshold
    return best
