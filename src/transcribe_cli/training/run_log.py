"""What a training run records in its folder, as it goes.

- ``metrics.jsonl``: one JSON object per line, ``{"kind": "train"|"validation", "step": N,
  "time": seconds since the run began (summed over resumed sessions), ...}``; train lines
  hold the loss parts, learning rate and throughput (audio seconds per second), validation
  lines every metric of ``transcribe eval`` plus the decoder options used. On resume, lines
  past the checkpoint's step (work lost by the interruption) are dropped first.
- ``validation.csv``: the validation lines as a table (step, time, every metric), and
  ``validation.png``: the validation curve (when matplotlib is installed).
- optional TensorBoard event files in ``tensorboard/`` (``tensorboard: true``).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from transcribe_cli.errors import TranscribeError
from transcribe_cli.io.fileio import atomic_write

METRICS_FILE = "metrics.jsonl"
CSV_FILE = "validation.csv"
CURVE_FILE = "validation.png"
CURVE_METRICS = ("onset_f1", "frame_f1", "onset_offset_f1")


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` (a torn last line is skipped)."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


class RunLog:
    """Appends to ``metrics.jsonl`` (rank 0 only) and keeps the CSV/curve/TensorBoard views."""

    def __init__(self, run_dir: Path, *, resume_step: int | None = None, tensorboard: bool = False):
        self.run_dir = run_dir
        self.path = run_dir / METRICS_FILE
        self.records = read_records(self.path)
        if resume_step is not None:
            self.records = [r for r in self.records if int(r.get("step", 0)) <= resume_step]
        else:
            self.records = []
        with atomic_write(self.path, "w") as f:
            for record in self.records:
                f.write(json.dumps(record) + "\n")
        self._file = open(self.path, "a", encoding="utf-8")
        self._writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise TranscribeError("TensorBoard logging needs the tensorboard package",
                                      "pip install 'transcribe-cli[tensorboard]', or drop --tensorboard") from None
            self._writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=resume_step)

    def write(self, record: Mapping[str, Any]) -> None:
        record = {key: _jsonable(value) for key, value in record.items()}
        self.records.append(record)
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "time"):
                    self._writer.add_scalar(f"{record['kind']}/{key}", value, record["step"])
        if record.get("kind") == "validation":
            self._write_views()

    def validations(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("kind") == "validation"]

    def _write_views(self) -> None:
        rows = self.validations()
        columns = ["step", "time"] + sorted({k for r in rows for k, v in r.items()
                                             if isinstance(v, (int, float)) and k not in ("step", "time")})
        with atomic_write(self.run_dir / CSV_FILE, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        plot_curve(rows, self.run_dir / CURVE_FILE)

    def close(self) -> None:
        self._file.close()
        if self._writer is not None:
            self._writer.close()


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def plot_curve(rows: list[Mapping[str, Any]], path: Path) -> bool:
    """Validation metrics against steps as a PNG; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    steps = [r["step"] for r in rows]
    for key in CURVE_METRICS:
        if any(key in r for r in rows):
            ax.plot(steps, [r.get(key, float("nan")) for r in rows], marker="o", ms=3, label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("validation score")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)
    return True
