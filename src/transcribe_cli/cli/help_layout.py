"""``--help`` that stays readable in an 80-column terminal.

Typer lays each option out as a rich table row — names, type, help — and, when the table is
too wide, rich shrinks every wrappable column alike, so ``--dataset-options`` became
``--dataset-opti…``. :func:`keep_option_names_whole` makes the option-name columns (all but
the last two: type and help text) unbreakable, so only the type and the help text wrap.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text


class _HelpTable(Table):
    """A rich table whose columns, except the last two, never wrap or truncate."""

    def add_row(self, *renderables: Any, **kwargs: Any) -> None:
        for renderable in renderables:
            for text in getattr(renderable, "renderables", [renderable]):
                if isinstance(text, Text):
                    text.overflow = "fold"
        super().add_row(*renderables, **kwargs)
        for index, column in enumerate(self.columns):
            column.overflow = "fold"  # a long word breaks across lines instead of ending in "…"
            column.no_wrap = index < len(self.columns) - 2


def keep_option_names_whole() -> None:
    """Make Typer's help panels use :class:`_HelpTable` (idempotent)."""
    import typer.rich_utils

    typer.rich_utils.Table = _HelpTable
