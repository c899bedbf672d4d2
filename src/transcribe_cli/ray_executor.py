"""``--executor ray``: a batch transcribed by a pool of Ray actors, on one machine or a cluster.

The file list becomes a Ray Dataset (one file per block, and one block in an actor at a
time, so a retry redoes one file) that ``map_batches`` sends through an actor pool of
``--jobs`` actors (as many start as the cluster has room for): each builds the model once, like a
``--jobs`` worker, and calls :func:`transcribe_cli.batch.transcribe_job` per file, which
writes the output atomically from the actor. Only a one-row result per file comes back to
this process, which reports it and appends it to the run manifest, so the outputs and the
manifest are exactly those of the local executor.

Failures: an actor that dies (killed, out of memory, node lost) is restarted by Ray and the
file it had in hand is retried, up to :data:`TASK_RETRIES` times; a retried file is written
again to the same path with the same bytes, so nothing is lost or duplicated. A file that
kills its worker every time is reported as failed ("lost on Ray"), and the rest of the batch
goes on (both tested in ``tests/test_ray_executor.py``).

Every node must have transcribe-cli (and the model's weights, or a way to fetch them)
installed, and see the inputs and the output folder under the same paths (a shared
filesystem). Ray is optional: ``pip install 'transcribe-cli[ray]'``; it is imported only
here, only when ``--executor ray`` is used.
"""

from __future__ import annotations

import json
import os
import socket
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from transcribe_cli.batch import Job, JobResult, TranscriberConfig, skip_done, transcribe_job
from transcribe_cli.errors import ExecutorError, TranscribeError

__all__ = ["RayResult", "TASK_RETRIES", "run_jobs_on_ray"]

#: Times a file is retried after the actor holding it died (then it is reported failed).
TASK_RETRIES = 3
#: Environment variables handed to the actors (they may run on machines with another environment).
FORWARDED_ENV = ("HF_HUB_OFFLINE", "TRANSCRIBE_CACHE_DIR")


@dataclass
class RayResult(JobResult):
    """A :class:`JobResult` that also names the actor (``host:pid``) that produced it."""

    worker: str | None = None


