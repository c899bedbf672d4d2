"""The transcription pipeline: frontend → model → decoder, with its resolved options.

:class:`Pipeline` is the one place the three stages are put together; ``transcribe``
(:class:`Transcriber`), ``transcribe eval`` and its ``--sweep``, and training's validation all
run through it:

- :meth:`Pipeline.activations` — conditioning, the model's input normalisation, then the
  frontend and model window by window (:mod:`transcribe_cli.inference`);
- :meth:`Pipeline.decode` — the decoder with the resolved options, each of which a caller
  may override for one call (a sweep point, a tuned threshold);
- :meth:`Pipeline.transcribe` — both, plus the sustain pedal.

:class:`Transcriber` builds a pipeline from what a user names (a model, a decoder,
``key=value`` options, weights); training builds one around the network it trains.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from transcribe_cli.errors import TranscribeError
from transcribe_cli.inference import DEFAULT_WINDOW_SECONDS, compute_activations, normalize_audio
from transcribe_cli.notes import PEDAL_MODES, Note, Pedal, Transcription
from transcribe_cli.registry import Registry, get_registry
from transcribe_cli.specs import PEDAL_ACTIVATION, DecoderSpec, FrontendSpec, ModelSpec


def check_compatible(model_spec: ModelSpec, decoder_spec: DecoderSpec) -> None:
    """A clear error when ``decoder_spec`` needs activations ``model_spec`` does not produce."""
    missing = set(decoder_spec.requires) - set(model_spec.outputs)
    if missing:
        raise TranscribeError(
            f"decoder {decoder_spec.name!r} needs {', '.join(sorted(missing))} activations, "
            f"which model {model_spec.name!r} does not produce",
            f"use its default decoder {model_spec.decoder!r}",
        )


def build_frontend(spec: FrontendSpec, device: Any, options: Mapping[str, Any] | None = None) -> Any:
    """The frontend module of ``spec`` on ``device`` in eval mode (it has no parameters)."""
    return spec.factory(**dict(options or {})).to(device).eval()


class Pipeline:
    """Frontend, model and decoder with resolved options; build once, run on many recordings.

    ``decoder_options`` are complete and validated (see
    :func:`transcribe_cli.options.effective_options`); ``context_frames`` is the model's
    context converted at the frontend's frame rate. ``frontend`` is ``None`` when ``model`` is
    an audio model (frontend and network in one, numpy in and out, e.g. an ONNX graph on
    onnxruntime; see :func:`transcribe_cli.inference.window_activations`)."""

    def __init__(
        self,
        *,
        model_spec: ModelSpec,
        frontend_spec: FrontendSpec,
        decoder_spec: DecoderSpec,
        frontend: Any,
        model: Any,
        decoder_options: Mapping[str, Any],
        model_options: Mapping[str, Any] | None = None,
        frontend_options: Mapping[str, Any] | None = None,
        device: Any,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        batch_size: int | None = None,
        weights_path: Path | None = None,
    ):
        check_compatible(model_spec, decoder_spec)
        self.model_spec = model_spec
        self.frontend_spec = frontend_spec
        self.decoder_spec = decoder_spec
        self.frontend = frontend
        self.model = model
        self.model_options = dict(model_options or {})
        self.frontend_options = dict(frontend_options or {})
        self.decoder_options = dict(decoder_options)
        self.device = device
        self.weights_path = weights_path
        self.decode_fn: Callable[..., list[Note]] = decoder_spec.factory()
        self.window_frames = max(1, int(round(window_seconds * frontend_spec.frame_rate)))
        # one window at a time on CPU: same CPU time as two, 60 MB less peak (benchmarks/results/memory.md)
        self.batch_size = batch_size or (8 if getattr(device, "type", "cpu") == "cuda" else 1)
        self.context_frames = model_spec.context_frames_at(frontend_spec.frame_rate)
        self.runtime = getattr(self, "runtime", "torch")  # a Transcriber chose it before (transcribe_cli.runtime)

    @property
    def sample_rate(self) -> int:
        return self.frontend_spec.sample_rate

    @property
    def frame_rate(self) -> float:
        return self.frontend_spec.frame_rate

    # -- activations ---------------------------------------------------------------------

    def model_activations(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        """Frontend and model over ``audio`` as given (already conditioned and normalised),
        window by window; each activation ``[T, 88]`` (``[T, 1]`` for the pedal)."""
        return compute_activations(
            audio,
            self.frontend,
            self.model,
            context_frames=self.context_frames,
            window_frames=self.window_frames,
            batch_size=self.batch_size,
            device=self.device,
        )

    def activations(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        """The activations of a recording as loaded: conditioned, normalised as the model
        expects, then :meth:`model_activations`."""
        if self.model_spec.windowing == "model":
            # a peer model (plugins/) takes the recording as loaded and windows it its own way,
            # so its results equal the peer's; no conditioning or normalisation of ours applies
            return self.model.activations(np.asarray(audio, dtype=np.float32))
        from transcribe_cli.conditioning import condition

        # DC removal and the silence/noise gate apply before every model's own normalisation
        audio, verdict = condition(audio, self.sample_rate)
        if verdict.blank:  # silence or noise: no notes, and no model run
            n_frames = audio.shape[0] // self.frontend_spec.hop_length + 1
            return {key: np.zeros((n_frames, 1 if key == PEDAL_ACTIVATION else 88), dtype=np.float32)
                    for key in self.model_spec.outputs}
        return self.model_activations(normalize_audio(audio, self.model_spec.audio_normalization, self.sample_rate))

    # -- decoding ------------------------------------------------------------------------

    def decode(self, activations: Mapping[str, np.ndarray], **overrides: Any) -> list[Note]:
        """Notes from ``activations`` with the resolved decoder options, ``overrides`` replacing
        some of them for this call (the decoder validates every value)."""
        return self.decode_fn(dict(activations), self.frame_rate, **{**self.decoder_options, **overrides})

    @property
    def tunable(self) -> Mapping[str, tuple[Any, ...]]:
        """The decoder options a validation may tune, each with the values it tries."""
        return self.decoder_spec.tunable

    def decode_pedals(self, activations: Mapping[str, np.ndarray]) -> list[Pedal]:
        """Sustain-pedal intervals from the ``pedal`` activation (none without one)."""
        from transcribe_cli.decoders.pedal import decode_pedal

        if PEDAL_ACTIVATION not in activations:
            return []
        return decode_pedal(activations[PEDAL_ACTIVATION], self.frame_rate)

    # -- whole recordings ----------------------------------------------------------------

    def transcribe_audio(self, audio: np.ndarray) -> list[Note]:
        """The notes of ``audio`` (key-release ends; see :meth:`transcribe` for the pedal)."""
        return self.decode(self.activations(audio))

    def transcribe(self, audio: np.ndarray, pedal: str = "cc") -> Transcription:
        """Notes and sustain pedal of ``audio``. ``pedal``: ``"cc"`` keeps key-release notes and
        the pedal intervals (written as CC64), ``"extend"`` extends the notes over the pedal
        (the MAESTRO convention) and drops the intervals, ``"none"`` drops the intervals."""
        _check_pedal_mode(pedal)
        activations = self.activations(audio)
        notes = self.decode(activations)
        return _with_pedal(notes, self.decode_pedals(activations) if pedal != "none" else [], pedal)

    def transcribe_path(self, path: str | Path, pedal: str = "cc",
                        blocks: Callable[[], Iterable[np.ndarray]] | None = None) -> tuple[Transcription, float]:
        """:meth:`transcribe` of the recording at ``path`` and its duration in seconds, streamed:
        a first pass over its blocks gathers the conditioning and normalisation statistics
        (:class:`transcribe_cli.conditioning.AudioStats`), a second runs the windows and hands
        each window's frames to the decoder, so memory does not grow with the file's length
        (only the notes do). The notes equal :meth:`transcribe` of :func:`load_audio`.
        ``blocks``: the block source both passes read (default: an
        :class:`~transcribe_cli.io.audio.AudioBlocks` of ``path`` at the model's rate, which
        decodes a short file once), e.g. one shared with ``--tempo auto``."""
        from transcribe_cli.conditioning import AudioStats
        from transcribe_cli.inference import LOUDNESS_BLOCK_SECONDS, stream_transform, window_activations
        from transcribe_cli.io.audio import AudioBlocks, load_audio

        _check_pedal_mode(pedal)
        if self.model_spec.windowing == "model":  # a peer model windows the whole recording itself
            audio = load_audio(path, self.sample_rate)
            return self.transcribe(audio, pedal), audio.shape[0] / self.sample_rate
        source = blocks if blocks is not None else AudioBlocks(path, self.sample_rate)
        stats = AudioStats(self.sample_rate, int(round(LOUDNESS_BLOCK_SECONDS * self.sample_rate)))
        for block in source():
            stats.add(block)
        seconds = stats.count / self.sample_rate
        prepare, verdict = stream_transform(stats, self.model_spec.audio_normalization)
        message = verdict.warning()
        if message:
            import logging

            logging.getLogger("transcribe_cli.conditioning").warning("%s", message)
        if verdict.blank:  # silence or noise: no notes, and no model run
            return Transcription([], []), seconds
        notes = self._note_stream()
        pedals = None
        if pedal != "none" and PEDAL_ACTIVATION in self.model_spec.outputs:
            from transcribe_cli.decoders.pedal import PedalStream

            pedals = PedalStream(self.frame_rate)
        for _, values in window_activations(
            source(), stats.count, self.frontend, self.model,
            context_frames=self.context_frames, window_frames=self.window_frames, batch_size=self.batch_size,
            device=self.device, prepare=prepare,
        ):
            if pedals is not None and PEDAL_ACTIVATION in values:
                pedals.feed(values.pop(PEDAL_ACTIVATION))
            notes.feed(values)
        return _with_pedal(notes.finish(), pedals.finish() if pedals is not None else [], pedal), seconds

    def _note_stream(self) -> Any:
        """The decoder as a stream (``feed`` each window's activations, then ``finish``): its
        own (``DecoderSpec.stream``) where it has one, else the joined arrays at the end."""
        if self.decoder_spec.stream is not None:
            return self.decoder_spec.stream()(self.frame_rate, **self.decoder_options)
        return _Joined(self.decode)

    def transcribe_file(self, path: str | Path) -> list[Note]:
        from transcribe_cli.io.audio import load_audio

        return self.transcribe_audio(load_audio(path, self.sample_rate))

    def describe(self) -> dict[str, Any]:
        """What produced a transcription (for JSON outputs and eval reports)."""
        from transcribe_cli import __version__

        return {
            "transcribe_cli": __version__,
            "model": self.model_spec.name,
            "model_options": self.model_options,
            "frontend": self.frontend_spec.name,
            "frontend_options": self.frontend_options,
            "decoder": self.decoder_spec.name,
            "decoder_options": self.decoder_options,
            "weights": str(self.weights_path) if self.weights_path else None,
            "device": str(self.device),
        }


def _check_pedal_mode(pedal: str) -> None:
    if pedal not in PEDAL_MODES:
        raise TranscribeError(f"unknown pedal mode {pedal!r}", f"use one of {', '.join(PEDAL_MODES)}")


def _with_pedal(notes: list[Note], pedals: list[Pedal], pedal: str) -> Transcription:
    """The transcription in pedal mode ``pedal`` (see :meth:`Pipeline.transcribe`)."""
    if pedal == "extend":
        from transcribe_cli.io.midi import extend_over_pedal

        return Transcription(extend_over_pedal(notes, pedals), [], extended=True)
    return Transcription(notes, pedals if pedal != "none" else [])


class _Joined:
    """A decoder that needs whole arrays, as a stream: the chunks are joined at ``finish``."""

    def __init__(self, decode: Callable[[Mapping[str, np.ndarray]], list[Note]]):
        self._decode = decode
        self._parts: dict[str, list[np.ndarray]] = {}

    def feed(self, activations: Mapping[str, np.ndarray]) -> None:
        for key, value in activations.items():
            self._parts.setdefault(key, []).append(value)

    def finish(self) -> list[Note]:
        return self._decode({key: np.concatenate(parts) for key, parts in self._parts.items()})


class Transcriber(Pipeline):
    """The pipeline of a model a user names: a registered name, ``hf://owner/repo@revision/file``
    or a checkpoint path, with an optional other decoder and ``key=value`` options (the
    decoder's defaults < the model's tuned decoder options < the pairs; types and ranges are
    checked before any weights are read). ``offline``: never download (``None``: as
    ``HF_HUB_OFFLINE`` says)."""

    def __init__(
        self,
        model: str,
        *,
        decoder: str | None = None,
        options: list[str] | tuple[str, ...] = (),
        device: str = "auto",
        weights: str | Path | None = None,
        registry: Registry | None = None,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        batch_size: int | None = None,
        offline: bool | None = None,
        runtime: str = "auto",
        threads: int | None = None,
    ):
        from transcribe_cli.weights.hub import offline_scope

        self.registry = registry or get_registry()
        with offline_scope(offline):  # ``--offline``: no download, also by a plugin's own fetch
            self._build(model, decoder, options, device, weights, window_seconds, batch_size, offline, runtime,
                        threads)

    def _build(self, model, decoder, options, device, weights, window_seconds, batch_size, offline, runtime,
               threads) -> None:
        """``runtime`` (:mod:`transcribe_cli.runtime`): onnxruntime on the model's audio graph,
        without torch, or the torch frontend and network on ``device``; ``threads``: the CPU
        threads of either (``None``: their default)."""
        from transcribe_cli.resolution import resolve_transcriber
        from transcribe_cli.runtime import check_runtime, choose_runtime

        check_runtime(runtime)
        resolved = resolve_transcriber(model, registry=self.registry, decoder=decoder, options=options,
                                       weights=weights, offline=offline)
        model_spec: ModelSpec = resolved.model_spec
        frontend_spec, decoder_spec = resolved.frontend_spec, resolved.decoder_spec
        model_options, decoder_options, frontend_options = (
            resolved.model_options, resolved.decoder_options, resolved.frontend_options)
        weights_path = resolved.weights_path
        choice = choose_runtime(resolved, runtime, device, threads)
        self.runtime = choice.runtime
        if choice.model is not None:
            frontend, network, run_device = None, choice.model, "cpu"
        else:
            from transcribe_cli.inference import select_device

            if threads:
                import torch

                torch.set_num_threads(threads)
            run_device = select_device(device)
            frontend = build_frontend(frontend_spec, run_device, frontend_options)
            network = model_spec.factory(weights_path, **model_options).to(run_device).eval()
        super().__init__(
            model_spec=model_spec,
            frontend_spec=frontend_spec,
            decoder_spec=decoder_spec,
            frontend=frontend,
            model=network,
            model_options=model_options,
            decoder_options=decoder_options,
            frontend_options=frontend_options,
            device=run_device,
            window_seconds=window_seconds,
            batch_size=batch_size,
            weights_path=weights_path,
        )
        from transcribe_cli.workers import usable_cores

        #: the CPU threads this transcription may use (its worker's share of the cores)
        self.threads = int(threads) if threads else usable_cores()
