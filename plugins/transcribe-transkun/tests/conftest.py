"""A short rendered piano clip (FluidSynth), a real one with the pedal, and an in-process ``transcribe`` runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from transcribe_cli.testing import fluidsynth_available, invoke


@pytest.fixture(scope="session")
def piano_clip(tmp_path_factory) -> Path:
    """1.5 s of rendered piano at 44.1 kHz with the sustain pedal down from 0.1 s to 1.2 s."""
    if not fluidsynth_available():
        pytest.skip("FluidSynth or a SoundFont is not installed (apt-get install fluidsynth fluid-soundfont-gm)")
    import pretty_midi

    from transcribe_cli.rendering import render

    folder = tmp_path_factory.mktemp("clip")
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    for i, pitch in enumerate((60, 64, 67)):
        piano.notes.append(pretty_midi.Note(velocity=80, pitch=pitch, start=0.15 + 0.3 * i, end=0.35 + 0.3 * i))
    piano.control_changes += [pretty_midi.ControlChange(64, 127, 0.1), pretty_midi.ControlChange(64, 0, 1.2)]
    midi.instruments.append(piano)
    midi.write(str(folder / "clip.mid"))
    return render(folder / "clip.mid", folder / "clip.wav", sample_rate=44100, use_cache=False)


#: 2 s of a real Disklavier recording (MAESTRO 2018), 48 kHz stereo, the sustain pedal down throughout;
#: the labels hold notes 67 and 72 (see ../shared/data/README.md)
REAL_CLIP = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "real" / "maestro_2018_chamber3_clip.wav"


@pytest.fixture(scope="session")
def real_clip() -> Path:
    if not REAL_CLIP.is_file():
        pytest.skip(f"the shared data is not at {REAL_CLIP.parent}")
    return REAL_CLIP


@pytest.fixture
def cli(capsys):
    """Run ``transcribe ARGS`` in-process; returns (exit code, stdout, stderr)."""

    def run(*args: object) -> tuple[int, str, str]:
        return invoke(capsys, *args, fresh_registry=True)

    return run