def import_ray() -> tuple[Any, Any]:
    """``(ray, ray.data)``, or a one-line error saying how to install them."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ExecutorError(f"--executor ray needs Ray, which is not installed ({exc})",
                            "pip install 'transcribe-cli[ray]'") from None
    return ray, ray.data


class TranscribeActor:
    """One actor of the pool: builds its transcriber once, then transcribes batches of files."""

    def __init__(self, config: TranscriberConfig, fmt: str, verbose: bool = False,
                 expected: dict[str, Any] | None = None, env: dict[str, str] | None = None):
        from transcribe_cli.manifest import identity_differences, run_identity

        os.environ.update(env or {})
        self.fmt = fmt
        self.output = config.output  # how files are written (transcribe_cli.writing.OutputOptions)
        self.verbose = verbose
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.transcriber: Any = None
        self.broken: str | None = None
        try:
            self.transcriber = config.build()
        except Exception as exc:  # reported per file, like a local worker that cannot start
            self.broken = f"worker {self.worker} could not start: {exc}"
            return
        if expected is not None:
            differs = identity_differences(run_identity(self.transcriber, fmt, config.output), expected)
            if differs:
                self.broken = (f"worker {self.worker} builds a different model than this machine "
                               f"({', '.join(differs)} differ; install the same version and weights on every node)")

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        results = []
        for source, target in zip(batch["source"], batch["target"]):
            job = Job(Path(str(source)), Path(str(target)))
            if self.broken is not None:
                results.append(JobResult(job, "failed", error=self.broken))
            else:
                results.append(transcribe_job(self.transcriber, job, self.fmt, self.verbose, self.output))
        return {
            "source": [str(r.job.source) for r in results],
            "target": [str(r.job.target) for r in results],
            "status": [r.status for r in results],
            "notes": [int(r.notes) for r in results],
            "audio_seconds": [float(r.audio_seconds) for r in results],
            "seconds": [float(r.seconds) for r in results],
            "error": [r.error or "" for r in results],
            "detail": [r.detail or "" for r in results],
            "warnings": [json.dumps(list(r.warnings)) for r in results],
            "worker": [self.worker] * len(results),
        }


def _result(row: dict[str, Any], job: Job) -> RayResult:
    return RayResult(
        job, str(row["status"]), notes=int(row["notes"]), audio_seconds=float(row["audio_seconds"]),
        seconds=float(row["seconds"]), error=str(row["error"]) or None,
        warnings=tuple(json.loads(row["warnings"])), detail=str(row["detail"]) or None, worker=str(row["worker"]),
    )


def _quiet_ray_data(data: Any, verbose: bool) -> None:
    """No progress bars or execution banners: the batch reporter shows progress."""
    import logging

    context = data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.enable_auto_log_stats = False
    # a block whose retries are exhausted is skipped, not fatal: its file is reported failed
    context.max_errored_blocks = -1
    # one file in an actor at a time: an actor that dies takes no other file's retries with it
    context.max_tasks_in_flight_per_actor = 1
    if not verbose:
        logging.getLogger("ray.data").setLevel(logging.ERROR)


def run_jobs_on_ray(
    jobs: list[Job],
    config: TranscriberConfig,
    *,
    fmt: str,
    workers: int = 1,
    address: str | None = None,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    skip_existing: bool = False,
    expected: dict[str, Any] | None = None,
    on_result: Callable[[JobResult], None] = lambda result: None,
    verbose: bool = False,
) -> list[JobResult]:
    """Run ``jobs`` on ``workers`` Ray actors (at ``address``, else the cluster this process
    is connected to, else a new local one); ``on_result`` is called here as each finishes.
    ``expected`` is this machine's :func:`~transcribe_cli.manifest.run_identity`: an actor
    that builds anything else fails its files instead of writing different outputs."""
    import logging

    results: list[JobResult] = []

    def done(result: JobResult) -> None:
        results.append(result)
        on_result(result)

    todo = skip_done(jobs, skip_existing, done)
    if not todo:
        return results
    if cpus_per_worker <= 0 or gpus_per_worker < 0:
        raise ExecutorError("Ray workers need more than 0 CPUs and at least 0 GPUs each",
                            "e.g. --ray-cpus 1 --ray-gpus 0.5")
    ray, data = import_ray()
    started = not ray.is_initialized()
    if started:
        # a new cluster of this machine alone stays on the loopback interface, without a dashboard
        new_local = not address and not os.environ.get("RAY_ADDRESS")
        try:
            ray.init(address=address, logging_level=logging.INFO if verbose else logging.ERROR,
                     log_to_driver=verbose,
                     **({"include_dashboard": False, "_node_ip_address": "127.0.0.1"} if new_local else {}))
        except Exception as exc:
            where = f"the Ray cluster at {address}" if address else "a Ray cluster"
            raise ExecutorError(f"cannot connect to {where}: {_first_line(exc)}",
                                "check --ray-address (e.g. auto, or HEAD:6379) and that `ray status` works") from None
    by_key = {(str(job.source), str(job.target)): job for job in todo}
    seen: set[Job] = set()
    try:
        _quiet_ray_data(data, verbose)
        actor_config = replace(config, threads=config.threads or max(1, int(cpus_per_worker)))
        env = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}
        size = max(1, min(workers, len(todo)))
        dataset = data.from_items(
            [{"source": source, "target": target} for source, target in by_key],
            override_num_blocks=len(by_key),
        )
        with warnings.catch_warnings():
            # Ray 2.60 deprecates passing Ray Core's actor options here but has no named
            # parameter for them yet; bounded retries keep a file that kills its worker
            # every time from retrying forever (Ray Data's default).
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*is deprecated")
            dataset = dataset.map_batches(
                TranscribeActor,
                fn_constructor_kwargs={"config": actor_config, "fmt": fmt, "verbose": verbose,
                                       "expected": expected, "env": env},
                batch_size=1,
                batch_format="numpy",
                # all N actors start at once; the pool runs with as many as the cluster has room for
                concurrency=(1, size, size),
                num_cpus=cpus_per_worker,
                num_gpus=gpus_per_worker,
                max_restarts=-1,
                max_task_retries=TASK_RETRIES,
            )
        for row in dataset.iter_rows():
            job = by_key.get((str(row["source"]), str(row["target"])))
            if job is None or job in seen:  # cannot happen: each block's output is delivered once
                continue
            seen.add(job)
            done(_result(row, job))
    except KeyboardInterrupt:
        _shutdown(ray, started)
        started = False
        _remove_temp_files([job for job in todo if job not in seen])
        raise
    except TranscribeError:
        raise
    except Exception as exc:
        raise ExecutorError(f"the Ray run failed: {_first_line(exc)}",
                            "run with --verbose for Ray's logs; --resume continues from the manifest") from None
    finally:
        _shutdown(ray, started)
    lost = [job for job in todo if job not in seen]
    for job in lost:
        done(JobResult(job, "failed", error=f"lost on Ray: the worker transcribing it died "
                                            f"{TASK_RETRIES + 1} times (out of memory?)"))
    _remove_temp_files(todo)  # a worker killed while writing leaves its temporary file behind
    return results


def _shutdown(ray: Any, started: bool) -> None:
    if started and ray.is_initialized():
        ray.shutdown()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _remove_temp_files(jobs: list[Job]) -> None:
    """Delete what :func:`~transcribe_cli.io.fileio.atomic_write` left for these outputs when a
    worker was killed mid-write."""
    from transcribe_cli.io.fileio import temp_files_among

    for tmp in temp_files_among(job.target for job in jobs):
        tmp.unlink(missing_ok=True)
