"""``transcribe run`` (the default command): audio files and folders → MIDI/CSV/JSON."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Optional

import typer

from transcribe_cli.cli.console import get_state
from transcribe_cli.errors import TranscribeError

DEFAULT_MODEL = "piano"


def _format(fmt: Optional[str], output: Optional[str]) -> str:
    """``--format`` if given, else the format ``-o``'s suffix names, else MIDI (CSV for
    ``-o -``); a ``--format`` that contradicts ``-o``'s suffix is an error."""
    from transcribe_cli.errors import OutputError
    from transcribe_cli.io.outputs import FORMATS, note_file_format
    from transcribe_cli.planning import is_stdout

    named = note_file_format(output) if output is not None and not is_stdout(output) else None
    if fmt:
        fmt = fmt.lower().lstrip(".")
        fmt = "mid" if fmt == "midi" else fmt
        if fmt not in FORMATS:
            raise TranscribeError(f"unknown format {fmt!r}", f"use one of {', '.join(FORMATS)}")
        if named is not None and named != fmt:
            raise OutputError(f"--format {fmt} does not match -o {output} (a .{named} file)",
                              f"drop --format, or name the output .{fmt}")
        return fmt
    return named or ("csv" if is_stdout(output) else "mid")


def output_options(fmt: str, jobs: int, *, tempo: str, quantize: Optional[str], pedal: str, split_hands: bool,
                   preview: Optional[str], sonify: Optional[str]):
    """The writing options of ``run``, checked before any work."""
    from transcribe_cli.quantize import parse_grid
    from transcribe_cli.tempo import parse_tempo
    from transcribe_cli.notes import PEDAL_MODES
    from transcribe_cli.writing import OutputOptions

    if pedal not in PEDAL_MODES:
        raise TranscribeError(f"unknown --pedal {pedal!r}", f"use one of {', '.join(PEDAL_MODES)}")
    if fmt == "musicxml":
        from transcribe_cli.notation import require_music21

        require_music21()
    if fmt == "png" or preview:
        from transcribe_cli.evaluation.plots import require_matplotlib

        require_matplotlib()
    if sonify:
        from transcribe_cli.rendering import fluidsynth_executable, resolve_soundfont

        fluidsynth_executable()
        resolve_soundfont()
    folder = jobs > 1
    for name, value, suffix in (("--preview", preview, ".png"), ("--sonify", sonify, ".wav")):
        if value and not folder and not value.lower().endswith(suffix):
            raise TranscribeError(f"{name} {value}: name a {suffix} file for one input", f"e.g. {name} out{suffix}")
    return OutputOptions(tempo=parse_tempo(tempo), pedal=pedal, quantize=parse_grid(quantize) if quantize else None,
                         split_hands=split_hands, preview=preview, sonify=sonify, side_folder=folder)


