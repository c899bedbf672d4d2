"""The beat tracker's numpy implementation: known signals, block independence, and (slow:
librosa's import compiles numba code for ~10 s) equality with the librosa functions it replaces."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest

from transcribe_cli.tempo import (
    ENVELOPE_RATE,
    audio_onset_envelope,
    beat_frames,
    estimate_bpm,
    mean_tempogram,
    track_beats,
    track_tempo,
)

SR = 16000


def click_track(bpm: float, seconds: float, *, start: float = 0.3, sr: int = SR,
                accent: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """Decaying 1 kHz + 3 kHz blips at ``bpm`` (level 0.5, every 4th at ``accent``) over faint noise."""
    rng = np.random.default_rng(1)
    audio = 1e-3 * rng.standard_normal(int(seconds * sr)).astype(np.float32)
    times = np.arange(start, seconds - 0.2, 60.0 / bpm)
    t = np.arange(int(0.08 * sr)) / sr
    blip = (np.sin(2 * np.pi * 1000 * t) + 0.5 * np.sin(2 * np.pi * 3000 * t)) * np.exp(-t / 0.015)
    for k, onset in enumerate(times):
        i = int(round(onset * sr))
        audio[i : i + len(blip)] += (accent if k % 4 == 0 else 0.5) * blip[: len(audio) - i].astype(np.float32)
    return audio, times


def piano_like(seconds: float = 12.0, sr: int = SR) -> np.ndarray:
    """Irregular decaying chords (a test signal with varied flux, loudest near the end)."""
    rng = np.random.default_rng(7)
    audio = np.zeros(int(seconds * sr), dtype=np.float32)
    t = np.arange(int(1.5 * sr)) / sr
    for onset in np.sort(rng.uniform(0, seconds - 1.5, 40)):
        level = 0.05 + 0.9 * onset / seconds
        tone = sum(np.sin(2 * np.pi * f * t) for f in 110 * 2 ** (rng.integers(0, 48, 3) / 12)) * np.exp(-t / 0.4)
        i = int(onset * sr)
        audio[i : i + len(t)] += (level * tone / 3).astype(np.float32)
    return audio


def test_click_track_at_120_bpm_is_tracked_within_one_percent():
    audio, clicks = click_track(120.0, 30.0)
    envelope = audio_onset_envelope(audio, SR)
    assert len(envelope) == len(audio) // 160 + 1
    beats = track_beats(envelope, rate=SR / 160)
    assert 60.0 / np.median(np.diff(beats)) == pytest.approx(120.0, rel=0.01)
    # the beats between the first and the last are within 30 ms of a click (librosa's
    # envelope, and so this one, peaks ~20 ms after an attack)
    error = np.min(np.abs(beats[:, None] - clicks[None, :]), axis=1)
    assert np.all(error[1:-1] < 0.03), error
    assert len(beats) >= len(clicks) - 2
    tempo_map = track_tempo([], audio=audio, sample_rate=SR)
    assert tempo_map is not None and tempo_map.bpm == pytest.approx(120.0, rel=0.01)


@pytest.mark.parametrize("bpm", [66.0, 96.0, 110.0])
def test_click_tracks_at_other_tempi(bpm):
    """(Evenly loud clicks much above 110 BPM go to half tempo: the autocorrelation is as high
    at two periods as at one, and the prior around 80 BPM decides, as in librosa.)"""
    audio, _ = click_track(bpm, 40.0, accent=0.5)
    beats = track_beats(audio_onset_envelope(audio, SR), rate=SR / 160)
    assert 60.0 / np.median(np.diff(beats)) == pytest.approx(bpm, rel=0.015)


def test_envelope_does_not_depend_on_the_block_size():
    """Blocks computed before the loudest moment (a lower running floor) are redone at the
    end, so any block size gives the whole-recording numbers."""
    audio = piano_like()
    whole = audio_onset_envelope(audio, SR, block=10**6)
    for block in (1, 37, 256):
        np.testing.assert_allclose(audio_onset_envelope(audio, SR, block=block), whole, rtol=1e-5, atol=1e-5)


def test_envelope_of_silence_and_tiny_inputs():
    assert not np.any(audio_onset_envelope(np.zeros(SR), SR))
    assert audio_onset_envelope(np.zeros(0), SR).shape == (1,)
    assert audio_onset_envelope(np.ones(100), SR).shape == (1,)
    assert len(track_beats(np.zeros(500))) == 0


def test_mean_tempogram_step_changes_the_mean_little():
    envelope = audio_onset_envelope(click_track(100.0, 30.0)[0], SR)
    every = mean_tempogram(envelope, step=1)
    np.testing.assert_allclose(mean_tempogram(envelope, step=4), every, atol=2e-3)
    assert mean_tempogram(envelope, step=1, block=300) == pytest.approx(every, abs=1e-12)


@pytest.mark.parametrize("threads", [2, 3])
def test_mean_tempogram_is_the_same_on_several_threads(threads):
    """Blocks computed on several threads, summed in block order: bit-identical."""
    envelope = audio_onset_envelope(click_track(100.0, 30.0)[0], SR)
    np.testing.assert_array_equal(mean_tempogram(envelope, step=1, block=200, threads=threads),
                                  mean_tempogram(envelope, step=1, block=200))


# ----------------------------------------------------------------- against librosa (slow)


@pytest.mark.slow
def test_audio_envelope_equals_librosas_onset_strength():
    import librosa

    audio = piano_like()
    ours = audio_onset_envelope(audio, SR, block=100)
    theirs = librosa.onset.onset_strength(y=audio, sr=SR, hop_length=160)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * float(theirs.max()))
    # another sample rate (hop 441 at 44.1 kHz)
    audio_44 = np.repeat(audio[: 5 * SR], 2)[: 5 * 44100].astype(np.float32)
    np.testing.assert_allclose(audio_onset_envelope(audio_44, 44100), librosa.onset.onset_strength(
        y=audio_44, sr=44100, hop_length=441), rtol=1e-4, atol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tempo_and_beats_equal_librosas(seed):
    import librosa

    rng = np.random.default_rng(seed)
    audio, _ = click_track(float(rng.uniform(60, 160)), 25.0)
    envelope = audio_onset_envelope(audio + 0.02 * piano_like(25.0), SR).astype(float)
    sr, hop = 100 * 512, 512
    tg = mean_tempogram(envelope, step=1)
    theirs_bpm = librosa.feature.tempo(tg=tg[:, None], sr=sr, hop_length=hop, start_bpm=80.0, std_bpm=1.0,
                                       max_tempo=220.0)[0]
    assert estimate_bpm(envelope) == pytest.approx(float(theirs_bpm), rel=1e-12)
    for bpm in (float(theirs_bpm), 91.0, 133.0):
        _, theirs = librosa.beat.beat_track(onset_envelope=envelope, sr=sr, hop_length=hop, bpm=bpm, trim=False,
                                            tightness=400.0)
        np.testing.assert_array_equal(beat_frames(envelope, bpm), theirs)
    noisy = rng.random(3000) ** 4  # an envelope without a clear beat
    _, theirs = librosa.beat.beat_track(onset_envelope=noisy, sr=sr, hop_length=hop, bpm=77.0, trim=False,
                                        tightness=100.0)
    np.testing.assert_array_equal(beat_frames(noisy, 77.0, tightness=100.0), theirs)


# ----------------------------------------------------------------- streamed (issue 11)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pop909_003.flac"


def test_streamed_envelope_equals_the_whole_file_one_on_a_real_recording():
    """``--tempo auto`` reads the file's blocks (``iter_audio``), never the whole audio: the
    same envelope, bit for bit, and the same beats as from ``load_audio``."""
    from transcribe_cli.io.audio import iter_audio, load_audio

    whole = load_audio(EXAMPLE, SR)
    streamed = audio_onset_envelope(partial(iter_audio, EXAMPLE, SR), SR)
    np.testing.assert_array_equal(streamed, audio_onset_envelope(whole, SR))
    by_file = track_tempo([], audio=partial(iter_audio, EXAMPLE, SR), sample_rate=SR)
    by_audio = track_tempo([], audio=whole, sample_rate=SR)
    assert by_file is not None and by_file.beats == by_audio.beats


def _counted_envelope(audio: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """The envelope of ``audio`` from a block source, and how many chunks each read of it took."""
    chunks = [audio[i : i + 5000] for i in range(0, len(audio), 5000)]
    reads: list[int] = []

    def source():
        reads.append(0)
        for chunk in chunks:
            reads[-1] += 1
            yield chunk

    envelope = audio_onset_envelope(source, SR, block=256)
    assert reads[0] == len(chunks)
    return envelope, reads


@pytest.mark.parametrize("kept_frames", [0, 300])
def test_streamed_envelope_reads_the_audio_again_only_up_to_the_loudest_block(monkeypatch, kept_frames):
    """Blocks computed under a lower running maximum are redone: from their kept mel dB
    where :data:`ONSET_KEPT_FRAMES` covered them, else from a second read, which stops after
    the last of them; with the loudest moment in the first block there is none."""
    import transcribe_cli.tempo as tempo

    monkeypatch.setattr(tempo, "ONSET_KEPT_FRAMES", kept_frames)  # 0: none kept, 300: the first block only
    quiet_tail = 1e-3 * np.random.default_rng(3).standard_normal(10 * SR).astype(np.float32)
    loud_first = np.concatenate([piano_like()[::-1], quiet_tail])  # loudest in the first block
    loud_later = np.concatenate([piano_like(), quiet_tail])  # loudest after 11 s of 22
    for audio, again in ((loud_first, False), (loud_later, True)):
        envelope, reads = _counted_envelope(audio)
        np.testing.assert_array_equal(envelope, audio_onset_envelope(audio, SR, block=256))
        if again:  # read again up to the loudest block (~12 s), not the quiet tail
            assert len(reads) == 2 and reads[1] < 0.7 * reads[0]
        else:
            assert len(reads) == 1


def test_a_recording_shorter_than_the_kept_frames_is_read_once():
    """Up to ``ONSET_KEPT_FRAMES`` (41 s) the blocks computed under a lower maximum are
    computed again from their kept mel dB: one read whatever the loudness, the same numbers."""
    from transcribe_cli.tempo import ONSET_KEPT_FRAMES

    quiet_tail = 1e-3 * np.random.default_rng(3).standard_normal(10 * SR).astype(np.float32)
    loud_later = np.concatenate([quiet_tail, piano_like()])  # loudest near the end of 22 s
    assert len(loud_later) / SR * ENVELOPE_RATE < ONSET_KEPT_FRAMES
    envelope, reads = _counted_envelope(loud_later)
    assert len(reads) == 1
    np.testing.assert_array_equal(envelope, audio_onset_envelope(loud_later, SR, block=256))


def test_odd_chunk_sizes_give_the_same_envelope():
    audio = piano_like(6.0)
    whole = audio_onset_envelope(audio, SR, block=100)
    for size in (1, 159, 161, 2048, 16000):
        chunks = [audio[i : i + size] for i in range(0, len(audio), size)] if size > 1 else [audio[:3], audio[3:]]
        np.testing.assert_array_equal(audio_onset_envelope(lambda: iter(chunks), SR, block=100), whole)


def test_the_tempo_path_does_not_import_torch(tmp_path):
    """``--tempo auto`` is numpy (and scipy.fft) only: tracking and writing a MIDI file with
    its tempo map import no torch."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from functools import partial\n"
        "from pathlib import Path\n"
        "from transcribe_cli.io.audio import iter_audio\n"
        "from transcribe_cli.notes import Note, Transcription\n"
        "from transcribe_cli.writing import OutputOptions, write_transcription\n"
        "notes = [Note(0.5 * i, 0.5 * i + 0.4, 60 + i % 12, 80) for i in range(40)]\n"
        f"write_transcription(Transcription(notes), Path({str(tmp_path / 'out.mid')!r}), 'mid',\n"
        "    OutputOptions(tempo='auto'), audio=partial(iter_audio, sys.argv[1], 16000), sample_rate=16000)\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(EXAMPLE)], capture_output=True, text=True, check=True)
    assert (tmp_path / "out.mid").exists()
    assert result.stdout.strip() == "[]", result.stdout


