"""Atomic file writes.

:func:`atomic_write` is how every output of transcribe-cli reaches the disk: the data goes
to a temporary file in the target's directory and is renamed onto the target (an atomic
``os.replace`` on POSIX and Windows) only after the ``with`` block has finished without
an exception. A crash, a ``Ctrl-C`` or an encoder error therefore never leaves a
half-written ``.mid`` behind, and an existing file is either fully replaced or untouched.

The new file gets the permissions an ordinary ``open(path, "w")`` would give it (``0o666``
minus the umask), or keeps the mode of the file it replaces.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import secrets
import stat
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import OutputError

__all__ = ["atomic_write", "find_files", "temp_files_for"]

# Errors raised *inside* the block that mean "the disk refused the data"; they are
# reported as OutputError. Every other exception from the block propagates unchanged.
_DISK_ERRNOS = {getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EFBIG", "EIO", "EROFS") if hasattr(errno, name)}
_NO_SPACE = {getattr(errno, name) for name in ("ENOSPC", "EDQUOT") if hasattr(errno, name)}


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    mode: str = "wb",
    *,
    encoding: str | None = None,
    newline: str | None = None,
    fsync: bool = True,
) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` and move it onto ``path`` on success.

    ``mode`` is ``"wb"`` or ``"w"`` (text; ``encoding`` defaults to UTF-8 and ``newline``
    is passed to :func:`open`, use ``newline=""`` for :mod:`csv`). With ``fsync`` the data
    is flushed to stable storage before the rename. On any exception in the block the
    temporary file is deleted, the target is left as it was, and the exception propagates
    (disk-full style :class:`OSError` s become :class:`~transcribe_cli.errors.OutputError`).

    Raises :class:`~transcribe_cli.errors.OutputError` when the directory does not exist,
    is not writable, or ``path`` is a directory.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write supports mode 'w' or 'wb', not {mode!r}")
    target = Path(path)
    _check_target(target)
    binary = mode == "wb"
    if binary and (encoding is not None or newline is not None):
        raise ValueError("encoding/newline apply to text mode ('w') only")

    tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
    try:
        # os.open applies the umask to 0o666, exactly like a plain open(path, "w").
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:
        raise _output_error(target, exc) from None

    try:
        if binary:
            handle: IO[Any] = os.fdopen(fd, "wb")
        else:
            handle = os.fdopen(fd, "w", encoding=encoding or "utf-8", newline=newline)
    except BaseException:
        os.close(fd)
        _remove_quietly(tmp)
        raise

    try:
        with handle:
            try:
                yield handle
            except OSError as exc:
                if exc.errno in _DISK_ERRNOS:
                    raise _output_error(target, exc) from exc
                raise
            try:
                handle.flush()
                if fsync:
                    os.fsync(handle.fileno())
            except OSError as exc:
                raise _output_error(target, exc) from exc
        _copy_mode_of_existing(target, tmp)
        try:
            os.replace(tmp, target)
        except OSError as exc:
            raise _output_error(target, exc) from exc
    except BaseException:
        _remove_quietly(tmp)
        raise
    if fsync:
        _fsync_directory(target.parent)


def _check_target(target: Path) -> None:
    """Refuse targets that cannot work before creating anything."""
    if target.is_dir():
        raise OutputError(
            f"cannot write {target}: it is a directory",
            "give a file name, e.g. " + str(target / "output.mid"),
        )
    parent = target.parent
    if not parent.exists():
        raise OutputError(
            f"cannot write {target}: directory {parent} does not exist",
            "create it first (mkdir -p) or choose another output path",
        )
    if not parent.is_dir():
        raise OutputError(
            f"cannot write {target}: {parent} is not a directory",
            "choose an output path inside a directory",
        )


def _output_error(target: Path, exc: OSError) -> OutputError:
    """Translate an OSError from our own file operations into a one-line OutputError."""
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM):
        return OutputError(
            f"cannot write {target}: permission denied",
            f"choose a writable location or fix the permissions of {target.parent}",
        )
    if exc.errno == errno.EROFS:
        return OutputError(f"cannot write {target}: read-only file system", "choose another output location")
    if exc.errno in _NO_SPACE:
        return OutputError(f"cannot write {target}: no space left on device", "free some space or write elsewhere")
    if isinstance(exc, IsADirectoryError):
        return OutputError(f"cannot write {target}: it is a directory", "give a file name instead")
    if isinstance(exc, FileNotFoundError):
        return OutputError(
            f"cannot write {target}: directory {target.parent} does not exist",
            "create it first (mkdir -p) or choose another output path",
        )
    reason = exc.strerror or str(exc)
    return OutputError(f"cannot write {target}: {reason}", "check the output path")


def _copy_mode_of_existing(target: Path, tmp: Path) -> None:
    """Keep the permission bits of a file that is being replaced."""
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        return
    with contextlib.suppress(OSError):
        os.chmod(tmp, mode)


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def temp_files_for(path: str | os.PathLike[str]) -> list[Path]:
    """Temporary files :func:`atomic_write` may have left for ``path`` (only if the process
    was killed outright; every other way out of the block removes its own)."""
    target = Path(path)
    return sorted(target.parent.glob(f".{glob.escape(target.name)}.*.tmp"))


def temp_files_among(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """:func:`temp_files_for` of many outputs, listing each folder once (not once per file)."""
    wanted: dict[Path, set[str]] = {}
    for path in paths:
        target = Path(path)
        wanted.setdefault(target.parent, set()).add(target.name)
    found = []
    for folder, names in wanted.items():
        try:
            entries = [entry.name for entry in os.scandir(folder)]
        except OSError:
            continue
        for name in entries:  # .{target name}.{random hex}.tmp, as atomic_write names them
            if name.startswith(".") and name.endswith(".tmp"):
                stem, _, _token = name[1:-len(".tmp")].rpartition(".")
                if stem in names:
                    found.append(folder / name)
    return sorted(found)


def find_files(root: str | os.PathLike[str], suffixes: Collection[str]) -> list[Path]:
    """Files below ``root`` whose lower-cased suffix is in ``suffixes`` (recursive, sorted,
    hidden files and folders skipped). Symlinked folders are followed like symlinked files,
    each real folder at most once, so a link loop ends the walk instead of recursing."""
    found = []
    seen: set[tuple[int, int]] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        try:
            st = os.stat(folder)
        except OSError:
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:  # reached again through a link
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in suffixes:
                found.append(Path(folder) / name)
    return found
