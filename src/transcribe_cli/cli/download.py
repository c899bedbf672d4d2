"""``transcribe download NAME...``: fetch weights ahead of time (offline machines, CI images)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from transcribe_cli.cli.console import get_state
from transcribe_cli.errors import TranscribeError


def _describe(path: Path) -> str:
    from transcribe_cli.cli.models import human_size

    return f"{human_size(path.stat().st_size)} at {path}"


def fetch_target(target: str, registry, *, force: bool, progress: bool) -> str:
    """Download one registered model's weights or one ``hf://`` checkpoint; a line saying
    what happened. Raises :class:`TranscribeError`."""
    from transcribe_cli.weights.hub import HubFile, fetch, resolve_weights
    from transcribe_cli.weights.uri import is_hf_uri, parse_hf_uri, resolve_model_argument

    if is_hf_uri(target):
        ref = parse_hf_uri(target)
        if force:
            fetch(ref, name=ref.uri, force=True, progress=progress)
        choice = resolve_model_argument(target, registry, progress=progress)
        return f"{ref.uri}: {_describe(choice.checkpoint)} (model {choice.spec.name!r})"
    spec = registry.model(target)
    source = spec.weights
    if source.peer:
        from transcribe_cli.peers import weights_file

        path = weights_file(source, name=spec.name, force=force, progress=progress)
        return f"{spec.name}: {_describe(path)} (from the {source.peer} wheel)"
    if source.hub_repo:
        path = fetch(HubFile.from_source(source), name=spec.name, force=force, progress=progress)
        return f"{spec.name}: {_describe(path)} (sha256 verified)" if source.sha256 else \
            f"{spec.name}: {_describe(path)}"
    if source.bundled:
        path = resolve_weights(spec)
        return f"{spec.name}: bundled with its package, nothing to download ({_describe(path)})"
    return f"{spec.name}: declares no weights, nothing to download"


def download(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(
        help="Registered model names and/or hf://owner/repo@revision/file URIs.", show_default=False)] = None,
    all_models: Annotated[bool, typer.Option(
        "--all", help="Every registered model whose weights come from the Hub.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Download again even if cached.")] = False,
) -> None:
    """Download model weights into the cache now, so later runs work offline.

    Weights are checked against their pinned sha256. On a machine without internet, copy the
    cache folder (see [bold]transcribe cache list[/]) from one where this ran, or point
    TRANSCRIBE_CACHE_DIR at a copy, and set HF_HUB_OFFLINE=1.
    """
    from transcribe_cli.registry import get_registry

    state = get_state(ctx)
    registry = get_registry(state.plugins_dirs)
    targets = list(names or [])
    if all_models:
        targets += [s.name for s in registry.specs("model")
                    if (s.weights.hub_repo or s.weights.peer) and s.name not in targets]
    if not targets:
        if all_models:
            state.info("no registered model downloads its weights from the Hub")
            return
        raise TranscribeError("nothing to download", "name one or more models, or pass --all")
    failed = 0
    for target in targets:
        try:
            line = fetch_target(target, registry, force=force, progress=not state.quiet)
        except TranscribeError as exc:
            failed += 1
            state.error(str(exc))
            continue
        if not state.quiet:
            state.out.print(line, soft_wrap=True, highlight=False, markup=False)
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("download")(download)
