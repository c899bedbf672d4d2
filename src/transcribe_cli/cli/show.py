"""``transcribe show FILE``: a compact piano roll of a note file in the terminal."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Optional

import typer

from transcribe_cli.cli.console import get_state


def show(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A .mid, .csv or .json note file.", show_default=False)],
    width: Annotated[Optional[int], typer.Option(help="Columns (default: the terminal's width).")] = None,
) -> None:
    """Print a compact piano roll of a MIDI/CSV/JSON note file (beats marked with ' on top)."""
    from transcribe_cli.io.outputs import format_for_path, read_notes
    from transcribe_cli.preview import terminal_roll

    out = get_state(ctx).out
    notes = read_notes(path, sustain_pedal=False)
    beats: list[float] = []
    summary = f"{path}: {len(notes)} notes"
    if format_for_path(path) == "mid":
        from transcribe_cli.io.midi import _parse_midi, read_pedals

        pm = _parse_midi(path)
        beats = [float(b) for b in pm.get_beats()]
        signatures = pm.time_signature_changes
        tempos = pm.get_tempo_changes()[1]
        tracks = [i.name or f"track {k}" for k, i in enumerate(pm.instruments)]
        summary += (f", {len(read_pedals(path))} pedal presses, tracks {', '.join(tracks) or '-'}, "
                    f"{signatures[0].numerator}/{signatures[0].denominator}, " if signatures else ", ")
        summary += f"{len(tempos)} tempo(s), median {float(sorted(tempos)[len(tempos) // 2]):.1f} BPM" if len(tempos) else ""
    columns = width or shutil.get_terminal_size((100, 24)).columns
    for line in terminal_roll(notes, width=columns, beats=beats):
        out.print(line, markup=False, highlight=False, crop=False, soft_wrap=True)
    out.print(summary, markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("show")(show)