@pytest.mark.parametrize("kept, threads", [(True, 1), (False, 1), (True, 2), (False, 2)])
def test_audio_onsets_come_from_the_transcribers_two_reads(monkeypatch, tmp_path, kept, threads):
    """``AudioOnsets`` feeds the envelope from the first read of the transcriber's block source
    and computes the blocks under a lower maximum again from the second: the tracker reads
    nothing more, and the envelope is the one of its own reads (whether the mel dB is kept or
    not, fed in the reader's thread or in the background one)."""
    import soundfile as sf

    import transcribe_cli.tempo as tempo
    from transcribe_cli.io.audio import AudioBlocks
    from transcribe_cli.tempo import AudioOnsets

    if not kept:
        monkeypatch.setattr(tempo, "ONSET_KEPT_FRAMES", 0)
    quiet = 1e-3 * np.random.default_rng(3).standard_normal(10 * SR).astype(np.float32)
    audio = np.concatenate([quiet, piano_like()])  # loudest late: blocks to compute again
    path = tmp_path / "late.wav"
    sf.write(path, audio, SR, subtype="FLOAT")
    reads = []
    stream = AudioBlocks(path, SR, kept_seconds=0)

    def counted():
        reads.append(1)
        return stream()

    onsets = AudioOnsets(counted, SR, threads=threads)
    for _ in range(2):  # the transcriber's two passes
        for _ in onsets.blocks():
            pass
    envelope = onsets.envelope()
    assert len(reads) == 2
    np.testing.assert_array_equal(envelope, audio_onset_envelope(AudioBlocks(path, SR), SR))
    assert onsets.samples == len(audio)


