"""Running an evaluation: every (recording, entry) pair, scored, in this process or in workers.

An *entry* is one column of the report: a model run through the normal pipeline
(:class:`~transcribe_cli.batch.TranscriberConfig` → :class:`~transcribe_cli.pipeline.Transcriber`)
or a folder of transcriptions made elsewhere. For a model, activations are computed once
per file and decoded once per point of the entry's sweep grid (one point, the configured
options, without ``--sweep``); every decoding is scored with
:func:`transcribe_cli.evaluation.scoring.score`.

Like ``transcribe run``, a failure never stops the evaluation: a file that cannot be read,
a model that raises, or a missing transcription ends that one job as ``failed`` with a
one-line reason. Jobs are ordered recording-major (every entry on the first recording,
then the next), so one process loads each recording once; with ``workers > 1`` they run
in spawned processes (``fork`` + torch threads is unsafe), each building its models once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from transcribe_cli.batch import TranscriberConfig
from transcribe_cli.errors import TranscribeError
from transcribe_cli.workers import run_tasks, threads_per_worker
from transcribe_cli.notes import Note

#: Suffixes tried, in order, for a transcription in an ``--estimates`` folder.
ESTIMATE_SUFFIXES = (".mid", ".midi", ".json", ".csv")


@dataclass(frozen=True)
class Entry:
    """One report column: ``config`` (a model to run) or ``estimates`` (a folder of note
    files named like the dataset items). ``grid`` holds the decoder-option overrides of
    each sweep point; ``folder`` is the entry's directory name under ``--save-midi``/``--plot``."""

    label: str
    folder: str
    config: TranscriberConfig | None = None
    estimates: Path | None = None
    grid: tuple[Mapping[str, Any], ...] = ({},)


@dataclass(frozen=True)
class EvalSettings:
    """How every job is scored and what it keeps."""

    sustain_pedal: bool = True  # extend reference offsets over the sustain pedal
    save_midi: Path | None = None  # write each transcription to save_midi/<entry>/<item>.mid
    keep_notes: bool = False  # return reference and estimated notes (for plots)
    max_seconds: float = 0.0  # score only the first max_seconds of each recording; 0 = whole files


@dataclass(frozen=True)
class EvalJob:
    item: Any  # a dataset item: .name, .audio_path, .notes(sustain_pedal)
    entry: Entry
    stem: PurePosixPath | None = None  # output path without suffix (see output_stems)

    def output(self, suffix: str) -> PurePosixPath:
        """The job's output path below its entry's folder, with ``suffix``."""
        return with_suffix(self.stem, suffix) if self.stem is not None else relative_output(self.item.name, suffix)

    @property
    def source(self) -> Path:
        """The item's name as a path (what the progress bar shows)."""
        return Path(self.item.name)


@dataclass
class PointScore:
    """The scores of one decoding (one sweep point) of one file."""

    metrics: dict[str, float]
    pitch_counts: Any  # np.ndarray [128, 3]: tp, fp, fn (see eval_scoring.pitch_counts)
    n_est: int
    kind_counts: Any = None  # np.ndarray [len(NOTE_KINDS), 2]: notes, found (see eval_scoring.kind_counts)


@dataclass
class FileResult:
    job: EvalJob
    status: str  # "ok" | "failed"
    error: str | None = None
    points: list[PointScore] = field(default_factory=list)
    n_ref: int = 0
    audio_seconds: float = 0.0
    seconds: float = 0.0  # transcription time (activations + one decoding)
    ref_notes: list[Note] | None = None
    est_notes: list[Note] | None = None  # of the first point, when settings.keep_notes


def safe_folder_names(labels: Sequence[str]) -> list[str]:
    """Distinct file-system-safe folder names for entry labels (``hf://a/b`` → ``hf_a_b``)."""
    names: list[str] = []
    for label in labels:
        base = re.sub(r"[^A-Za-z0-9._+-]+", "_", label).strip("._") or "model"
        name, n = base, 2
        while name in names:
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    return names


def _safe_path(item_name: str) -> PurePosixPath:
    parts = [p for p in PurePosixPath(item_name.replace("\\", "/")).parts if p not in ("", ".", "..", "/")]
    return PurePosixPath(*parts) if parts else PurePosixPath("item")


def relative_output(item_name: str, suffix: str) -> PurePosixPath:
    """Where the output for ``item_name`` goes below an entry's folder: the item's relative
    path with ``suffix`` (``..`` and absolute parts are dropped, so nothing escapes)."""
    path = _safe_path(item_name)
    return path.with_suffix(suffix) if path.suffix else path.with_name(path.name + suffix)


