"""Tests for transcribe_cli.io.audio: decoding, channel averaging, resampling, errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sf = pytest.importorskip("soundfile")
av = pytest.importorskip("av")

from transcribe_cli.io.audio import AUDIO_EXTENSIONS, audio_duration, is_audio_file, load_audio  # noqa: E402
from transcribe_cli.errors import AudioError  # noqa: E402

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
STEREO = {ext: REAL / f"stereo_sample.{ext}" for ext in ("wav", "flac", "m4a")}
needs_real = pytest.mark.skipif(not STEREO["wav"].exists(), reason="shared/data/real not available")


# --------------------------------------------------------------------------- helpers


def sine_channels(rate: int, channels: int, seconds: float = 1.0, freq: float = 440.0) -> tuple[np.ndarray, float]:
    """[frames, channels] sines of equal phase and different amplitudes, and the
    amplitude their channel average has."""
    t = np.arange(int(round(rate * seconds))) / rate
    amps = 0.8 * (np.arange(channels) + 1) / channels
    data = (np.sin(2 * np.pi * freq * t)[:, None] * amps[None, :]).astype(np.float32)
    return data, float(amps.mean())


def peak_frequency(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


def sine_amplitude(x: np.ndarray) -> float:
    """Amplitude of a steady sine from the RMS of its middle 80%."""
    n = len(x)
    middle = x[n // 10 : n - n // 10]
    return float(np.sqrt(2 * np.mean(middle.astype(np.float64) ** 2)))


def best_lag(a: np.ndarray, b: np.ndarray, max_lag: int) -> int:
    """The shift of ``b`` relative to ``a`` (in samples) with the highest correlation."""
    from scipy.signal import correlate

    cc = correlate(b, a, mode="full", method="fft")
    lags = np.arange(-len(a) + 1, len(b))
    window = np.abs(lags) <= max_lag
    return int(lags[window][np.argmax(cc[window])])


def aligned(a: np.ndarray, b: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    if lag >= 0:
        b = b[lag:]
    else:
        a = a[-lag:]
    n = min(len(a), len(b))
    return a[:n], b[:n]


def encode_with_av(path: Path, container_format: str, codec: str, rate: int, data: np.ndarray, **ctx) -> None:
    """Encode ``data`` [frames, channels] float32 with PyAV/FFmpeg."""
    layout = {1: "mono", 2: "stereo"}[data.shape[1]]
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        for key, value in ctx.items():
            setattr(stream.codec_context, key, value)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data.T), format="fltp", layout=layout)
        frame.rate = rate
        frame.pts = 0
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def av_can_encode(codec: str) -> bool:
    try:
        av.codec.Codec(codec, "w")
    except Exception:
        return False
    return True


# --------------------------------------------------------------------------- real recordings


@needs_real
def test_real_stereo_recording_loads_as_16k_mono():
    audio = load_audio(STEREO["wav"], 16000)
    info = sf.info(str(STEREO["wav"]))
    assert (info.samplerate, info.channels) == (44100, 2)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == round(info.frames * 16000 / 44100)
    assert np.abs(audio).max() <= 1.0
    # mono is the plain channel average, then soxr
    import soxr

    stereo, _ = sf.read(str(STEREO["wav"]), dtype="float32")
    expected = soxr.resample(stereo.mean(axis=1), 44100, 16000, quality="HQ")
    np.testing.assert_allclose(audio, expected, atol=1e-6)


@needs_real
def test_real_wav_flac_m4a_decode_to_the_same_signal():
    wav = load_audio(STEREO["wav"], 16000)
    flac = load_audio(STEREO["flac"], 16000)
    m4a = load_audio(STEREO["m4a"], 16000)
    # FLAC is lossless: bit-identical
    np.testing.assert_array_equal(wav, flac)
    # AAC: FFmpeg drops the encoder priming, we trim the padding to the declared length.
    # Measured: 66368 vs 66365 samples (0.19 ms), best lag 0, correlation 0.99996.
    assert abs(len(m4a) - len(wav)) <= 16  # +-1 ms at 16 kHz
    lag = best_lag(wav, m4a, max_lag=160)
    assert abs(lag) <= 2
    a, b = aligned(wav, m4a, lag)
    assert np.corrcoef(a, b)[0, 1] > 0.999
    rel_error = np.sqrt(np.mean((a - b) ** 2) / np.mean(a**2))
    assert rel_error < 0.03  # measured 0.0087


@needs_real
def test_m4a_goes_through_the_ffmpeg_fallback():
    with pytest.raises(RuntimeError):  # soundfile.LibsndfileError
        sf.info(str(STEREO["m4a"]))  # libsndfile cannot read it, so PyAV decoded it above


@needs_real
@pytest.mark.parametrize("ext", ["wav", "flac", "m4a"])
def test_real_durations_from_headers(ext):
    assert audio_duration(STEREO[ext]) == pytest.approx(182919 / 44100, abs=0.005)


@needs_real
@pytest.mark.parametrize(
    "name, seconds", [("maestro_2018_chamber3_clip.wav", 2.0), ("guitarset_03_BN3-119-G_solo_mic.wav", 2.0)]
)
def test_other_real_recordings(name, seconds):
    audio = load_audio(REAL / name, 22050)
    assert len(audio) == round(seconds * 22050)
    assert 0 < np.abs(audio).max() <= 1.0


# --------------------------------------------------------------------------- libsndfile formats


SOUNDFILE_CASES = [
    # (suffix, format, subtype, rate, channels, lossy)
    (".wav", "WAV", "PCM_16", 8000, 1, False),
    (".wav", "WAV", "PCM_24", 22050, 2, False),
    (".wav", "WAV", "FLOAT", 48000, 6, False),
    (".flac", "FLAC", "PCM_24", 96000, 2, False),
    (".aiff", "AIFF", "PCM_16", 32000, 1, False),
    (".ogg", "OGG", "VORBIS", 44100, 2, True),
    (".opus", "OGG", "OPUS", 48000, 2, True),
    (".mp3", "MP3", "MPEG_LAYER_III", 44100, 2, True),
]


@pytest.mark.parametrize("suffix, fmt, subtype, rate, channels, lossy", SOUNDFILE_CASES)
def test_generated_files_at_various_rates_and_channels(tmp_path, suffix, fmt, subtype, rate, channels, lossy):
    if subtype not in sf.available_subtypes(fmt):
        pytest.skip(f"this libsndfile cannot write {fmt}/{subtype}")
    data, amplitude = sine_channels(rate, channels)
    path = tmp_path / f"tone{suffix}"
    sf.write(str(path), data, rate, format=fmt, subtype=subtype)
    assert suffix in AUDIO_EXTENSIONS

    native = load_audio(path, rate)
    expected = data.mean(axis=1)
    if lossy:
        lag = best_lag(expected, native, max_lag=rate // 20)
        a, b = aligned(expected, native, lag)
        assert np.corrcoef(a, b)[0, 1] > 0.99
        assert abs(len(native) - len(expected)) < 0.06 * rate
    else:
        assert len(native) == len(expected)
        np.testing.assert_allclose(native, expected, atol=2e-4)

    resampled = load_audio(path, 16000)
    assert resampled.dtype == np.float32
    assert abs(len(resampled) - len(native) * 16000 / rate) <= 1
    assert peak_frequency(resampled, 16000) == pytest.approx(440, abs=2)
    assert sine_amplitude(resampled) == pytest.approx(amplitude, rel=0.05)
    assert audio_duration(path) == pytest.approx(len(expected) / rate, abs=0.06)


def test_ffmpeg_and_libsndfile_paths_agree_on_multichannel_pcm(tmp_path):
    """The PyAV path converts packed int16 and averages channels exactly like libsndfile."""
    from transcribe_cli.io import audio as audio_mod
    rng = np.random.default_rng(1)
    data = rng.uniform(-0.9, 0.9, size=(4000, 6)).astype(np.float32)
    path = tmp_path / "six.wav"
    sf.write(str(path), data, 22050, subtype="PCM_16")
    via_sf, rate_sf = audio_mod._decode_soundfile(path)
    via_av, rate_av = audio_mod._decode_av(path)[:2]
    assert rate_sf == rate_av == 22050
    np.testing.assert_allclose(via_av, via_sf, atol=1e-6)
    np.testing.assert_allclose(via_sf, data.mean(axis=1), atol=1e-4)


def test_same_rate_is_not_resampled(tmp_path):
    pcm = (np.arange(-8000, 8000, 7, dtype=np.int16)).astype(np.int16)
    path = tmp_path / "ramp.wav"
    sf.write(str(path), pcm, 16000, subtype="PCM_16")
    np.testing.assert_array_equal(load_audio(path, 16000), pcm.astype(np.float32) / 32768)


def test_resampling_keeps_frequency_and_amplitude(tmp_path):
    rate = 44100
    t = np.arange(rate) / rate
    path = tmp_path / "a440.wav"
    sf.write(str(path), (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate, subtype="FLOAT")
    audio = load_audio(path, 16000)
    assert len(audio) == 16000
    assert peak_frequency(audio, 16000) == pytest.approx(440, abs=1)  # 1 Hz bins
    assert sine_amplitude(audio) == pytest.approx(0.5, abs=0.005)


def test_float_audio_above_full_scale_is_scaled_not_clipped(tmp_path):
    rate = 16000
    t = np.arange(rate) / rate
    signal = (2.0 * np.sin(2 * np.pi * 100 * t)).astype(np.float32)
    path = tmp_path / "loud.wav"
    sf.write(str(path), signal, rate, subtype="FLOAT")
    audio = load_audio(path, rate)
    assert np.abs(audio).max() == pytest.approx(1.0)
    np.testing.assert_allclose(audio, signal / np.abs(signal).max(), atol=1e-6)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rate=st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000]),
    channels=st.integers(1, 4),
    frames=st.integers(800, 6000),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_pcm_wav_loads_as_channel_average(tmp_path, rate, channels, frames, seed):
    data = np.random.default_rng(seed).integers(-32768, 32767, size=(frames, channels), dtype=np.int16)
    path = tmp_path / "random.wav"
    sf.write(str(path), data, rate, subtype="PCM_16")
    audio = load_audio(path, rate, min_duration=0.0)
    np.testing.assert_allclose(audio, data.astype(np.float64).mean(axis=1) / 32768, atol=1e-6)


# --------------------------------------------------------------------------- FFmpeg-only formats


AV_CASES = [
    # (suffix, container format, codec, rate, codec options)
    (".m4a", "mp4", "aac", 44100, {}),
    (".aac", "adts", "aac", 44100, {}),
    (".m4a", "ipod", "alac", 44100, {}),
    (".webm", "webm", "libopus", 48000, {}),
    (".mka", "matroska", "flac", 44100, {}),
    (".wma", "asf", "wmav2", 44100, {"bit_rate": 128000}),
    (".ac3", "ac3", "ac3", 48000, {}),
    (".wv", "wv", "wavpack", 44100, {}),
]


@pytest.mark.parametrize("suffix, container_format, codec, rate, options", AV_CASES)
def test_ffmpeg_fallback_formats(tmp_path, suffix, container_format, codec, rate, options):
    if not av_can_encode(codec):
        pytest.skip(f"bundled FFmpeg has no {codec} encoder")
    data, amplitude = sine_channels(rate, 2)
    path = tmp_path / f"tone{suffix}"
    encode_with_av(path, container_format, codec, rate, data, **options)
    assert suffix in AUDIO_EXTENSIONS

    audio = load_audio(path, 16000)
    assert audio.dtype == np.float32 and audio.ndim == 1
    # codec delay/padding differs per codec (wma loses ~2048 samples, adts keeps 1024 priming)
    assert len(audio) == pytest.approx(16000, abs=0.08 * 16000)
    assert peak_frequency(audio, 16000) == pytest.approx(440, abs=2)
    assert sine_amplitude(audio) == pytest.approx(amplitude, rel=0.05)  # channels averaged, not summed
    assert audio_duration(path) == pytest.approx(1.0, abs=0.08)


def test_mp3_encoded_by_ffmpeg(tmp_path):
    if not av_can_encode("libmp3lame"):
        pytest.skip("bundled FFmpeg has no MP3 encoder")
    data, amplitude = sine_channels(44100, 2)
    path = tmp_path / "lame.mp3"
    encode_with_av(path, "mp3", "libmp3lame", 44100, data)
    audio = load_audio(path, 44100)
    lag = best_lag(data.mean(axis=1), audio, max_lag=4410)
    assert abs(lag) <= 1200  # LAME writes gapless info; measured lag 0
    assert peak_frequency(audio, 44100) == pytest.approx(440, abs=2)
    assert sine_amplitude(audio) == pytest.approx(amplitude, rel=0.05)


def test_aac_padding_is_trimmed_to_the_declared_length(tmp_path):
    data, _ = sine_channels(44100, 2)
    path = tmp_path / "tone.m4a"
    encode_with_av(path, "mp4", "aac", 44100, data)
    # raw FFmpeg output is a whole number of 1024-sample frames (45056 here)
    with av.open(str(path)) as container:
        raw = sum(frame.samples for frame in container.decode(audio=0))
    assert raw > 44100
    assert len(load_audio(path, 44100)) == 44100


# --------------------------------------------------------------------------- errors


def assert_one_line_audio_error(excinfo, *fragments: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_missing_file(tmp_path):
    with pytest.raises(AudioError) as excinfo:
        load_audio(tmp_path / "nope.wav", 16000)
    assert_one_line_audio_error(excinfo, "not found", "nope.wav")
    with pytest.raises(AudioError):
        audio_duration(tmp_path / "nope.wav")


def test_directory(tmp_path):
    with pytest.raises(AudioError) as excinfo:
        load_audio(tmp_path, 16000)
    assert_one_line_audio_error(excinfo, "is a directory", str(tmp_path))


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.touch()
    with pytest.raises(AudioError) as excinfo:
        load_audio(path, 16000)
    assert_one_line_audio_error(excinfo, "is empty", "empty.wav")
    with pytest.raises(AudioError):
        audio_duration(path)


@pytest.mark.parametrize("suffix", [".wav", ".m4a", ".mp3", ".flac"])
def test_text_file_renamed_as_audio(tmp_path, suffix):
    path = tmp_path / f"notes{suffix}"
    path.write_text("these are not the samples you are looking for\n" * 20)
    with pytest.raises(AudioError) as excinfo:
        load_audio(path, 16000)
    assert_one_line_audio_error(excinfo, "is not a readable audio file (corrupt or unsupported format)", path.name)
    with pytest.raises(AudioError):
        audio_duration(path)


def test_too_short(tmp_path):
    path = tmp_path / "blip.wav"
    sf.write(str(path), np.zeros(160, dtype=np.float32), 16000)  # 10 ms
    with pytest.raises(AudioError) as excinfo:
        load_audio(path, 16000)
    assert_one_line_audio_error(excinfo, "too short", "0.010 s", "0.050 s", "blip.wav")
    assert len(load_audio(path, 16000, min_duration=0.005)) == 160


def test_no_samples_at_all(tmp_path):
    path = tmp_path / "header_only.wav"
    sf.write(str(path), np.zeros((0, 2), dtype=np.float32), 44100)
    with pytest.raises(AudioError) as excinfo:
        load_audio(path, 16000, min_duration=0.0)
    assert_one_line_audio_error(excinfo, "no audio samples")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_samples(tmp_path, bad):
    data = np.zeros(16000, dtype=np.float32)
    data[1234] = bad
    path = tmp_path / "nan.wav"
    sf.write(str(path), data, 16000, subtype="FLOAT")
    with pytest.raises(AudioError) as excinfo:
        load_audio(path, 16000)
    assert_one_line_audio_error(excinfo, "NaN or infinite", "nan.wav")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_unreadable_permissions(tmp_path):
    path = tmp_path / "secret.wav"
    sf.write(str(path), np.zeros(16000, dtype=np.float32), 16000)
    path.chmod(0)
    with pytest.raises(AudioError) as excinfo:
        load_audio(path, 16000)
    assert_one_line_audio_error(excinfo, "permission denied")


def test_video_container_without_audio_stream(tmp_path):
    if not av_can_encode("mpeg4"):
        pytest.skip("no video encoder")
    path = tmp_path / "silent_film.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 50, dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with pytest.raises(AudioError) as excinfo:
        load_audio(path, 16000)
    assert_one_line_audio_error(excinfo, "no audio stream")


@needs_real
@pytest.mark.parametrize("ext", ["wav", "flac", "m4a"])
@pytest.mark.parametrize("keep", [0.02, 0.5])
def test_truncated_files_never_leak_decoder_exceptions(tmp_path, ext, keep):
    blob = STEREO[ext].read_bytes()
    path = tmp_path / f"cut.{ext}"
    path.write_bytes(blob[: int(len(blob) * keep)])
    try:
        audio = load_audio(path, 16000)
    except AudioError as exc:
        assert "\n" not in str(exc)
    else:
        assert audio.ndim == 1 and np.isfinite(audio).all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    prefix=st.sampled_from(
        [b"", b"RIFF\x24\x08\x00\x00WAVEfmt ", b"fLaC", b"OggS", b"ID3\x03\x00", b"\x00\x00\x00\x20ftypM4A "]
    ),
    body=st.binary(min_size=1, max_size=3000),
    suffix=st.sampled_from([".wav", ".flac", ".ogg", ".mp3", ".m4a"]),
)
def test_fuzz_garbage_raises_only_audio_error(tmp_path, prefix, body, suffix):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(prefix + body)
    try:
        audio = load_audio(path, 16000, min_duration=0.0)
    except AudioError as exc:
        assert "\n" not in str(exc)
    else:
        assert audio.dtype == np.float32 and audio.ndim == 1
        assert np.isfinite(audio).all() and np.abs(audio).max(initial=0) <= 1.0


# --------------------------------------------------------------------------- extensions


def test_audio_extensions_cover_the_usual_suspects():
    for ext in (".wav", ".flac", ".ogg", ".oga", ".mp3", ".m4a", ".aac", ".opus", ".aif", ".aiff", ".wma", ".webm"):
        assert ext in AUDIO_EXTENSIONS
    assert all(ext.startswith(".") and ext == ext.lower() for ext in AUDIO_EXTENSIONS)
    assert is_audio_file("Song.FLAC") and is_audio_file(Path("a/b.m4a"))
    assert not is_audio_file("score.mid") and not is_audio_file("README")


def test_sample_rate_must_be_positive(tmp_path):
    with pytest.raises(ValueError):
        load_audio(tmp_path / "x.wav", 0)


def test_audio_blocks_decode_a_short_file_once_and_stream_a_long_one(tmp_path, monkeypatch):
    """``AudioBlocks`` gives ``iter_audio``'s blocks on every call; a recording within
    ``kept_seconds`` is decoded by the first complete read only (read-only blocks replayed
    after it), a longer one on every call (memory stays one block)."""
    import soundfile as sf

    import transcribe_cli.io.audio as audio_io
    from transcribe_cli.io.audio import AudioBlocks, iter_audio

    path = tmp_path / "clip.wav"
    sf.write(path, 0.3 * np.sin(np.arange(3 * 44100) * 0.05).astype(np.float32), 44100)
    decodes = []

    def counted(*args, **kwargs):
        decodes.append(args)
        return iter_audio(*args, **kwargs)

    monkeypatch.setattr(audio_io, "iter_audio", counted)
    expected = np.concatenate(list(iter_audio(path, 16000)))
    short = AudioBlocks(path, 16000, kept_seconds=5.0)
    assert not short.replays
    partial_read = short()
    next(partial_read)  # a read stopped early keeps nothing
    partial_read.close()
    assert not short.replays
    for _ in range(3):
        np.testing.assert_array_equal(np.concatenate(list(short())), expected)
    assert short.replays and len(decodes) == 2  # the stopped read and one complete read
    with pytest.raises(ValueError):
        next(iter(short()))[0] = 1.0  # replayed blocks are read-only
    decodes.clear()
    long = AudioBlocks(path, 16000, kept_seconds=1.0)
    for _ in range(2):
        np.testing.assert_array_equal(np.concatenate(list(long())), expected)
    assert not long.replays and len(decodes) == 2
