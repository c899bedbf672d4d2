"""FluidSynth rendering: SoundFont discovery, program forcing, errors, the render cache."""

from __future__ import annotations

import subprocess
from pathlib import Path

import mido
import numpy as np
import pytest
from conftest import have_fluidsynth
import soundfile as sf

from transcribe_cli import rendering
from transcribe_cli.errors import TranscribeError
from transcribe_cli.io.midi import write_midi
from transcribe_cli.notes import Note

HAVE_FLUIDSYNTH = have_fluidsynth()
requires_fluidsynth = pytest.mark.skipif(
    not HAVE_FLUIDSYNTH,
    reason="needs FluidSynth and a SoundFont: sudo apt-get install fluidsynth fluid-soundfont-gm",
)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv(rendering.CACHE_ENV, str(root))
    return root


@pytest.fixture
def short_midi(tmp_path) -> Path:
    path = tmp_path / "short.mid"
    write_midi([Note(0.0, 0.4, 69, 100), Note(0.5, 0.9, 72, 90)], path)
    return path


def multi_program_midi(path: Path) -> Path:
    """Two melodic channels with programs 40 and 73, and a drum note on channel 10."""
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track += [
        mido.Message("program_change", channel=0, program=40, time=0),
        mido.Message("control_change", channel=1, control=0, value=1, time=0),
        mido.Message("program_change", channel=1, program=73, time=0),
        mido.Message("note_on", channel=0, note=60, velocity=90, time=0),
        mido.Message("note_on", channel=1, note=64, velocity=90, time=0),
        mido.Message("note_on", channel=9, note=38, velocity=90, time=0),
        mido.Message("program_change", channel=0, program=12, time=240),
        mido.Message("note_off", channel=0, note=60, velocity=0, time=240),
        mido.Message("note_off", channel=1, note=64, velocity=0, time=0),
        mido.Message("note_off", channel=9, note=38, velocity=0, time=0),
    ]
    midi.save(path)
    return path


# -- SoundFonts and errors -----------------------------------------------------------------


def test_find_soundfonts_prefers_piano_fonts_and_dedupes_links(tmp_path, monkeypatch):
    monkeypatch.setattr(rendering, "SOUNDFONT_DIRS", ())
    monkeypatch.delenv(rendering.SOUNDFONT_ENV, raising=False)
    for name in ("aaa.sf2", "FluidR3_GM.sf2", "MuseScore_General_Full.sf2", "notes.txt"):
        (tmp_path / name).write_bytes(b"RIFF")
    (tmp_path / "default-GM.sf2").symlink_to(tmp_path / "FluidR3_GM.sf2")
    names = [p.name for p in rendering.find_soundfonts([tmp_path])]
    assert names[:2] == ["MuseScore_General_Full.sf2", "FluidR3_GM.sf2"]
    assert sorted(names) == ["FluidR3_GM.sf2", "MuseScore_General_Full.sf2", "aaa.sf2"]


def test_soundfont_env_path_is_searched(tmp_path, monkeypatch):
    monkeypatch.setattr(rendering, "SOUNDFONT_DIRS", ())
    (tmp_path / "mine.sf2").write_bytes(b"RIFF")
    monkeypatch.setenv(rendering.SOUNDFONT_ENV, str(tmp_path))
    assert rendering.resolve_soundfont() == tmp_path / "mine.sf2"
    assert rendering.resolve_soundfont("mine.sf2") == tmp_path / "mine.sf2"


def test_no_soundfont_is_a_user_error_with_the_install_command(monkeypatch):
    monkeypatch.setattr(rendering, "SOUNDFONT_DIRS", ())
    monkeypatch.delenv(rendering.SOUNDFONT_ENV, raising=False)
    with pytest.raises(TranscribeError, match="no SoundFont") as info:
        rendering.resolve_soundfont()
    assert "apt-get install" in str(info.value)
    with pytest.raises(TranscribeError, match="not found"):
        rendering.resolve_soundfont("missing.sf2")


def test_missing_fluidsynth_is_a_user_error_with_the_install_command(monkeypatch, short_midi, tmp_path, cache):
    (tmp_path / "font.sf2").write_bytes(b"RIFF")
    monkeypatch.setattr(rendering.shutil, "which", lambda name: None)
    with pytest.raises(TranscribeError, match="FluidSynth is not installed") as info:
        rendering.render(short_midi, soundfont=tmp_path / "font.sf2")
    assert "apt-get install -y fluidsynth" in str(info.value)
    assert not cache.exists() or not any(cache.rglob("*.wav"))


