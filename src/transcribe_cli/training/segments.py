"""Random labelled training segments drawn from a dataset's items.

Conventions:

- **Pieces and variants**: items sharing a ``labels_path`` are *variants* of one piece
  (the same MIDI rendered with several SoundFonts/presets). A segment picks a piece with
  probability proportional to its duration (the mean over its variants), then one of its
  variants uniformly, so adding timbres does not re-weight the pieces.
- **Timing**: a segment is ``N = segment_frames * hop_length`` samples starting at a
  uniform random sample in ``[0, max(len - M, 0)]`` where ``M`` is the span read (``N``
  without pitch augmentation). Audio past the end is zeros and has no labels. Label frame
  ``t`` is centred on segment sample ``t * hop_length`` (time ``t * hop / sample_rate``),
  the convention of every frontend and of :mod:`transcribe_cli.labels`; the frontend makes
  ``segment_frames + 1`` frames from ``N`` samples, of which the first ``segment_frames``
  have labels.
- **Pitch shift / tuning**: with ``r = 2 ** ((semitones + cents / 100) / 12)``, ``M =
  round(N * r)`` samples are read and resampled to ``N`` (soxr), which raises the pitch
  by ``r`` and compresses time by ``M / N``; note times are divided by ``M / N`` and
  pitches raised by ``semitones`` (cents are not labelled); notes leaving 21..108 drop out.
- **Level**: the segment is scaled by its recording's normalisation factor (``"peak"``:
  the whole file's peak, as at inference; see :mod:`.audio_store`), then
  :func:`~transcribe_cli.training.augment.augment` runs on the ``N`` samples.
- **Determinism**: every random choice comes from the generator passed to :meth:`batch`;
  the same generator state gives an identical batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from transcribe_cli.notes import PIANO_KEYS, PIANO_LOWEST, Note, Pedal
from transcribe_cli.specs import ACTIVATIONS, NOTE_ACTIVATIONS, PEDAL_ACTIVATION
from transcribe_cli.training.audio_store import StoredAudio, load
from transcribe_cli.workers import Progress, parallel_map
from transcribe_cli.training.augment import (
    AugmentConfig,
    augment,
    draw_pitch,
    resample_ratio,
)

#: soxr quality of the pitch-shift resampling ("MQ": fast; its small passband ripple is
#: far below what the augmentations add).
PITCH_RESAMPLE_QUALITY = "MQ"



@dataclass(frozen=True)
class NoteArrays:
    """One item's notes as parallel arrays, sorted by onset (seconds, MIDI pitch, velocity)."""

    onset: np.ndarray
    offset: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray
    longest: float  # the longest note's duration, to bound the search for sounding notes

    @classmethod
    def from_notes(cls, notes: Sequence[Note]) -> NoteArrays:
        ordered = sorted(notes, key=lambda n: n.onset)
        arr = np.array([(n.onset, n.offset, n.pitch, n.velocity) for n in ordered], dtype=np.float64)
        arr = arr.reshape(-1, 4)
        longest = float(np.max(arr[:, 1] - arr[:, 0])) if len(arr) else 0.0
        return cls(arr[:, 0].copy(), arr[:, 1].copy(), arr[:, 2].astype(np.int64), arr[:, 3].astype(np.int64),
                   longest)

    def between(self, start: float, stop: float) -> np.ndarray:
        """Indices of the notes sounding somewhere in ``[start, stop)`` seconds."""
        lo = int(np.searchsorted(self.onset, start - self.longest, side="left"))
        hi = int(np.searchsorted(self.onset, stop, side="left"))
        candidates = np.arange(lo, hi)
        return candidates[self.offset[lo:hi] > start]


@dataclass(frozen=True)
class Variant:
    name: str
    audio: StoredAudio
    notes: NoteArrays
    pedals: tuple[Pedal, ...] = ()


@dataclass(frozen=True)
class Piece:
    labels: str
    variants: tuple[Variant, ...]

    @property
    def seconds(self) -> float:
        return float(np.mean([v.audio.seconds for v in self.variants]))


def _prepare_task(task: tuple[Any, int, bool]) -> Variant | Exception:
    from transcribe_cli.errors import TranscribeError

    item, sample_rate, sustain_pedal = task
    try:
        from transcribe_cli.datasets.base import item_pedals

        notes = NoteArrays.from_notes(item.notes(sustain_pedal=sustain_pedal))
        return Variant(str(item.name), load(item, sample_rate), notes, tuple(item_pedals(item)))
    except TranscribeError as exc:
        return exc


def _group_key(item: Any) -> str:
    labels = getattr(item, "labels_path", None)
    return str(Path(labels).resolve()) if labels is not None else f"item:{item.name}"


