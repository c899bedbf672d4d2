"""Training audio, converted once and kept on disk: mono ``float32`` at the model's rate.

Conventions:

- An *item* is anything with ``.name``, ``.audio_path`` and ``.notes()`` (a dataset item).
  Its audio is decoded and resampled by :func:`transcribe_cli.io.audio.load_audio` once and
  stored as ``<cache root>/train-audio/<key[:2]>/<key>.npy`` (a 1-D little-endian float32
  array) plus ``<key>.json`` (peak, sample count, source). The key hashes the source's
  resolved path, size and mtime, the sample rate and :data:`STORE_VERSION`, so editing
  the source file (or bumping the version) converts it again. Both files are written
  atomically, the ``.json`` last: an entry without a matching ``.json`` is converted again.
- Reading is by slice (:meth:`StoredAudio.read`): the file is opened, the samples asked for
  are read and it is closed again, so hundreds of hours need neither RAM nor one open file
  descriptor per recording (a memory map holds one; :attr:`StoredAudio.samples` gives one
  on demand). The page cache keeps hot files in memory.
- Normalisation: ``"peak"`` scales the whole recording by ``PEAK_LEVEL / peak`` exactly as
  :func:`transcribe_cli.inference.normalize_audio` does at inference (silence stays
  silence); ``None`` leaves it as decoded. The peak is that of the whole file, so a
  segment is scaled as the same span of a full transcription would be.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from transcribe_cli.errors import TranscribeError

#: Bump when the conversion changes: it invalidates every stored file.
STORE_VERSION = 1
DTYPE = np.dtype("<f4")

def store_dir() -> Path:
    """Where converted training audio lives (created on demand)."""
    from transcribe_cli.paths import cache_root

    return cache_root() / "train-audio"


def store_key(audio_path: str | os.PathLike[str], sample_rate: int) -> str:
    """The cache key of ``audio_path`` converted to ``sample_rate`` (hex sha256)."""
    from transcribe_cli.io.audio import _check_file

    path = _check_file(audio_path).resolve()  # AudioError for missing/empty/unreadable files
    stat = path.stat()
    meta = {
        "version": STORE_VERSION,
        "path": str(path),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sample_rate": int(sample_rate),
    }
    return hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class StoredAudio:
    """One converted recording on disk (small and picklable; no samples in memory)."""

    path: Path  # the .npy file
    offset: int  # byte offset of the first sample in ``path``
    n_samples: int
    peak: float  # max |sample| of the whole recording
    sample_rate: int
    mean: float = 0.0  # DC offset of the whole recording
    loudness: float = 0.0  # robust level (inference.measure_level)

    @property
    def seconds(self) -> float:
        return self.n_samples / self.sample_rate

    @property
    def samples(self) -> np.ndarray:
        """The whole recording as a read-only memory map (holds a file descriptor while alive)."""
        return np.load(self.path, mmap_mode="r")

    def transform(self, normalization: str | None) -> tuple[float, float]:
        """``(offset, scale)`` that normalise this recording as inference would
        (:func:`transcribe_cli.inference.normalization_transform`)."""
        from transcribe_cli.inference import AudioLevel, normalization_transform

        return normalization_transform(AudioLevel(self.peak, self.mean, self.loudness), normalization)

    def scale(self, normalization: str | None) -> float:
        """The factor that normalises this recording (see the module docstring)."""
        return self.transform(normalization)[1]

    def read(self, start: int, length: int) -> np.ndarray:
        """Samples ``[start, start + length)`` as float32, zeros outside the recording."""
        out = np.zeros(max(length, 0), dtype=np.float32)
        lo, hi = max(start, 0), min(start + length, self.n_samples)
        if hi > lo:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset + lo * DTYPE.itemsize)
                handle.readinto(memoryview(out[lo - start : hi - start]).cast("B"))
        return out


def _entry(key: str) -> tuple[Path, Path]:
    folder = store_dir() / key[:2]
    return folder / f"{key}.npy", folder / f"{key}.json"


def _open_entry(npy: Path, meta_path: Path, sample_rate: int) -> StoredAudio | None:
    """The stored entry, or ``None`` when it is missing, incomplete or inconsistent."""
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        mapped = np.load(npy, mmap_mode="r")
        offset, shape, dtype = mapped.offset, mapped.shape, mapped.dtype
        del mapped  # closes the map (and its file descriptor)
        n_samples = int(meta["samples"])
        complete = npy.stat().st_size == offset + n_samples * DTYPE.itemsize
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if shape != (n_samples,) or dtype != DTYPE or not complete or meta.get("sample_rate") != sample_rate:
        return None
    if "loudness" not in meta:  # stored before the loudness level existed: measure it once
        from transcribe_cli.io.fileio import atomic_write
        from transcribe_cli.inference import measure_level

        level = measure_level(np.load(npy, mmap_mode="r"), sample_rate)
        meta.update(mean=level.mean, loudness=level.loudness)
        with atomic_write(meta_path, "w") as handle:
            json.dump(meta, handle)
    return StoredAudio(npy, int(offset), n_samples, float(meta["peak"]), int(sample_rate),
                       float(meta["mean"]), float(meta["loudness"]))


def load(item: Any, sample_rate: int) -> StoredAudio:
    """``item``'s audio at ``sample_rate``, converted on the first call and stored."""
    from transcribe_cli.io import audio as audio_io
    from transcribe_cli.io.fileio import atomic_write

    source = Path(item.audio_path)  # a synth item renders here, on first access
    key = store_key(source, sample_rate)
    npy, meta_path = _entry(key)
    stored = _open_entry(npy, meta_path, sample_rate)
    if stored is not None:
        return stored
    from transcribe_cli.inference import measure_level

    samples = audio_io.load_audio(source, sample_rate)
    level = measure_level(samples, sample_rate)
    npy.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(npy, "wb") as handle:
        np.save(handle, np.ascontiguousarray(samples, dtype=DTYPE))
    meta = {"samples": int(samples.size), "peak": level.peak, "mean": level.mean, "loudness": level.loudness,
            "sample_rate": int(sample_rate),
            "source": str(source), "item": str(item.name), "version": STORE_VERSION}
    with atomic_write(meta_path, "w") as handle:
        json.dump(meta, handle)
    stored = _open_entry(npy, meta_path, sample_rate)
    if stored is None:  # pragma: no cover - only when another process corrupts the entry meanwhile
        raise TranscribeError(f"cannot store the converted audio of {item.name} in {npy.parent}")
    return stored


def load_normalized(
    item: Any, sample_rate: int, normalization: str | None, max_seconds: float | None = None
) -> np.ndarray:
    """``item``'s audio (its first ``max_seconds`` when given) normalised as inference
    normalises it: the same values as ``normalize_audio(load_audio(...))``, cut."""
    stored = load(item, sample_rate)
    length = stored.n_samples
    if max_seconds is not None and max_seconds > 0:
        length = min(length, round(max_seconds * sample_rate))
    from transcribe_cli.inference import apply_normalization

    return apply_normalization(stored.read(0, length), *stored.transform(normalization))