def test_force_program_rewrites_every_channel(tmp_path):
    source = multi_program_midi(tmp_path / "in.mid")
    out = tmp_path / "out.mid"
    rendering.force_program(source, out, program=0)
    messages = [m for track in mido.MidiFile(out).tracks for m in track]
    programs = {(m.channel, m.program) for m in messages if m.type == "program_change"}
    banks = {(m.channel, m.control, m.value) for m in messages if m.type == "control_change"}
    note_channels = {m.channel for m in messages if m.type == "note_on"}
    assert 9 not in note_channels  # the drum note moved to a melodic channel …
    assert programs == {(ch, 0) for ch in note_channels}  # … and every channel plays program 0
    assert banks == {(ch, cc, 0) for ch in note_channels for cc in (0, 32)}
    # timing is preserved: the note-offs still come 480 ticks (one beat) after the note-ons
    original = mido.MidiFile(source)
    assert mido.MidiFile(out).length == pytest.approx(original.length)


def test_render_key_depends_on_every_input(tmp_path):
    font = tmp_path / "font.sf2"
    font.write_bytes(b"RIFF")
    base = {"midi_bytes": b"midi", "soundfont": font, "program": 0, "bank": 0, "sample_rate": 16000, "gain": 0.8}
    key = rendering.render_key(**base)
    for change in (
        {"midi_bytes": b"midj"},
        {"program": 1},
        {"program": None},
        {"bank": 1},
        {"sample_rate": 22050},
        {"gain": 0.5},
    ):
        assert rendering.render_key(**{**base, **change}) != key, change
    assert rendering.render_key(**base) == key


def test_cache_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(rendering.CACHE_ENV, str(tmp_path))
    assert rendering.render_cache_dir() == tmp_path / "renders"


# -- real rendering --------------------------------------------------------------------------


@pytest.mark.render
@requires_fluidsynth
@pytest.mark.parametrize("program", [0, None])
def test_render_produces_audio_of_the_right_length(short_midi, cache, program):
    path = rendering.render(short_midi, sample_rate=16000, program=program)
    audio, rate = sf.read(path, dtype="float32")
    assert rate == 16000
    assert audio.ndim == 2  # FluidSynth writes stereo; loaders mix it down
    assert 0.9 * 16000 <= audio.shape[0] <= 4 * 16000
    assert np.abs(audio).max() > 0.01
    # the first note (A4) sounds in the first 0.4 s
    assert np.abs(audio[: int(0.4 * 16000)]).max() > 0.01


@pytest.mark.render
@requires_fluidsynth
def test_render_cache_hit_and_miss(short_midi, cache, monkeypatch, tmp_path):
    calls = []
    real_run = subprocess.run

    def counting_run(*args, **kwargs):
        calls.append(args)
        return real_run(*args, **kwargs)

    monkeypatch.setattr(rendering.subprocess, "run", counting_run)
    first = rendering.render(short_midi, sample_rate=16000, gain=0.8)
    assert len(calls) == 1 and first.is_file() and cache in first.parents
    again = rendering.render(short_midi, sample_rate=16000, gain=0.8)
    assert again == first and len(calls) == 1  # hit: FluidSynth not run again
    louder = rendering.render(short_midi, sample_rate=16000, gain=1.0)
    assert louder != first and len(calls) == 2  # miss: another key
    copy = rendering.render(short_midi, tmp_path / "out" / "copy.wav", sample_rate=16000, gain=0.8)
    assert copy == tmp_path / "out" / "copy.wav" and len(calls) == 2
    assert copy.read_bytes() == first.read_bytes()
    assert not list(copy.parent.glob(".*.tmp"))  # written atomically, nothing left over
    monkeypatch.setattr(rendering.shutil, "which", lambda name: None)
    assert rendering.render(short_midi, sample_rate=16000, gain=0.8) == first  # a hit needs no FluidSynth
    with pytest.raises(ValueError, match="out_path"):
        rendering.render(short_midi, use_cache=False)


@pytest.mark.render
@requires_fluidsynth
def test_render_without_cache_writes_only_the_output(short_midi, cache, tmp_path):
    out = rendering.render(short_midi, tmp_path / "x.wav", use_cache=False)
    assert out.is_file() and sf.info(out).frames > 0
    assert not cache.exists() or not any(cache.rglob("*.wav"))


@pytest.mark.render
@requires_fluidsynth
def test_unreadable_midi_is_a_midi_error(tmp_path, cache):
    from transcribe_cli.errors import MidiError

    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not a midi file")
    with pytest.raises(MidiError):
        rendering.render(bad)
