"""Built-in dataset plugins: ``maestro`` (MAESTRO v2/v3 layout), ``pairs`` (audio files
with same-stem MIDI labels) and ``synth`` (MIDI files rendered with FluidSynth). Shared by
``transcribe eval`` and ``transcribe train``.

Factories take ``(root, split, **options)``; ``root`` may be ``None`` (``synth`` then uses
its default corpus folder; the others ask for ``--root``). Items have ``name``,
``audio_path``, ``labels_path`` and ``notes(sustain_pedal=True)``.

Registration only: the dataset modules are imported when a dataset is opened.
"""

from __future__ import annotations

from transcribe_cli.hookspecs import hookimpl
from transcribe_cli.specs import DatasetSpec


def _maestro(root, split="test", **options):
    from transcribe_cli.datasets.maestro import open_maestro

    return open_maestro(root, split, **options)


def _pairs(root, split="all", **options):
    from transcribe_cli.datasets.pairs import open_pairs

    return open_pairs(root, split, **options)


def _synth(root=None, split="test", **options):
    from transcribe_cli.datasets.synth import open_synth

    return open_synth(root, split, **options)


@hookimpl
def register_datasets(register):
    register(DatasetSpec(
        name="maestro",
        factory=_maestro,
        description="MAESTRO v2/v3 folder: maestro-v*.csv with a split column, audio + .midi files.",
        options={"limit": 0},
    ))
    register(DatasetSpec(
        name="pairs",
        factory=_pairs,
        description="Any folder of audio files with same-stem .mid/.midi labels; split by a file list "
                    "or a deterministic hash of the path.",
        options={"split_file": "", "limit": 0},
    ))
    register(DatasetSpec(
        name="synth",
        factory=_synth,
        description="A folder of MIDI files (default $TRANSCRIBE_MIDI_DIR) rendered with FluidSynth "
                    "(cached); split by piece; soundfont and presets (GM programs) may list several, "
                    "comma-separated; variants=all renders every combination, random one per file.",
        options={"soundfont": "", "program": 0, "sample_rate": 16000, "gain": 0.8,
                 "group_by": "auto", "limit": 0, "presets": "", "variants": "all"},
    ))
