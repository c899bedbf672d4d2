"""Hostile inputs to the audio loader: every channel count, rate and sample format, broken
and mislabelled files, and random bytes. Each either decodes to valid audio (mono float32,
finite, in [-1, 1], the right length) or raises one clear AudioError — never a crash or a hang."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transcribe_cli.io.audio import load_audio
from transcribe_cli.errors import AudioError

SR = 16000


def _valid(audio: np.ndarray, seconds: float) -> None:
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0
    assert abs(audio.size / SR - seconds) < 0.01


def _tone(rate: int, seconds: float, channels: int) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.stack([0.5 * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)], axis=1)


@pytest.mark.parametrize("channels", range(1, 9))
def test_one_to_eight_channels(tmp_path, channels):
    path = tmp_path / f"{channels}ch.wav"
    sf.write(path, _tone(SR, 0.5, channels), SR)
    audio = load_audio(path, SR)
    _valid(audio, 0.5)
    assert np.abs(audio).max() > 0.05


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000, 96000, 192000])
def test_sample_rates_8_to_192_khz(tmp_path, rate):
    path = tmp_path / f"{rate}.flac"
    sf.write(path, _tone(rate, 0.5, 1), rate)
    _valid(load_audio(path, SR), 0.5)


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_sample_formats(tmp_path, subtype):
    path = tmp_path / f"{subtype}.wav"
    sf.write(path, _tone(SR, 0.5, 2), SR, subtype=subtype)
    audio = load_audio(path, SR)
    _valid(audio, 0.5)
    assert 0.3 < np.abs(audio).max() <= 1.0


def test_float_beyond_full_scale_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "hot.wav"
    sf.write(path, _tone(SR, 0.5, 1) * 6.0, SR, subtype="FLOAT")
    audio = load_audio(path, SR)
    assert abs(float(np.abs(audio).max()) - 1.0) < 1e-6


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_samples_are_one_clear_error(tmp_path, bad):
    samples = _tone(SR, 0.5, 1)
    samples[100] = bad
    path = tmp_path / "bad.wav"
    sf.write(path, samples, SR, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio(path, SR)


@pytest.mark.parametrize("suffix, fmt", [(".wav", "WAV"), (".flac", "FLAC")])
def test_truncated_files_decode_what_is_there_and_warn(tmp_path, caplog, suffix, fmt):
    full = tmp_path / f"full{suffix}"
    sf.write(full, _tone(SR, 2.0, 1), SR, format=fmt)
    data = full.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    with caplog.at_level("WARNING", logger="transcribe_cli"):
        audio = load_audio(cut, SR)
    assert 0.2 < audio.size / SR < 2.0
    assert "truncated" in caplog.text


def test_wrong_extensions(tmp_path, caplog):
    flac_named_wav = tmp_path / "really_flac.wav"
    sf.write(flac_named_wav, _tone(SR, 0.5, 1), SR, format="FLAC")  # libsndfile reads by content
    _valid(load_audio(flac_named_wav, SR), 0.5)
    text = tmp_path / "notes.mp3"
    text.write_text("definitely not audio\n" * 40)
    with pytest.raises(AudioError, match="not a readable audio file"):
        load_audio(text, SR)


@pytest.mark.parametrize("header", [b"", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"fLaC", b"OggS", b"ID3\x04\x00\x00",
                                    b"\x00\x00\x00\x20ftypM4A "])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(min_size=0, max_size=4096))
def test_random_bytes_give_audio_or_one_clear_error(tmp_path, header, body):
    path = tmp_path / "fuzz.wav"
    path.write_bytes(header + body)
    try:
        audio = load_audio(path, SR, min_duration=0.0)
    except AudioError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert np.isfinite(audio).all() and (audio.size == 0 or np.abs(audio).max() <= 1.0)


@pytest.mark.slow
def test_a_three_hour_file(tmp_path):
    """Generated lazily (3 h at 8 kHz, 16-bit: 173 MB), written in blocks."""
    path = tmp_path / "long.wav"
    rate, seconds = 8000, 3 * 3600
    block = (_tone(rate, 60.0, 1)[:, 0] * 0.5).astype(np.float32)
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16") as handle:
        for _ in range(seconds // 60):
            handle.write(block)
    audio = load_audio(path, SR)
    assert abs(audio.size / SR - seconds) < 0.01 and np.isfinite(audio).all()
