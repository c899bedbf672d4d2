"""Reading audio files.

Conventions: :func:`load_audio` returns a 1-D ``float32`` NumPy array, mono (the channels
averaged with equal weight), at the requested sample rate, with values in [-1, 1].

Decoding tries **libsndfile** (:mod:`soundfile`: WAV, FLAC, Ogg Vorbis/Opus, MP3, AIFF,
AU, W64, ...) first and falls back to **FFmpeg** (:mod:`av`, PyAV) for everything else
(M4A/AAC, ALAC, WMA, WebM/Matroska, AC-3, WavPack, ...). For MP4-family files the
decoded stream is trimmed to the duration the container declares, which removes the
AAC encoder padding at the end (FFmpeg already drops the priming samples at the start).

Decoding and resampling go block by block (:func:`iter_audio`: libsndfile blocks or FFmpeg
frames, soxr's streaming resampler), so memory is a block, not the file; :func:`load_audio`
joins the blocks for callers that need the whole recording.

Resampling uses soxr at :data:`RESAMPLE_QUALITY`. A signal whose peak exceeds full scale
(float files, or resampler overshoot on a clipped master) is scaled down to peak 1.0
rather than clipped, so no distortion is added.

Every problem a user can cause (missing, empty, unreadable, too short, NaN samples)
raises :class:`~transcribe_cli.errors.AudioError` with a one-line message; no
``soundfile`` or ``av`` exception escapes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ..errors import AudioError

if TYPE_CHECKING:  # numpy is imported where it is used, so scanning folders stays cheap
    import numpy as np

__all__ = ["AUDIO_EXTENSIONS", "RESAMPLE_QUALITY", "AudioBlocks", "audio_duration", "fit_full_scale", "is_audio_file",
           "iter_audio", "load_audio"]

log = logging.getLogger(__name__)

#: Suffixes (lower case, with the dot) treated as audio when scanning folders. Every one
#: of them is decodable by libsndfile or by FFmpeg as bundled with PyAV. Files with other
#: suffixes can still be passed to :func:`load_audio` explicitly.
AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {
        # libsndfile
        ".wav",
        ".wave",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".mp3",
        ".aif",
        ".aiff",
        ".aifc",
        ".au",
        ".snd",
        ".w64",
        ".rf64",
        ".caf",
        # FFmpeg (PyAV)
        ".m4a",
        ".m4b",
        ".aac",
        ".wma",
        ".webm",
        ".weba",
        ".mka",
        ".ac3",
        ".mp2",
        ".wv",
        ".ape",
        ".amr",
        ".spx",
    }
)


def find_audio(directory: Path) -> list[Path]:
    """Audio files below ``directory`` (recursive, sorted, hidden files skipped)."""
    from .fileio import find_files

    return find_files(directory, AUDIO_EXTENSIONS)

#: soxr quality preset used by :func:`load_audio` ("HQ": 20-bit precision, steep filter).
RESAMPLE_QUALITY = "HQ"

# MP4-family containers declare an exact stream duration (edit lists); trailing decoded
# samples beyond it are encoder padding. Trim at most this many seconds of excess so a
# bogus header can never cut real audio by more than a few codec frames.
_MAX_PADDING_TRIM_S = 0.2
_SOUNDFILE_BLOCK = 1 << 18  # frames per block when averaging channels


def is_audio_file(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` has one of the :data:`AUDIO_EXTENSIONS` (case-insensitive)."""
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def load_audio(path: str | os.PathLike[str], sample_rate: int, *, min_duration: float = 0.05) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sample_rate`` Hz, values in [-1, 1].

    ``min_duration`` (seconds) is the shortest audio accepted; shorter files raise
    :class:`~transcribe_cli.errors.AudioError` naming their duration. The whole-file form of
    :func:`iter_audio` (the blocks joined, then :func:`fit_full_scale`).
    """
    import numpy as np

    blocks = list(iter_audio(path, sample_rate, min_duration=min_duration))
    audio = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    del blocks
    audio = fit_full_scale(audio, float(np.max(np.abs(audio))) if audio.size else 0.0)
    return np.ascontiguousarray(audio, dtype=np.float32)


def fit_full_scale(audio: np.ndarray, peak: float) -> np.ndarray:
    """``audio`` scaled down to peak 1.0 when the recording's ``peak`` exceeds full scale
    (float files, resampler overshoot), else ``audio`` itself; applied to the whole file by
    :func:`load_audio` and block by block, with the peak of a first pass, by the streaming path."""
    if peak > 1.0:
        import numpy as np

        return audio / np.float32(peak)
    return audio


def iter_audio(
    path: str | os.PathLike[str], sample_rate: int, *, min_duration: float = 0.05
) -> Iterator[np.ndarray]:
    """The recording at ``path`` as consecutive mono float32 blocks at ``sample_rate`` Hz
    (decoded and resampled block by block; memory is one block, not the file). The blocks are
    not scaled to full scale (see :func:`fit_full_scale`: that needs the peak of the whole file).

    Raises :class:`~transcribe_cli.errors.AudioError` as :func:`load_audio` does: a block with
    NaN or infinite samples when it is reached, an empty or too short file at the end.
    """
    import numpy as np

    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, not {sample_rate!r}")
    file = _check_file(path)
    rate_out = int(sample_rate)
    resampler = None
    native_samples, native_rate = 0, 0
    for block, native_rate in _decode_blocks(file):
        if not np.isfinite(block).all():
            raise AudioError(f"audio file {file} contains NaN or infinite samples", "re-export it as 16/24-bit PCM")
        native_samples += block.size
        if native_rate == rate_out:
            if block.size:
                yield block
            continue
        if resampler is None:
            import soxr

            # soxr's streaming resampler gives the samples of its one-shot ``soxr.resample``
            # (round(n * rate_out / rate_in), aligned with the input, no delay)
            resampler = soxr.ResampleStream(native_rate, rate_out, 1, dtype="float32", quality=RESAMPLE_QUALITY)
        out = resampler.resample_chunk(np.ascontiguousarray(block, dtype=np.float32))
        if out.size:
            yield out.astype(np.float32, copy=False)
    if native_samples == 0:
        raise AudioError(f"audio file {file} contains no audio samples", "re-export it; it may be truncated")
    duration = native_samples / native_rate
    if duration < min_duration:
        raise AudioError(
            f"audio file {file} is too short ({duration:.3f} s; at least {min_duration:.3f} s needed)",
            "use a longer recording",
        )
    if resampler is not None:
        out = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        if out.size:
            yield out.astype(np.float32, copy=False)


#: Seconds of audio :class:`AudioBlocks` keeps to replay (1.9 MB at 16 kHz).
KEPT_SECONDS = 30.0


class AudioBlocks:
    """A *block source* over the recording at ``path``: each call returns an iterator of its
    consecutive :func:`iter_audio` blocks. A recording of at most ``kept_seconds`` is decoded
    once: its first complete read keeps the blocks (read-only) and later calls replay them. A
    longer one is decoded again on each call, so memory stays one block. The transcriber's
    two passes and ``--tempo auto`` read a file through one of these: a short clip in a batch
    is decoded and resampled once instead of three times."""

    def __init__(self, path: str | os.PathLike[str], sample_rate: int, *, kept_seconds: float = KEPT_SECONDS):
        self.path, self.sample_rate = path, int(sample_rate)
        self._limit = int(kept_seconds * self.sample_rate)
        self._kept: list[np.ndarray] | None = None

    @property
    def replays(self) -> bool:
        """Whether the next call replays kept blocks rather than decoding the file."""
        return self._kept is not None

    def __call__(self) -> Iterator[np.ndarray]:
        if self._kept is not None:
            return iter(self._kept)
        return self._read()

    def _read(self) -> Iterator[np.ndarray]:
        kept: list[np.ndarray] | None = []
        total = 0
        for block in iter_audio(self.path, self.sample_rate):
            if kept is not None:
                total += block.size
                if total <= self._limit:
                    block.flags.writeable = False  # replayed: nobody may change it
                    kept.append(block)
                else:
                    kept = None
            yield block
        if kept is not None:
            self._kept = kept


def audio_duration(path: str | os.PathLike[str]) -> float:
    """Duration of ``path`` in seconds, from the file headers when they state it
    (falls back to decoding the whole file)."""
    file = _check_file(path)
    try:
        import soundfile as sf

        info = sf.info(str(file))
        if info.samplerate > 0 and info.frames >= 0:
            return info.frames / info.samplerate
    except Exception as exc:  # noqa: BLE001 - any libsndfile failure means "try FFmpeg"
        _reraise_memory_error(exc)
    try:
        import av

        with av.open(str(file), metadata_errors="ignore") as container:
            stream = _audio_stream(container, file)
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            if container.duration is not None:
                return float(container.duration) / av.time_base
    except AudioError:
        raise
    except Exception as exc:  # noqa: BLE001
        _reraise_memory_error(exc)
        raise _unreadable(file) from None
    samples, rate = 0, 1
    for block, rate in _decode_blocks(file):
        samples += block.size
    return samples / rate


# --------------------------------------------------------------------------- checks


def _check_file(path: str | os.PathLike[str]) -> Path:
    """Reject paths that cannot be audio before any decoder sees them."""
    file = Path(path)
    try:
        st = file.stat()
    except FileNotFoundError:
        raise AudioError(f"audio file not found: {file}", "check the path and spelling") from None
    except PermissionError:
        raise AudioError(f"cannot read audio file {file}: permission denied", "check the file permissions") from None
    except OSError as exc:
        raise AudioError(f"cannot read audio file {file}: {exc.strerror or exc}", "check the path") from None
    if file.is_dir():
        raise AudioError(f"{file} is a directory, not an audio file", "pass an audio file inside it")
    if st.st_size == 0:
        raise AudioError(f"audio file {file} is empty (0 bytes)", "re-export or re-download it")
    if not os.access(file, os.R_OK):
        raise AudioError(f"cannot read audio file {file}: permission denied", "check the file permissions")
    return file


def _unreadable(file: Path) -> AudioError:
    return AudioError(
        f"{file} is not a readable audio file (corrupt or unsupported format)",
        "convert it to WAV or FLAC, e.g. with ffmpeg",
    )


def _reraise_memory_error(exc: BaseException) -> None:
    if isinstance(exc, MemoryError):
        raise exc


# --------------------------------------------------------------------------- decoding


#: Suffixes of formats libsndfile reads itself: a file named so that only FFmpeg can decode
#: is mislabelled (an .m4a renamed .wav) or damaged, which deserves a warning.
_SNDFILE_SUFFIXES = frozenset({".wav", ".wave", ".flac", ".aif", ".aiff", ".aifc", ".au", ".snd", ".w64",
                               ".rf64", ".caf"})
# libsndfile's header log names a chunk longer than the file as "data : 96000 (should be 47978)"
_SHORT_CHUNK = re.compile(r"^(data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
#: A decoded stream this much shorter than its header declares is reported as truncated.
_TRUNCATION_TOLERANCE_S = 0.1


def _decode_blocks(file: Path) -> Iterator[tuple[np.ndarray, int]]:
    """Mono float32 blocks and the native sample rate, from whichever decoder works: libsndfile
    when it opens the file and reads its first block, else FFmpeg. A failure after the first
    block is an unreadable file (its blocks are already consumed)."""
    blocks = _soundfile_blocks(file)
    try:
        first = next(blocks, None)
    except Exception as exc:  # noqa: BLE001 - libsndfile cannot read it: try FFmpeg
        _reraise_memory_error(exc)
        log.debug("libsndfile could not decode %s (%s); trying FFmpeg", file, exc)
        blocks = _av_blocks(file)
        first = None
    try:
        if first is not None:
            yield first
        yield from blocks
    except AudioError:
        raise
    except Exception as exc:  # noqa: BLE001
        _reraise_memory_error(exc)
        log.debug("could not decode %s (%s)", file, exc)
        raise _unreadable(file) from None


def _joined(blocks: Iterator[tuple[np.ndarray, int]]) -> tuple[np.ndarray, int]:
    """The blocks of one decoder as one array, and their rate (for tests and comparisons)."""
    import numpy as np

    arrays, rate = [], 0
    for block, rate in blocks:
        arrays.append(block)
    return (np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.float32)), rate


def _decode_soundfile(file: Path) -> tuple[np.ndarray, int]:
    """The whole file through libsndfile (see :func:`_soundfile_blocks`)."""
    return _joined(_soundfile_blocks(file))


def _decode_av(file: Path) -> tuple[np.ndarray, int]:
    """The whole file through FFmpeg (see :func:`_av_blocks`)."""
    return _joined(_av_blocks(file))


@contextlib.contextmanager
def _native_noise(file: Path) -> Iterator[None]:
    """Keep what libmpg123/FFmpeg print straight to stderr off the terminal (debug log)."""
    from ..diagnostics import captured_native_stderr

    with captured_native_stderr() as noise:
        yield
    for line in noise:
        log.debug("%s: decoder: %s", file, line)


def _soundfile_blocks(file: Path) -> Iterator[tuple[np.ndarray, int]]:
    """Decode with libsndfile block by block, averaging the channels of each block (the
    decoder's own stderr is captured while it works, not while the caller holds a block)."""
    import numpy as np
    import soundfile as sf

    with _native_noise(file):
        f = sf.SoundFile(str(file))
    with f:
        rate = int(f.samplerate)
        if rate <= 0:
            raise ValueError(f"invalid sample rate {rate}")
        short = _SHORT_CHUNK.search(f.extra_info or "")
        if short:
            declared, present = int(short.group(2)), int(short.group(3))
            log.warning("%s is truncated: its header declares %.1f s of audio, the file holds %.1f s",
                        file, f.frames / rate * declared / max(present, 1), f.frames / rate)
        while True:
            with _native_noise(file):
                block = f.read(_SOUNDFILE_BLOCK, dtype="float32", always_2d=True)
            if not block.shape[0]:
                return
            yield block.mean(axis=1, dtype=np.float32), rate


def _audio_stream(container: Any, file: Path) -> Any:
    if not container.streams.audio:
        raise AudioError(f"{file} has no audio stream", "pass an audio file, or extract its audio first")
    return container.streams.best("audio") or container.streams.audio[0]


def _av_blocks(file: Path) -> Iterator[tuple[np.ndarray, int]]:
    """Decode the main audio stream with FFmpeg, in blocks of about :data:`_SOUNDFILE_BLOCK` samples.

    Frames are converted to planar float at their own layout and rate (no FFmpeg
    downmix: its stereo-to-mono matrix sums at -3 dB instead of averaging) and the
    channels are averaged here. Packets that fail to decode are skipped with a warning
    as long as some audio decodes. The samples beyond the length an MP4-family container
    declares are held back (at most :data:`_MAX_PADDING_TRIM_S`) and dropped as encoder
    padding when the stream ends within them.
    """
    import av
    import numpy as np

    bad_packets, rate = 0, 0

    def frames_out(container: Any, stream: Any, resampler: Any) -> Iterator[np.ndarray]:
        nonlocal bad_packets, rate
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                bad_packets += 1
                continue
            for frame in frames:
                rate = rate or int(frame.sample_rate)
                for out in resampler.resample(frame):
                    yield out.to_ndarray().mean(axis=0, dtype=np.float32)
        for out in resampler.resample(None):
            yield out.to_ndarray().mean(axis=0, dtype=np.float32)

    pending: list[np.ndarray] = []  # decoded, not yet yielded
    pending_samples = emitted = 0
    declared: int | None = None  # the declared length once the rate is known; -1: none, or not trusted
    with _native_noise(file):
        container = av.open(str(file), metadata_errors="ignore")
    with container:
        stream = _audio_stream(container, file)
        format_name = container.format.name
        named = file.suffix.lower().lstrip(".")
        if file.suffix.lower() in _SNDFILE_SUFFIXES and named not in (format_name or "").split(","):
            log.warning("%s is named .%s but is not a valid %s file; decoded it with FFmpeg as %s instead",
                        file, named, named, format_name or "an unknown format")
        stated = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
        frames = frames_out(container, stream, av.AudioResampler(format="fltp"))  # keep layout and rate
        finished = False
        while not finished:
            hold = False
            with _native_noise(file):  # FFmpeg's stderr while it decodes, not while the caller works
                while pending_samples < _SOUNDFILE_BLOCK or hold:
                    samples = next(frames, None)
                    if samples is None:
                        finished = True
                        break
                    if declared is None and rate:
                        declared = _declared_samples(container, stream, rate) or -1
                    pending.append(samples)
                    pending_samples += samples.size
                    # beyond the declared length only padding is expected: hold it back while it is short
                    excess = emitted + pending_samples - declared if declared is not None and declared > 0 else 0
                    hold = excess > 0
                    if excess > _MAX_PADDING_TRIM_S * rate:
                        declared, hold = -1, False  # too long for padding: the header is wrong, keep it all
            if not finished:
                emitted += pending_samples
                yield np.concatenate(pending), rate
                pending, pending_samples = [], 0
        if not rate:
            rate = int(stream.codec_context.sample_rate or 0)
    if (not pending and not emitted) or rate <= 0:
        raise _unreadable(file)
    if bad_packets:
        log.warning("%s: skipped %d corrupt audio packet(s)", file, bad_packets)
    tail = np.concatenate(pending) if pending else np.zeros(0, dtype=np.float32)
    if declared is not None and declared > 0 and 0 < emitted + tail.size - declared <= _MAX_PADDING_TRIM_S * rate:
        tail = tail[: max(declared - emitted, 0)]
    total = emitted + tail.size
    if stated is not None and total / rate < stated - _TRUNCATION_TOLERANCE_S:
        log.warning("%s is truncated: its header declares %.1f s of audio, %.1f s could be decoded",
                    file, stated, total / rate)
    if tail.size:
        yield tail, rate


def _declared_samples(container: Any, stream: Any, rate: int) -> int | None:
    """The exact stream length an MP4-family container declares, else None."""
    if "mp4" not in (container.format.name or "") or stream.duration is None or not rate:
        return None
    return int(round(float(stream.duration * stream.time_base) * rate))
