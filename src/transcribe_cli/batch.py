"""Planning and running many transcriptions: folder scans, output paths, parallel workers.

A failed file never stops the batch: each job ends as ``ok``, ``skipped`` or ``failed``
with a one-line reason, and outputs are written atomically, so an interrupted batch leaves
only complete files behind.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable

from transcribe_cli.errors import TranscribeError
from transcribe_cli.workers import run_tasks, threads_per_worker

@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


@dataclass
class JobResult:
    job: Job
    status: str  # "ok" | "skipped" | "failed"
    notes: int = 0
    audio_seconds: float = 0.0
    seconds: float = 0.0
    error: str | None = None
    warnings: tuple[str, ...] = ()  # logged while this file was processed (noise, truncation, ...)
    detail: str | None = None  # the traceback of a failure, for --verbose


@dataclass(frozen=True)
class TranscriberConfig:
    """Everything a worker process needs to build its own :class:`Transcriber`."""

    model: str
    decoder: str | None = None
    options: tuple[str, ...] = ()
    device: str = "auto"
    weights: str | None = None
    plugins_dirs: tuple[str, ...] = ()
    threads: int | None = None
    #: ``--runtime``: auto, torch, onnx or numpy (:mod:`transcribe_cli.runtime`)
    runtime: str = "auto"
    #: ``--offline``: never download (``None``: as ``HF_HUB_OFFLINE`` says)
    offline: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: how the transcription is written (tempo, pedal, quantize, hands, side files):
    #: a :class:`transcribe_cli.writing.OutputOptions`, ``None`` for the defaults
    output: Any = None

    def resolve(self):
        """Names, options and weights checked, nothing built: what a parent process whose
        workers build their own transcribers needs (:mod:`transcribe_cli.resolution`)."""
        from transcribe_cli.registry import get_registry
        from transcribe_cli.resolution import resolve_transcriber

        return resolve_transcriber(self.model, registry=get_registry(self.plugins_dirs), decoder=self.decoder,
                                   options=self.options, weights=self.weights, offline=self.offline)

    def build(self):
        from transcribe_cli.pipeline import Transcriber
        from transcribe_cli.registry import get_registry

        return Transcriber(
            self.model,
            decoder=self.decoder,
            options=list(self.options),
            device=self.device,
            weights=self.weights,
            registry=get_registry(self.plugins_dirs),
            offline=self.offline,
            runtime=self.runtime,
            threads=self.threads,  # torch's or onnxruntime's, so that --jobs N shares the cores
            **self.extra,
        )


# -- planning ---------------------------------------------------------------------------

# What goes where, and whether it can be written: :mod:`transcribe_cli.planning`.
from transcribe_cli.planning import check_outputs as check_writable  # noqa: E402
from transcribe_cli.planning import plan_jobs  # noqa: E402


# -- running ----------------------------------------------------------------------------

def _build_or_error(config: TranscriberConfig) -> Any:
    """A worker process's transcriber, or the error that stopped it being built (reported on
    each of its jobs, so the pool does not die silently; Ctrl-C and SIGTERM still stop it)."""
    try:
        return config.build()
    except Exception as exc:
        return exc


def transcribe_job(transcriber: Any, job: Job, fmt: str, verbose: bool = False, output: Any = None) -> JobResult:
    """Transcribe one file and write its output; errors become a failed result. What the
    pipeline logs meanwhile (warnings; with ``verbose`` also debug lines such as a decoder's
    stderr) is returned with the result instead of being printed."""
    import logging
    import traceback

    from transcribe_cli.io.audio import AudioBlocks
    from transcribe_cli.tempo import AudioOnsets
    from transcribe_cli.diagnostics import collect_warnings
    from transcribe_cli.io.outputs import notes_text
    from transcribe_cli.planning import is_stdout

    start = time.perf_counter()
    level = logging.DEBUG if verbose else logging.WARNING
    with collect_warnings(level) as said:
        try:
            from transcribe_cli.writing import OutputOptions, write_transcription

            output = output or OutputOptions()
            # streamed: memory does not grow with the file. One block source for both of the
            # transcriber's passes (a short file is decoded once: AudioBlocks keeps it); with
            # --tempo auto the onset envelope is computed on those passes' blocks, so the tracker
            # does not decode the file again (tempo.AudioOnsets)
            blocks = AudioBlocks(job.source, transcriber.sample_rate)
            audio = (AudioOnsets(blocks, transcriber.sample_rate, threads=getattr(transcriber, "threads", 1))
                     if output.tempo == "auto" else None)
            transcription, seconds = transcriber.transcribe_path(
                job.source, pedal=output.pedal, blocks=audio.blocks if audio is not None else blocks)
            notes = transcription.notes
            metadata = {"source": str(job.source), **transcriber.describe()} if fmt == "json" else None
            if is_stdout(job.target):
                import sys

                sys.stdout.write(notes_text(notes, fmt, metadata=metadata, pedals=transcription.pedals))
                sys.stdout.flush()
            else:
                write_transcription(transcription, job.target, fmt, output, metadata=metadata, audio=audio,
                                    sample_rate=transcriber.sample_rate)
        except TranscribeError as exc:
            return JobResult(job, "failed", seconds=time.perf_counter() - start, error=str(exc),
                             warnings=tuple(said), detail=traceback.format_exc())
        except Exception as exc:  # an unexpected bug must not stop the other files
            return JobResult(
                job, "failed", seconds=time.perf_counter() - start,
                error=f"unexpected {type(exc).__name__}: {exc}", warnings=tuple(said), detail=traceback.format_exc(),
            )
    return JobResult(
        job, "ok", notes=len(notes), audio_seconds=seconds,
        seconds=time.perf_counter() - start, warnings=tuple(said),
    )


def _work(transcriber: Any, job: Job, fmt: str, verbose: bool = False, output: Any = None) -> JobResult:
    if isinstance(transcriber, Exception):
        return JobResult(job, "failed", error=f"worker could not start: {transcriber}")
    return transcribe_job(transcriber, job, fmt, verbose, output)


def _remove_partial_outputs(jobs: Iterable[Job]) -> None:
    """After an interrupt: delete temporary files a killed worker may have left."""
    from transcribe_cli.io.fileio import temp_files_for

    for job in jobs:
        for tmp in temp_files_for(job.target):
            tmp.unlink(missing_ok=True)


def skip_done(jobs: Iterable[Job], skip_existing: bool, done: Callable[[JobResult], None]) -> list[Job]:
    """The jobs still to run: with ``skip_existing``, each job whose output exists is reported
    to ``done`` as skipped instead (every executor plans this way)."""
    todo = []
    for job in jobs:
        if skip_existing and job.target.exists():
            done(JobResult(job, "skipped"))
        else:
            todo.append(job)
    return todo


def run_jobs(
    jobs: list[Job],
    config: TranscriberConfig,
    *,
    fmt: str,
    workers: int = 1,
    skip_existing: bool = False,
    on_result: Callable[[JobResult], None] = lambda result: None,
    transcriber: Any = None,
    verbose: bool = False,
) -> list[JobResult]:
    """Run ``jobs``; ``on_result`` is called in the main process as each one finishes.
    An interrupt (Ctrl-C, SIGTERM) stops the workers, removes partial outputs and propagates."""
    results: list[JobResult] = []

    def done(result: JobResult) -> None:
        results.append(result)
        on_result(result)

    todo = skip_done(jobs, skip_existing, done)
    if not todo:
        return results
    workers = max(1, min(workers, len(todo)))
    try:
        if workers == 1:  # in this process, where a model that cannot be built is the run's one error
            transcriber = transcriber or config.build()
        else:
            config = TranscriberConfig(**{**asdict(config), "threads": config.threads or threads_per_worker(workers)})
        run_tasks(
            todo, partial(_work, fmt=fmt, verbose=verbose, output=config.output), workers=workers,
            setup=_build_or_error, setup_args=(config,), state=transcriber, on_result=done,
            crashed=lambda job, exc: JobResult(job, "failed", error=f"worker crashed: {type(exc).__name__}: {exc}"),
        )
    except KeyboardInterrupt:
        finished = {result.job for result in results}
        _remove_partial_outputs(job for job in todo if job not in finished)
        raise
    return results
