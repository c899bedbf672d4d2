"""``transcribe eval``: score models (and existing transcriptions) on a labelled dataset.

    transcribe eval --dataset maestro --root maestro-v3.0.0 --split test -m nmf -m other
    transcribe eval --dataset pairs --root recordings/ -m nmf --json report.json --plot plots/
    transcribe eval --dataset synth --split validation --limit 20 --sweep onset_threshold=0.2:0.8:0.05

Every model transcribes every recording through the same pipeline as ``transcribe run``
(``--decoder``, ``--option``, ``--device``, ``--jobs``); the notes are scored with mir_eval
(:mod:`transcribe_cli.evaluation.scoring`). ``--decoder`` and ``--option`` apply to every model,
or to one when prefixed with its ``--model`` name and a colon (``-O nmf:threshold=0.4``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from transcribe_cli.cli.console import State, get_state
from transcribe_cli.errors import OptionError, OutputError, TranscribeError

DEFAULT_MODEL = "piano"
#: Failed files listed per entry before "... and N more".
MAX_FAILURE_LINES = 20


# -- argument helpers -------------------------------------------------------------------

def split_scope(text: str) -> tuple[str | None, str]:
    """``"nmf:threshold=0.4"`` → ``("nmf", "threshold=0.4")``; ``"threshold=0.4"`` →
    ``(None, ...)``. The scope is everything before the last ``:`` of the part before
    ``=`` (so ``hf://owner/repo/file.pt:threshold=0.4`` works)."""
    head, sep, tail = text.partition("=")
    scope, colon, key = head.rpartition(":")
    if not colon:
        return None, text
    return scope, f"{key}{sep}{tail}"


def scoped_values(values: list[str], labels: list[str], flag: str) -> dict[str | None, list[str]]:
    """Group ``values`` by scope (``None``: every model); unknown scopes are an error."""
    grouped: dict[str | None, list[str]] = {}
    for text in values:
        scope, rest = split_scope(text) if flag != "--decoder" else _decoder_scope(text)
        if scope is not None and scope not in labels:
            raise OptionError(
                f"{flag} {text!r} names model {scope!r}, which is not one of the --model values",
                f"models: {', '.join(labels) or 'none'}",
            )
        grouped.setdefault(scope, []).append(rest)
    return grouped


def _decoder_scope(text: str) -> tuple[str | None, str]:
    scope, colon, name = text.rpartition(":")
    return (scope, name) if colon else (None, text)


def dataset_options(spec: Any, pairs: list[str], limit: Optional[int]) -> dict[str, Any]:
    """``--dataset-option key=value`` pairs typed by the dataset's declared options."""
    from transcribe_cli.options import coerce, split_pair

    options: dict[str, Any] = {}
    for text in pairs:
        key, value = split_pair(text)
        if key not in spec.options:
            accepted = ", ".join(sorted(spec.options)) or "none"
            raise OptionError(f"dataset {spec.name!r} has no option {key!r}", f"accepted: {accepted}")
        options[key] = coerce(key, value, spec.options[key])
    if limit is not None:
        if "limit" not in spec.options:
            raise OptionError(f"dataset {spec.name!r} does not support --limit")
        options["limit"] = limit
    return options


def check_output_file(path: Optional[Path], flag: str) -> None:
    if path is None:
        return
    if path.is_dir():
        raise OutputError(f"{flag} {path} is a folder", f"give a file name, e.g. {path / 'eval'}{path.suffix or ''}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create folder {path.parent} for {flag}: {exc.strerror or exc}") from None


def check_output_dir(path: Optional[Path], flag: str) -> None:
    if path is None:
        return
    if path.exists() and not path.is_dir():
        raise OutputError(f"{flag} {path} is a file, not a folder", "give a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {flag} folder {path}: {exc.strerror or exc}") from None


def write_text(path: Path, text: str) -> None:
    from transcribe_cli.io.fileio import atomic_write

    with atomic_write(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)


# -- building the entries -----------------------------------------------------------------

def build_entries(
    models: list[str],
    estimates: list[Path],
    decoders: list[str],
    options: list[str],
    sweeps: list[str],
    device: str,
    registry: Any,
    plugins_dirs: tuple[str, ...] = (),
    runtime: str = "auto",
) -> tuple[list[Any], dict[str, Any], dict[str, dict[str, Any]]]:
    """The report's entries, their built transcribers (label → Transcriber) and pipeline
    descriptions. Building every model here makes unknown names, bad options and bad sweep
    values fail before any file is touched."""
    from transcribe_cli.batch import TranscriberConfig
    from transcribe_cli.evaluation.run import Entry, check_grid, safe_folder_names
    from transcribe_cli.evaluation.sweep import SweepSpec, grid

    labels = list(models) + [str(p) for p in estimates]
    duplicated = sorted({x for x in labels if labels.count(x) > 1})
    if duplicated:
        raise OptionError(f"{duplicated[0]!r} is given twice", "name each model or folder once")
    for folder in estimates:
        if not folder.is_dir():
            raise TranscribeError(f"--estimates folder not found: {folder}", "pass a folder of .mid/.csv/.json files")
    if sweeps and not models:
        raise OptionError("--sweep needs at least one --model", "existing transcriptions cannot be re-decoded")
    by_decoder = scoped_values(decoders, models, "--decoder")
    by_option = scoped_values(options, models, "--option")
    for scope, names in by_decoder.items():
        if len(names) > 1:
            raise OptionError(f"--decoder is given {len(names)} times for {scope or 'every model'}", "give it once")
    specs = [SweepSpec.parse(text) for text in sweeps]
    folders = safe_folder_names(labels)

    entries, transcribers, pipelines = [], {}, {}
    for label, folder in zip(models, folders):
        decoder = (by_decoder.get(label) or by_decoder.get(None) or [None])[0]
        config = TranscriberConfig(
            model=label,
            decoder=decoder,
            options=tuple(by_option.get(None, []) + by_option.get(label, [])),
            device=device,
            runtime=runtime,
            plugins_dirs=plugins_dirs,
        )
        try:
            transcriber = config.build()
        except OptionError as exc:  # say which model, since options may apply to several
            raise OptionError(f"model {label!r}: {exc.message}", exc.hint) from None
        swept = {s.key for s in specs}
        given = {text.partition("=")[0].removeprefix("decoder.") for text in config.options}
        clash = sorted(swept & given)
        if clash:
            raise OptionError(f"{clash[0]!r} is both swept and set with --option", "drop one of them")
        points = grid(specs, transcriber.decoder_spec.options, transcriber.decoder_spec.name)
        check_grid(transcriber, points)
        entries.append(Entry(label, folder, config=config, grid=tuple(points)))
        transcribers[label] = transcriber
        pipelines[label] = describe_pipeline(transcriber, registry)
    for folder_path, folder in zip(estimates, folders[len(models):]):
        label = str(folder_path)
        entries.append(Entry(label, folder, estimates=folder_path))
        pipelines[label] = {"estimates": str(folder_path.resolve())}
    return entries, transcribers, pipelines


def describe_pipeline(transcriber: Any, registry: Any) -> dict[str, Any]:
    """``Transcriber.describe()`` plus the plugin that registered the model and its version."""
    description = dict(transcriber.describe())
    try:
        owner = registry.owner("model", transcriber.model_spec.name)
        description["plugin"] = owner
        description["plugin_version"] = registry.loaded.infos[owner].version
    except KeyError:
        pass
    description["weights_source"] = transcriber.model_spec.weights.describe()
    return description


# -- the command --------------------------------------------------------------------------

def eval_command(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Dataset: maestro, pairs, synth, or a plugin's.")],
    root: Annotated[Optional[Path], typer.Option(
        help="Dataset folder (maestro: the unpacked maestro-v3.0.0; pairs: audio with same-stem .mid; "
             "synth: MIDI files, default $TRANSCRIBE_MIDI_DIR).")] = None,
    split: Annotated[Optional[str], typer.Option(
        help="train, validation, test or all (default: the dataset's, e.g. test for maestro).")] = None,
    limit: Annotated[Optional[int], typer.Option(min=0, help="Evaluate at most this many recordings.")] = None,
    dataset_option: Annotated[Optional[list[str]], typer.Option(
        "--dataset-option", "-D", help="Dataset option key=value (repeatable), e.g. -D soundfont=FluidR3_GM.sf2.")] = None,
    model: Annotated[Optional[list[str]], typer.Option(
        "--model", "-m", help=f"Model to evaluate (repeatable; default {DEFAULT_MODEL} unless --estimates).")] = None,
    estimates: Annotated[Optional[list[Path]], typer.Option(
        help="Also score transcriptions made elsewhere: a folder of .mid/.csv/.json named like the "
             "dataset's recordings (repeatable).")] = None,
    decoder: Annotated[Optional[list[str]], typer.Option(
        help="Decoder for every model, or MODEL:DECODER for one (default: each model's own).")] = None,
    option: Annotated[Optional[list[str]], typer.Option(
        "--option", "-O", help="Decoder/model option key=value, or MODEL:key=value for one model (repeatable).")] = None,
    sweep: Annotated[Optional[list[str]], typer.Option(
        help="Try a decoder option over values: key=start:stop:step or key=a,b,c (repeatable: a grid). "
             "Activations are computed once per file.")] = None,
    sweep_metric: Annotated[str, typer.Option(
        help="Metric the sweep maximises: note_f1 (onset_f1), note_offset_f1, note_offset_velocity_f1, "
             "frame_f1, ...")] = "note_f1",
    sustain_pedal: Annotated[bool, typer.Option(
        "--sustain-pedal/--no-sustain-pedal", help="Extend reference offsets over the sustain pedal (MAESTRO papers); models "
        "that predict the pedal are extended over their own pedal. --no-sustain-pedal scores key-release ends.")]
    = True,
    seconds: Annotated[float, typer.Option(
        "--seconds", min=0.0, help="Score only the first N seconds of each recording (0 = whole files).")] = 0.0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    runtime: Annotated[str, typer.Option(
        "--runtime", help="auto (numpy for a numpy model such as nmf, onnxruntime where the model ships an ONNX "
        "graph, else torch), torch, onnx or numpy.")]
    = "auto",
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Recordings transcribed in parallel.")] = 1,
    json_path: Annotated[Optional[Path], typer.Option(
        "--json", help="Write per-file and aggregate scores, options and versions to this JSON file.")] = None,
    csv_path: Annotated[Optional[Path], typer.Option("--csv", help="Write per-file and aggregate scores as CSV.")] = None,
    save_midi: Annotated[Optional[Path], typer.Option(
        help="Keep the transcriptions: DIR/<model>/<recording>.mid.")] = None,
    plot: Annotated[Optional[Path], typer.Option(
        help="Write PNGs: DIR/<model>/files/<recording>.png piano rolls and DIR/<model>/per_pitch.png "
             "(needs matplotlib).")] = None,
    plot_seconds: Annotated[float, typer.Option(
        min=0, help="Piano rolls show the first this many seconds (0: whole recordings).")] = 30.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show details and tracebacks.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print errors.")] = False,
) -> None:
    """Score models on a labelled dataset with mir_eval: frame, note, note+offset, note+offset+velocity.

    transcribe eval -d maestro --root maestro-v3.0.0 -m nmf -m other --json report.json

    transcribe eval -d pairs --root recordings/ -m nmf --plot plots/

    transcribe eval -d synth --split validation --limit 20 --sweep onset_threshold=0.2:0.8:0.05
    """
    state = get_state(ctx)
    from transcribe_cli.cli.progress import BatchReporter
    from transcribe_cli.evaluation.aggregate import build_reports
    from transcribe_cli.evaluation.report import (
        best_lines,
        csv_text,
        json_text,
        kind_table,
        metrics_table,
        report_document,
        sweep_table,
    )
    from transcribe_cli.evaluation.run import EvalSettings, named, plan, run_evaluation
    from transcribe_cli.evaluation.scoring import metric_key
    from transcribe_cli.registry import get_registry
    from transcribe_cli.runtime import check_runtime

    metric = metric_key(sweep_metric)
    models = list(model or ([] if estimates else [DEFAULT_MODEL]))
    sweeps = list(sweep or ())
    if sweeps and (plot or save_midi):
        raise OptionError(
            "--sweep cannot be combined with --plot or --save-midi",
            "tune with --sweep first, then rerun with --option KEY=BEST and --plot/--save-midi",
        )
    if plot is not None:
        from transcribe_cli.evaluation.plots import require_matplotlib

        require_matplotlib()
    for path, flag in ((json_path, "--json"), (csv_path, "--csv")):
        check_output_file(path, flag)
    for path, flag in ((save_midi, "--save-midi"), (plot, "--plot")):
        check_output_dir(path, flag)

    registry = get_registry(state.plugins_dirs)
    spec = registry.dataset(dataset)
    ds_options = dataset_options(spec, list(dataset_option or ()), limit)
    opened = spec.factory(root, split, **ds_options) if split else spec.factory(root, **ds_options)
    items = [named(item, root) for item in opened]
    if not items:
        raise TranscribeError(f"dataset {dataset!r} has no recordings here", "check --root and --split")
    entries, transcribers, pipelines = build_entries(
        models, list(estimates or ()), list(decoder or ()), list(option or ()), sweeps, device, registry,
        state.plugins_dirs, runtime=check_runtime(runtime),
    )
    if jobs > 1:
        transcribers = {}  # workers build their own; free this process's copies
    state.info(f"evaluating {', '.join(e.label for e in entries)} on {len(items)} recording(s) of {dataset}"
         + (f" ({split})" if split else ""))

    settings = EvalSettings(sustain_pedal=sustain_pedal, save_midi=save_midi, keep_notes=plot is not None,
                            max_seconds=seconds)
    jobs_list = plan(items, entries)
    with BatchReporter(len(jobs_list), state) as reporter:
        results = run_evaluation(
            jobs_list, settings, workers=jobs, transcribers=transcribers, on_result=reporter.update
        )
    reports = build_reports(entries, results, [item.name for item in items], metric, pipelines)
    for report in reports:
        if len(report.summaries) > 1 and "decoder_options" in report.pipeline:
            report.pipeline["decoder_options"] = {**report.pipeline["decoder_options"], **report.summary.point}

    _report_failures(reports, state)
    title = f"transcribe eval: {dataset}" + (f" {split}" if split else "") + f", {len(items)} recording(s)"
    if not state.quiet:
        if sweeps:
            state.out.print(sweep_table(reports, metric))
            for line in best_lines(reports, metric):
                state.out.print(line, highlight=False)
            title += ", at each model's best sweep point"
        state.out.print(metrics_table(reports, title))
        if any(r.summary.n_ref for r in reports):
            state.out.print(kind_table(reports))
    dataset_info = {
        "name": dataset,
        "root": str(root.resolve()) if root else None,
        "split": split,
        "options": ds_options,
        "recordings": len(items),
        "sustain_pedal": sustain_pedal,
        "seconds": seconds,
    }
    sweep_info = {"options": _swept_values(entries), "metric": metric} if sweeps else None
    if json_path is not None:
        write_text(json_path, json_text(report_document(reports, dataset=dataset_info, sweep=sweep_info)))
        state.info(f"wrote {json_path}")
    if csv_path is not None:
        write_text(csv_path, csv_text(reports))
        state.info(f"wrote {csv_path}")
    if plot is not None:
        count = write_plots(reports, plot, plot_seconds)
        state.info(f"wrote {count} plot(s) to {plot}")
    if save_midi is not None:
        state.info(f"transcriptions saved in {save_midi}")
    if any(report.failed for report in reports):
        raise typer.Exit(1)


def _swept_values(entries) -> dict[str, list[Any]]:
    values: dict[str, list[Any]] = {}
    for entry in entries:
        for point in entry.grid:
            for key, value in point.items():
                if value not in values.setdefault(key, []):
                    values[key].append(value)
    return values


def _report_failures(reports, state: State) -> None:
    for report in reports:
        failed = report.failed
        for result in failed[:MAX_FAILURE_LINES]:
            state.error(f"{report.entry.label}: {result.job.item.name}: {result.error}")
        if len(failed) > MAX_FAILURE_LINES:
            state.error(f"{report.entry.label}: ... and {len(failed) - MAX_FAILURE_LINES} more failed recordings "
                  "(all are listed in --json)")


def write_plots(reports, folder: Path, max_seconds: float) -> int:
    """Piano rolls for every scored file and a per-pitch plot per entry; returns the count."""
    from transcribe_cli.evaluation.plots import save_per_pitch, save_piano_roll

    count = 0
    for report in reports:
        base = folder / report.entry.folder
        for result in report.ok:
            m = result.points[0].metrics
            title = (f"{report.entry.label} — {result.job.item.name}: note F1 {m['onset_f1']:.3f} "
                     f"(P {m['onset_precision']:.3f}, R {m['onset_recall']:.3f}), frame F1 {m['frame_f1']:.3f}")
            target = base / "files" / result.job.output(".png")
            save_piano_roll(result.ref_notes or [], result.est_notes or [], target, title=title,
                            max_seconds=max_seconds)
            count += 1
        if report.ok:
            s = report.summary
            title = (f"{report.entry.label}: per-pitch note-onset precision/recall over {s.files} recording(s) "
                     f"(note F1 {s.mean['onset_f1']:.3f} mean over files)")
            save_per_pitch(s.pitch_counts, base / "per_pitch.png", title=title)
            count += 1
    return count


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