def output_stems(names: Sequence[str]) -> dict[str, PurePosixPath]:
    """Each item's output path without suffix: its relative path minus its suffix, or, when
    two items would share that (``take.wav`` and ``take.flac``), with its suffix kept
    (``take.flac`` → ``take.flac.mid``), so no output overwrites another."""
    plain = {name: relative_output(name, "") for name in names}
    counts: dict[PurePosixPath, int] = {}
    for stem in plain.values():
        counts[stem] = counts.get(stem, 0) + 1
    return {name: (_safe_path(name) if counts[stem] > 1 else stem) for name, stem in plain.items()}


def with_suffix(stem: PurePosixPath, suffix: str) -> PurePosixPath:
    """``stem`` + ``suffix`` (``take.flac`` + ``.mid`` → ``take.flac.mid``)."""
    return stem.with_name(stem.name + suffix)


def decode_with(
    pipeline: Any, activations: Mapping[str, Any], overrides: Mapping[str, Any], pedals: Sequence[Any] = ()
) -> list[Note]:
    """Decode ``activations`` with the pipeline's decoder options updated by ``overrides``,
    and extend the notes over ``pedals`` (the sustain pedal a model predicted, when the
    references are pedal-extended: the MAESTRO convention on both sides)."""
    notes = pipeline.decode(activations, **overrides)
    if pedals:
        from transcribe_cli.io.midi import extend_over_pedal

        notes = extend_over_pedal(notes, pedals)
    return notes


def check_grid(transcriber: Any, grid: Sequence[Mapping[str, Any]]) -> None:
    """Decode empty activations at every grid point, so a bad swept value (out of range,
    wrong type) fails before any file is transcribed."""
    import numpy as np

    from transcribe_cli.errors import OptionError
    from transcribe_cli.evaluation.sweep import describe_point

    empty = {key: np.zeros((2, 88), dtype=np.float32) for key in transcriber.model_spec.outputs}
    for point in grid:
        if not point:
            continue
        try:
            decode_with(transcriber, empty, point)
        except TranscribeError as exc:
            raise OptionError(
                f"--sweep point {describe_point(point)} is not valid for model "
                f"{transcriber.model_spec.name!r}: {exc.message}",
                exc.hint,
            ) from None


def _score_points(ref: list[Note], decodings: list[list[Note]]) -> list[PointScore]:
    from transcribe_cli.evaluation.scoring import kind_counts, match_onsets, pitch_counts, score

    points = []
    for est in decodings:
        matches = match_onsets(ref, est)
        points.append(PointScore(score(ref, est), pitch_counts(ref, est, matches), len(est), kind_counts(ref, matches)))
    return points


class Worker:
    """Runs jobs in one process: builds each model once, keeps the last recording's audio
    and reference notes so consecutive entries on one recording load them once."""

    def __init__(self, settings: EvalSettings, transcribers: Mapping[str, Any] | None = None):
        self.settings = settings
        self.transcribers: dict[str, Any] = dict(transcribers or {})
        self._audio: tuple[Any, Any] = (None, None)
        self._reference: tuple[Any, Any] = (None, None)

    def transcriber(self, entry: Entry) -> Any:
        if entry.label not in self.transcribers:
            try:
                self.transcribers[entry.label] = entry.config.build()
            except Exception as exc:  # reported on each of its jobs; Ctrl-C and SIGTERM still stop the run
                self.transcribers[entry.label] = exc
        found = self.transcribers[entry.label]
        if isinstance(found, Exception):
            raise TranscribeError(f"model could not be built: {found}")
        return found

    def audio(self, item: Any, sample_rate: int) -> Any:
        from transcribe_cli.io.audio import load_audio

        key = (item.name, sample_rate)
        if self._audio[0] != key:
            self._audio = (None, None)  # free the previous recording first
            audio = load_audio(item.audio_path, sample_rate)
            if self.settings.max_seconds > 0:
                audio = audio[: int(round(self.settings.max_seconds * sample_rate))].copy()
            self._audio = (key, audio)
        return self._audio[1]

    def reference(self, item: Any) -> list[Note]:
        key = (item.name, self.settings.sustain_pedal)
        if self._reference[0] != key:
            from transcribe_cli.notes import clip_notes

            notes = list(item.notes(sustain_pedal=self.settings.sustain_pedal))
            self._reference = (key, clip_notes(notes, self.settings.max_seconds))
        return self._reference[1]

    def run(self, job: EvalJob) -> FileResult:
        start = time.perf_counter()
        try:
            result = self._run(job)
        except TranscribeError as exc:
            return FileResult(job, "failed", error=str(exc), seconds=time.perf_counter() - start)
        except Exception as exc:  # a bug in a model or decoder must not stop the other files
            return FileResult(
                job, "failed", error=f"unexpected {type(exc).__name__}: {exc}", seconds=time.perf_counter() - start
            )
        return result

    def _run(self, job: EvalJob) -> FileResult:
        entry, item = job.entry, job.item
        ref = self.reference(item)
        audio_seconds = 0.0
        if entry.estimates is not None:
            decodings = [read_estimate(entry.estimates, job, self.settings.sustain_pedal)]
            seconds = 0.0
        else:
            transcriber = self.transcriber(entry)
            audio = self.audio(item, transcriber.sample_rate)
            audio_seconds = len(audio) / transcriber.sample_rate
            start = time.perf_counter()
            activations = transcriber.activations(audio)
            # the pedal does not depend on the swept note-decoder options: decoded once
            pedals = transcriber.decode_pedals(activations) if self.settings.sustain_pedal else []
            decodings = [decode_with(transcriber, activations, entry.grid[0], pedals)]
            seconds = time.perf_counter() - start
            decodings += [decode_with(transcriber, activations, point, pedals) for point in entry.grid[1:]]
            del activations
        if self.settings.save_midi is not None and entry.estimates is None:
            from transcribe_cli.io.outputs import write_notes

            target = self.settings.save_midi / entry.folder / job.output(".mid")
            target.parent.mkdir(parents=True, exist_ok=True)
            write_notes(decodings[0], target, "mid")
        keep = self.settings.keep_notes
        return FileResult(
            job,
            "ok",
            points=_score_points(ref, decodings),
            n_ref=len(ref),
            audio_seconds=audio_seconds,
            seconds=seconds,
            ref_notes=ref if keep else None,
            est_notes=decodings[0] if keep else None,
        )


