"""``transcribe models``: every registered model and its weights; ``models info NAME``: its card."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from transcribe_cli.cli.console import get_state

app = typer.Typer(
    no_args_is_help=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def human_size(size: int | None) -> str:
    """Bytes → ``"12.3 MB"`` (decimal units, like the Hub); ``"-"`` when unknown."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # unreachable


def _card_size(card: Any) -> int | None:
    weights = card.meta.get("weights") if card is not None else None
    size = weights.get("size") if isinstance(weights, dict) else None
    return size if isinstance(size, int) and not isinstance(size, bool) else None


def model_row(spec, registry) -> dict[str, Any]:
    """One model as ``transcribe models --json`` shows it (no network)."""
    from transcribe_cli.weights.hub import weights_status
    from transcribe_cli.weights.cards import find_card

    status = weights_status(spec)
    card = find_card(spec)
    return {
        "name": spec.name,
        "family": spec.family,
        "frontend": spec.frontend,
        "decoder": spec.decoder,
        "weights": status.description,
        "weights_source": status.source,
        "available_offline": status.available_offline,
        "size_bytes": status.size if status.size is not None else _card_size(card),
        "weights_path": str(status.path) if status.path else None,
        "plugin": registry.owner("model", spec.name),
        "card": card.source if card is not None else None,
        "description": spec.description,
    }


@app.callback(invoke_without_command=True)
def models(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List models and their weights; [bold]models info NAME[/] shows a model's card.

    Columns: family, frontend, decoder, where the weights come from, whether they are on this
    machine (usable offline) and their size.
    """
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    from transcribe_cli.registry import get_registry

    state = get_state(ctx)
    registry = get_registry(state.plugins_dirs)
    rows = [model_row(spec, registry) for spec in registry.specs("model")]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    # models nobody has published weights for cannot transcribe anything yet: listed apart
    untrained = [row for row in rows if row["weights_source"] == "none" and not row["available_offline"]]
    usable = [row for row in rows if row not in untrained]
    wide = state.out.width >= 120
    columns = ("model", "family", "frontend", "decoder", "weights", "offline", "size", "plugin") if wide else (
        "model", "decoder", "weights", "offline", "size")
    table = Table(show_edge=False)
    for column in columns:
        # names never break; the weights description wraps
        table.add_column(column, justify="right" if column == "size" else "left",
                         no_wrap=column != "weights", overflow="fold")
    for row in usable:
        offline = "[green]yes[/]" if row["available_offline"] else "[yellow]no[/]"
        cells = {"model": row["name"], "family": row["family"] or "-", "frontend": row["frontend"],
                 "decoder": row["decoder"], "weights": _escape(row["weights"]), "offline": offline,
                 "size": human_size(row["size_bytes"]), "plugin": row["plugin"]}
        table.add_row(*(cells[column] for column in columns))
    state.out.print(table)
    if untrained:
        names = ", ".join(row["name"] for row in untrained)
        state.out.print(f"\n[dim]No weights published (train one with `transcribe train --model NAME`):[/] {names}",
                  soft_wrap=False)


def _summary(row: dict[str, Any], card: Any):
    from rich.table import Table

    table = Table(show_header=False, show_edge=False, box=None, pad_edge=False)
    table.add_column(style="bold", max_width=24, overflow="fold")
    table.add_column(overflow="fold")
    meta = card.meta if card is not None else {}
    weights = meta.get("weights") if isinstance(meta.get("weights"), dict) else {}
    facts = [
        ("model", row["name"]),
        ("family", row["family"] or "-"),
        ("frontend", row["frontend"]),
        ("decoder", row["decoder"]),
        ("decoder options", _pairs(row.get("decoder_options"))),
        ("model options", _pairs(row.get("model_options"))),
        ("weights", row["weights"]),
        ("sha256", weights.get("sha256")),
        ("size", human_size(row["size_bytes"]) if row["size_bytes"] is not None else None),
        ("offline", "yes" if row["available_offline"] else "no (run `transcribe download " + row["name"] + "`)"),
        ("parameters", f"{meta['parameters']:,}" if isinstance(meta.get("parameters"), int) else None),
        ("license", meta.get("license")),
        ("plugin", row["plugin"]),
    ]
    for entry in meta.get("training_data") or []:
        if isinstance(entry, dict):
            facts.append(("trained on", f"{entry.get('name')} ({entry.get('license', 'licence unknown')})"))
    for entry in meta.get("metrics") or []:
        if isinstance(entry, dict):
            results = entry.get("results") if isinstance(entry.get("results"), dict) else {}
            scores = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in results.items())
            facts.append((f"on {entry.get('dataset')}", scores or "-"))
            if entry.get("command"):
                facts.append(("", f"[dim]{entry['command']}[/]"))
    for key, value in facts:
        if value not in (None, ""):
            table.add_row(key, value if key == "" else _escape(str(value)))
    return table


def _pairs(options: dict[str, Any] | None) -> str | None:
    """``{"a": 1}`` → ``"a=1"`` (what ``-O`` takes), ``None`` when there are none."""
    return ", ".join(f"{key}={value}" for key, value in options.items()) if options else None


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


@app.command("info")
def info(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A registered model name (see `transcribe models`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show a model's card: what it is, its weights, training data, licence, measured accuracy."""
    from rich.markdown import Markdown
    from rich.rule import Rule

    from transcribe_cli.weights.cards import find_card, needs_card, validate_card
    from transcribe_cli.registry import get_registry

    from transcribe_cli.options import effective_options

    state = get_state(ctx)
    registry = get_registry(state.plugins_dirs)
    spec = registry.model(name)
    row = model_row(spec, registry)
    # what `transcribe run --model NAME` runs with: the decoder's defaults after the model's tuning
    resolved = effective_options(spec, registry.decoder(spec.decoder), frontend_spec=registry.frontend(spec.frontend))
    row["model_options"], row["decoder_options"] = resolved.model, resolved.decoder
    card = find_card(spec)
    problems = validate_card(card, spec) if card is not None else []
    if as_json:
        print(json.dumps({**row, "card_meta": dict(card.meta) if card else None,
                          "card_body": card.body if card else None, "card_problems": problems},
                         indent=2, default=str))
        return
    state.out.print(_summary(row, card))
    if card is None:
        if needs_card(spec):
            state.warn(f"model {name!r} has no model card; its plugin should ship model_cards/{name}.md")
        else:
            state.out.print("\n[dim]No model card (a model without trained weights).[/]")
        return
    state.out.print(Rule(style="dim"))
    state.out.print(Markdown(card.body))
    for problem in problems:
        state.warn(f"card {card.source}: {problem}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="models")

