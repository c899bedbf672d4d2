"""Tempo maps: where the beats and bars of a transcription are, and how MIDI ticks follow them.

A :class:`TempoMap` is a list of beat times in seconds (quarter-note beats), the number of
beats in a bar and which beat is the first downbeat. Written into a MIDI file
(:func:`transcribe_cli.io.midi.write_midi`), it becomes one ``set_tempo`` per beat and one
``time_signature`` (N/4), so each beat falls on a multiple of the resolution and each bar
line on a multiple of N beats — a DAW or notation editor shows the bars where the music has
them — while every note still lands within half a tick of its time in seconds:

* beats are extended before the first one with the first beat period, down to time 0;
  the stretch from time 0 to the first beat is a *lead-in* of ``q`` beats, ``q`` the
  number of beats needed (1..N) to put the first beat at its place in its bar (a pickup
  is filled up with rests, not shifted);
* after the last beat the last tempo continues;
* each tempo is rounded to a whole microsecond per beat with the rounding error carried to
  the next beat, so the written beats drift by less than a microsecond.

Tracking (:func:`track_tempo`): beats come from librosa's dynamic-programming beat tracker
(Ellis 2007) run on an onset-strength envelope: by default librosa's spectral-flux envelope
of the audio — both re-implemented here in numpy only (no torch, no scipy), the same numbers
without importing librosa (whose import compiles numba code for ~10 s), read from the file's
blocks so that memory is a block of STFT frames plus 4 bytes a frame, never the audio
(:class:`OnsetEnvelope`, :func:`audio_onset_envelope`, :func:`estimate_bpm`, :func:`beat_frames`;
beat F 0.809; 0.819 summed with the notes' envelope and 0.822 for the notes' alone,
:func:`note_onset_envelope`, used when there is no audio — the notes' envelope alone misses
the bundled example's beats, F 0.61), its tempo chosen under a log-normal prior around
80 BPM (:data:`START_BPM`; around 100 BPM the tracker locked to double tempo on most pieces
at 60–73 BPM, beat F 0.723). The meter
(3 or 4 beats a bar) and the downbeat come from the notes (:func:`estimate_downbeats`): a bar
starts where the harmony changes and the bass strikes. ``benchmarks/results/tempo.md``
compares these choices, and madmom's RNN tracker, by beat F-measure on rendered pieces whose
tempo maps are known.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import OptionError
from .notes import Note

__all__ = [
    "AudioOnsets",
    "OnsetEnvelope",
    "TempoMap",
    "audio_onset_envelope",
    "beat_frames",
    "estimate_bpm",
    "estimate_downbeats",
    "note_onset_envelope",
    "parse_tempo",
    "track_beats",
    "track_tempo",
]

#: Frame rate of the onset envelopes fed to the beat tracker (10 ms frames).
ENVELOPE_RATE = 100.0
#: Tempo search range of the beat tracker, BPM.
#: Fastest tempo the tracker considers, BPM.
MAX_BPM = 220.0
_LEAD_IN_MIN_SECONDS = 1e-3


@dataclass(frozen=True)
class TempoMap:
    """Beat times (seconds, increasing), ``beats_per_bar`` and the index of the first
    downbeat in ``beats`` (``0 <= first_downbeat < beats_per_bar``)."""

    beats: tuple[float, ...]
    beats_per_bar: int = 4
    first_downbeat: int = 0

    def __post_init__(self) -> None:
        beats = np.asarray(self.beats, dtype=float)
        if beats.ndim != 1 or len(beats) < 2:
            raise ValueError("a tempo map needs at least two beats")
        if not np.all(np.isfinite(beats)) or beats[0] < 0 or np.any(np.diff(beats) <= 0):
            raise ValueError("beat times must be finite, >= 0 and strictly increasing")
        if not 1 <= self.beats_per_bar <= 32:
            raise ValueError(f"beats_per_bar must be 1..32, not {self.beats_per_bar}")
        if not 0 <= self.first_downbeat < self.beats_per_bar:
            raise ValueError("first_downbeat must be 0..beats_per_bar-1")
        object.__setattr__(self, "beats", tuple(float(b) for b in beats))

    @classmethod
    def constant(cls, bpm: float, end: float, *, beats_per_bar: int = 4, start: float = 0.0) -> TempoMap:
        """A fixed tempo from ``start`` (a downbeat) until at least ``end`` seconds."""
        if not (bpm > 0 and np.isfinite(bpm)):
            raise ValueError(f"tempo must be a positive number of BPM, not {bpm!r}")
        period = 60.0 / bpm
        count = max(2, int(np.ceil((max(end, start) - start) / period)) + 1)
        return cls(tuple(start + period * np.arange(count)), beats_per_bar, 0)

    @property
    def bpm(self) -> float:
        """Median tempo, BPM."""
        return float(60.0 / np.median(np.diff(self.beats)))

    def downbeats(self) -> np.ndarray:
        """Times of the bar lines among :attr:`beats`."""
        return np.asarray(self.beats[self.first_downbeat :: self.beats_per_bar])

    # -- beat positions (quantization) -------------------------------------------------

    def beat_position(self, seconds: np.ndarray | float) -> np.ndarray:
        """Fractional beat index of ``seconds`` (0 = ``beats[0]``), linear between beats
        and extrapolated with the first/last beat period outside them."""
        beats = np.asarray(self.beats)
        t = np.asarray(seconds, dtype=float)
        index = np.arange(len(beats), dtype=float)
        inside = np.interp(t, beats, index)
        first, last = beats[1] - beats[0], beats[-1] - beats[-2]
        before = (t - beats[0]) / first
        after = len(beats) - 1 + (t - beats[-1]) / last
        return np.where(t < beats[0], before, np.where(t > beats[-1], after, inside))

    def time_at(self, position: np.ndarray | float) -> np.ndarray:
        """Seconds at a fractional beat index (the inverse of :meth:`beat_position`)."""
        beats = np.asarray(self.beats)
        p = np.asarray(position, dtype=float)
        index = np.arange(len(beats), dtype=float)
        inside = np.interp(p, index, beats)
        first, last = beats[1] - beats[0], beats[-1] - beats[-2]
        before = beats[0] + p * first
        after = beats[-1] + (p - (len(beats) - 1)) * last
        return np.where(p < 0, before, np.where(p > len(beats) - 1, after, inside))

    # -- MIDI ticks ---------------------------------------------------------------------

    def tick_grid(self, resolution: int) -> TickGrid:
        """The tempo segments of this map written at ``resolution`` ticks per beat."""
        return TickGrid.build(self, resolution)


@dataclass(frozen=True)
class TickGrid:
    """Piecewise-constant tempo: segment ``k`` starts at ``ticks[k]`` = ``seconds[k]`` and
    runs at ``tempos[k]`` microseconds per beat. ``beat_ticks[i]`` is the tick of beat ``i``
    of the map it was built from; bars start at multiples of ``beats_per_bar * resolution``."""

    resolution: int
    beats_per_bar: int
    ticks: tuple[int, ...]
    seconds: tuple[float, ...]
    tempos: tuple[int, ...]
    beat_ticks: tuple[int, ...]

    @classmethod
    def build(cls, tempo_map: TempoMap, resolution: int) -> TickGrid:
        beats = list(tempo_map.beats)
        n = tempo_map.beats_per_bar
        position = (-tempo_map.first_downbeat) % n  # bar position of beats[0] (0 = downbeat)
        period = beats[1] - beats[0]
        first = 0  # index of the map's first beat in ``beats``
        while beats[0] - period > _LEAD_IN_MIN_SECONDS:  # extend the grid back to time 0
            beats.insert(0, beats[0] - period)
            position = (position - 1) % n
            first += 1
        if beats[0] < _LEAD_IN_MIN_SECONDS:
            if position == 0:
                beats[0] = 0.0  # a downbeat at (almost) 0: no lead-in
            else:  # too short a lead-in to hold whole beats: start the grid a beat later
                beats.pop(0)
                position = (position + 1) % n
                first -= 1
        ticks: list[int] = []
        seconds: list[float] = []
        tempos: list[int] = []
        lead = 0
        written = 0.0  # the time of beats[i] as the file will say it
        if beats[0] > 0.0:
            lead = position if position > 0 else n
            ticks.append(0)
            seconds.append(0.0)
            tempos.append(_microseconds(beats[0] / lead))
            written = tempos[0] * lead / 1e6
        for i in range(len(beats)):
            target = beats[i + 1] - written if i + 1 < len(beats) else beats[i] - beats[i - 1]
            tempo = _microseconds(target)
            ticks.append((lead + i) * resolution)
            seconds.append(written)
            tempos.append(tempo)
            written += tempo / 1e6
        beat_ticks = tuple((lead + i) * resolution for i in range(max(first, 0), len(beats)))
        if first < 0:  # the map's first beat (before 1 ms) sits at tick 0
            beat_ticks = (0, *beat_ticks)
        return cls(resolution, n, tuple(ticks), tuple(seconds), tuple(tempos), beat_ticks)

    def to_ticks(self, seconds: float) -> int:
        """The nearest tick of a time in seconds (>= 0)."""
        t = max(0.0, float(seconds))
        k = max(0, bisect.bisect_right(self.seconds, t) - 1)
        return int(round(self.ticks[k] + (t - self.seconds[k]) * 1e6 / self.tempos[k] * self.resolution))

    def to_seconds(self, tick: int) -> float:
        """Seconds at ``tick`` under this grid."""
        k = max(0, bisect.bisect_right(self.ticks, tick) - 1)
        return self.seconds[k] + (tick - self.ticks[k]) * self.tempos[k] / 1e6 / self.resolution


def _microseconds(seconds_per_beat: float) -> int:
    """A MIDI tempo (microseconds per beat, 1..2**24-1)."""
    return int(min(max(round(seconds_per_beat * 1e6), 1), 2**24 - 1))


# --------------------------------------------------------------------------- options


def parse_tempo(value: str) -> str | float:
    """``--tempo``: ``"auto"``, ``"none"`` or a BPM number (20..400) → ``"auto"``, ``"none"`` or float."""
    text = str(value).strip().lower()
    if text in ("auto", "none"):
        return text
    try:
        bpm = float(text)
    except ValueError:
        raise OptionError(f"--tempo must be auto, none or a BPM number, not {value!r}", "e.g. --tempo 96") from None
    if not 20 <= bpm <= 400:
        raise OptionError(f"--tempo {value} is outside 20..400 BPM", "e.g. --tempo 96")
    return bpm


# --------------------------------------------------------------------------- tracking


def note_onset_envelope(notes: Sequence[Note], *, rate: float = ENVELOPE_RATE, end: float | None = None) -> np.ndarray:
    """Onset strength at ``rate`` frames per second from notes: each onset adds its
    velocity / 127 (the strength of a key strike), smoothed over ±20 ms."""
    end = max((n.offset for n in notes), default=0.0) if end is None else end
    frames = int(np.ceil(end * rate)) + 3
    envelope = np.zeros(frames)
    for note in notes:
        i = int(round(note.onset * rate))
        if 0 <= i < frames:
            envelope[i] += note.velocity / 127.0
    kernel = np.array([0.25, 0.5, 1.0, 0.5, 0.25])
    envelope = np.convolve(envelope, kernel, mode="same")
    return np.log1p(4.0 * envelope)


#: STFT size of the audio onset envelope (librosa's ``onset_strength`` default), samples.
ONSET_N_FFT = 2048
#: Mel bands of the audio onset envelope, and the dB range below the loudest band kept.
ONSET_MELS, ONSET_TOP_DB = 128, 80.0
#: STFT frames whose mel dB :class:`OnsetEnvelope` keeps for the blocks to compute again (2 MB,
#: 41 s at 100 frames/s): a recording that short is never read twice.
ONSET_KEPT_FRAMES = 4096


#: FFT bins per band of :class:`MelBands` (each band multiplies only the mel filters it touches).
MEL_BAND_BINS = 64


@functools.lru_cache(maxsize=8)
def _onset_mel_basis(sample_rate: int) -> np.ndarray:
    """The onset envelope's mel filters, ``[bins, mels]`` float32, read-only (made once per
    sample rate: 5 ms each, per file in a batch otherwise)."""
    from .frontends.mel import mel_filterbank

    basis = np.ascontiguousarray(
        mel_filterbank(sample_rate, ONSET_N_FFT, ONSET_MELS, 0.0, sample_rate / 2).T, dtype=np.float32)
    basis.flags.writeable = False
    return basis


class MelBands:
    """``power @ basis`` for a filterbank whose filters each cover a few neighbouring bins (mel
    triangles: 2,020 of the 131,200 entries of the 16-kHz basis are non-zero), as one small GEMM per
    band of :data:`MEL_BAND_BINS` bins against only the filters that band touches: 7.7 % of the
    multiply-adds of the whole basis at 16 kHz (the filters' products with the zeros of other bands are
    skipped, so the sums are the same up to float32 rounding)."""

    def __init__(self, basis: np.ndarray, band_bins: int = MEL_BAND_BINS):
        self.n_mels = basis.shape[1]
        self.dtype = basis.dtype
        self.bands: list[tuple[int, int, int, int, np.ndarray]] = []  # bins lo:hi, mels lo:hi, their filters
        for lo in range(0, basis.shape[0], band_bins):
            hi = min(lo + band_bins, basis.shape[0])
            mels = np.flatnonzero(basis[lo:hi].any(axis=0))
            if len(mels):
                m_lo, m_hi = int(mels[0]), int(mels[-1]) + 1
                self.bands.append((lo, hi, m_lo, m_hi, np.ascontiguousarray(basis[lo:hi, m_lo:m_hi])))

    def __call__(self, power: np.ndarray) -> np.ndarray:
        out = np.zeros((power.shape[0], self.n_mels), dtype=np.result_type(power, self.dtype))
        for lo, hi, m_lo, m_hi, filters in self.bands:
            out[:, m_lo:m_hi] += power[:, lo:hi] @ filters
        return out


@functools.lru_cache(maxsize=8)
def _onset_mel_bands(sample_rate: int) -> MelBands:
    """:class:`MelBands` of :func:`_onset_mel_basis` (made once per sample rate)."""
    return MelBands(_onset_mel_basis(sample_rate))


def audio_onset_envelope(audio: np.ndarray | Callable[[], Iterable[np.ndarray]], sample_rate: int, *,
                         rate: float = ENVELOPE_RATE, block: int = 256) -> np.ndarray:
    """Spectral-flux onset strength of ``audio`` at about ``rate`` frames/s: the numbers of ``librosa.onset.onset_strength(y=audio,
    sr=sample_rate, hop_length=round(sample_rate / rate))`` (float32 rounding aside) in numpy,
    ``block`` STFT frames at a time (:class:`OnsetEnvelope`).

    ``audio``: the samples (mono float32), or a *block source* — a callable returning an
    iterable of consecutive blocks of them, such as ``functools.partial(iter_audio, path,
    sample_rate)`` (:func:`transcribe_cli.io.audio.iter_audio`), so the recording is never
    whole in memory. A block source is read once, and a second time (up to the last block
    needed) only where the loudest moment is after the first block and the first 41 s
    (:data:`ONSET_KEPT_FRAMES`)."""
    return OnsetEnvelope(sample_rate, rate=rate, block=block).compute(audio)


def _frame_power(frames: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Power spectra ``|rfft(frame · window)|²`` of the rows of ``frames`` (float32)."""
    spectrum = np.fft.rfft(frames * window, axis=-1)
    return spectrum.real**2 + spectrum.imag**2


