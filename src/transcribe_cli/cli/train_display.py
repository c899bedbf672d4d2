"""The live display of ``transcribe train``: a rich progress bar with step, loss, learning
rate and speed (on a terminal; nothing when quiet or not rank 0). Validation results are
printed above it by the trainer's reporter."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainDisplay:
    def __init__(self, total: int, done: int = 0, *, console: Console, quiet: bool = False):
        self.quiet = quiet
        self.total = total
        self.done = done
        self._last = time.perf_counter()
        self._progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False, disable=quiet,
        )
        self._task = None
        self._loss: float | None = None

    def __enter__(self) -> "TrainDisplay":
        if not self.quiet:
            self._progress.start()
            self._task = self._progress.add_task("train", total=self.total, completed=self.done, stats="")
        return self

    def update(self, step: int, record: dict[str, Any]) -> None:
        if self._task is None:
            return
        loss = record.get("loss")
        if loss is not None:
            self._loss = loss if self._loss is None else 0.9 * self._loss + 0.1 * loss
        now = time.perf_counter()
        stats = f"loss {self._loss:.4f}  {now - self._last:.2f} s/step" if self._loss is not None else ""
        self._last = now
        self._progress.update(self._task, completed=step, stats=stats)

    def __exit__(self, *exc: Any) -> None:
        if not self.quiet:
            self._progress.stop()
