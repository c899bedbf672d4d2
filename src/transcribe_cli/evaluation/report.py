"""What ``transcribe eval`` shows and writes: rich tables, a JSON report, a CSV table.

JSON (``--json``; ``"format": "transcribe-cli-eval"``, ``"format_version": 1``)::

    {"environment": {versions}, "dataset": {...}, "scoring": {tolerances},
     "sweep": null | {"options": {key: [values]}, "metric": key},
     "entries": [{"label", "kind": "model" | "estimates", "pipeline": {exact model,
                  decoder and options, plugin and version, weights},
                  "files_scored", "files_failed", "audio_seconds", "compute_seconds",
                  "aggregate": {metric: {"mean", "std"}}, "per_pitch": [...],
                  "recall_by_kind": [{"kind", "label", "notes", "found", "recall"}],
                  "best": {options} (sweep), "sweep": [{"options", "aggregate"}] (sweep),
                  "files": [{"name", "status", "error", "n_ref", "n_est", "audio_seconds",
                             "seconds", "metrics": {...}, "sweep_metrics": [...] (sweep)}]}]}

``aggregate``, ``per_pitch``, ``recall_by_kind`` (the reference notes of each kind of
:data:`transcribe_cli.evaluation.scoring.NOTE_KINDS` and the share found, summed over files)
and each file's ``metrics`` are at the best sweep point
(the only point without a sweep). Undefined numbers (an entry that scored no file) are
``null``.

CSV (``--csv``): one row per file, entry and sweep point (``kind=file``), plus ``mean`` and
``std`` rows per entry and point; columns ``kind, entry, file, status, error``, the swept
options, ``n_ref, n_est, audio_seconds, seconds`` and every metric of
:data:`transcribe_cli.evaluation.scoring.METRICS`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import platform
from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table

from transcribe_cli.evaluation.aggregate import EntryReport, Summary
from transcribe_cli.evaluation.scoring import (
    METRIC_KEYS,
    METRICS,
    NOTE_KINDS,
    TABLE_GROUPS,
    pitch_precision_recall,
    scoring_settings,
)
from transcribe_cli.evaluation.sweep import describe_point

FORMAT = "transcribe-cli-eval"
FORMAT_VERSION = 1
_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def note_name(pitch: int) -> str:
    """MIDI pitch → scientific pitch name (60 → ``C4``)."""
    return f"{_NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def _number(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


# -- rich tables ------------------------------------------------------------------------

def _cell(summary: Summary, key: str) -> str:
    mean, std = summary.mean[key], summary.std[key]
    if math.isnan(mean):
        return "-"
    return f"{mean:.3f} ± {std:.3f}"


def metrics_table(reports: Sequence[EntryReport], title: str) -> Table:
    """Mean ± std of the four MAESTRO metric groups, one column per entry (the best mean
    of each row in bold when there are several entries)."""
    table = Table(title=title, show_edge=False, title_justify="left")
    table.add_column("metric")
    for report in reports:
        table.add_column(report.entry.label, justify="right")
    rows = [m for m in METRICS if m.measure != "Acc" and m.key.rsplit("_", 1)[0] in TABLE_GROUPS]
    group = None
    for metric in rows:
        if group is not None and metric.group != group:
            table.add_section()
        group = metric.group
        means = [r.summary.mean[metric.key] for r in reports]
        finite = [m for m in means if not math.isnan(m)]
        top = max(finite) if len(reports) > 1 and finite else None
        cells = []
        for report, mean in zip(reports, means):
            text = _cell(report.summary, metric.key)
            cells.append(f"[bold]{text}[/]" if top is not None and mean == top else text)
        table.add_row(f"{metric.group} {metric.measure}", *cells)
    table.add_section()
    table.add_row("files scored", *[_files_cell(r) for r in reports])
    table.add_row("notes (ref / est)", *[f"{r.summary.n_ref} / {r.summary.n_est}" for r in reports])
    table.add_row("speed", *[_speed_cell(r) for r in reports])
    return table


def kind_recall(summary: Summary) -> list[tuple[str, str, int, int, float]]:
    """``(kind, label, notes, found, recall)`` for each kind of note (recall NaN without notes)."""
    rows = []
    for kind, (notes, found) in zip(NOTE_KINDS, summary.kind_counts):
        rows.append((kind.key, kind.label, int(notes), int(found), found / notes if notes else float("nan")))
    return rows


def kind_table(reports: Sequence[EntryReport]) -> Table:
    """Note recall by kind of reference note (rows), one column per entry: ``recall (notes)``."""
    table = Table(title="note recall by kind (reference notes)", show_edge=False,
                  title_justify="left")
    table.add_column("notes")
    for report in reports:
        table.add_column(report.entry.label, justify="right")
    columns = [kind_recall(r.summary) for r in reports]
    for i, kind in enumerate(NOTE_KINDS):
        cells = [f"{rows[i][4]:.3f} ({rows[i][2]})" if rows[i][2] else "-" for rows in columns]
        table.add_row(kind.label, *cells)
    return table


def _files_cell(report: EntryReport) -> str:
    failed = len(report.failed)
    text = str(len(report.ok))
    return f"{text} [red]({failed} failed)[/]" if failed else text


def _speed_cell(report: EntryReport) -> str:
    if report.entry.estimates is not None or report.compute_seconds <= 0:
        return "-"
    return f"{report.audio_seconds / report.compute_seconds:.1f}× realtime"


def sweep_table(reports: Sequence[EntryReport], metric: str) -> Table:
    """Mean ``metric`` per sweep point (rows) and entry (columns); each entry's best in bold."""
    label = next(f"{m.group} {m.measure}" for m in METRICS if m.key == metric)
    swept = [r for r in reports if len(r.summaries) > 1]
    table = Table(title=f"sweep: {label} ({metric}), mean ± std over files", show_edge=False, title_justify="left")
    table.add_column("decoder options")
    for report in swept:
        table.add_column(report.entry.label, justify="right")
    rows: dict[str, dict[str, str]] = {}
    for report in swept:
        for i, summary in enumerate(report.summaries):
            text = _cell(summary, metric)
            if i == report.best:
                text = f"[bold]{text} ◀[/]"
            rows.setdefault(describe_point(summary.point), {})[report.entry.label] = text
    for point, cells in rows.items():
        table.add_row(point, *[cells.get(r.entry.label, "") for r in swept])
    return table