def test_a_failing_background_feed_raises_in_the_reader_and_stops_its_thread():
    """The envelope's error reaches the reader of the blocks (not a silent thread), and the
    thread ends whether the read went on or stopped early."""
    from transcribe_cli.tempo import AudioOnsets

    def source():
        return (np.zeros(SR, dtype=np.float32) for _ in range(50))

    onsets = AudioOnsets(source, SR, threads=2)

    def broken(block):
        raise RuntimeError("envelope failed")

    onsets._onsets.feed = broken
    with pytest.raises(RuntimeError, match="envelope failed"):
        for _ in onsets.blocks():
            pass
    early = AudioOnsets(source, SR, threads=2)
    reader = early.blocks()
    next(reader)
    reader.close()  # the reader stops after one block: the feed thread is joined
    import threading

    assert not [t for t in threading.enumerate() if t.name == "onset-envelope"]


def test_audio_onsets_read_the_file_themselves_when_no_pass_did():
    """A model that loads the file itself never reads the block source: the envelope is then
    computed from it, as without ``AudioOnsets``."""
    from transcribe_cli.io.audio import iter_audio
    from transcribe_cli.tempo import AudioOnsets

    source = partial(iter_audio, EXAMPLE, SR)
    onsets = AudioOnsets(source, SR)
    np.testing.assert_array_equal(onsets.envelope(), audio_onset_envelope(source, SR))


@pytest.mark.parametrize("sample_rate", [16000, 22050, 44100])
def test_mel_bands_equal_the_whole_filterbank_product(sample_rate):
    """The banded product skips only zeros of the mel basis: equal to ``power @ basis`` to
    float32 rounding, on spectra spanning 100 dB."""
    from transcribe_cli.tempo import MelBands, _onset_mel_basis

    basis = _onset_mel_basis(sample_rate)
    power = (10.0 ** (np.random.default_rng(0).uniform(-10, 0, (37, basis.shape[0])))).astype(np.float32)
    expected = power.astype(np.float64) @ basis.astype(np.float64)
    np.testing.assert_allclose(MelBands(basis)(power), expected, rtol=2e-5, atol=0)
    np.testing.assert_allclose(MelBands(basis, band_bins=7)(power), expected, rtol=2e-5, atol=0)
