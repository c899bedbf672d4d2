"""What a user's ``--model``, ``--decoder``, ``-O`` options and ``--weights`` resolve to,
without building the model: the specs, the checked options and the weights file.

``transcribe run --jobs N`` resolves once in the parent, so an unknown name or a bad option
fails once, early, in one line, while only the worker processes build a model (with
torch); see :meth:`transcribe_cli.batch.TranscriberConfig.resolve`. :class:`transcribe_cli.pipeline.Transcriber`
starts from this and goes on to build the frontend and the network (no torch import here or in the modules it uses for a registered model).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transcribe_cli.specs import DecoderSpec, FrontendSpec, ModelSpec


@dataclass(frozen=True)
class ResolvedTranscriber:
    model_spec: ModelSpec
    decoder_spec: DecoderSpec
    frontend_spec: FrontendSpec
    model_options: dict[str, Any]
    decoder_options: dict[str, Any]
    frontend_options: dict[str, Any]
    weights_path: Path | None

    def describe(self) -> dict[str, Any]:
        """What :meth:`transcribe_cli.pipeline.Pipeline.describe` says of the pipeline this
        resolves to, less the device (for :func:`transcribe_cli.manifest.run_identity`): the
        same method, so the two cannot drift apart."""
        from transcribe_cli.pipeline import Pipeline

        described = Pipeline.describe(self)  # type: ignore[arg-type]  # reads only the fields above
        described.pop("device")
        return described

    device = None  # not chosen yet: the workers choose theirs


def resolve_transcriber(
    model: str,
    *,
    registry: Any,
    decoder: str | None = None,
    options: list[str] | tuple[str, ...] = (),
    weights: str | Path | None = None,
    offline: bool | None = None,
) -> ResolvedTranscriber:
    """Look ``model`` and ``decoder`` up, check the options and find the weights (downloading
    them if needed, unless ``offline``). Raises :class:`transcribe_cli.errors.TranscribeError`."""
    from transcribe_cli.options import effective_options
    from transcribe_cli.pipeline import check_compatible
    from transcribe_cli.weights.hub import offline_scope
    from transcribe_cli.weights.uri import resolve_model_argument, resolve_model_weights

    with offline_scope(offline):
        choice = resolve_model_argument(model, registry, weights=weights, offline=offline)
        decoder_spec = registry.decoder(decoder or choice.spec.decoder)
        frontend_spec = registry.frontend(choice.spec.frontend)
        check_compatible(choice.spec, decoder_spec)
        resolved = effective_options(choice.spec, decoder_spec, options, frontend_spec)
        weights_path = resolve_model_weights(choice, weights, offline=offline)
    return ResolvedTranscriber(
        model_spec=choice.spec, decoder_spec=decoder_spec, frontend_spec=frontend_spec,
        model_options=dict(resolved.model), decoder_options=dict(resolved.decoder),
        frontend_options=dict(resolved.frontend), weights_path=weights_path,
    )