class OnsetEnvelope:
    """librosa's spectral-flux onset strength of audio fed a block at a time, in numpy.

    librosa's definition: power STFT (``n_fft`` 2048, periodic Hann, centred frames, zero
    padding), 128 Slaney mel bands from 0 Hz to Nyquist, ``10·log10(max(x, 1e-10))`` floored
    at 80 dB below the loudest value of the whole recording, then the mean over bands of the
    positive rise from the previous frame, delayed by ``1 + n_fft // (2·hop)`` frames.

    :meth:`feed` takes consecutive blocks of samples of any length; every ``block`` STFT frames
    (2.56 s at 256; about 8 MB of temporaries) are turned into flux under the floor of the running maximum and the
    samples dropped, so memory is one block plus 4 bytes a frame (60 minutes: 1.4 MB), not the
    recording. The blocks computed under a lower maximum than the recording's are computed again
    by :meth:`finish` from a second read of the audio up to the last of them, so the result is
    the whole-recording one and does not depend on ``block`` or on how the audio was split.
    The mel dB of the first :data:`ONSET_KEPT_FRAMES` frames is kept, so those blocks are
    computed again from it without reading the audio (a recording up to 41 s: never)."""

    def __init__(self, sample_rate: int, *, rate: float = ENVELOPE_RATE, block: int = 256, threads: int = 1):
        self.sample_rate = int(sample_rate)
        self.threads = max(1, int(threads))
        self._pool: Any = None  # the FFT threads (threads >= 2), made on first use
        self.hop = int(round(sample_rate / rate))
        self.n_fft = ONSET_N_FFT
        self.block = max(int(block), 1)
        self._mel = _onset_mel_bands(self.sample_rate)
        self._window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(self.n_fft) / self.n_fft)).astype(np.float32)
        self._framer = _Framer(self.hop, self.n_fft, self.block)
        self._flux: list[np.ndarray] = []  # block k: flux[f] (rise from frame f - 1 to f) of its frames
        self._done: list[tuple[int, int, np.float32]] = []  # block k: (start, stop, maximum used)
        self._top = np.float32(-np.inf)
        self._kept: dict[int, np.ndarray] = {}  # block k: its mel dB, while ONSET_KEPT_FRAMES allow
        self._kept_frames = 0
        self._redo: dict[int, int] | None = None  # after close(): first frame -> block k still to redo
        self._refeeder: _Framer | None = None  # made by close(): cuts the samples refed
        self._frames = 0

    @property
    def samples(self) -> int:
        """Samples fed so far."""
        return self._framer.total

    def compute(self, audio: np.ndarray | Callable[[], Iterable[np.ndarray]]) -> np.ndarray:
        """The envelope of ``audio`` (samples or a block source), from a fresh state."""
        if callable(audio):
            source = audio
        else:
            samples = np.asarray(audio, dtype=np.float32).reshape(-1)

            def source() -> Iterable[np.ndarray]:
                return (samples,)

        for chunk in source():
            self.feed(chunk)
        return self.finish(source)

    def feed(self, samples: np.ndarray) -> None:
        """The next samples of the recording (mono)."""
        for start, stop, segment in self._framer.feed(np.asarray(samples, dtype=np.float32).reshape(-1)):
            self._add(start, stop, segment)

    def finish(self, again: Callable[[], Iterable[np.ndarray]] | None = None) -> np.ndarray:
        """The envelope of all the samples fed (one value per ``hop`` samples, plus one).
        ``again`` reads the same samples once more for the blocks computed under a lower
        floor (needed only where the loudest moment was after the first block and the kept dB)."""
        self.close()
        return self.result(again)

    def close(self) -> None:
        """No more samples: the last blocks are computed, the recording's loudest value is
        known, and so are the blocks to compute again under its floor (those with kept dB at
        once). Then :meth:`refeed` the recording again from its start, or let :meth:`result`
        read it."""
        if self._redo is not None:
            return
        self._frames = self._framer.total // self.hop + 1
        for start, stop, segment in self._framer.finish():
            self._add(start, stop, segment)
        floor = self._top - np.float32(ONSET_TOP_DB)
        redo = {start: k for k, (start, _, used) in enumerate(self._done) if used < self._top}
        for start, k in list(redo.items()):
            if k in self._kept:  # computed again from its kept dB, not from the audio
                self._flux[k] = self._rises(self._kept[k], floor)
                del redo[start]
        self._kept.clear()
        self._redo = redo
        self._refeeder = _Framer(self.hop, self.n_fft, self.block)

    @property
    def complete(self) -> bool:
        """Closed, and no block is left to compute again."""
        return self._redo is not None and not self._redo

    def refeed(self, samples: np.ndarray) -> None:
        """The recording's samples again, from its start, after :meth:`close` (e.g. a second
        pass made anyway): the blocks computed under a lower floor are computed again from them.
        Samples after the last such block are ignored."""
        if self._redo is None:
            raise ValueError("refeed() comes after close()")
        if self._redo and self._refeeder is not None:
            self._recompute(self._refeeder.feed(np.asarray(samples, dtype=np.float32).reshape(-1)))

    def result(self, again: Callable[[], Iterable[np.ndarray]] | None = None) -> np.ndarray:
        """The envelope, once closed: ``again`` (a block source of the same samples) is read,
        up to the last block needed, where blocks are still to be computed again."""
        self.close()
        if self._redo:
            if again is None:
                raise ValueError("the envelope needs the audio again (pass `again`)")
            self._refeeder = _Framer(self.hop, self.n_fft, self.block)
            chunks = iter(again())
            try:
                for chunk in chunks:
                    self.refeed(chunk)
                    if not self._redo:
                        break
                else:
                    self._recompute(self._refeeder.finish())
            finally:
                close = getattr(chunks, "close", None)  # a generator: stop reading the file
                if close is not None:
                    close()
        flux = np.concatenate([np.zeros(1, dtype=np.float32), *self._flux])  # flux[0]: no frame before
        delay = 1 + self.n_fft // (2 * self.hop)
        n_frames = self._frames
        envelope = np.zeros(n_frames, dtype=np.float32)
        if n_frames > delay:
            envelope[delay:] = flux[1 : n_frames - delay + 1]
        return envelope

    def _recompute(self, blocks: Iterable[tuple[int, int, np.ndarray]]) -> None:
        """Compute the pending blocks among ``blocks`` again under the recording's floor."""
        floor = self._top - np.float32(ONSET_TOP_DB)
        for start, _, segment in blocks:
            k = self._redo.pop(start, None)
            if k is not None:
                self._flux[k] = self._rises(self._decibels(segment), floor)
            if not self._redo:
                return

    def _add(self, start: int, stop: int, segment: np.ndarray) -> None:
        db = self._decibels(segment)
        self._top = max(self._top, db.max())
        if self._kept_frames + len(db) <= ONSET_KEPT_FRAMES:
            self._kept[len(self._flux)] = db
            self._kept_frames += len(db)
        self._flux.append(self._rises(db, self._top - np.float32(ONSET_TOP_DB)))
        self._done.append((start, stop, self._top))

    def _decibels(self, segment: np.ndarray) -> np.ndarray:
        """Mel power in dB (unfloored) of the frames of ``segment``: ``[frames, mels]``
        (numpy's FFT, float32 since numpy 2: ``scipy.fft`` would add 25 MB of imports). With
        ``threads >= 2`` the frames' FFTs are split over that many threads (numpy's FFT releases
        the GIL; each frame's spectrum is the same whichever thread computes it: 7.6 -> 4.7 ms a
        block of 256 frames on 2 threads, ``benchmarks/results/model_speed.md``)."""
        frames = np.lib.stride_tricks.sliding_window_view(segment, self.n_fft)[:: self.hop]
        if self.threads < 2 or len(frames) < 2 * self.threads:
            power = _frame_power(frames, self._window)
        else:
            if self._pool is None:
                import weakref
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="onset-fft")
                weakref.finalize(self, self._pool.shutdown, wait=False)
            power = np.empty((len(frames), self.n_fft // 2 + 1), dtype=np.float32)
            edges = np.linspace(0, len(frames), self.threads + 1).astype(int)

            def part(lo: int, hi: int) -> None:
                power[lo:hi] = _frame_power(frames[lo:hi], self._window)

            for future in [self._pool.submit(part, lo, hi) for lo, hi in zip(edges[:-1], edges[1:])]:
                future.result()
        return 10.0 * np.log10(np.maximum(self._mel(power), np.float32(1e-10)))

    @staticmethod
    def _rises(db: np.ndarray, floor: np.float32) -> np.ndarray:
        db = np.maximum(db, floor)
        return np.maximum(db[1:] - db[:-1], np.float32(0.0)).mean(axis=1)


class AudioOnsets:
    """The audio onset envelope of a recording from the reads a transcription makes anyway.

    ``source`` is the block source the transcriber reads (e.g. an
    :class:`~transcribe_cli.io.audio.AudioBlocks`); hand it :meth:`blocks` instead. Its first
    complete read feeds an :class:`OnsetEnvelope`; its second (the transcriber's second pass)
    computes again the blocks that were computed under a lower maximum. :meth:`envelope` then
    reads ``source`` only for what is still missing: nothing after a transcriber's two passes;
    the whole envelope where the blocks were never read (a model that loads the file itself).
    The envelope is the one :func:`audio_onset_envelope` gives, without the tempo tracker's own
    decode of the file."""

    def __init__(self, source: Callable[[], Iterable[np.ndarray]], sample_rate: int, *, threads: int = 1):
        self.source, self.sample_rate = source, int(sample_rate)
        self.threads = max(1, int(threads))
        self._onsets = OnsetEnvelope(self.sample_rate, threads=self.threads)
        self._reads = 0
        self._fed = False  # a complete first read went into the envelope

    def blocks(self) -> Iterator[np.ndarray]:
        """``source``'s blocks (a block source itself), fed to the envelope on the way. With
        ``threads >= 2`` the first read feeds the envelope from a background thread
        (:class:`_BackgroundFeed`), so that the envelope's FFTs run beside the decoding and the
        reader's own work on the blocks (a transcriber's statistics pass) instead of after them;
        the envelope is the same, its blocks fed in the same order."""
        read = self._reads
        self._reads += 1
        onsets = self._onsets
        if read == 0:
            feed = _BackgroundFeed(onsets.feed) if self.threads >= 2 else None
            try:
                for block in self.source():
                    if feed is not None:
                        feed.put(block)
                    else:
                        onsets.feed(block)
                    yield block
            finally:  # also when the reader stops early: the thread ends, its error is raised
                if feed is not None:
                    feed.join()
            onsets.close()
            self._fed = True
            return
        for block in self.source():
            if read == 1 and self._fed and not onsets.complete:
                onsets.refeed(block)
            yield block

    def envelope(self) -> np.ndarray:
        """The envelope (:meth:`OnsetEnvelope.finish`), reading ``source`` only where needed."""
        if not self._fed:
            self._onsets = OnsetEnvelope(self.sample_rate, threads=self.threads)
            return self._onsets.compute(self.source)
        return self._onsets.result(self.source)

    @property
    def samples(self) -> int:
        """Samples of the recording, once :meth:`envelope` has run."""
        return self._onsets.samples


class _BackgroundFeed:
    """Calls ``consume(block)`` for each block :meth:`put`, in order, in one background thread
    at most ``depth`` blocks behind (the reader waits beyond that: memory stays a few blocks).
    :meth:`join` waits for the last block and raises the first error ``consume`` raised (which
    :meth:`put` raises too once it has happened; the blocks after it are dropped)."""

    def __init__(self, consume: Callable[[np.ndarray], None], depth: int = 4):
        import queue
        import threading

        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(consume,), name="onset-envelope", daemon=True)
        self._thread.start()

    def _run(self, consume: Callable[[np.ndarray], None]) -> None:
        while True:
            block = self._queue.get()
            if block is None:
                return
            if self._error is None:
                try:
                    consume(block)
                except BaseException as exc:  # noqa: BLE001 - handed to the reader's thread
                    self._error = exc

    def put(self, block: np.ndarray) -> None:
        self._raise()
        self._queue.put(block)

    def join(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error


class _Framer:
    """Cuts consecutive blocks of samples into the segments of the onset envelope's STFT
    blocks: block ``start`` covers frames ``start - 1 .. stop - 1`` (``stop = start + block``,
    the last one shorter), i.e. samples ``(start - 1)·hop - n_fft/2 .. (stop - 1)·hop + n_fft/2``
    zero-padded outside the recording. A full block is cut as soon as its samples are in; the
    rest when the length is known (:meth:`finish`). Holds at most a block's samples."""

    def __init__(self, hop: int, n_fft: int, block: int):
        self.hop, self.n_fft, self.block = hop, n_fft, block
        self.total = 0
        self._start = 1  # the next block's first frame
        self._buffer = np.zeros(0, dtype=np.float32)
        self._offset = 0  # sample index of _buffer[0]

    def _bounds(self, start: int, stop: int) -> tuple[int, int]:
        return (start - 1) * self.hop - self.n_fft // 2, (stop - 1) * self.hop + self.n_fft // 2

    def _segment(self, lo: int, hi: int) -> np.ndarray:
        a, b = max(lo, self._offset), min(hi, self._offset + len(self._buffer))
        if a == lo and b == hi:
            return self._buffer[lo - self._offset : hi - self._offset]
        segment = np.zeros(hi - lo, dtype=np.float32)
        if b > a:
            segment[a - lo : b - lo] = self._buffer[a - self._offset : b - self._offset]
        return segment

    def feed(self, samples: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
        self._buffer = np.concatenate([self._buffer, samples]) if len(self._buffer) else samples
        self.total += len(samples)
        out = []
        while True:
            stop = self._start + self.block
            lo, hi = self._bounds(self._start, stop)
            if hi > self.total:
                break
            out.append((self._start, stop, self._segment(lo, hi)))
            self._start = stop
        keep = max(self._bounds(self._start, self._start)[0], self._offset)  # the next block's first sample
        self._buffer = self._buffer[keep - self._offset :]
        self._offset = keep
        return out

    def finish(self) -> list[tuple[int, int, np.ndarray]]:
        n_frames = self.total // self.hop + 1
        out = []
        for start in range(self._start, n_frames, self.block):
            stop = min(start + self.block, n_frames)
            out.append((start, stop, self._segment(*self._bounds(start, stop))))
        self._start = n_frames
        return out


#: librosa's tightness: how strongly the tracker keeps a steady tempo (its default is 100;
#: 400 measured better on rendered piano, benchmarks/results/tempo.md).
TIGHTNESS = 400.0


def combined_envelope(audio_envelope: np.ndarray, note_envelope: np.ndarray) -> np.ndarray:
    """The sum of both envelopes, each scaled to its 99th percentile (same frame rate)."""
    n = min(len(audio_envelope), len(note_envelope))

    def scaled(e: np.ndarray) -> np.ndarray:
        return e[:n] / (float(np.percentile(e[:n], 99)) + 1e-9)

    return scaled(audio_envelope) + scaled(note_envelope)


#: The tracker's tempo prior: log-normal around ``START_BPM`` with ``STD_BPM`` octaves
#: (librosa's default is 120 / 1.0; 80 / 1.0 beat 100 / 1.0 on POP909 train pieces, with half
#: the tempo-octave errors: ``benchmarks/tune_tempo_prior.py``, ``benchmarks/results/tempo.md``).
START_BPM, STD_BPM = 80.0, 1.0


def track_beats(envelope: np.ndarray, *, rate: float = ENVELOPE_RATE, tightness: float = TIGHTNESS,
                start_bpm: float = START_BPM, std_bpm: float = STD_BPM, threads: int = 1) -> np.ndarray:
    """Beat times (seconds) from an onset envelope: Ellis's dynamic-programming beat tracker
    (:func:`beat_frames`) at the tempo :func:`estimate_bpm` picks under the log-normal prior
    (``start_bpm``, ``std_bpm``). The numbers of ``librosa.beat.beat_track(onset_envelope=...,
    bpm=librosa.feature.tempo(...), trim=False)``, in numpy (no numba compile at run time).
    ``threads``: for the tempogram (:func:`mean_tempogram`; the same numbers on any count)."""
    envelope = np.asarray(envelope, dtype=float)
    if len(envelope) < 4 or not np.any(envelope > 0):
        return np.zeros(0)
    bpm = estimate_bpm(envelope, rate=rate, start_bpm=start_bpm, std_bpm=std_bpm, threads=threads)
    return beat_frames(envelope, bpm, rate=rate, tightness=tightness).astype(float) / rate


def tempo_frequencies(n_lags: int, rate: float) -> np.ndarray:
    """BPM of each autocorrelation lag (lag 0: ``inf``), as ``librosa.tempo_frequencies``."""
    hop = 512
    sr = rate * hop  # librosa only needs sr / hop_length; the same float operations as there
    bpms = np.zeros(n_lags)
    bpms[0] = np.inf
    bpms[1:] = 60.0 * sr / (hop * np.arange(1.0, n_lags))
    return bpms


def estimate_bpm(envelope: np.ndarray, *, rate: float = ENVELOPE_RATE, start_bpm: float = START_BPM,
                 std_bpm: float = STD_BPM, max_bpm: float = MAX_BPM, threads: int = 1) -> float:
    """The global tempo: the lag of the time-averaged tempogram (:func:`mean_tempogram`) that
    is largest after weighting by a log-normal prior, ``log1p(1e6·tg) - ½((log2 bpm - log2
    start_bpm) / std_bpm)²``, tempi at or above ``max_bpm`` excluded (``librosa.feature.tempo``)."""
    tg = mean_tempogram(envelope, rate=rate, threads=threads)
    bpms = tempo_frequencies(len(tg), rate)
    with np.errstate(invalid="ignore"):
        logprior = -0.5 * ((np.log2(bpms) - np.log2(start_bpm)) / std_bpm) ** 2
    logprior[: int(np.argmax(bpms < max_bpm))] = -np.inf
    return float(bpms[int(np.argmax(np.log1p(1e6 * tg) + logprior))])


def beat_frames(envelope: np.ndarray, bpm: float, *, rate: float = ENVELOPE_RATE,
                tightness: float = TIGHTNESS) -> np.ndarray:
    """Beat frame indices at a fixed tempo: Ellis's (2007) dynamic program as librosa 0.11's
    ``beat_track(..., trim=False)`` runs it. The envelope is scaled by its standard deviation
    and smoothed with a Gaussian of a beat's width (the local score); the cumulative score of
    frame ``i`` is its local score plus the best ``score[j] - tightness·(log(i-j) - log p)²``
    over predecessors ``j`` between half a beat and two beats back (``p`` frames a beat); the
    beats are the backtrace from the last strong local maximum of the cumulative score.

    The predecessors of any frame are at least ``round(p/2)`` frames back, so the program runs
    that many frames at a time as array operations, not one frame at a time."""
    # Arrays of the envelope's length are the memory here (8 bytes a frame each, 2.9 MB an
    # hour at 100 frames/s): each is freed or made in place as soon as it can be.
    onsets = np.array(envelope, dtype=float)  # a copy: scaled in place
    n = len(onsets)
    period = float(np.round(rate * 60.0 / bpm))
    onsets /= onsets.std(ddof=1) + np.finfo(float).tiny
    onsets[0] = 0.0  # librosa's local-score loop never reads the first frame
    window = np.exp(-0.5 * (np.arange(-period, period + 1) * 32.0 / period) ** 2)
    half = len(window) // 2
    localscore = np.convolve(onsets, window)[half : half + n]
    del onsets
    if n < 2 or not np.any(localscore > 0):
        return np.zeros(0, dtype=int)

    near = int(np.round(period / 2))
    distance = np.arange(near, int(2 * period) + 1)  # predecessors, nearest first
    penalty = tightness * (np.log(distance) - np.log(period)) ** 2
    cumscore = np.empty(n)
    backlink = np.full(n, -1, dtype=np.int32 if n < 2**31 else np.int64)
    for start in range(0, n, max(near, 1)):
        frames = np.arange(start, min(start + max(near, 1), n))
        previous = frames[:, None] - distance[None, :]
        valid = previous >= 0
        scores = np.where(valid, cumscore[np.maximum(previous, 0)] - penalty, -np.inf)
        best = np.argmax(scores, axis=1)  # the first (nearest) of equal scores, as librosa
        found = valid[:, 0]
        cumscore[frames] = localscore[frames] + np.where(found, scores[np.arange(len(frames)), best], 0.0)
        backlink[frames] = np.where(found, frames - distance[best], -1)
    first = int(np.argmax(localscore >= 0.01 * localscore.max()))  # no back-link before the first beat
    backlink[:first] = -1

    # local maxima: above the previous frame, at least the next (edges padded with themselves)
    peaks = np.zeros(n, dtype=bool)
    peaks[1:] = cumscore[1:] > cumscore[:-1]
    peaks[:-1] &= cumscore[:-1] >= cumscore[1:]
    tail = n - 1
    if peaks.any():
        candidates = np.flatnonzero(peaks & (cumscore >= 0.5 * np.median(cumscore[peaks])))
        if len(candidates):
            tail = int(candidates[-1])
    beats = np.zeros(n, dtype=bool)
    while tail >= 0:
        beats[tail] = True
        tail = int(backlink[tail])
    positive = np.flatnonzero(localscore > 0)  # beats on frames of zero local score are dropped
    beats[: positive[0]] = False
    beats[positive[-1] + 1 :] = False
    return np.flatnonzero(beats)


#: librosa.feature.tempo's autocorrelation window, seconds (its ``ac_size`` default).
TEMPOGRAM_SECONDS = 8.0
#: Frames between the tempogram columns averaged for the global tempo (librosa: every frame).
#: The 8-s windows of neighbouring frames overlap by 99.5 %, so every 4th frame (40 ms) gives
#: the same tempo at a quarter of the cost (the mean differs by < 1e-4; same beats on the
#: benchmark pieces, benchmarks/results/memory.md).
TEMPOGRAM_STEP = 4


def mean_tempogram(envelope: np.ndarray, *, rate: float = ENVELOPE_RATE, step: int = TEMPOGRAM_STEP,
                   block: int = 128, threads: int = 1) -> np.ndarray:
    """The time average of librosa's (centred) autocorrelation tempogram of ``envelope``: each
    frame's 8-s Hann-windowed excerpt (the envelope padded by a linear ramp to 0 at both ends),
    autocorrelated and scaled to 1 at its largest lag value. ``librosa.feature.tempogram(...)
    .mean(axis=1)`` with ``step=1``; ``step > 1`` averages every ``step``-th frame only
    (:data:`TEMPOGRAM_STEP`).
    Computed ``block`` frames at a time (the whole tempogram is 800 lags x frames; 128 frames:
    about 7 MB of temporaries), ``threads`` blocks at once (numpy's FFTs release the GIL); the
    blocks' sums are added in block order, so the result is the same on any thread count."""
    win = int(TEMPOGRAM_SECONDS * rate)  # librosa.time_to_frames(ac_size, sr, hop)
    envelope = np.asarray(envelope, dtype=float)
    n = len(envelope)
    padded = np.pad(envelope, (win // 2, win // 2), mode="linear_ramp", end_values=(0, 0))
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win) / win)
    n_fft = _fast_length(2 * win - 1)
    frames = np.lib.stride_tricks.sliding_window_view(padded, win)[: n : step]

    def block_sum(start: int) -> np.ndarray:
        spectrum = np.fft.rfft(frames[start : start + block] * window, n=n_fft, axis=-1)
        tg = np.fft.irfft(spectrum.real**2 + spectrum.imag**2, n=n_fft, axis=-1)[:, :win]
        peak = np.abs(tg).max(axis=1, keepdims=True)
        peak[peak < np.finfo(float).tiny] = 1.0
        return (tg / peak).sum(axis=0)

    starts = range(0, len(frames), block)
    total = np.zeros(win)
    if threads > 1 and len(starts) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(int(threads), len(starts)), thread_name_prefix="tempogram") as pool:
            for part in pool.map(block_sum, starts):  # in block order
                total += part
    else:
        for start in starts:
            total += block_sum(start)
    return total / max(len(frames), 1)


def _fast_length(n: int) -> int:
    """The smallest 5-smooth number >= n (``scipy.fft.next_fast_len(n, real=True)``)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def estimate_downbeats(notes: Sequence[Note], beats: np.ndarray, meters: Sequence[int] = (4, 3)) -> tuple[int, int]:
    """``(beats_per_bar, first_downbeat)`` from the notes around ``beats``.

    Each beat gets an accent: the harmonic change into it (1 - cosine similarity of the
    pitch-class profiles of the beat before and the beat starting there, weighted by
    duration and velocity) plus the strength of bass onsets on it (notes at or below the
    lowest quarter of the piece's pitches, within a tenth of a beat). For each meter and
    phase, the score is the mean accent on the would-be downbeats minus the mean elsewhere;
    the best wins, 4 preferred to 3 unless 3 scores clearly higher.
    """
    beats = np.asarray(beats, dtype=float)
    if len(beats) < 4 or not notes:
        return meters[0], 0
    accent = _beat_accents(notes, beats)
    best: tuple[float, int, int] | None = None
    for rank, meter in enumerate(meters):
        if len(beats) < 2 * meter:
            continue
        for phase in range(meter):
            on = accent[phase::meter]
            mask = np.ones(len(accent), bool)
            mask[phase::meter] = False
            score = float(on.mean() - accent[mask].mean())
            score -= 0.05 * rank  # favour the more common meter on near ties
            if best is None or score > best[0]:
                best = (score, meter, phase)
    if best is None:
        return meters[0], 0
    return best[1], best[2]


def _beat_accents(notes: Sequence[Note], beats: np.ndarray) -> np.ndarray:
    period = np.diff(beats)
    period = np.append(period, period[-1])
    edges = np.append(beats, beats[-1] + period[-1])
    chroma = np.zeros((len(beats), 12))
    bass = np.zeros(len(beats))
    pitches = np.array([n.pitch for n in notes])
    low = np.quantile(pitches, 0.25)
    for note in notes:
        weight = note.velocity / 127.0
        first = max(0, bisect.bisect_right(edges, note.onset) - 1)
        last = min(len(beats) - 1, bisect.bisect_left(edges, note.offset) - 1)
        for b in range(first, last + 1):
            overlap = min(note.offset, edges[b + 1]) - max(note.onset, edges[b])
            if overlap > 0:
                chroma[b, note.pitch % 12] += weight * overlap / period[b]
        if note.pitch <= low:
            b = int(np.argmin(np.abs(beats - note.onset)))
            if abs(beats[b] - note.onset) <= 0.1 * period[b]:
                bass[b] += weight
    norm = np.linalg.norm(chroma, axis=1)
    unit = chroma / np.maximum(norm, 1e-9)[:, None]
    change = np.zeros(len(beats))
    change[1:] = 1.0 - np.sum(unit[1:] * unit[:-1], axis=1)
    change[1:][(norm[1:] == 0) | (norm[:-1] == 0)] = 0.0
    if bass.max() > 0:
        bass = bass / bass.max()
    return change + bass


def track_tempo(
    notes: Sequence[Note],
    *,
    audio: np.ndarray | Callable[[], Iterable[np.ndarray]] | AudioOnsets | None = None,
    sample_rate: int | None = None,
    source: str | None = None,
) -> TempoMap | None:
    """A tempo map for a transcription: beats from ``source`` (``"audio"``: the onset envelope
    of ``audio`` — the samples, a block source that streams them, see
    :func:`audio_onset_envelope`, or an :class:`AudioOnsets` fed by the transcriber's reads —
    the default where audio is given; ``"notes"``: the notes' envelope, the default
    without audio; ``"both"``: the two summed), meter and downbeat from the notes. ``None``
    when there is too little to track (fewer than 8 beats found, e.g. a few notes or silence)."""
    if source is None:
        source = "notes" if audio is None or sample_rate is None else "audio"
    if source in ("audio", "both") and (audio is None or sample_rate is None):
        raise ValueError(f"source={source!r} needs audio and sample_rate")
    rate = ENVELOPE_RATE
    if source in ("audio", "both"):
        hop = int(round(sample_rate / ENVELOPE_RATE))
        onsets: AudioOnsets | OnsetEnvelope
        if isinstance(audio, AudioOnsets):  # fed by the transcriber's reads: reads the file only if needed
            onsets, envelope = audio, audio.envelope()
        else:
            onsets = OnsetEnvelope(sample_rate)
            envelope = onsets.compute(audio)
        rate = sample_rate / hop
        if source == "both":
            # the note envelope on the audio envelope's frames
            end = onsets.samples / sample_rate
            envelope = combined_envelope(envelope, note_onset_envelope(notes, rate=rate, end=end))
    elif source == "notes":
        envelope = note_onset_envelope(notes)
    else:
        raise ValueError(f"unknown beat source {source!r}")
    beats = track_beats(envelope, rate=rate, threads=getattr(audio, "threads", 1))
    beats = beats[beats >= 0]
    if len(beats) < 8:
        return None
    meter, phase = estimate_downbeats(notes, beats)
    return TempoMap(tuple(beats), meter, phase)
