"""Streaming (issue 11): block audio decoding, decoders fed window by window, and the
file-to-notes path that never holds the whole recording or its activations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transcribe_cli.decoders.onset_peaks import OnsetPeaksStream
from transcribe_cli.decoders.onset_peaks import decode as onset_peaks
from transcribe_cli.decoders.pedal import PedalStream, decode_pedal

RATE = 50.0
KEYS = 88


def synthetic_activations(seed: int, n_frames: int, offsets: bool = True, velocity: bool = True) -> dict:
    """Onset bumps (some double-humped, some plateaus), frame runs that sometimes outlast
    the next onset, offset bumps and noise: every case the decoder's ends distinguish."""
    rng = np.random.default_rng(seed)
    acts = {key: (rng.random((n_frames, KEYS)) * 0.3).astype(np.float32) for key in ("onset", "frame", "offset")}
    for _ in range(max(1, n_frames * KEYS // 400)):
        key, start = int(rng.integers(KEYS)), int(rng.integers(n_frames))
        length = int(rng.integers(1, 120))
        acts["onset"][start, key] = rng.uniform(0.4, 1.0)
        if start + 1 < n_frames and rng.random() < 0.5:
            acts["onset"][start + 1, key] = acts["onset"][start, key] * rng.choice([1.0, 0.8])
        acts["frame"][start + int(rng.integers(0, 3)) : start + length, key] = rng.uniform(0.55, 1.0)
        if rng.random() < 0.5 and start + length < n_frames:
            acts["offset"][start + length, key] = rng.uniform(0.4, 1.0)
    if not offsets:
        del acts["offset"]
    if velocity:
        acts["velocity"] = rng.random((n_frames, KEYS)).astype(np.float32)
    return acts


def fed_in_chunks(stream, acts: dict, cuts: list[int]):
    n_frames = next(iter(acts.values())).shape[0]
    bounds = [0, *sorted(c for c in cuts if 0 < c < n_frames), n_frames]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        stream.feed({key: value[lo:hi] for key, value in acts.items()})
    return stream.finish()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n_frames=st.integers(1, 700),
    cuts=st.lists(st.integers(0, 700), max_size=12),
    offsets=st.booleans(),
    options=st.fixed_dictionaries({
        "peak_window": st.integers(1, 6),
        "confirm_frames": st.integers(0, 8),
        "refine_onsets": st.booleans(),
        "onset_threshold": st.sampled_from([0.2, 0.5]),
        "harmonic_ratio": st.sampled_from([0.0, 0.7, 1.0]),
    }),
)
def test_onset_peaks_fed_in_random_chunks_equals_one_decode(seed, n_frames, cuts, offsets, options):
    acts = synthetic_activations(seed, n_frames, offsets=offsets)
    whole = onset_peaks(acts, RATE, **options)
    assert fed_in_chunks(OnsetPeaksStream(RATE, **options), acts, cuts) == whole


def test_onset_peaks_frame_by_frame_equals_one_decode():
    acts = synthetic_activations(7, 400)
    whole = onset_peaks(acts, RATE)
    assert len(whole) > 20
    assert fed_in_chunks(OnsetPeaksStream(RATE), acts, list(range(400))) == whole


def test_onset_peaks_stream_keeps_a_bounded_buffer():
    acts = synthetic_activations(3, 3000)
    stream = OnsetPeaksStream(RATE, peak_window=2, confirm_frames=2)
    for lo in range(0, 3000, 250):
        stream.feed({key: value[lo : lo + 250] for key, value in acts.items()})
        assert all(value.shape[0] <= 250 + 2 + 2 for value in stream._buffer.values())
    assert stream.finish() == onset_peaks(acts, RATE, peak_window=2, confirm_frames=2)


@settings(max_examples=80, deadline=None)
@given(
    roll=st.lists(st.sampled_from([0.0, 0.3, 0.7, 1.0]), min_size=0, max_size=300),
    cuts=st.lists(st.integers(0, 300), max_size=10),
    gap=st.integers(0, 3),
)
def test_pedal_fed_in_random_chunks_equals_one_decode(roll, cuts, gap):
    values = np.asarray(roll, dtype=np.float32)[:, None]
    whole = decode_pedal(values, RATE, gap_frames=gap)
    stream = PedalStream(RATE, gap_frames=gap)
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(roll)), len(roll)]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        stream.feed(values[lo:hi])
    assert stream.finish() == whole


