"""Training data: the converted-audio store and labelled segment sampling."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import needs_fluidsynth, sine

from transcribe_cli.datasets.base import Item
from transcribe_cli.errors import AudioError, TranscribeError
from transcribe_cli.io.midi import write_midi
from transcribe_cli.notes import PIANO_LOWEST, Note
from transcribe_cli.training import audio_store
from transcribe_cli.training.augment import AugmentConfig, resample_ratio
from transcribe_cli.training.segments import NoteArrays, SegmentSource

SR = 16000
HOP = 320
OFF = AugmentConfig(enabled=False)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSCRIBE_CACHE_DIR", str(tmp_path / "cache"))


def midi_hz(pitch: int) -> float:
    return 440.0 * 2 ** ((pitch - 69) / 12)


def make_item(folder: Path, name: str, audio: np.ndarray, notes: list[Note], sr: int = SR,
              labels: Path | None = None) -> Item:
    """A ``pairs``-like item: ``name.wav`` plus a MIDI label (``labels`` to share one)."""
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / f"{name}.wav", audio, sr, subtype="FLOAT")
    if labels is None:
        labels = folder / f"{name}.mid"
        write_midi(notes, labels)
    return Item(f"{name}.wav", folder / f"{name}.wav", labels)


def tone_item(folder: Path, name: str, pitch: int, seconds: float, onset: float, offset: float,
              velocity: int = 100) -> Item:
    """A sine at ``pitch`` sounding from ``onset`` to ``offset`` seconds, labelled so."""
    audio = np.zeros(int(seconds * SR), dtype=np.float32)
    start, stop = int(onset * SR), int(offset * SR)
    audio[start:stop] = sine(midi_hz(pitch), (stop - start) / SR, SR, amp=0.3)
    return make_item(folder, name, audio, [Note(onset, offset, pitch, velocity)])


def dominant_hz(audio: np.ndarray) -> float:
    window = np.hanning(audio.shape[0])
    spectrum = np.abs(np.fft.rfft(audio * window, 8 * audio.shape[0]))
    return float(np.fft.rfftfreq(8 * audio.shape[0], 1 / SR)[np.argmax(spectrum)])


# -- audio store ----------------------------------------------------------------------------

def test_store_converts_once_and_reconverts_a_changed_file(tmp_path, monkeypatch):
    from transcribe_cli.io import audio as audio_io
    calls = []
    real = audio_io.load_audio
    monkeypatch.setattr(audio_io, "load_audio", lambda *a, **k: calls.append(a) or real(*a, **k))
    item = make_item(tmp_path / "data", "a", sine(440.0, 1.0, 22050, amp=0.25), [], sr=22050)
    first = audio_store.load(item, SR)
    assert len(calls) == 1 and first.n_samples == SR and first.sample_rate == SR
    assert first.path.is_relative_to(tmp_path / "cache" / "train-audio")
    assert first.peak == pytest.approx(0.25, abs=0.01)
    mtime = first.path.stat().st_mtime_ns
    again = audio_store.load(item, SR)
    assert again == first and len(calls) == 1 and first.path.stat().st_mtime_ns == mtime  # a cache hit
    assert isinstance(first.samples, np.memmap) and first.samples.shape == (SR,)

    sf.write(item.audio_path, sine(440.0, 0.5, 22050, amp=0.5), 22050, subtype="FLOAT")
    os.utime(item.audio_path, ns=(mtime + 10**9, mtime + 10**9))
    changed = audio_store.load(item, SR)
    assert len(calls) == 2 and changed.path != first.path and changed.n_samples == SR // 2
    assert audio_store.load(item, 8000).n_samples == 4000 and len(calls) == 3  # another rate, another entry

    changed.path.with_suffix(".json").unlink()  # an incomplete entry is converted again
    assert audio_store.load(item, SR) == changed and len(calls) == 4


def test_store_reads_slices_with_zeros_outside(tmp_path):
    samples = np.linspace(-0.5, 0.5, 1000, dtype=np.float32)
    stored = audio_store.load(make_item(tmp_path, "ramp", samples, []), SR)
    assert np.array_equal(stored.read(100, 50), samples[100:150])
    head = stored.read(-10, 20)
    assert not head[:10].any() and np.array_equal(head[10:], samples[:10])
    tail = stored.read(990, 20)
    assert np.array_equal(tail[:10], samples[990:]) and not tail[10:].any()
    assert not stored.read(5000, 7).any() and stored.read(5000, 7).shape == (7,)


def test_load_normalized_matches_inference(tmp_path):
    from transcribe_cli.io.audio import load_audio
    from transcribe_cli.inference import normalize_audio

    item = make_item(tmp_path, "quiet", sine(300.0, 2.0, 44100, amp=0.1), [], sr=44100)
    expected = normalize_audio(load_audio(item.audio_path, SR), "peak")
    assert np.allclose(audio_store.load_normalized(item, SR, "peak"), expected, atol=1e-6)
    first = audio_store.load_normalized(item, SR, "peak", max_seconds=0.5)
    assert first.shape == (SR // 2,) and np.allclose(first, expected[: SR // 2], atol=1e-6)
    assert np.allclose(audio_store.load_normalized(item, SR, None), load_audio(item.audio_path, SR))
    silent = make_item(tmp_path, "silent", np.zeros(SR, dtype=np.float32), [])
    assert not audio_store.load_normalized(silent, SR, "peak").any()  # silence stays silence
    with pytest.raises(TranscribeError, match="unknown audio normalisation"):
        audio_store.load_normalized(item, SR, "rms")


def test_preparing_in_processes_matches_and_reports_errors(tmp_path):
    items = [make_item(tmp_path, f"s{i}", sine(200.0 * (i + 1), 0.5, SR), []) for i in range(3)]
    seen = []

    def stored(source):
        return [variant.audio for piece in source.pieces for variant in piece.variants]

    options = dict(sample_rate=SR, hop_length=HOP, segment_frames=10)
    serial = SegmentSource(items, jobs=1, progress=lambda done, total: seen.append((done, total)), **options)
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert stored(SegmentSource(items, jobs=2, **options)) == stored(serial)
    broken = [*items, Item("gone.wav", tmp_path / "gone.wav", items[0].labels_path)]
    with pytest.raises(AudioError, match="not found"):
        SegmentSource(broken, jobs=2, **options)


# -- segments -------------------------------------------------------------------------------

def test_batch_shapes_dtypes_and_determinism(tmp_path):
    items = [tone_item(tmp_path, f"t{i}", 60 + i, 3.0, 0.2 * i, 2.5) for i in range(3)]
    source = SegmentSource(items, sample_rate=SR, hop_length=HOP, segment_frames=50,
                           augment=AugmentConfig(pitch_prob=0.5, tuning_prob=0.5, noise_prob=0.5,
                                                 reverb_prob=0.5, eq_prob=0.5))
    assert len(source) == 3 and source.total_seconds == pytest.approx(9.0)
    batch = source.batch(np.random.default_rng(0), 4)
    assert batch["audio"].shape == (4, 50 * HOP)
    for key in ("onset", "frame", "offset", "velocity"):
        assert batch[key].shape == (4, 50, 88) and batch[key].dtype == np.float32, key
    assert all(np.isfinite(v).all() for v in batch.values())
    assert set(np.unique(batch["frame"])) <= {0.0, 1.0} and batch["frame"].any()
    again = source.batch(np.random.default_rng(0), 4)
    assert all(np.array_equal(batch[k], again[k]) for k in batch)
    other = source.batch(np.random.default_rng(1), 4)
    assert not np.array_equal(batch["audio"], other["audio"])


def test_labels_follow_audio_through_a_pitch_shift(tmp_path):
    # a 440 Hz sine (A4, MIDI 69) from 0.5 s to 2.5 s, cut from 0.25 s with a +2 semitone shift
    item = tone_item(tmp_path, "a4", 69, 3.0, 0.5, 2.5, velocity=100)
    source = SegmentSource([item], sample_rate=SR, hop_length=HOP, segment_frames=100, augment=OFF)
    variant = source.pieces[0].variants[0]
    n = source.segment_samples
    span = round(n * resample_ratio(2))
    audio, labels = source.cut(variant, SR // 4, span, 2, np.random.default_rng(0))
    assert audio.shape == (n,) and audio.dtype == np.float32

    sounding = np.flatnonzero(labels["frame"].any(axis=0))
    assert sounding.tolist() == [69 + 2 - PIANO_LOWEST]  # the label moved two keys up
    onset_frame = int(np.flatnonzero(labels["onset"][:, 69 + 2 - PIANO_LOWEST])[0])
    stretch = span / n
    assert onset_frame == round(0.25 / stretch * SR / HOP)  # time compressed by the ratio
    assert labels["velocity"][onset_frame, 69 + 2 - PIANO_LOWEST] == pytest.approx(100 / 127)
    assert labels["frame"][onset_frame:, 69 + 2 - PIANO_LOWEST].all()  # sounds to the end

    assert dominant_hz(audio[onset_frame * HOP + 200 :]) == pytest.approx(midi_hz(71), rel=0.003)
    energy = np.array([np.sqrt(np.mean(audio[f * HOP : (f + 1) * HOP] ** 2)) for f in range(100)])
    assert energy[: onset_frame - 1].max() < 1e-3 and energy[onset_frame + 1 :].min() > 0.1  # aligned

    plain, plain_labels = source.cut(variant, SR // 4, n, 0, np.random.default_rng(0))
    assert dominant_hz(plain[SR // 2 :]) == pytest.approx(440.0, rel=0.003)
    assert np.flatnonzero(plain_labels["onset"][:, 69 - PIANO_LOWEST]).tolist() == [round(0.25 * SR / HOP)]


def test_shifted_notes_leaving_the_keyboard_are_dropped(tmp_path):
    item = make_item(tmp_path, "edge", np.zeros(SR, dtype=np.float32),
                     [Note(0.1, 0.5, 108, 90), Note(0.1, 0.5, 21, 90), Note(0.1, 0.5, 60, 90)])
    source = SegmentSource([item], sample_rate=SR, hop_length=HOP, segment_frames=50, augment=OFF)
    notes = source.pieces[0].variants[0].notes
    up = source.labels(notes, 0.0, 1.0, 2)["frame"].any(axis=0)
    assert np.flatnonzero(up).tolist() == [21 + 2 - PIANO_LOWEST, 62 - PIANO_LOWEST]
    down = source.labels(notes, 0.0, 1.0, -1)["frame"].any(axis=0)
    assert np.flatnonzero(down).tolist() == [59 - PIANO_LOWEST, 107 - PIANO_LOWEST]


def test_segments_past_the_end_are_zero_padded_with_empty_labels(tmp_path):
    item = tone_item(tmp_path, "short", 60, 1.0, 0.1, 0.9)
    source = SegmentSource([item], sample_rate=SR, hop_length=HOP, segment_frames=100, augment=OFF)  # 2 s
    batch = source.batch(np.random.default_rng(0), 3)
    audio, frame = batch["audio"], batch["frame"]
    assert np.abs(audio[:, : SR]).max() > 0.2 and not audio[:, SR:].any()  # starts at 0: nothing else fits
    assert frame[:, 5:45, 60 - PIANO_LOWEST].all() and not frame[:, 46:].any()
    assert not batch["onset"][:, 50:].any() and not batch["offset"][:, 50:].any()


def test_notes_sounding_across_the_segment_start():
    notes = NoteArrays.from_notes([Note(0.0, 5.0, 60, 80), Note(1.0, 1.2, 62, 80), Note(3.0, 3.5, 64, 80)])
    assert notes.between(2.0, 3.1).tolist() == [0, 2]
    assert notes.between(1.1, 1.15).tolist() == [0, 1]
    assert NoteArrays.from_notes([]).between(0.0, 1.0).tolist() == []


def test_pieces_are_drawn_by_duration_and_variants_share_a_piece(tmp_path):
    long_piece = tone_item(tmp_path, "long", 72, 3.0, 0.0, 3.0)  # amplitude 0.3
    short_piece = tone_item(tmp_path, "short", 48, 1.0, 0.0, 1.0)
    # a second rendering of the short piece (another "SoundFont"): same labels, half as loud
    variant = make_item(tmp_path, "short_v2", sine(midi_hz(48), 1.0, SR, amp=0.15), [],
                        labels=short_piece.labels_path)
    source = SegmentSource([long_piece, short_piece, variant], sample_rate=SR, hop_length=HOP,
                           segment_frames=5, normalization=None, augment=OFF)
    assert len(source) == 2 and [len(p.variants) for p in source.pieces] == [1, 2]
    batch = source.batch(np.random.default_rng(0), 400)
    longs = batch["frame"][:, 2, 72 - PIANO_LOWEST].astype(bool)
    shorts = batch["frame"][:, 2, 48 - PIANO_LOWEST].astype(bool)
    assert np.all(longs ^ shorts)
    assert 0.68 < longs.mean() < 0.82  # 3 s vs 1 s: 75 % of the segments
    peaks = np.abs(batch["audio"][shorts]).max(axis=1)
    quiet = peaks < 0.2
    assert np.all(quiet | (peaks > 0.28)) and 0.35 < quiet.mean() < 0.65  # either variant, equally often


def test_no_items_is_an_error():
    with pytest.raises(TranscribeError, match="no training items"):
        SegmentSource([], sample_rate=SR, hop_length=HOP, segment_frames=10)


@pytest.mark.render
@needs_fluidsynth
def test_synth_variants_train_as_one_piece(tmp_path):
    from fixtures.eval_data import PIECES

    from transcribe_cli.datasets.synth import open_synth

    root = tmp_path / "midi"
    root.mkdir()
    write_midi(PIECES["chords"], root / "chords.mid")
    items = open_synth(root, "all", presets="0,4")
    source = SegmentSource(items, sample_rate=SR, hop_length=HOP, segment_frames=50, augment=OFF, jobs=2)
    assert len(source) == 1 and [v.name for v in source.pieces[0].variants] == ["chords[p0].mid", "chords[p4].mid"]
    first, second = (v.audio for v in source.pieces[0].variants)
    assert first.path != second.path and first.n_samples > 1.8 * SR  # two renderings, converted
    batch = source.batch(np.random.default_rng(0), 2)
    assert batch["frame"].any(axis=(1, 2)).all() and np.abs(batch["audio"]).max(axis=1).min() > 0.1
