"""Validation during training: the network transcribes the validation files exactly as
``transcribe`` would (windowed activations, the model's decoder), and the notes are scored
with the metrics of ``transcribe eval`` (:func:`transcribe_cli.evaluation.scoring.score`).

With ``tune`` the options the decoder declares tunable (``DecoderSpec.tunable``, e.g. the
main threshold over 0.1 … 0.7) are swept on the same activations (decoding is cheap, the
network runs once) and the values with the best mean ``metric`` win; the checkpoint stores
them as the model's decoder options, so inference uses the tuned threshold.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transcribe_cli.notes import Note, clip_notes  # noqa: F401  (clip_notes: part of this module's API)


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


def tuning_grid(tunable: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the values of the options a decoder declares tunable
    (``[{}]``, one point with the configured options, when none)."""
    return [dict(zip(tunable, values)) for values in itertools.product(*tunable.values())]


def _point_key(point: Mapping[str, Any]) -> Any:
    """How :attr:`ValidationResult.per_threshold` names a tuning point: the bare value when one
    option is tuned (``0.3``), else its description (``"a=0.3, b=2"``)."""
    if len(point) == 1:
        return float(next(iter(point.values())))
    from transcribe_cli.evaluation.sweep import describe_point

    return describe_point(point)


def validate(
    pipeline: Any,  # transcribe_cli.pipeline.Pipeline around the network being trained
    data: ValidationSet,
    *,
    metric: str = "onset_f1",
    tune: bool = False,
) -> ValidationResult:
    """Transcribe and score every file of ``data`` (its audio is already normalised like
    inference); the pipeline's model is switched to eval mode and back. With ``tune`` every
    point of the decoder's tunable options (:attr:`DecoderSpec.tunable`) is decoded from the
    same activations and the best mean ``metric`` wins."""
    from transcribe_cli.evaluation.scoring import score

    network = pipeline.model
    was_training = network.training
    network.eval()
    try:
        activations = [pipeline.model_activations(audio) for audio in data.audio]
    finally:
        network.train(was_training)

    points = tuning_grid(pipeline.tunable) if tune else [{}]
    best: ValidationResult | None = None
    per_threshold: dict[Any, float] = {}
    for point in points:
        scores = [score(ref, pipeline.decode(act, **point)) for ref, act in zip(data.references, activations)]
        mean = _mean(scores)
        if point:
            per_threshold[_point_key(point)] = mean.get(metric, 0.0)
        if best is None or mean.get(metric, 0.0) > best.metrics.get(metric, 0.0):
            best = ValidationResult(mean, {**pipeline.decoder_options, **point})
    assert best is not None
    best.per_threshold = per_threshold
    return best