def best_lines(reports: Sequence[EntryReport], metric: str) -> list[str]:
    """``"nmf: best onset_threshold=0.45 (onset_f1 0.812)"`` per swept entry."""
    lines = []
    for report in reports:
        if len(report.summaries) > 1:
            s = report.summary
            lines.append(f"{report.entry.label}: best {describe_point(s.point)} ({metric} {s.mean[metric]:.4f})")
    return lines


# -- JSON -------------------------------------------------------------------------------

def environment() -> dict[str, Any]:
    """Versions of everything that can change a score."""
    import importlib.metadata as md

    from transcribe_cli import __version__

    versions: dict[str, Any] = {"transcribe_cli": __version__, "python": platform.python_version()}
    for dist in ("mir_eval", "numpy", "torch", "pretty_midi"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    return versions


def _aggregate(summary: Summary) -> dict[str, dict[str, float | None]]:
    return {key: {"mean": _number(summary.mean[key]), "std": _number(summary.std[key])} for key in METRIC_KEYS}


def per_pitch(summary: Summary) -> list[dict[str, Any]]:
    """Counts and precision/recall for every pitch that occurs in the reference or the estimate."""
    precision, recall = pitch_precision_recall(summary.pitch_counts)
    rows = []
    for pitch in range(128):
        tp, fp, fn = (int(x) for x in summary.pitch_counts[pitch])
        if tp + fp + fn:
            rows.append({
                "pitch": pitch, "name": note_name(pitch), "tp": tp, "fp": fp, "fn": fn,
                "precision": _number(float(precision[pitch])), "recall": _number(float(recall[pitch])),
            })  # fmt: skip
    return rows


def _metrics(values: Mapping[str, float]) -> dict[str, float | None]:
    return {key: _number(values[key]) for key in METRIC_KEYS}


def entry_document(report: EntryReport) -> dict[str, Any]:
    entry = report.entry
    swept = len(report.summaries) > 1
    doc: dict[str, Any] = {
        "label": entry.label,
        "kind": "estimates" if entry.estimates is not None else "model",
        "pipeline": report.pipeline,
        "files_scored": len(report.ok),
        "files_failed": len(report.failed),
        "audio_seconds": report.audio_seconds,
        "compute_seconds": report.compute_seconds,
        "aggregate": _aggregate(report.summary),
        "per_pitch": per_pitch(report.summary),
        "recall_by_kind": [{"kind": k, "label": label, "notes": n, "found": f, "recall": _number(r)}
                           for k, label, n, f, r in kind_recall(report.summary)],
    }
    if swept:
        doc["best"] = dict(report.summary.point)
        doc["sweep"] = [{"options": dict(s.point), "aggregate": _aggregate(s)} for s in report.summaries]
    files = []
    for result in report.results:
        row: dict[str, Any] = {
            "name": result.job.item.name,
            "status": result.status,
            "error": result.error,
            "n_ref": result.n_ref if result.points else None,
            "n_est": result.points[report.best].n_est if result.points else None,
            "audio_seconds": result.audio_seconds,
            "seconds": result.seconds,
            "metrics": _metrics(result.points[report.best].metrics) if result.points else None,
        }
        if swept:
            row["sweep_metrics"] = [_metrics(p.metrics) for p in result.points]
        files.append(row)
    doc["files"] = files
    return doc


def report_document(
    reports: Sequence[EntryReport],
    *,
    dataset: Mapping[str, Any],
    sweep: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The whole JSON report (see the module docstring)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "environment": environment(),
        "dataset": dict(dataset),
        "scoring": dict(scoring_settings()),
        "sweep": dict(sweep) if sweep else None,
        "entries": [entry_document(r) for r in reports],
    }


def json_text(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=1, default=str, allow_nan=False) + "\n"


# -- CSV --------------------------------------------------------------------------------

def csv_text(reports: Sequence[EntryReport]) -> str:
    """The CSV table (see the module docstring)."""
    swept_keys: list[str] = []
    for report in reports:
        for point in report.entry.grid:
            swept_keys += [k for k in point if k not in swept_keys]
    header = ["kind", "entry", "file", "status", "error", *swept_keys,
              "n_ref", "n_est", "audio_seconds", "seconds", *METRIC_KEYS]  # fmt: skip
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)

    def fmt(value: Any) -> Any:
        if isinstance(value, float):
            return "" if math.isnan(value) else f"{value:.6g}"
        return "" if value is None else value

    for report in reports:
        label = report.entry.label
        for i, summary in enumerate(report.summaries):
            options = [summary.point.get(k, "") for k in swept_keys]
            for result in report.results:
                point = result.points[i] if result.points else None
                writer.writerow([fmt(v) for v in (
                    "file", label, result.job.item.name, result.status, result.error, *options,
                    result.n_ref if point else None, point.n_est if point else None,
                    result.audio_seconds, result.seconds,
                    *[(point.metrics[k] if point else None) for k in METRIC_KEYS],
                )])  # fmt: skip
            for kind, values in (("mean", summary.mean), ("std", summary.std)):
                writer.writerow([fmt(v) for v in (
                    kind, label, "", "", "", *options, summary.n_ref if kind == "mean" else None,
                    summary.n_est if kind == "mean" else None, None, None, *[values[k] for k in METRIC_KEYS],
                )])  # fmt: skip
    return buffer.getvalue()
