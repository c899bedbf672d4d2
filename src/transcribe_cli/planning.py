"""Which output each input goes to, decided — and checked — before any audio is read.

Rules (:func:`plan_jobs`):

* every input must exist; folders are searched recursively (symlinked folders followed once
  each, see :func:`transcribe_cli.io.fileio.find_files`) and their layout is kept below ``-o``;
* the same file given twice (directly, through a folder, or through a link) is transcribed
  once;
* ``-o`` is a **file** when it ends in a note suffix (.mid/.midi/.csv/.json) — then exactly
  one input file is allowed — ``-`` for **stdout** (one input; CSV or JSON), and otherwise a
  **folder**; for a single input file a folder must already exist or be written with a
  trailing ``/`` (``-o outfile`` is ambiguous and refused instead of creating a folder);
* two inputs that would write the same output (``take.wav`` beside ``take.mp3``) are all
  reported in one error; ``keep_extension`` names outputs ``take.wav.mid`` instead.

:func:`check_outputs` then proves every output folder can be created and written (a probe
file is created and removed), so ``-o /proc/x.mid`` fails in milliseconds, not after the
transcription.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from transcribe_cli.errors import OutputError, TranscribeError

if TYPE_CHECKING:
    from transcribe_cli.batch import Job

#: ``-o -``: the note list goes to standard output.
STDOUT = "-"
#: Formats that can be written to standard output.
STDOUT_FORMATS = ("csv", "json")
_SHOWN_COLLISIONS = 5


def is_stdout(target: str | os.PathLike[str] | None) -> bool:
    return target is not None and os.fspath(target) == STDOUT


def output_name(source: Path, suffix: str, keep_extension: bool) -> str:
    """``take.wav`` → ``take.mid`` (or ``take.wav.mid`` with ``keep_extension``)."""
    return f"{source.name}{suffix}" if keep_extension else source.with_suffix(suffix).name


def plan_jobs(
    inputs: Iterable[str | os.PathLike[str]],
    output: str | os.PathLike[str] | None,
    fmt: str,
    *,
    keep_extension: bool = False,
    note: Callable[[str], None] = lambda message: None,
) -> list[Job]:
    """Pair every input audio file with its output path (see the module docstring);
    ``note`` is told about inputs dropped as duplicates."""
    from transcribe_cli.io.audio import AUDIO_EXTENSIONS
    from transcribe_cli.io.audio import find_audio
    from transcribe_cli.batch import Job
    from transcribe_cli.io.outputs import note_file_format

    inputs = [Path(p) for p in inputs]
    missing = [str(p) for p in inputs if not p.exists()]
    if missing:
        raise TranscribeError(f"no such file or directory: {', '.join(missing)}", "check the path")
    raw = None if output is None else os.fspath(output)
    suffix = f".{fmt}"

    # (source, folder it was found in or None) in order, each real file once
    sources: list[tuple[Path, Path | None]] = []
    seen: set[Path] = set()
    duplicates = 0
    for path in inputs:
        if path.is_dir():
            found = find_audio(path)
            if not found:
                exts = ", ".join(sorted(AUDIO_EXTENSIONS))
                raise TranscribeError(f"no audio files found in {path}", f"looked for {exts}")
            candidates = [(f, path) for f in found]
        else:
            candidates = [(path, None)]
        for source, root in candidates:
            real = source.resolve()
            if real in seen:
                duplicates += 1
            else:
                seen.add(real)
                sources.append((source, root))
    if duplicates:
        note(f"{duplicates} input{'s' if duplicates > 1 else ''} given more than once, transcribed once")

    if is_stdout(raw):
        if len(sources) != 1:
            raise OutputError(
                f"-o - writes one note list to stdout, but {len(sources)} audio files were given",
                "give one input file, or a folder with -o",
            )
        if fmt not in STDOUT_FORMATS:
            raise OutputError("MIDI cannot be written to stdout", "use --format csv or --format json with -o -")
        return [Job(sources[0][0], Path(STDOUT))]

    one_file = len(sources) == 1 and sources[0][1] is None
    if raw is not None and note_file_format(raw) is not None:
        if not one_file:
            raise OutputError(
                f"-o {raw} names one file, but {len(sources)} audio files were given",
                "give a folder with -o (it is created if needed)",
            )
        return [Job(sources[0][0], Path(raw))]

    folder = None if raw is None else Path(raw)
    if folder is not None:
        if folder.exists() and not folder.is_dir():
            raise OutputError(
                f"output {folder} is a file, but outputs go into a folder there",
                "give a folder with -o, or a file name ending in .mid, .csv or .json",
            )
        if one_file and not folder.exists() and not raw.endswith(("/", os.sep)):
            raise OutputError(
                f"cannot tell whether -o {raw} is a file or a folder",
                f"write {raw}{suffix} for a file, or {raw}/ for a folder",
            )

    jobs: list[Job] = []
    for source, root in sources:
        name = output_name(source, suffix, keep_extension)
        if root is not None:
            base = folder if folder is not None else root
            target = base / source.relative_to(root).parent / name
        else:
            target = (folder if folder is not None else source.parent) / name
        jobs.append(Job(source, target))
    _check_collisions(jobs, keep_extension)
    return jobs


def _check_collisions(jobs: list[Job], keep_extension: bool) -> None:
    by_target: dict[Path, list[Job]] = {}
    for job in jobs:
        by_target.setdefault(Path(os.path.abspath(job.target)), []).append(job)
    clashes = [group for group in by_target.values() if len(group) > 1]
    if not clashes:
        return
    shown = "; ".join(
        f"{' and '.join(str(j.source) for j in group)} → {group[0].target}" for group in clashes[:_SHOWN_COLLISIONS]
    )
    more = f"; and {len(clashes) - _SHOWN_COLLISIONS} more" if len(clashes) > _SHOWN_COLLISIONS else ""
    count = f"{len(clashes)} output{'s' if len(clashes) > 1 else ''}"
    hint = ("transcribe them into different folders" if keep_extension
            else "add --keep-extension to name outputs like take.wav.mid, or transcribe them into different folders")
    raise OutputError(f"{count} would be written by more than one input: {shown}{more}", hint)


def check_outputs(targets: Iterable[Path]) -> None:
    """Fail before any work when an output cannot be written: its folder cannot be created,
    does not accept new files (checked by creating and removing a probe file), or the output
    path is an existing folder."""
    targets = [Path(t) for t in targets if not is_stdout(t)]
    for target in targets:
        if target.is_dir():
            raise OutputError(f"cannot write {target}: it is a folder", "give a file name or another -o")
    for parent in sorted({t.parent for t in targets}):
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot create output folder {parent}: {exc.strerror or exc}",
                "choose another -o path",
            ) from None
        probe = parent / f".transcribe-probe-{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise OutputError(
                f"cannot write into output folder {parent}: {exc.strerror or exc}",
                "choose another -o path",
            ) from None
        os.close(fd)
        try:
            os.unlink(probe)
        except OSError:
            pass
