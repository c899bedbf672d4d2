"""What a job has to say besides its result: warnings, and the noise native libraries print.

* :func:`collect_warnings` gathers the ``transcribe_cli`` loggers' warnings (e.g. "looks like
  noise", "truncated file") raised while one file is processed, so a batch can show them
  with the file's name, above the progress bar, in the main process — a worker's own stderr
  would tear the bar apart.
* :func:`captured_native_stderr` redirects file descriptor 2 while a decoder runs: libmpg123
  (inside libsndfile) and FFmpeg write lines such as "Note: Illegal Audio-MPEG-Header" there
  directly, bypassing Python. What they wrote is returned for ``--verbose``. ``sys.stderr``
  itself is pointed at the real terminal meanwhile, so Python's own output is not swallowed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator

__all__ = ["captured_native_stderr", "collect_warnings"]

_LOGGER = "transcribe_cli"
_CAPTURE_LOCK = threading.Lock()
_MAX_CAPTURED = 4000  # characters of native stderr kept per decode


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[str], level: int) -> None:
        super().__init__(level)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage())


@contextlib.contextmanager
def collect_warnings(level: int = logging.WARNING) -> Iterator[list[str]]:
    """Messages of ``level`` and above logged under ``transcribe_cli`` inside the block
    (they are not printed by logging meanwhile)."""
    messages: list[str] = []
    logger = logging.getLogger(_LOGGER)
    handler = _ListHandler(messages, level)
    previous = (logger.level, logger.propagate)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    logger.propagate = False
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous[0])
        logger.propagate = previous[1]


@contextlib.contextmanager
def captured_native_stderr() -> Iterator[list[str]]:
    """Text written to file descriptor 2 inside the block, as lines (filled in on exit).

    A no-op (nothing captured) where fd 2 cannot be duplicated, or when another thread is
    already capturing."""
    lines: list[str] = []
    if not _CAPTURE_LOCK.acquire(blocking=False):
        yield lines
        return
    try:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            yield lines
            return
        python_stderr = sys.stderr
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="replace")
            except OSError:
                pass
            try:
                yield lines
            finally:
                if sys.stderr is not python_stderr:
                    with contextlib.suppress(Exception):
                        sys.stderr.close()
                    sys.stderr = python_stderr
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                text = sink.read(_MAX_CAPTURED).decode("utf-8", "replace")
                lines.extend(line.strip() for line in text.splitlines() if line.strip())
    finally:
        _CAPTURE_LOCK.release()
