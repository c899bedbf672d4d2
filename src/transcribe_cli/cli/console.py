"""Console output shared by every command: one-line errors and warnings on stderr."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.markup import escape

out = Console()
err = Console(stderr=True)


@dataclass
class State:
    verbose: bool = False
    quiet: bool = False
    plugins_dirs: tuple[str, ...] = ()


STATE = State()


def error(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)


def warn(message: str) -> None:
    if not STATE.quiet:
        err.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True, highlight=False)


def info(message: str) -> None:
    if not STATE.quiet:
        err.print(message, soft_wrap=True, highlight=False)
