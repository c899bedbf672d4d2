"""The run manifest: what a batch did, one JSON line per file, kept in the output folder.

``transcribe DIR -o OUT`` appends a line to ``OUT/transcribe-manifest.jsonl``
(``OUT/transcribe-manifest.shard-3-of-16.jsonl`` with ``--shard 3/16``) as each file
finishes, so the record survives a crash, a kill or a preempted cluster node::

    {"input": "/data/rec/a/take.flac", "key": "a/take.flac", "output": "a/take.mid",
     "status": "ok", "error": null, "notes": 412, "audio_seconds": 184.2, "seconds": 3.71,
     "finished": "2026-12-01T19:40:02.113+00:00", "worker": "node7:81234" (the Ray actor; null locally), "host": "login1",
     "run": "5f0c…", "shard": "3/16", "input_bytes": 3123456, "model": "nmf", …,
     "weights_sha256": "9a1e…", "format": "mid", "transcribe_cli": "0.1.0"}

``output`` is relative to the output folder (the folder can move); ``key`` is the input's
shard key (:mod:`transcribe_cli.sharding`); ``seconds`` is the time spent on the file
(read, transcribe, write). The model fields (model, decoder, their options, frontend,
weights and the weights' sha256, format, the writing options such as tempo and quantize,
package version) say exactly what produced it.

Writers: only the process that runs the batch writes (workers and Ray actors report back to
it); each line is one ``O_APPEND`` write under an exclusive ``lockf`` lock and is fsynced,
so several processes appending to one file never interleave, and every shard of a fanned-out
run has its own file besides, which keeps nodes from sharing one file over a network
filesystem. A line cut short by a crash is ignored when reading.

``--resume`` (:meth:`RunManifest.split_done`) skips a file when the last finished line for
its output, in any manifest of the folder (so re-sharding still resumes), says ``ok``, was made
by the same model, decoder, options, weights hash, format and writing options, from an input
of the same size, and the output is still there and parses
(:func:`transcribe_cli.io.outputs.read_notes`; MusicXML and PNG outputs: a non-empty file).
The package version is recorded but not compared, so an upgrade does not redo a collection.
Everything else is transcribed again.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transcribe_cli.sharding import shard_key

if TYPE_CHECKING:
    from transcribe_cli.batch import Job, JobResult
    from transcribe_cli.sharding import Shard

__all__ = ["MANIFEST_STEM", "MATCHED_FIELDS", "RunManifest", "manifest_files", "manifest_path", "read_manifests",
           "run_identity"]

MANIFEST_STEM = "transcribe-manifest"
#: Identity fields that must be equal for ``--resume`` to keep an earlier output.
MATCHED_FIELDS = ("model", "model_options", "frontend", "decoder", "decoder_options", "weights_sha256", "format",
                  "output_options")


def manifest_path(folder: Path, shard: Shard | None = None) -> Path:
    """Where a run (or one shard of it) into ``folder`` writes its manifest."""
    return folder / (f"{MANIFEST_STEM}.{shard.label}.jsonl" if shard is not None else f"{MANIFEST_STEM}.jsonl")


def manifest_files(folder: Path) -> list[Path]:
    """Every manifest in ``folder``: the unsharded one and each shard's."""
    return sorted(p for p in folder.glob(f"{MANIFEST_STEM}*.jsonl") if p.is_file())


def run_identity(transcriber: Any, fmt: str, output: Any = None) -> dict[str, Any]:
    """What produces the outputs: model, decoder, options, weights and their sha256, format,
    the writing options (``output``: tempo, quantize, pedal, ...; a NamedTuple) and the
    version, JSON-normalised so it compares equal to what a manifest reads back."""
    from transcribe_cli.weights.hub import file_digest

    described = transcriber.describe()
    weights = described.get("weights")
    identity = {
        "model": described.get("model"),
        "model_options": described.get("model_options"),
        "frontend": described.get("frontend"),
        "decoder": described.get("decoder"),
        "decoder_options": described.get("decoder_options"),
        "weights": weights,
        "weights_sha256": file_digest(weights) if weights and Path(weights).is_file() else None,
        "format": fmt,
        "output_options": output._asdict() if hasattr(output, "_asdict") else output,
        "transcribe_cli": described.get("transcribe_cli"),
    }
    return json.loads(json.dumps(identity, sort_keys=True, default=str))


