"""Per-file scores → per-entry summaries: mean ± std over files, per-pitch counts, counts by
kind of note, the best sweep point.

Conventions: a summary averages the files an entry scored (failed files are counted,
not averaged); ``std`` is the population standard deviation over files (``ddof=0``, as
in the Onsets and Frames evaluation script); per-pitch counts and the counts by kind of note
are summed over files. The
best sweep point maximises the mean of the chosen metric; ties go to the earliest point.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transcribe_cli.evaluation.run import Entry, FileResult
from transcribe_cli.evaluation.scoring import METRIC_KEYS, NOTE_KINDS


@dataclass
class Summary:
    """One entry at one sweep point, over every file it scored."""

    point: Mapping[str, Any]
    files: int
    mean: dict[str, float]
    std: dict[str, float]
    pitch_counts: np.ndarray  # [128, 3] tp, fp, fn summed over files
    n_ref: int
    n_est: int
    kind_counts: np.ndarray = field(default_factory=lambda: np.zeros((len(NOTE_KINDS), 2), dtype=np.int64))


@dataclass
class EntryReport:
    """Everything the report needs about one entry."""

    entry: Entry
    results: list[FileResult]  # in dataset order
    summaries: list[Summary]  # one per sweep point
    best: int  # index of the best point (0 without a sweep)
    pipeline: dict[str, Any] = field(default_factory=dict)  # Transcriber.describe() and more

    @property
    def ok(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "ok"]

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def summary(self) -> Summary:
        """The summary at the best point (the only one without a sweep)."""
        return self.summaries[self.best]

    @property
    def audio_seconds(self) -> float:
        return float(sum(r.audio_seconds for r in self.ok))

    @property
    def compute_seconds(self) -> float:
        return float(sum(r.seconds for r in self.ok))


def summarize(results: Sequence[FileResult], point_index: int, point: Mapping[str, Any]) -> Summary:
    """Mean, std and summed per-pitch counts of the ``ok`` results at one sweep point."""
    ok = [r for r in results if r.status == "ok"]
    counts = np.zeros((128, 3), dtype=np.int64)
    if not ok:
        nan = {key: float("nan") for key in METRIC_KEYS}
        return Summary(point, 0, nan, dict(nan), counts, 0, 0)
    table = np.array([[r.points[point_index].metrics[key] for key in METRIC_KEYS] for r in ok], dtype=np.float64)
    kinds = np.zeros((len(NOTE_KINDS), 2), dtype=np.int64)
    for r in ok:
        counts += r.points[point_index].pitch_counts
        if r.points[point_index].kind_counts is not None:
            kinds += r.points[point_index].kind_counts
    return Summary(
        point,
        len(ok),
        dict(zip(METRIC_KEYS, map(float, table.mean(axis=0)))),
        dict(zip(METRIC_KEYS, map(float, table.std(axis=0)))),
        counts,
        int(sum(r.n_ref for r in ok)),
        int(sum(r.points[point_index].n_est for r in ok)),
        kinds,
    )


def best_point(summaries: Sequence[Summary], metric: str) -> int:
    """Index of the summary with the highest mean ``metric`` (NaNs lose; ties: first)."""
    values = np.array([s.mean[metric] for s in summaries], dtype=np.float64)
    if np.all(np.isnan(values)):
        return 0
    return int(np.nanargmax(values))


def build_reports(
    entries: Sequence[Entry],
    results: Sequence[FileResult],
    item_order: Sequence[str],
    metric: str,
    pipelines: Mapping[str, dict[str, Any]] | None = None,
) -> list[EntryReport]:
    """One :class:`EntryReport` per entry, its results in ``item_order``."""
    rank = {name: i for i, name in enumerate(item_order)}
    reports = []
    for entry in entries:
        mine = sorted(
            (r for r in results if r.job.entry.label == entry.label),
            key=lambda r: rank.get(r.job.item.name, len(rank)),
        )
        summaries = [summarize(mine, i, point) for i, point in enumerate(entry.grid)]
        reports.append(
            EntryReport(entry, mine, summaries, best_point(summaries, metric), dict((pipelines or {}).get(entry.label, {})))
        )
    return reports
