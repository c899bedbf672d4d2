"""Frontend → model over audio of any length, with bounded memory (the windowed part of
:class:`transcribe_cli.pipeline.Pipeline`), and the models' input normalisation.

Long recordings are cut into windows of ``window_frames`` output frames. Each window is
computed from a chunk of audio that extends ``margin`` frames beyond it on both sides
(enough for the frontend's longest filter and the model's temporal context), and only
the window's own frames are kept, so the stitched activations equal those of one pass
over the whole recording while memory stays proportional to the window, not the file.

Frame convention (shared with every frontend): frame ``t`` is centred on sample
``t * hop_length``, the signal is zero beyond its ends, and there are
``samples // hop_length + 1`` frames.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from transcribe_cli.errors import TranscribeError

DEFAULT_WINDOW_SECONDS = 20.0

PEAK_LEVEL = 0.9
SILENCE_PEAK = 1e-6


def select_device(name: str = "auto"):
    """``auto`` → CUDA when available, else CPU; ``cuda`` fails clearly without a GPU."""
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TranscribeError("--device cuda was asked for, but no CUDA GPU is available", "use --device cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise TranscribeError(f"unknown device {name!r}", "use auto, cpu or cuda[:N]")
    return torch.device(name)


#: ``"loudness"`` normalisation: the level is the LOUDNESS_PERCENTILE-th percentile of the RMS
#: of LOUDNESS_BLOCK_SECONDS blocks (DC removed), scaled to LOUDNESS_TARGET RMS (-20 dBFS); a
#: level below SILENCE_LEVEL (-70 dBFS) is silence and is not amplified; the gain never
#: exceeds MAX_LOUDNESS_GAIN (+40 dB)
LOUDNESS_BLOCK_SECONDS = 0.4
LOUDNESS_PERCENTILE = 90.0
LOUDNESS_TARGET = 0.1
SILENCE_LEVEL = 10 ** (-70 / 20)
MAX_LOUDNESS_GAIN = 100.0
NORMALIZATIONS = ("peak", "loudness")


@dataclass(frozen=True)
class AudioLevel:
    """What input normalisation needs to know of a whole recording: its peak, its DC
    offset (mean) and its loudness (see :data:`LOUDNESS_PERCENTILE`)."""

    peak: float
    mean: float = 0.0
    loudness: float = 0.0


def measure_level(audio: np.ndarray, sample_rate: int) -> AudioLevel:
    """The :class:`AudioLevel` of a recording (one pass, no copy of the whole file beyond
    one float64 block view)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.size == 0:
        return AudioLevel(0.0, 0.0, 0.0)
    peak = float(np.max(np.abs(audio)))
    mean = float(np.mean(audio, dtype=np.float64))
    block = max(int(round(LOUDNESS_BLOCK_SECONDS * sample_rate)), 1)
    n_blocks = max(audio.size // block, 1)
    blocks = audio[: n_blocks * block].reshape(n_blocks, -1) if audio.size >= block else audio[None, :]
    centred = blocks - np.float32(mean)
    rms = np.sqrt(np.mean(np.square(centred, dtype=np.float32), axis=1, dtype=np.float64))
    return AudioLevel(peak, mean, float(np.percentile(rms, LOUDNESS_PERCENTILE)))


def normalization_transform(level: AudioLevel | float, mode: str | None) -> tuple[float, float]:
    """``(offset, scale)`` of a model's input normalisation for a recording of ``level``
    (a bare float is a peak): the model sees ``(audio - offset) * scale``. Training reads the
    level from its audio store, inference measures it on the audio."""
    if not isinstance(level, AudioLevel):
        level = AudioLevel(float(level))
    if mode is None:
        return 0.0, 1.0
    if mode == "peak":
        return 0.0, (1.0 if level.peak < SILENCE_PEAK else PEAK_LEVEL / level.peak)  # silence stays silence
    if mode == "loudness":
        if level.loudness < SILENCE_LEVEL:
            return level.mean, 1.0  # near-silence (dither, noise floor) is not amplified into music
        return level.mean, min(LOUDNESS_TARGET / level.loudness, MAX_LOUDNESS_GAIN)
    raise TranscribeError(f"unknown audio normalisation {mode!r}", f"use one of {', '.join(NORMALIZATIONS)}")


def normalization_scale(level: AudioLevel | float, mode: str | None) -> float:
    """The factor of :func:`normalization_transform`."""
    return normalization_transform(level, mode)[1]


def apply_normalization(audio: np.ndarray, offset: float, scale: float) -> np.ndarray:
    """``(audio - offset) * scale`` as float32 (``audio`` itself when that is the identity)."""
    if offset == 0.0 and scale == 1.0:
        return audio
    return ((audio - np.float32(offset)) * np.float32(scale)).astype(np.float32, copy=False)


def normalize_audio(audio: np.ndarray, mode: str | None, sample_rate: int = 16000) -> np.ndarray:
    """Apply a model's input normalisation to the whole recording."""
    if mode is None:
        return audio
    offset, scale = normalization_transform(measure_level(audio, sample_rate), mode)
    return apply_normalization(audio, offset, scale)


def stream_transform(stats: Any, mode: str | None) -> tuple[Callable[[np.ndarray], np.ndarray], Any]:
    """What the whole-file path does to a recording (full-scale fit, DC removal, the model's
    normalisation ``mode``) as one function of a block, from the first pass's
    :class:`transcribe_cli.conditioning.AudioStats`, and the conditioning verdict. Each sample
    goes through the same float32 operations as in ``load_audio`` → ``condition`` →
    :func:`normalize_audio`."""
    from transcribe_cli.io.audio import fit_full_scale

    peak = stats.peak
    gain = 1.0 / float(np.float32(peak)) if peak > 1.0 else 1.0
    mean = stats.mean * gain
    verdict = stats.assessment(gain)
    offset, scale = 0.0, 1.0
    if mode is not None:
        low, high = stats.low * gain - mean, stats.high * gain - mean
        rms = stats.loudness_rms(gain)
        level = AudioLevel(max(abs(low), abs(high)), 0.0, float(np.percentile(rms, LOUDNESS_PERCENTILE)))
        offset, scale = normalization_transform(level, mode)

    def prepare(block: np.ndarray) -> np.ndarray:
        block = fit_full_scale(block, peak)
        if mean != 0.0:
            block = (block - np.float32(mean)).astype(np.float32, copy=False)
        return apply_normalization(block, offset, scale)

    return prepare, verdict


@dataclass(frozen=True)
class Window:
    """Output frames [start, stop) computed from chunk frames [chunk_start, chunk_start + chunk_frames)."""

    start: int
    stop: int
    chunk_start: int
    chunk_frames: int

    @property
    def keep(self) -> slice:
        offset = self.start - self.chunk_start
        return slice(offset, offset + self.stop - self.start)


def plan_windows(n_frames: int, window_frames: int, margin: int) -> list[Window]:
    """Cover ``n_frames`` with windows of at most ``window_frames``, each with ``margin`` frames of context."""
    if window_frames <= 0:
        raise ValueError("window_frames must be positive")
    windows = []
    for start in range(0, n_frames, window_frames):
        stop = min(start + window_frames, n_frames)
        windows.append(Window(start, stop, start - margin, window_frames + 2 * margin))
    return windows


def chunk_audio(audio: np.ndarray, window: Window, hop: int, origin: int = 0) -> np.ndarray:
    """The audio samples for ``window``'s chunk, zero-padded beyond the signal; ``audio``
    holds the recording's samples from ``origin`` on (a streaming buffer) up to its end or further."""
    # chunk frame j is centred on sample (chunk_start + j) * hop: the chunk holds samples
    # [chunk_start*hop, (chunk_start + chunk_frames - 1)*hop] inclusive.
    first = window.chunk_start * hop - origin
    length = (window.chunk_frames - 1) * hop + 1
    out = np.zeros(length, dtype=np.float32)
    lo, hi = max(first, 0), min(first + length, audio.shape[0])
    if hi > lo:
        out[lo - first : hi - first] = audio[lo:hi]
    return out


def _batches(items: list[Window], size: int) -> Iterator[list[Window]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def frontend_margin_frames(frontend: Any) -> int:
    """Frames of audio context the frontend needs on each side for exact output."""
    field = getattr(frontend, "receptive_field", None)
    if field is None:  # unknown: assume a long analysis window (2 s)
        field = 4 * frontend.sample_rate
    return int(math.ceil(field / 2 / frontend.hop_length)) + 1


def compute_activations(
    audio: np.ndarray,
    frontend: Any,
    model: Any,
    *,
    context_frames: int,
    window_frames: int,
    batch_size: int,
    device: Any,
) -> dict[str, np.ndarray]:
    """Run frontend and model over ``audio`` window by window; activations ``[T, 88]``
    (the windows of :func:`window_activations` stitched into whole-file arrays)."""
    n_frames = audio.shape[0] // _framing(frontend, model).hop_length + 1
    outputs: dict[str, np.ndarray] = {}
    for window, values in window_activations([audio], audio.shape[0], frontend, model, context_frames=context_frames,
                                             window_frames=window_frames, batch_size=batch_size, device=device):
        for key, value in values.items():
            if key not in outputs:
                outputs[key] = np.zeros((n_frames, value.shape[-1]), dtype=np.float32)
            outputs[key][window.start : window.stop] = value
    return outputs


def _framing(frontend: Any, model: Any) -> Any:
    """What fixes the frames and the context: the frontend, or an audio model itself."""
    return model if frontend is None else frontend


def network_trim(frontend: Any, model: Any) -> int:
    """Frames at each end of a chunk's features that ``model`` need not run on: the
    frontend's margin (:func:`frontend_margin_frames`; those frames exist only so that the
    features within the window's context are exact) where the model is
    ``window_independent`` (each frame's outputs depend only on ``context_frames`` of
    features around it), else 0. The chunks of :func:`window_activations` carry the
    frontend's margin plus the model's context on each side, so the frames a window keeps
    are the same either way (the network costs ``2 · trim`` fewer frames a chunk)."""
    return frontend_margin_frames(frontend) if getattr(model, "window_independent", False) else 0


def pad_frames(values: dict[str, Any], trim: int) -> dict[str, np.ndarray]:
    """``{key: [B, T, ...]}`` activations of a chunk's frames less ``trim`` at each end, as
    the whole chunk's: zeros in the ``trim`` frames (which no window keeps)."""
    if not trim:
        return values
    return {key: np.pad(value, ((0, 0), (trim, trim)) + ((0, 0),) * (np.ndim(value) - 2))
            for key, value in values.items()}


def run_trimmed(run: Callable[[Any], dict[str, np.ndarray]], features: Any, trim: int) -> dict[str, np.ndarray]:
    """``run`` on ``features[B, T, ...]`` less ``trim`` frames at each end, its outputs padded
    back to ``T`` frames (:func:`pad_frames`); on all of them when ``T <= 2 · trim``."""
    cut = trim if features.shape[1] > 2 * trim else 0
    return pad_frames(run(features[:, cut : features.shape[1] - cut]), cut)


def torch_runner(frontend: Any, model: Any, device: Any) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """``chunks[B, samples] -> {key: ndarray[B, T, ...]}`` through a torch ``frontend`` and
    ``model`` on ``device`` (the numpy-in, numpy-out form :func:`window_activations` runs);
    a ``window_independent`` model runs on the features less :func:`network_trim`."""
    import torch

    trim = network_trim(frontend, model)

    def network(features: Any) -> dict[str, np.ndarray]:
        return {key: value.float().cpu().numpy() for key, value in model(features).items()}

    def run(chunks: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            return run_trimmed(network, frontend(torch.from_numpy(chunks).to(device)), trim)

    return run


class CpuModel:
    """``.to(device)`` and ``.eval()`` of a model that computes on the CPU with numpy (the
    pipeline calls both on every model): they return the model."""

    device = "cpu"

    def to(self, device: Any) -> Any:
        return self

    def eval(self) -> Any:
        return self


class ArrayModel(CpuModel):
    """A frontend and a model that both run on numpy arrays (``frontend(audio[B, samples]) ->
    features``, ``model(features) -> {key: ndarray}``), as one *audio model* of
    :func:`window_activations`, framed by the frontend: the ``numpy`` runtime
    (:mod:`transcribe_cli.runtime`), no torch. ``threads``: the model's CPU threads (its
    ``threads`` attribute; ``None``: its default).

    The chunks of :func:`window_activations` carry :func:`frontend_margin_frames` frames on
    each side for the frontend only (beyond them, the model's own context): with
    ``trim_frontend_margin`` (the default) the model runs on the frames between them and the
    trimmed frames' activations are zeros, never kept (``nmf``: 12 % fewer updates on 20-s
    windows). Pass ``False`` to run the model on every frame of other chunks."""

    def __init__(self, frontend: Any, model: Any, threads: int | None = None, trim_frontend_margin: bool = True):
        self.frontend, self.model = frontend, model
        self.sample_rate, self.hop_length = frontend.sample_rate, frontend.hop_length
        self.receptive_field = frontend.receptive_field
        self.trim = frontend_margin_frames(frontend) if trim_frontend_margin else 0
        if threads and hasattr(model, "threads"):
            model.threads = threads

    def __call__(self, chunks: np.ndarray) -> dict[str, np.ndarray]:
        return run_trimmed(self.model, self.frontend(np.asarray(chunks, dtype=np.float32)), self.trim)

    def __repr__(self) -> str:
        return f"ArrayModel({self.frontend!r}, {self.model!r})"


def window_activations(
    blocks: Iterable[np.ndarray],
    n_samples: int,
    frontend: Any,
    model: Any,
    *,
    context_frames: int,
    window_frames: int,
    batch_size: int,
    device: Any,
    prepare: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Iterator[tuple[Window, dict[str, np.ndarray]]]:
    """Frontend and model over a recording of ``n_samples`` samples that arrives as
    consecutive ``blocks`` (each passed through ``prepare`` first), window by window, in
    order: each window and its own frames of every activation. Only the samples of the
    current batch's chunks are held, never the recording or its activations.

    ``frontend`` and ``model`` are torch modules, or ``frontend`` is ``None`` and ``model``
    an *audio model*: ``model(chunks[B, samples] float32 ndarray) -> {key: ndarray[B, T, ...]}``
    with the frontend's ``hop_length``, ``sample_rate`` and ``receptive_field`` (frontend
    and network in one, e.g. :class:`transcribe_cli.models.onnx_runtime.OnnxAudioModel` or
    :class:`ArrayModel`; no torch is imported then)."""
    framing = _framing(frontend, model)
    run = model if frontend is None else torch_runner(frontend, model, device)
    hop = framing.hop_length
    n_frames = n_samples // hop + 1
    margin = frontend_margin_frames(framing) + context_frames
    # a short recording is one window of its own length, not a mostly-silent long one
    windows = plan_windows(n_frames, min(window_frames, n_frames), margin)
    source = iter(blocks)
    held = np.zeros(0, dtype=np.float32)  # samples [origin, origin + held.size) of the recording
    origin = 0
    for batch in list(_batches(windows, batch_size)):
        first = max(batch[0].chunk_start * hop, 0)
        if first > origin:  # the samples before this batch's chunks are done with
            held, origin = held[first - origin :], origin + min(first - origin, held.size)
        needed = min((batch[-1].chunk_start + batch[-1].chunk_frames) * hop, n_samples)
        parts = [held]
        have = origin + held.size
        while have < needed:
            block = next(source, None)
            if block is None:
                break
            block = prepare(block) if prepare is not None else block
            parts.append(block)
            have += block.size
        if len(parts) > 1:
            held = np.concatenate(parts)
        del parts
        values = run(np.stack([chunk_audio(held, w, hop, origin) for w in batch]))
        for i, w in enumerate(batch):
            yield w, {key: value[i, w.keep] for key, value in values.items()}
        del values
        release_freed_memory()


def release_freed_memory() -> None:
    """Give the memory glibc keeps after a window's tensors are freed back to the system
    (``malloc_trim``; a no-op off glibc). Without it the heap of a long recording grows with
    fragmentation although each window's memory is freed."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
