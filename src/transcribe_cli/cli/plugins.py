"""``transcribe plugins``: what is installed and what each plugin registers."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from transcribe_cli.cli.console import get_state


def plugins(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List loaded plugins with their version and what each registers."""
    from rich.table import Table

    from transcribe_cli.registry import get_registry

    state = get_state(ctx)
    registry = get_registry(state.plugins_dirs)
    infos = list(registry.loaded.infos.values())
    if as_json:
        print(json.dumps([info.as_dict() for info in infos], indent=2))
        return
    table = Table(show_edge=False)
    for column in ("plugin", "version", "source", "registers"):
        table.add_column(column)
    for info in infos:
        registers = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in info.registers.items())
        if info.error:
            registers = f"[red]broken: {info.error}[/]"
        table.add_row(info.name, info.version or "-", info.source, registers or "-")
    state.out.print(table)


def register(app: typer.Typer) -> None:
    app.command("plugins")(plugins)
