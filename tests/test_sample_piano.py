"""The sample-based piano renderer against known signals (a synthetic sample set)."""

from __future__ import annotations

import io
import zipfile

import mido
import numpy as np
import pytest
import soundfile as sf

from transcribe_cli.sample_piano import key_of, load_samples, render_with_samples

SR = 16000


def make_zip(path, keys=(60, 64, 67, 96)) -> None:
    names = {0: "C", 1: "Db", 2: "D", 3: "Eb", 4: "E", 5: "F", 6: "Gb", 7: "G", 8: "Ab", 9: "A", 10: "Bb", 11: "B"}
    with zipfile.ZipFile(path, "w") as archive:
        for key in keys:
            t = np.arange(int(3.0 * SR)) / SR
            tone = 0.5 * np.sin(2 * np.pi * 440 * 2 ** ((key - 69) / 12) * t) * np.exp(-0.5 * t)
            data = np.concatenate([np.zeros(80), tone]).astype(np.float32)  # 5 ms of silence first
            buffer = io.BytesIO()
            sf.write(buffer, np.stack([data, data], axis=1), SR, format="FLAC")
            archive.writestr(f"Piano.ff.{names[key % 12]}{key // 12 - 1}.flac", buffer.getvalue())


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


def test_onsets_levels_dampers_and_pedal(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSCRIBE_CACHE_DIR", str(tmp_path / "cache"))
    samples = tmp_path / "s.zip"
    make_zip(samples)
    assert sorted(load_samples(str(samples), SR)) == [60, 64, 67, 96]
    assert load_samples(str(samples), SR)[60][0] != 0  # trimmed to the audible onset

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