def identity_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The :data:`MATCHED_FIELDS` in which two identities differ."""
    return [name for name in MATCHED_FIELDS if a.get(name) != b.get(name)]


def read_manifests(folder: Path) -> Iterator[dict[str, Any]]:
    """Every record of every manifest in ``folder``, file by file in line order; lines that
    are not a JSON object (a line cut short by a crash) are skipped."""
    for path in manifest_files(folder):
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(record, dict) and isinstance(record.get("output"), str):
                        yield record
        except OSError:
            continue


def _input_bytes(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _output_parses(path: Path) -> bool:
    """The output reads back as a note list (MIDI, CSV, JSON); a MusicXML or PNG output,
    which holds none to read, must be a non-empty file."""
    from transcribe_cli.errors import TranscribeError
    from transcribe_cli.io.outputs import NOTE_FORMATS, note_file_format, read_notes

    if note_file_format(path) not in NOTE_FORMATS:
        return path.is_file() and path.stat().st_size > 0
    try:
        read_notes(path)
    except (TranscribeError, OSError, ValueError):
        return False
    return True


class RunManifest:
    """The manifest of one run into ``folder`` (``None``: outputs not in a folder, so no
    manifest — every method then does nothing)."""

    def __init__(self, folder: Path | None, *, identity: dict[str, Any], inputs: Sequence[str | os.PathLike[str]],
                 shard: Shard | None = None):
        self.folder = folder
        self.path = manifest_path(folder, shard) if folder is not None else None
        self.identity = identity
        self.shard = shard
        self.run = secrets.token_hex(8)
        self.host = socket.gethostname()
        self._roots = [Path(p) for p in inputs]
        self._fd: int | None = None

    # -- where ----------------------------------------------------------------------------

    @classmethod
    def for_output(cls, output: str | None, jobs: Iterable[Job], **kwargs: Any) -> RunManifest:
        """The manifest for a batch whose ``-o`` is ``output``: in that folder when every
        output goes below it, else none (one output file, stdout, or outputs beside inputs)."""
        folder = None
        if output is not None and Path(output).is_dir():
            folder = Path(output)
            root = folder.resolve()
            if not all(Path(job.target).resolve().is_relative_to(root) for job in jobs):
                folder = None
        return cls(folder, **kwargs)

    def relative(self, target: Path) -> str:
        assert self.folder is not None
        try:
            return Path(os.path.abspath(target)).relative_to(os.path.abspath(self.folder)).as_posix()
        except ValueError:
            return str(target)

    # -- resuming -------------------------------------------------------------------------

    def split_done(self, jobs: Iterable[Job]) -> tuple[list[Job], list[Job]]:
        """``(done, todo)``: the jobs whose output the manifests say is finished and verified
        (see the module docstring), and the others, each in their original order."""
        jobs = list(jobs)
        if self.folder is None:
            return [], jobs
        latest: dict[str, dict[str, Any]] = {}
        for record in read_manifests(self.folder):
            # the last finished wins (ISO UTC times sort as text); lines of one file are in order
            earlier = latest.get(record["output"])
            if earlier is None or str(record.get("finished", "")) >= str(earlier.get("finished", "")):
                latest[record["output"]] = record
        done, todo = [], []
        for job in jobs:
            record = latest.get(self.relative(job.target))
            finished = (
                record is not None and record.get("status") == "ok"
                and not identity_differences(record, self.identity)
                and record.get("input_bytes") == _input_bytes(Path(job.source))
                and _output_parses(Path(job.target))
            )
            (done if finished else todo).append(job)
        return done, todo

    # -- writing --------------------------------------------------------------------------

    def __enter__(self) -> RunManifest:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def record(self, result: JobResult) -> None:
        """Append ``result`` (ok or failed; a skipped file did nothing to record)."""
        if self.path is None or result.status not in ("ok", "failed"):
            return
        job = result.job
        line = {
            "input": str(job.source),
            "key": shard_key(Path(job.source), self._roots),
            "output": self.relative(Path(job.target)),
            "status": result.status,
            "error": result.error,
            "notes": result.notes,
            "audio_seconds": round(result.audio_seconds, 3),
            "seconds": round(result.seconds, 3),
            "finished": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "worker": getattr(result, "worker", None),  # host:pid of the Ray actor that did it
            "host": self.host,
            "run": self.run,
            "shard": str(self.shard) if self.shard is not None else None,
            "input_bytes": _input_bytes(Path(job.source)),
            **self.identity,
        }
        self._append((json.dumps(line, default=str) + "\n").encode("utf-8"))

    def recording(self, on_result: Callable[[JobResult], None]) -> Callable[[JobResult], None]:
        """``on_result`` that records each result here first."""

        def both(result: JobResult) -> None:
            self.record(result)
            on_result(result)

        return both

    def _append(self, data: bytes) -> None:
        from transcribe_cli.errors import OutputError

        assert self.path is not None
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
            with _locked(self._fd):
                size = os.fstat(self._fd).st_size
                if size and hasattr(os, "pread") and os.pread(self._fd, 1, size - 1) != b"\n":
                    data = b"\n" + data  # end a line a crash cut short, or this one is lost with it
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view):]
                os.fsync(self._fd)
        except OSError as exc:
            raise OutputError(f"cannot write the run manifest {self.path}: {exc.strerror or exc}",
                              "check the output folder's space and permissions") from None


class _locked:
    """An exclusive ``lockf`` lock on an open file for the ``with`` block (none where
    ``fcntl`` is missing, i.e. Windows, where each shard's own file is what keeps writers apart)."""

    def __init__(self, fd: int):
        self.fd = fd
        try:
            import fcntl
        except ImportError:
            self.fcntl = None
        else:
            self.fcntl = fcntl

    def __enter__(self) -> None:
        if self.fcntl is not None:
            self.fcntl.lockf(self.fd, self.fcntl.LOCK_EX, 0, 0, os.SEEK_SET)  # the whole file

    def __exit__(self, *exc: Any) -> None:
        if self.fcntl is not None:
            self.fcntl.lockf(self.fd, self.fcntl.LOCK_UN, 0, 0, os.SEEK_SET)
