"""``transcribe run`` (the default command): audio files and folders → MIDI/CSV/JSON."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from transcribe_cli.cli.console import STATE, error, info, out
from transcribe_cli.errors import TranscribeError

DEFAULT_MODEL = "nmf"


def _format(fmt: Optional[str], output: Optional[Path]) -> str:
    """``--format`` if given, else the format ``-o``'s suffix names, else MIDI."""
    from transcribe_cli.outputs import FORMATS, note_file_format

    if fmt:
        fmt = fmt.lower().lstrip(".")
        fmt = "mid" if fmt == "midi" else fmt
        if fmt not in FORMATS:
            raise TranscribeError(f"unknown format {fmt!r}", f"use one of {', '.join(FORMATS)}")
        return fmt
    return (note_file_format(output) if output is not None else None) or "mid"


def run(
    inputs: Annotated[list[Path], typer.Argument(help="Audio files and/or folders (searched recursively).",
                                                 show_default=False)],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Output file (one input) or folder. Default: beside each input.")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Model name (see `transcribe models`).")] = DEFAULT_MODEL,
    decoder: Annotated[Optional[str], typer.Option(
        help="Decoder name (default: the model's own).")] = None,
    option: Annotated[Optional[list[str]], typer.Option(
        "--option", "-O", help="Decoder/model option key=value (repeatable), e.g. -O threshold=0.4.")] = None,
    weights: Annotated[Optional[str], typer.Option(
        help="Use this weights file (a path or hf://owner/repo@rev/file) instead of the model's own.")] = None,
    offline: Annotated[bool, typer.Option(
        "--offline", help="Never download: use bundled or cached weights only (same as HF_HUB_OFFLINE=1).")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    fmt: Annotated[Optional[str], typer.Option(
        "--format", "-f", help="mid, csv or json (default: from -o's suffix, else mid).")] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Files transcribed in parallel.")] = 1,
    skip_existing: Annotated[bool, typer.Option(
        "--skip-existing/--overwrite", help="Skip inputs whose output already exists.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show details and tracebacks.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print errors.")] = False,
) -> None:
    """Transcribe audio files or folders into MIDI (or CSV/JSON note lists)."""
    from transcribe_cli.batch import TranscriberConfig, check_writable, plan_jobs, run_jobs
    from transcribe_cli.cli.progress import BatchReporter

    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"  # read at call time, inherited by worker processes
    STATE.verbose = STATE.verbose or verbose
    STATE.quiet = (STATE.quiet or quiet) and not STATE.verbose
    fmt = _format(fmt, output)
    plan = plan_jobs(inputs, output, fmt)
    check_writable(job.target for job in plan)
    config = TranscriberConfig(
        model=model,
        decoder=decoder,
        options=tuple(option or ()),
        device=device,
        weights=weights,
        plugins_dirs=STATE.plugins_dirs,
    )
    # Build once here: unknown names and bad options fail before any file is touched.
    transcriber = config.build()
    with BatchReporter(len(plan), quiet=STATE.quiet) as reporter:
        results = run_jobs(
            plan, config, fmt=fmt, workers=jobs, skip_existing=skip_existing,
            on_result=reporter.update, transcriber=transcriber if jobs == 1 else None,
        )
    failed = [r for r in results if r.status == "failed"]
    for result in failed:
        error(f"{result.job.source}: {result.error}")
    if len(plan) > 1 or STATE.verbose:
        reporter.summary(results, out if not STATE.quiet else None)
    elif results and results[0].status == "ok":
        r = results[0]
        info(f"{r.job.source} → {r.job.target} ({r.notes} notes, {r.audio_seconds:.1f} s of audio "
             f"in {r.seconds:.1f} s)")
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