def run(
    ctx: typer.Context,
    inputs: Annotated[list[Path], typer.Argument(help="Audio files and/or folders (searched recursively).",
                                                 show_default=False)],
    output: Annotated[Optional[str], typer.Option(
        "--output", "-o", help="Output file (one input; .mid/.csv/.json), folder (several inputs, or ending in /), "
        "or - for the note list on stdout. Default: beside each input.")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Model name (see `transcribe models`).")] = DEFAULT_MODEL,
    decoder: Annotated[Optional[str], typer.Option(
        help="Decoder name (default: the model's own).")] = None,
    option: Annotated[Optional[list[str]], typer.Option(
        "--option", "-O", help="Decoder/model option key=value (repeatable), e.g. -O onset_threshold=0.6; "
        "`transcribe models info NAME` lists a model's options and their effective defaults.")] = None,
    weights: Annotated[Optional[str], typer.Option(
        help="Use this weights file (a path or hf://owner/repo@rev/file) instead of the model's own.")] = None,
    offline: Annotated[bool, typer.Option(
        "--offline", help="Never download: use bundled or cached weights only (same as HF_HUB_OFFLINE=1).")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    runtime: Annotated[str, typer.Option(
        "--runtime", help="auto: on the CPU, numpy (no torch) for a model written in numpy (nmf), onnxruntime "
        "(no torch) where the model ships an ONNX graph of its weights (piano), else torch; torch; onnx or "
        "numpy (an error where it cannot).")] = "auto",
    fmt: Annotated[Optional[str], typer.Option(
        "--format", "-f", help="mid, csv, json, musicxml (notation, quantized; needs the notation extra) or png "
        "(a piano roll) (default: from -o's suffix, else mid).")] = None,
    tempo: Annotated[str, typer.Option(
        "--tempo", help="auto: track beats and bars and write a tempo map and time signature (note times stay "
        "exact); a BPM such as 96: that fixed tempo; none: a plain 120 BPM grid.")] = "auto",
    quantize: Annotated[Optional[str], typer.Option(
        "--quantize", metavar="1/N", help="Snap onsets and durations to a grid of the beat: 1/16, 1/8, or "
        "triplets 1/12, 1/24 (for notation; off by default).")] = None,
    pedal: Annotated[str, typer.Option(
        "--pedal", help="cc: sustain pedal as MIDI CC64 events; extend: notes lengthened over the pedal, no CC; "
        "none: neither.")] = "cc",
    split_hands: Annotated[bool, typer.Option(
        "--split-hands", help="Left and right hand as two MIDI tracks / two staves (a heuristic: on POP909, 98% "
        "of melody notes go right and 98% of accompaniment below middle C left).")] = False,
    preview: Annotated[Optional[str], typer.Option(
        "--preview", metavar="PNG", help="Also draw a piano roll: a .png file (one input) or a folder, e.g. --preview roll.png.")] = None,
    sonify: Annotated[Optional[str], typer.Option(
        "--sonify", metavar="WAV", help="Also render the result with FluidSynth to listen to: a .wav file "
        "(one input) or a folder, e.g. --sonify check.wav.")] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help=(
        "Files transcribed in parallel (at most one per usable CPU core and per 350 MB of free memory)."))] = 1,
    keep_extension: Annotated[bool, typer.Option(
        "--keep-extension", help="Name outputs take.wav.mid instead of take.mid (when take.wav and take.mp3 "
        "would collide).")] = False,
    skip_existing: Annotated[bool, typer.Option(
        "--skip-existing/--overwrite", help="Skip inputs whose output already exists.")] = False,
    shard: Annotated[Optional[str], typer.Option(
        "--shard", metavar="I/N", help="Only shard I of N (0 ≤ I < N), chosen by a hash of each input's path "
        "relative to its folder: for Slurm arrays, Kubernetes jobs, GNU parallel.")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Skip files that the run manifest in -o FOLDER says were done by this model, "
        "if their output still parses.")] = False,
    executor: Annotated[str, typer.Option(
        "--executor", help="local (--jobs worker processes) or ray (--jobs Ray actors, on a cluster with "
        "--ray-address; needs Ray: pip install 'transcribe-cli\\[ray]').")] = "local",
    ray_address: Annotated[Optional[str], typer.Option(
        "--ray-address", help="Ray cluster: auto, HEAD:6379 or ray://HEAD:10001 (default: $RAY_ADDRESS, "
        "else a new local one).")] = None,
    ray_cpus: Annotated[float, typer.Option("--ray-cpus", help="CPUs per Ray worker (its torch threads).")] = 1.0,
    ray_gpus: Annotated[float, typer.Option("--ray-gpus", help="GPUs per Ray worker (0.5: two per GPU).")] = 0.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show details and tracebacks.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print errors.")] = False,
) -> None:
    """Transcribe audio files or folders into MIDI (or CSV/JSON note lists)."""
    state = get_state(ctx)
    from transcribe_cli.batch import JobResult, TranscriberConfig, check_writable, plan_jobs, run_jobs
    from transcribe_cli.cli.progress import BatchReporter
    from transcribe_cli.manifest import RunManifest, run_identity
    from transcribe_cli.runtime import check_runtime
    from transcribe_cli.sharding import parse_shard, select_shard
    from transcribe_cli.signals import exit_code, interrupts_as_exceptions
    from transcribe_cli.workers import cap_workers

    fmt = _format(fmt, output)
    if executor not in ("local", "ray"):
        raise TranscribeError(f"unknown executor {executor!r}", "use --executor local or --executor ray")
    if executor == "ray":  # missing Ray is one line, before any model is built
        from transcribe_cli.ray_executor import import_ray

        import_ray()
    shard_spec = parse_shard(shard) if shard is not None else None
    plan = plan_jobs(inputs, output, fmt, keep_extension=keep_extension, note=state.info)
    if shard_spec is not None:
        everything, plan = len(plan), select_shard(plan, shard_spec, inputs)
        state.info(f"shard {shard_spec}: {len(plan)} of {everything} files")
        if not plan:
            return
    check_writable(job.target for job in plan)
    workers, lowered = cap_workers(jobs, len(plan)) if executor == "local" else (jobs, None)
    if lowered:
        state.info(f"note: --jobs {jobs} lowered to {lowered}")
    config = TranscriberConfig(
        model=model,
        decoder=decoder,
        options=tuple(option or ()),
        device=device,
        runtime=check_runtime(runtime),
        weights=weights,
        plugins_dirs=state.plugins_dirs,
        offline=True if offline else None,  # passed down to every worker, not through os.environ
        output=output_options(fmt, len(plan), tempo=tempo, quantize=quantize, pedal=pedal,
                              split_hands=split_hands, preview=preview, sonify=sonify),
    )
    # Unknown names and bad options fail here, before any file is touched. One local worker:
    # this process transcribes, so it builds the model; several (or Ray actors) build their
    # own, and this one only checks (no model, no torch).
    in_process = executor == "local" and workers == 1
    transcriber = config.build() if in_process else config.resolve()
    identity = run_identity(transcriber, fmt, config.output)
    manifest = RunManifest.for_output(output, plan, identity=identity, inputs=inputs, shard=shard_spec)
    if resume and manifest.folder is None:
        raise TranscribeError("--resume needs -o FOLDER: the run manifest is kept there", "add -o OUTPUT_FOLDER")
    done, todo = manifest.split_done(plan) if resume else ([], plan)
    if done:
        state.info(f"resuming: {len(done)} of {len(plan)} files already done (run manifest in {manifest.folder})")
    reporter = BatchReporter(len(plan), state, stream_errors=True)
    stopped: KeyboardInterrupt | None = None
    try:
        with interrupts_as_exceptions(), reporter, manifest:
            for job in done:
                reporter.update(JobResult(job, "skipped"))
            if executor == "ray":
                from transcribe_cli.ray_executor import run_jobs_on_ray

                run_jobs_on_ray(
                    todo, config, fmt=fmt, workers=workers, address=ray_address, cpus_per_worker=ray_cpus,
                    gpus_per_worker=ray_gpus, skip_existing=skip_existing, expected=identity,
                    on_result=manifest.recording(reporter.update), verbose=state.verbose,
                )
            else:
                run_jobs(
                    todo, config, fmt=fmt, workers=workers, skip_existing=skip_existing,
                    on_result=manifest.recording(reporter.update), transcriber=transcriber if in_process else None,
                    verbose=state.verbose,
                )
    except KeyboardInterrupt as exc:
        stopped = exc
    results = reporter.results
    failed = [r for r in results if r.status == "failed"]
    if len(plan) > 1 or state.verbose or stopped is not None:
        reporter.summary(results, state.err if output == "-" else state.out if not state.quiet else None)
    if len(plan) == 1 and results and results[0].status == "ok":
        r = results[0]
        where = "stdout" if output == "-" else str(r.job.target)
        state.info(f"{r.job.source} → {where} ({r.notes} notes, {r.audio_seconds:.1f} s of audio "
             f"in {r.seconds:.1f} s)")
    if stopped is not None:
        state.error(reporter.interrupted(str(stopped) or "Ctrl-C"))
        raise typer.Exit(exit_code(stopped))
    if failed:
        raise typer.Exit(1)


def _interruptible(command):
    """``command`` with Ctrl-C/SIGTERM reported, whenever they come: the batch reports its own
    (with the summary); one before it — while the model loads — is one line here, with the
    shell's exit code (Typer would otherwise exit 130 without a word, and SIGTERM kill outright)."""

    @functools.wraps(command)
    def interruptible(*args, **kwargs):
        from transcribe_cli.signals import exit_code, interrupts_as_exceptions

        try:
            with interrupts_as_exceptions():
                return command(*args, **kwargs)
        except KeyboardInterrupt as exc:
            get_state(kwargs["ctx"]).error(
                f"interrupted by {exc or 'Ctrl-C'} before the batch started: nothing was transcribed")
            raise typer.Exit(exit_code(exc)) from None

    return interruptible


def register(app: typer.Typer) -> None:
    app.command("run")(_interruptible(run))
