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

from transcribe_cli.errors import OutputError, TranscribeError
from transcribe_cli.fileio import find_files
from transcribe_cli.workers import run_in_processes, threads_per_worker

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
    extra: dict[str, Any] = field(default_factory=dict)

    def build(self):
        from transcribe_cli.inference import Transcriber
        from transcribe_cli.registry import get_registry

        if self.threads:
            import torch

            torch.set_num_threads(self.threads)
        return Transcriber(
            self.model,
            decoder=self.decoder,
            options=list(self.options),
            device=self.device,
            weights=self.weights,
            registry=get_registry(self.plugins_dirs),
            **self.extra,
        )


# -- planning ---------------------------------------------------------------------------

def find_audio(directory: Path) -> list[Path]:
    """Audio files below ``directory`` (recursive, sorted, hidden files skipped)."""
    from transcribe_cli.audio import AUDIO_EXTENSIONS

    return find_files(directory, AUDIO_EXTENSIONS)


def plan_jobs(inputs: Iterable[Path], output: Path | None, fmt: str) -> list[Job]:
    """Pair every input audio file with its output path.

    - one file, ``-o`` with a known suffix or no ``-o`` → that file (default: beside the input);
    - folders → the same relative layout below ``output`` (default: beside each input);
    - several files → ``output`` is a folder.
    """
    from transcribe_cli.audio import AUDIO_EXTENSIONS
    from transcribe_cli.outputs import note_file_format

    inputs = [Path(p) for p in inputs]
    suffix = f".{fmt}"
    for path in inputs:
        if not path.exists():
            raise TranscribeError(f"no such file or directory: {path}", "check the path")
    single_file = len(inputs) == 1 and inputs[0].is_file()
    if single_file and output is not None and note_file_format(output) is not None:
        return [Job(inputs[0], output)]
    if output is not None and output.exists() and not output.is_dir():
        raise OutputError(
            f"output {output} is a file, but several outputs go there",
            "give a folder with -o, or one input file",
        )
    jobs: list[Job] = []
    for path in inputs:
        if path.is_dir():
            found = find_audio(path)
            if not found:
                exts = ", ".join(sorted(AUDIO_EXTENSIONS))
                raise TranscribeError(f"no audio files found in {path}", f"looked for {exts}")
            base = output if output is not None else path
            jobs += [Job(f, base / f.relative_to(path).with_suffix(suffix)) for f in found]
        else:
            base = output if output is not None else path.parent
            jobs.append(Job(path, base / path.with_suffix(suffix).name))
    targets: dict[Path, Path] = {}
    for job in jobs:
        other = targets.setdefault(job.target.resolve(), job.source)
        if other != job.source:
            raise OutputError(
                f"{other} and {job.source} would both be written to {job.target}",
                "transcribe them into different folders",
            )
    return jobs


def check_writable(targets: Iterable[Path]) -> None:
    """Fail before any work if an output folder cannot be created or written."""
    for parent in sorted({t.parent for t in targets}):
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot create output folder {parent}: {exc.strerror or exc}",
                "choose another -o path",
            ) from None
        if not os.access(parent, os.W_OK):
            raise OutputError(f"output folder {parent} is not writable", "choose another -o path")


# -- running ----------------------------------------------------------------------------

_WORKER: Any = None


def _init_worker(config: TranscriberConfig) -> None:
    global _WORKER
    try:
        _WORKER = config.build()
    except BaseException as exc:  # reported per job, so the pool does not die silently
        _WORKER = exc


def transcribe_job(transcriber: Any, job: Job, fmt: str) -> JobResult:
    """Transcribe one file and write its output; errors become a failed result."""
    from transcribe_cli.audio import load_audio
    from transcribe_cli.outputs import write_notes

    start = time.perf_counter()
    try:
        audio = load_audio(job.source, transcriber.sample_rate)
        notes = transcriber.transcribe_audio(audio)
        metadata = {"source": str(job.source), **transcriber.describe()} if fmt == "json" else None
        write_notes(notes, job.target, fmt, metadata=metadata)
    except TranscribeError as exc:
        return JobResult(job, "failed", seconds=time.perf_counter() - start, error=str(exc))
    except Exception as exc:  # an unexpected bug must not stop the other files
        return JobResult(
            job, "failed", seconds=time.perf_counter() - start,
            error=f"unexpected {type(exc).__name__}: {exc}",
        )
    return JobResult(
        job, "ok", notes=len(notes), audio_seconds=len(audio) / transcriber.sample_rate,
        seconds=time.perf_counter() - start,
    )


def _work(job: Job, fmt: str) -> JobResult:
    if isinstance(_WORKER, BaseException):
        return JobResult(job, "failed", error=f"worker could not start: {_WORKER}")
    return transcribe_job(_WORKER, job, fmt)


def run_jobs(
    jobs: list[Job],
    config: TranscriberConfig,
    *,
    fmt: str,
    workers: int = 1,
    skip_existing: bool = False,
    on_result: Callable[[JobResult], None] = lambda result: None,
    transcriber: Any = None,
) -> list[JobResult]:
    """Run ``jobs``; ``on_result`` is called in the main process as each one finishes."""
    results: list[JobResult] = []

    def done(result: JobResult) -> None:
        results.append(result)
        on_result(result)

    todo = []
    for job in jobs:
        if skip_existing and job.target.exists():
            done(JobResult(job, "skipped"))
        else:
            todo.append(job)
    if not todo:
        return results
    workers = max(1, min(workers, len(todo)))
    if workers == 1:
        transcriber = transcriber or config.build()
        for job in todo:
            done(transcribe_job(transcriber, job, fmt))
        return results

    config = TranscriberConfig(**{**asdict(config), "threads": config.threads or threads_per_worker(workers)})
    run_in_processes(
        todo, partial(_work, fmt=fmt), workers=workers, initializer=_init_worker, initargs=(config,),
        on_result=done,
        crashed=lambda job, exc: JobResult(job, "failed", error=f"worker crashed: {type(exc).__name__}: {exc}"),
    )
    return results