def read_estimate(folder: Path, job: EvalJob, sustain_pedal: bool) -> list[Note]:
    """The transcription of ``job``'s item in ``folder``: the job's output path (what
    ``--save-midi`` writes) or the item's relative path, with any note-file suffix of
    :data:`ESTIMATE_SUFFIXES`. MIDI estimates get the same pedal treatment as the references."""
    from transcribe_cli.io.outputs import read_notes

    candidates = [job.output(suffix) for suffix in ESTIMATE_SUFFIXES]
    candidates += [relative_output(job.item.name, suffix) for suffix in ESTIMATE_SUFFIXES]
    for candidate in dict.fromkeys(candidates):
        if (folder / candidate).is_file():
            return read_notes(folder / candidate, sustain_pedal=sustain_pedal)
    raise TranscribeError(
        f"no transcription of {job.item.name} in {folder} (looked for {candidates[0]} and .csv/.json)"
    )


# -- running ----------------------------------------------------------------------------

def _work(worker: Worker, job: EvalJob) -> FileResult:
    return worker.run(job)


@dataclass(frozen=True)
class NamedItem:
    """A dataset item without a ``name`` (a third-party dataset), given one by :func:`named`."""

    name: str
    item: Any

    @property
    def audio_path(self) -> Path:
        return self.item.audio_path

    def notes(self, sustain_pedal: bool = True) -> list[Note]:
        return self.item.notes(sustain_pedal=sustain_pedal)


def named(item: Any, root: Path | None = None) -> Any:
    """``item`` itself when it has a ``name``, else a :class:`NamedItem` named by its audio
    path relative to ``root`` (the dataset folder) when it lies below it."""
    if getattr(item, "name", None):
        return item
    path = Path(item.audio_path)
    try:
        name = path.resolve().relative_to(Path(root).resolve()).as_posix() if root else str(path)
    except ValueError:
        name = str(path)
    return NamedItem(name, item)


def plan(items: Sequence[Any], entries: Sequence[Entry]) -> list[EvalJob]:
    """Every (item, entry) pair, recording-major."""
    stems = output_stems([item.name for item in items])
    return [EvalJob(item, entry, stems[item.name]) for item in items for entry in entries]


def run_evaluation(
    jobs: Sequence[EvalJob],
    settings: EvalSettings,
    *,
    workers: int = 1,
    transcribers: Mapping[str, Any] | None = None,
    on_result: Callable[[FileResult], None] = lambda result: None,
) -> list[FileResult]:
    """Run ``jobs``; ``on_result`` is called in this process as each one finishes.

    ``transcribers`` (label → built :class:`Transcriber`) are reused when ``workers == 1``;
    worker processes build their own, with ``cpu_count // workers`` torch threads each.
    Results come back in completion order.
    """
    results: list[FileResult] = []

    def done(result: FileResult) -> None:
        results.append(result)
        on_result(result)

    workers = max(1, min(workers, len(jobs)))
    threads = threads_per_worker(workers)

    def threaded(entry: Entry) -> Entry:
        if entry.config is None or entry.config.threads:
            return entry
        return replace(entry, config=replace(entry.config, threads=threads))

    if workers > 1:  # each worker process builds its own models, with its share of the cores
        entries = {job.entry.label: threaded(job.entry) for job in jobs}
        jobs = [replace(job, entry=entries[job.entry.label]) for job in jobs]
    run_tasks(
        jobs, _work, workers=workers, setup=Worker, setup_args=(settings,),
        state=Worker(settings, transcribers) if workers == 1 else None, on_result=done,
        crashed=lambda job, exc: FileResult(job, "failed", error=f"worker crashed: {type(exc).__name__}: {exc}"),
    )
    return results
