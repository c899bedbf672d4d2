"""``transcribe models``: every registered model, its frontend, decoder and weights."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from transcribe_cli.cli.console import STATE, out


def models(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List models with frontend, decoder and where their weights come from."""
    from rich.table import Table

    from transcribe_cli.registry import get_registry

    registry = get_registry(STATE.plugins_dirs)
    rows = [
        {
            "name": spec.name,
            "family": spec.family,
            "frontend": spec.frontend,
            "decoder": spec.decoder,
            "weights": spec.weights.describe(),
            "plugin": registry.owner("model", spec.name),
            "description": spec.description,
        }
        for spec in registry.specs("model")
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(show_edge=False)
    for column in ("model", "family", "frontend", "decoder", "weights", "plugin"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["family"], row["frontend"], row["decoder"], row["weights"], row["plugin"])
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("models")(models)
