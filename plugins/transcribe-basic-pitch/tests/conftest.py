"""A short rendered piano clip (FluidSynth) and an in-process ``transcribe`` runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from transcribe_cli.testing import fluidsynth_available, invoke


@pytest.fixture(scope="session")
def piano_clip(tmp_path_factory) -> Path:
    """3 s of rendered piano at 44.1 kHz: a melody over a held chord (both the peer and we resample)."""
    if not fluidsynth_available():
        pytest.skip("FluidSynth or a SoundFont is not installed (apt-get install fluidsynth fluid-soundfont-gm)")
    import pretty_midi

    from transcribe_cli.rendering import render

    folder = tmp_path_factory.mktemp("clip")
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    for pitch in (48, 55, 64):
        piano.notes.append(pretty_midi.Note(velocity=70, pitch=pitch, start=0.2, end=2.2))
    for i, pitch in enumerate((72, 74, 76, 79, 77, 76)):
        piano.notes.append(pretty_midi.Note(velocity=90, pitch=pitch, start=0.3 + 0.4 * i, end=0.6 + 0.4 * i))
    midi.instruments.append(piano)
    midi.write(str(folder / "clip.mid"))
    return render(folder / "clip.mid", folder / "clip.wav", sample_rate=44100, use_cache=False)


@pytest.fixture
def cli(capsys):
    """Run ``transcribe ARGS`` in-process; returns (exit code, stdout, stderr)."""

    def run(*args: object) -> tuple[int, str, str]:
        return invoke(capsys, *args, fresh_registry=True)

    return run
