"""What every command reads from Typer's context (``ctx.obj``): ``--verbose``/``--quiet``,
the plugin folders, and the console they write to (one-line errors and warnings on stderr).

``cli.main`` builds one :class:`State` per invocation and passes it as Typer's context
object; a command takes ``ctx: typer.Context`` and calls :func:`get_state`. Rich is imported
only when something is printed, so ``transcribe --help`` does not pay for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import rich.console


@dataclass
class State:
    """One invocation's settings and its console."""

    verbose: bool = False
    quiet: bool = False
    plugins_dirs: tuple[str, ...] = ()

    @cached_property
    def out(self) -> "rich.console.Console":
        """stdout (tables, results)."""
        from rich.console import Console

        return Console()

    @cached_property
    def err(self) -> "rich.console.Console":
        """stderr (errors, warnings, progress)."""
        from rich.console import Console

        return Console(stderr=True)

    def error(self, message: str) -> None:
        """``error: MESSAGE`` on stderr, even when quiet."""
        from rich.markup import escape

        self.err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)

    def warn(self, message: str) -> None:
        """``warning: MESSAGE`` on stderr, unless quiet."""
        from rich.markup import escape

        if not self.quiet:
            self.err.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True, highlight=False)

    def info(self, message: str) -> None:
        """A progress or result line on stderr, unless quiet (rich markup allowed)."""
        if not self.quiet:
            self.err.print(message, soft_wrap=True, highlight=False)


def get_state(ctx: Any) -> State:
    """The :class:`State` of this invocation (``ctx`` is the command's ``typer.Context``;
    a bare ``State()`` when the app was run without ``main``, e.g. by a test runner)."""
    return ctx.ensure_object(State)
