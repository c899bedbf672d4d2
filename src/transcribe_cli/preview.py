"""Looking at and listening to a transcription: a piano-roll PNG (``--format png`` /
``--preview``), a FluidSynth rendering (``--sonify``) and a terminal piano roll
(``transcribe show``).

The PNG draws each note as a bar (pitch × time, darker = louder), the sustain pedal as a
band under the keys and the tempo map's beats (thin) and bar lines (thick); matplotlib (the
``plot`` extra) is imported only here. The rendering reuses :mod:`transcribe_cli.rendering`
(FluidSynth, a piano SoundFont, reverb off) on the written MIDI file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .notes import Note, Pedal

__all__ = ["save_roll_png", "sonify", "terminal_roll"]


def save_roll_png(
    notes: Sequence[Note],
    path: str | os.PathLike[str],
    *,
    pedals: Sequence[Pedal] = (),
    beats: Sequence[float] = (),
    downbeats: Sequence[float] = (),
    parts: Sequence[Sequence[Note]] | None = None,
    title: str = "",
) -> Path:
    """Write a piano roll of the notes (one colour per part) to ``path`` (PNG)."""
    from matplotlib.colors import to_rgba
    from matplotlib.figure import Figure

    from .evaluation.plots import _c_ticks, _save, require_matplotlib

    require_matplotlib()
    groups = list(parts) if parts else [list(notes)]
    everything = [n for g in groups for n in g]
    end = max((n.offset for n in everything), default=1.0)
    pitches = [n.pitch for n in everything] or [60]
    low, high = min(pitches) - 2, max(pitches) + 2
    figure = Figure(figsize=(float(np.clip(end * 0.5, 8, 40)), float(np.clip((high - low) * 0.12 + 2, 3, 10))),
                    layout="constrained")
    ax = figure.add_subplot()
    for t in beats:
        ax.axvline(t, color="#999999", linewidth=0.4, zorder=0)
    for t in downbeats:
        ax.axvline(t, color="#444444", linewidth=1.0, zorder=0)
    colours = ("#0072B2", "#D55E00", "#009E73", "#CC79A7")
    for k, group in enumerate(groups):
        if group:
            ax.barh([n.pitch for n in group], [n.offset - n.onset for n in group], left=[n.onset for n in group],
                    height=0.8, color=[to_rgba(colours[k % len(colours)], 0.35 + 0.65 * n.velocity / 127) for n in group])
    for p in pedals:
        ax.axvspan(p.onset, p.offset, ymin=0, ymax=0.03, color="#E69F00")
    ax.set_xlim(0, end)
    ax.set_ylim(low - 0.5, high + 0.5)
    _c_ticks(ax, low, high)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("pitch")
    if title:
        ax.set_title(title, fontsize="medium")
    target = Path(path)
    _save(figure, target)
    return target


def sonify(midi_path: str | os.PathLike[str], wav_path: str | os.PathLike[str], *, sample_rate: int = 44100) -> Path:
    """Render a MIDI file to a WAV file with FluidSynth (the preferred piano SoundFont)."""
    from .rendering import render

    return render(midi_path, wav_path, sample_rate=sample_rate, program=None, use_cache=False)


def terminal_roll(notes: Sequence[Note], *, width: int = 100, height: int | None = None,
                  beats: Sequence[float] = ()) -> list[str]:
    """A compact piano roll as text lines: rows are pitches (highest first, two per row with
    half blocks), columns time steps; a header shows the time and bar positions."""
    if not notes:
        return ["(no notes)"]
    end = max(n.offset for n in notes)
    low = min(n.pitch for n in notes)
    high = max(n.pitch for n in notes)
    low -= (high - low + 1) % 2  # an even number of pitches: two per row
    columns = max(10, width - 5)
    step = end / columns
    grid = np.zeros((high - low + 1, columns), dtype=bool)
    for n in notes:
        a = int(n.onset / step)
        b = max(a + 1, int(np.ceil(n.offset / step)))
        grid[n.pitch - low, a:min(b, columns)] = True
    from .evaluation.report import note_name

    lines = []
    ruler = [" "] * columns
    for t in beats:
        c = int(t / step)
        if 0 <= c < columns:
            ruler[c] = "'"
    lines.append("     " + "".join(ruler))
    for top in range(high, low - 1, -2):
        upper, lower = grid[top - low], grid[top - 1 - low] if top - 1 >= low else np.zeros(columns, bool)
        cells = "".join("█" if u and d else "▀" if u else "▄" if d else "·" if (top % 12 in (0, 1)) else " "
                        for u, d in zip(upper, lower))
        label = note_name(top) if top % 12 in (0, 1) or top == high else ""
        lines.append(f"{label:>4} {cells}")
    lines.append(f"     0 s{'':>{max(1, columns - 12)}}{end:.1f} s")
    return lines