class SegmentSource:
    """Draws labelled segments from ``items`` (see the module docstring).

    Preparing converts every item's audio once (:mod:`.audio_store`, ``jobs`` processes)
    and reads its notes into memory.
    """

    def __init__(
        self,
        items: Sequence[Any],
        *,
        sample_rate: int,
        hop_length: int,
        segment_frames: int,
        normalization: str | None = "peak",
        sustain_pedal: bool = True,
        augment: AugmentConfig | None = None,
        jobs: int = 1,
        progress: Progress | None = None,
    ):
        from transcribe_cli.errors import TranscribeError
        from transcribe_cli.inference import normalization_scale

        if not items:
            raise TranscribeError("no training items", "check the dataset, --root and the split")
        if segment_frames <= 0 or hop_length <= 0 or sample_rate <= 0:
            raise ValueError("segment_frames, hop_length and sample_rate must be positive")
        normalization_scale(1.0, normalization)  # unknown modes fail before any work
        self.sample_rate = int(sample_rate)
        self.hop_length = int(hop_length)
        self.segment_frames = int(segment_frames)
        self.normalization = normalization
        self.augment = augment if augment is not None else AugmentConfig(enabled=False)
        tasks = [(item, self.sample_rate, sustain_pedal) for item in items]
        variants = parallel_map(_prepare_task, tasks, jobs=jobs, progress=progress,
                                names=[str(item.name) for item in items])
        groups: dict[str, list[Variant]] = {}
        for item, variant in zip(items, variants):
            groups.setdefault(_group_key(item), []).append(variant)
        self.pieces = [Piece(key, tuple(group)) for key, group in groups.items()]
        seconds = np.array([piece.seconds for piece in self.pieces], dtype=np.float64)
        self.total_seconds = float(seconds.sum())
        weights = np.maximum(seconds, 1e-9)
        self._weights = weights / weights.sum()

    def __len__(self) -> int:
        return len(self.pieces)

    @property
    def segment_samples(self) -> int:
        return self.segment_frames * self.hop_length

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, np.ndarray]:
        """``batch_size`` random segments: ``"audio"`` ``[B, N]`` and ``"onset"``, ``"frame"``,
        ``"offset"``, ``"velocity"`` ``[B, segment_frames, 88]``, all float32."""
        n, frames = self.segment_samples, self.segment_frames
        out = {"audio": np.zeros((batch_size, n), dtype=np.float32)}
        out.update({key: np.zeros((batch_size, frames, PIANO_KEYS), dtype=np.float32) for key in NOTE_ACTIVATIONS})
        out[PEDAL_ACTIVATION] = np.zeros((batch_size, frames, 1), dtype=np.float32)
        for b in range(batch_size):
            audio, labels = self.segment(rng)
            out["audio"][b] = audio
            for key in ACTIVATIONS:
                out[key][b] = labels[key]
        return out

    def segment(self, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One random segment: audio ``[N]`` and its four label rolls ``[segment_frames, 88]``."""
        piece = self.pieces[int(rng.choice(len(self.pieces), p=self._weights))]
        variant = piece.variants[int(rng.integers(len(piece.variants)))]
        semitones, cents = draw_pitch(rng, self.augment)
        n = self.segment_samples
        span = n if (semitones, cents) == (0, 0.0) else max(round(n * resample_ratio(semitones, cents)), 1)
        start = int(rng.integers(0, max(variant.audio.n_samples - span, 0) + 1))
        return self.cut(variant, start, span, semitones, rng)

    def cut(
        self, variant: Variant, start: int, span: int, semitones: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``span`` samples from ``start`` resampled to ``N`` and augmented, with labels
        (pitches raised by ``semitones``)."""
        n = self.segment_samples
        from transcribe_cli.inference import apply_normalization

        audio = apply_normalization(variant.audio.read(start, span), *variant.audio.transform(self.normalization))
        if span != n:
            import soxr

            audio = soxr.resample(audio, span, n, quality=PITCH_RESAMPLE_QUALITY)
            audio = np.pad(audio[:n], (0, max(n - audio.shape[0], 0)))
        audio = augment(audio, rng, self.augment, self.sample_rate)
        labels = self.labels(variant.notes, start / self.sample_rate, span / n, semitones)
        labels[PEDAL_ACTIVATION] = self.pedal_labels(variant.pedals, start / self.sample_rate, span / n)
        return np.ascontiguousarray(audio, dtype=np.float32), labels

    def pedal_labels(self, pedals: Sequence[Pedal], start: float, stretch: float) -> np.ndarray:
        """The sustain-pedal roll ``[segment_frames, 1]`` of the segment (times as in :meth:`labels`)."""
        from transcribe_cli.labels import pedal_roll

        stop = start + self.segment_samples * stretch / self.sample_rate
        inside = [Pedal(max(p.onset - start, -1.0) / stretch, (p.offset - start) / stretch)
                  for p in pedals if p.offset > start and p.onset < stop]
        return pedal_roll(inside, self.frame_rate, self.segment_frames)

    def labels(self, notes: NoteArrays, start: float, stretch: float, semitones: int) -> dict[str, np.ndarray]:
        """The rolls of the notes sounding in ``[start, start + N * stretch / sr)`` seconds, with
        times relative to ``start`` divided by ``stretch`` and pitches raised by ``semitones``."""
        from transcribe_cli.labels import (
            notes_to_offsets,
            notes_to_onsets,
            notes_to_roll,
            notes_to_velocity,
        )

        stop = start + self.segment_samples * stretch / self.sample_rate
        idx = notes.between(start, stop)
        pitch = notes.pitch[idx] + semitones
        keep = (pitch >= PIANO_LOWEST) & (pitch < PIANO_LOWEST + PIANO_KEYS)
        idx, pitch = idx[keep], pitch[keep]
        onset = (notes.onset[idx] - start) / stretch
        offset = (notes.offset[idx] - start) / stretch
        selected = [Note(float(a), float(b), int(p), int(v))
                    for a, b, p, v in zip(onset, offset, pitch, notes.velocity[idx])]
        rate, frames = self.frame_rate, self.segment_frames
        return {
            "onset": notes_to_onsets(selected, rate, frames).astype(np.float32),
            "frame": notes_to_roll(selected, rate, frames).astype(np.float32),
            "offset": notes_to_offsets(selected, rate, frames).astype(np.float32),
            "velocity": notes_to_velocity(selected, rate, frames),
        }
