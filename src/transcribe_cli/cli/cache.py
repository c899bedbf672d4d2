"""``transcribe cache list|clear``: the downloaded model weights on this machine."""

from __future__ import annotations

import json
import shutil
import sys
from typing import Annotated, Any

import typer

from transcribe_cli.cli.console import get_state
from transcribe_cli.errors import TranscribeError

app = typer.Typer(
    help="Downloaded model weights: list them, or delete some or all.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _scan():
    """huggingface_hub's scan of our Hub cache, or ``None`` when nothing was downloaded yet."""
    from huggingface_hub import scan_cache_dir

    from transcribe_cli.weights.hub import hub_cache_dir

    folder = hub_cache_dir()
    if not folder.is_dir():
        return None
    return scan_cache_dir(folder)


def _users(registry) -> dict[tuple[str, str], list[Any]]:
    """(repo, filename) → registered specs whose weights are that file."""
    users: dict[tuple[str, str], list[Any]] = {}
    for spec in registry.specs("model"):
        source = spec.weights
        if source.hub_repo and source.filename:
            users.setdefault((source.hub_repo, source.filename), []).append(spec)
    return users


def cached_rows(registry) -> list[dict[str, Any]]:
    """One row per cached file: repository, revision, file, size, models using it, path."""
    scan = _scan()
    if scan is None:
        return []
    users = _users(registry)
    rows = []
    for repo in sorted(scan.repos, key=lambda r: r.repo_id):
        for revision in sorted(repo.revisions, key=lambda r: r.commit_hash):
            for file in sorted(revision.files, key=lambda f: f.file_name):
                relative = file.file_path.relative_to(revision.snapshot_path).as_posix()
                models = [
                    spec.name for spec in users.get((repo.repo_id, relative), [])
                    if spec.weights.revision in (None, revision.commit_hash, *revision.refs)
                ]
                rows.append({
                    "repo": repo.repo_id,
                    "revision": revision.commit_hash,
                    "refs": sorted(revision.refs),
                    "file": relative,
                    "size_bytes": file.size_on_disk,
                    "models": models,
                    "path": str(file.file_path),
                })
    return rows


@app.command("list")
def list_cache(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List downloaded weights with their size and the models that use them."""
    from rich.table import Table

    from transcribe_cli.cli.models import human_size
    from transcribe_cli.weights.hub import hub_cache_dir
    from transcribe_cli.registry import get_registry

    state = get_state(ctx)
    rows = cached_rows(get_registry(state.plugins_dirs))
    total = sum(row["size_bytes"] for row in rows)
    if as_json:
        print(json.dumps({"cache_dir": str(hub_cache_dir()), "total_bytes": total, "files": rows}, indent=2))
        return
    if not rows:
        state.info(f"no downloaded weights in {hub_cache_dir()}")
        return
    table = Table(show_edge=False)
    for column in ("repository", "revision", "file", "size", "models"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for row in rows:
        table.add_row(row["repo"], row["revision"][:12], row["file"], human_size(row["size_bytes"]),
                      ", ".join(row["models"]) or "-")
    state.out.print(table)
    state.out.print(f"{len(rows)} file(s), {human_size(total)} in {hub_cache_dir()}", highlight=False)


def _revisions_for(target: str, registry, scan) -> list[str]:
    """Commit hashes of the cached revisions holding ``target``'s weights."""
    from transcribe_cli.weights.hub import HubFile
    from transcribe_cli.weights.uri import is_hf_uri, parse_hf_uri

    if is_hf_uri(target):
        ref = parse_hf_uri(target)
    else:
        spec = registry.model(target)
        if not spec.weights.hub_repo:
            raise TranscribeError(f"model {target!r} downloads nothing",
                                  "its weights are bundled with its package" if spec.weights.bundled else None)
        ref = HubFile.from_source(spec.weights)
    found = []
    for repo in scan.repos if scan is not None else ():
        if repo.repo_id != ref.repo_id:
            continue
        for revision in repo.revisions:
            wanted = ref.revision or "main"
            if wanted in (revision.commit_hash, *revision.refs):
                found.append(revision.commit_hash)
    return found


@app.command("clear")
def clear(
    ctx: typer.Context,
    targets: Annotated[list[str] | None, typer.Argument(
        help="Model names or hf:// URIs whose downloaded weights to delete (default: all).",
        show_default=False)] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before deleting everything.")] = False,
) -> None:
    """Delete downloaded weights: those of the named models, or all of them."""
    from transcribe_cli.cli.models import human_size
    from transcribe_cli.weights.hub import hub_cache_dir
    from transcribe_cli.registry import get_registry

    state = get_state(ctx)
    folder = hub_cache_dir()
    if not targets:
        if not folder.exists():
            state.info(f"nothing to delete: {folder} does not exist")
            return
        if not yes:
            if not sys.stdin.isatty():
                raise TranscribeError(f"this deletes every downloaded model in {folder}", "pass --yes to confirm")
            typer.confirm(f"Delete every downloaded model in {folder}?", abort=True)
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
        shutil.rmtree(folder)
        state.info(f"deleted {folder} ({human_size(size)})")
        return
    registry = get_registry(state.plugins_dirs)
    scan = _scan()
    revisions: list[str] = []
    for target in targets:
        found = _revisions_for(target, registry, scan)
        if not found:
            state.info(f"{target}: not in the cache")
        revisions.extend(r for r in found if r not in revisions)
    if revisions:
        strategy = scan.delete_revisions(*revisions)
        strategy.execute()
        state.info(f"deleted {len(revisions)} cached revision(s), {human_size(strategy.expected_freed_size)}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="cache")
