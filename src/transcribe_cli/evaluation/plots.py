"""PNG plots for ``transcribe eval --plot``: piano rolls of reference vs transcription and
per-pitch precision/recall.

matplotlib is optional (the ``plot`` extra) and imported only here, inside functions; figures
are built with :class:`matplotlib.figure.Figure` (no pyplot, no global state, no display
needed) and written atomically.

Colours (Okabe-Ito, distinguishable with the common colour-vision deficiencies):
true positives green and false positives vermillion (estimated notes, drawn half height),
misses blue (reference notes, full height); every reference note is outlined in black, so
offset errors of matched notes stay visible. "Matched" is mir_eval's
onset matching behind note F1 (:func:`transcribe_cli.evaluation.scoring.match_onsets`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from transcribe_cli.errors import TranscribeError
from transcribe_cli.notes import Note

TRUE_POSITIVE = "#009E73"
FALSE_POSITIVE = "#D55E00"
MISSED = "#0072B2"
REFERENCE_EDGE = "#000000"
DPI = 100


def require_matplotlib() -> None:
    """Fail with one clear line when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise TranscribeError(
            "--plot needs matplotlib, which is not installed",
            "pip install 'transcribe-cli[plot]' (or pip install matplotlib)",
        ) from None


def _save(figure, path: Path) -> None:
    from transcribe_cli.io.fileio import atomic_write

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as handle:
        handle.write(buffer.getvalue())


def _bars(ax, notes: Sequence[Note], height: float, **style) -> None:
    if not notes:
        return
    onsets = np.array([n.onset for n in notes])
    durations = np.array([n.offset - n.onset for n in notes])
    pitches = np.array([n.pitch for n in notes])
    ax.barh(pitches, durations, left=onsets, height=height, align="center", **style)


def _c_ticks(ax, low: int, high: int, axis: str = "y") -> None:
    from transcribe_cli.evaluation.report import note_name

    ticks = [p for p in range(low, high + 1) if p % 12 == 0] or [low]
    setter = ax.set_yticks if axis == "y" else ax.set_xticks
    setter(ticks, [note_name(p) for p in ticks])


def save_piano_roll(
    ref: Sequence[Note],
    est: Sequence[Note],
    path: str | Path,
    *,
    title: str = "",
    max_seconds: float = 30.0,
) -> Path:
    """Write a piano roll of ``ref`` vs ``est`` to ``path`` (PNG). Only notes starting in
    the first ``max_seconds`` are drawn (``0``: the whole recording)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from transcribe_cli.evaluation.scoring import match_onsets

    matches = match_onsets(ref, est)
    ref_hit = {i for i, _ in matches}
    est_hit = {j for _, j in matches}
    end = max((n.offset for n in (*ref, *est)), default=1.0)
    shown = min(end, max_seconds) if max_seconds and max_seconds > 0 else end

    def visible(notes: Sequence[Note], keep) -> list[Note]:
        return [n for i, n in enumerate(notes) if keep(i) and n.onset < shown]

    tp = visible(est, lambda j: j in est_hit)
    fp = visible(est, lambda j: j not in est_hit)
    missed = visible(ref, lambda i: i not in ref_hit)
    reference = visible(ref, lambda i: True)
    pitches = [n.pitch for n in (*reference, *tp, *fp)] or [60]
    low, high = min(pitches) - 2, max(pitches) + 2

    width = float(np.clip(shown * 0.6, 8, 24))
    height = float(np.clip((high - low) * 0.12 + 1.5, 3, 10))
    figure = Figure(figsize=(width, height), layout="constrained")
    ax = figure.add_subplot()
    # reference notes full height (misses filled), estimates half height on top, so an
    # estimate that overlaps a missed note of the same pitch leaves it visible
    _bars(ax, missed, height=0.8, color=MISSED, alpha=0.85)
    _bars(ax, reference, height=0.8, fill=False, edgecolor=REFERENCE_EDGE, linewidth=0.7)
    _bars(ax, tp, height=0.45, color=TRUE_POSITIVE)
    _bars(ax, fp, height=0.45, color=FALSE_POSITIVE)
    ax.set_xlim(0, shown)
    ax.set_ylim(low - 0.5, high + 0.5)
    _c_ticks(ax, low, high)
    ax.set_xlabel("time (s)" + (f", first {shown:g} s of {end:.1f} s" if shown < end else ""))
    ax.set_ylabel("pitch")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(
        handles=[
            Patch(color=TRUE_POSITIVE, label=f"true positive ({len(matches)})"),
            Patch(color=FALSE_POSITIVE, label=f"false positive ({len(est) - len(est_hit)})"),
            Patch(color=MISSED, label=f"missed ({len(ref) - len(ref_hit)})"),
            Patch(fill=False, edgecolor=REFERENCE_EDGE, label=f"reference ({len(ref)})"),
        ],
        loc="upper right",
        fontsize="small",
        framealpha=0.9,
        title="whole recording" if shown < end else None,
        title_fontsize="small",
    )
    if title:
        ax.set_title(title, fontsize="medium")
    path = Path(path)
    _save(figure, path)
    return path


def save_per_pitch(counts: np.ndarray, path: str | Path, *, title: str = "") -> Path:
    """Write per-pitch precision and recall (from ``[128, 3]`` tp/fp/fn counts, see
    :func:`transcribe_cli.evaluation.scoring.pitch_counts`) with the reference note count per
    pitch as grey bars, to ``path`` (PNG)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from transcribe_cli.evaluation.scoring import pitch_precision_recall

    precision, recall = pitch_precision_recall(counts)
    used = np.flatnonzero(counts.sum(axis=1))
    low = int(min(21, used.min())) if used.size else 21
    high = int(max(108, used.max())) if used.size else 108
    pitches = np.arange(low, high + 1)
    figure = Figure(figsize=(12, 4.5), layout="constrained")
    ax = figure.add_subplot()
    support = figure.axes[0].twinx()
    n_ref = counts[:, 0] + counts[:, 2]
    support.bar(pitches, n_ref[low : high + 1], width=0.9, color="#BBBBBB", alpha=0.5, label="reference notes")
    support.set_ylabel("reference notes")
    support.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_zorder(support.get_zorder() + 1)
    ax.patch.set_visible(False)
    # markers only (pitches are discrete; undefined values are gaps), nudged apart so a
    # precision and a recall of the same value stay visible
    ax.plot(pitches - 0.15, precision[low : high + 1], "o", color=FALSE_POSITIVE, markersize=4, label="precision")
    ax.plot(pitches + 0.15, recall[low : high + 1], "s", color=MISSED, markersize=4, label="recall")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(low - 1, high + 1)
    ax.set_ylabel("precision / recall (note onset)")
    _c_ticks(ax, low, high, axis="x")
    ax.set_xlabel("pitch")
    ax.grid(alpha=0.3)
    lines, labels = ax.get_legend_handles_labels()
    bars, bar_labels = support.get_legend_handles_labels()
    ax.legend(lines + bars, labels + bar_labels, loc="lower left", fontsize="small", framealpha=0.9)
    if title:
        ax.set_title(title, fontsize="medium")
    path = Path(path)
    _save(figure, path)
    return path
