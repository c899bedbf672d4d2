"""User-facing errors.

Every error a user can cause derives from :class:`TranscribeError`. The CLI prints
``str(error)`` as one line (plus the hint) and exits non-zero; tracebacks only with
``--verbose``.
"""

from __future__ import annotations


class TranscribeError(Exception):
    """An error with a one-line message meant for the user, and an optional hint."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class AudioError(TranscribeError):
    """The audio could not be read or is unusable (corrupt, empty, unsupported)."""


class MidiError(TranscribeError):
    """A MIDI file (or a CSV/JSON note list) could not be read or written."""


class UnknownNameError(TranscribeError):
    """A model/decoder/frontend/dataset name that no plugin registered."""

    def __init__(self, kind: str, name: str, available: list[str]):
        listing = ", ".join(sorted(available)) or "none"
        super().__init__(f"unknown {kind} {name!r}", f"available: {listing}")
        self.kind = kind
        self.name = name
        self.available = available


class OptionError(TranscribeError):
    """A ``--option key=value`` that does not fit the decoder or model."""


class PluginError(TranscribeError):
    """A plugin broke a contract (duplicate name, bad spec, failing hook)."""


class OutputError(TranscribeError):
    """An output path cannot be written."""


class ExecutorError(TranscribeError):
    """A batch executor (``--executor ray``) is not installed, cannot connect, or failed."""
