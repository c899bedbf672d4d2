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
