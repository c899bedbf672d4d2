"""Progress bar and end-of-batch summary for ``transcribe run``."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from transcribe_cli.cli.console import State


class BatchReporter:
    """A progress bar over the batch on ``state``'s stderr (hidden when quiet or for a single
    file). Each file's error and warnings are printed as it finishes, above the bar; with
    ``--verbose`` also the traceback of a failure and what its decoders printed."""

    def __init__(self, total: int, state: State, *, stream_errors: bool = False):
        self.total = total
        self.state = state
        self.stream_errors = stream_errors  # False: the caller reports failures itself (eval)
        self.results: list[Any] = []
        self.progress = Progress(
            TextColumn("[bold]transcribing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[current]}", style="dim"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=state.err,
            transient=True,
            disable=state.quiet or total < 2,
        )
        self.task = self.progress.add_task("batch", total=total, current="")

    def __enter__(self) -> "BatchReporter":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def update(self, result: Any) -> None:
        self.results.append(result)
        source = str(result.job.source)
        for message in getattr(result, "warnings", ()):
            self.state.warn(message if source in message else f"{source}: {message}")
        if result.status == "failed" and self.stream_errors:
            detail = getattr(result, "detail", None)
            if self.state.verbose and detail:
                self.state.err.print(detail.rstrip(), markup=False, highlight=False)
            message = result.error or "failed"
            self.state.error(message if source in message else f"{source}: {message}")
        self.progress.update(self.task, advance=1, current=result.job.source.name)

    def interrupted(self, signal_name: str) -> str:
        """The one line that reports an interrupted batch."""
        done = len(self.results)
        return (f"interrupted by {signal_name}: {done} of {self.total} file{'s' if self.total != 1 else ''} "
                f"finished, {self.total - done} not transcribed (no partial outputs left)")

    @staticmethod
    def summary(results: list[Any], console: Console | None) -> None:
        if console is None:
            return
        counts = Counter(r.status for r in results)
        audio = sum(r.audio_seconds for r in results)
        busy = sum(r.seconds for r in results)
        table = Table(title="transcription summary", show_edge=False)
        for column in ("files", "ok", "skipped", "failed", "notes", "audio", "compute", "speed"):
            table.add_column(column, justify="right")
        speed = f"{audio / busy:.1f}× realtime" if busy > 0 else "-"
        table.add_row(
            str(len(results)), str(counts["ok"]), str(counts["skipped"]),
            f"[red]{counts['failed']}[/]" if counts["failed"] else "0",
            str(sum(r.notes for r in results)), f"{audio:.1f} s", f"{busy:.1f} s", speed,
        )
        console.print(table)