# --------------------------------------------------------------------------- block reader

sf = pytest.importorskip("soundfile")
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pop909_003.flac"


@pytest.mark.parametrize("rate", [16000, 22050, 44100])
@pytest.mark.parametrize("block", [1, 997, 4096])
def test_sine_through_blocks_and_resampler_equals_whole_file_resample(tmp_path, monkeypatch, rate, block):
    import soxr

    from transcribe_cli.io import audio as audio_mod

    monkeypatch.setattr(audio_mod, "_SOUNDFILE_BLOCK", block)  # odd block sizes
    t = np.arange(int(0.7 * rate)) / rate
    left, right = 0.6 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 440 * t)
    path = tmp_path / "sine.wav"
    sf.write(str(path), np.stack([left, right], axis=1).astype(np.float32), rate, subtype="FLOAT")
    blocks = list(audio_mod.iter_audio(path, 16000))
    streamed = np.concatenate(blocks)
    mono = ((left.astype(np.float32) + right.astype(np.float32)) / 2).astype(np.float32)  # stereo → mono average
    whole = mono if rate == 16000 else soxr.resample(mono, rate, 16000, quality=audio_mod.RESAMPLE_QUALITY)
    assert streamed.dtype == np.float32 and streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-6)
    assert all(b.ndim == 1 for b in blocks)
    np.testing.assert_array_equal(audio_mod.load_audio(path, 16000), streamed)


# --------------------------------------------------------------------------- whole path vs streamed


def test_audio_stats_give_the_whole_file_verdict_and_level():
    from transcribe_cli.conditioning import AudioStats, condition
    from transcribe_cli.inference import LOUDNESS_BLOCK_SECONDS, measure_level, stream_transform
    from transcribe_cli.io.audio import iter_audio, load_audio

    audio = load_audio(EXAMPLE, 16000) + np.float32(0.01)  # a DC offset to remove
    stats = AudioStats(16000, int(LOUDNESS_BLOCK_SECONDS * 16000))
    for lo in range(0, audio.size, 12345):
        stats.add(audio[lo : lo + 12345])
    conditioned, verdict = condition(audio, 16000)
    got = stats.assessment()
    assert got.silent == verdict.silent and got.noise == verdict.noise
    assert got.level_dbfs == pytest.approx(verdict.level_dbfs, abs=1e-6)
    assert got.flatness == pytest.approx(verdict.flatness, rel=1e-4)
    prepare, _ = stream_transform(stats, "loudness")
    from transcribe_cli.inference import normalize_audio

    np.testing.assert_allclose(prepare(audio), normalize_audio(conditioned, "loudness", 16000), atol=1e-5)
    assert measure_level(conditioned, 16000).peak == pytest.approx(stats.high - stats.mean, rel=1e-5)
    assert sum(b.size for b in iter_audio(EXAMPLE, 16000)) == stats.count


@pytest.mark.slow
@pytest.mark.parametrize("model", ["piano", "nmf"])
def test_streamed_file_gives_the_notes_of_the_whole_path(model):
    from transcribe_cli.io.audio import load_audio
    from transcribe_cli.pipeline import Transcriber

    transcriber = Transcriber(model, window_seconds=5.0)  # several windows and batches
    whole = transcriber.transcribe(load_audio(EXAMPLE, transcriber.sample_rate))
    streamed, seconds = transcriber.transcribe_path(EXAMPLE)  # 21 s: decoded once, replayed (AudioBlocks)
    assert seconds == pytest.approx(21.0)
    assert len(streamed.notes) == len(whole.notes) > 50
    from functools import partial

    from transcribe_cli.io.audio import iter_audio

    decoded_twice, _ = transcriber.transcribe_path(EXAMPLE, blocks=partial(iter_audio, EXAMPLE, transcriber.sample_rate))
    assert decoded_twice == streamed
    for a, b in zip(streamed.notes, whole.notes):  # float rounding of the level: far below a frame
        assert (a.pitch, a.velocity) == (b.pitch, b.velocity)
        assert a.onset == pytest.approx(b.onset, abs=1e-4) and a.offset == pytest.approx(b.offset, abs=1e-4)
    assert streamed.pedals == whole.pedals
