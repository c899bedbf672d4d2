"""Helpers for testing transcribe-cli and its plugins (``tests/`` and ``plugins/*/tests``).

A plugin's own test suite imports these instead of copying them: whether FluidSynth can
render test audio, and an in-process ``transcribe`` runner for pytest's ``capsys``.
No torch import here.
"""

from __future__ import annotations

from typing import Any, NamedTuple


def fluidsynth_available() -> bool:
    """FluidSynth and at least one SoundFont are installed (what rendering needs)."""
    from transcribe_cli.errors import TranscribeError
    from transcribe_cli.rendering import fluidsynth_executable, resolve_soundfont

    try:
        fluidsynth_executable()
        resolve_soundfont()
    except TranscribeError:
        return False
    return True


class CliResult(NamedTuple):
    """What one ``transcribe`` invocation gave (unpacks as ``code, out, err``)."""

    exit_code: int
    stdout: str
    stderr: str


def invoke(capsys: Any, *args: object, fresh_registry: bool = False) -> CliResult:
    """Run ``transcribe ARGS`` in this process and capture its output with ``capsys``;
    ``fresh_registry`` rebuilds the plugin registry first (so newly installed entry points
    are seen)."""
    from transcribe_cli.cli import main

    if fresh_registry:
        from transcribe_cli.registry import reset_registry

        reset_registry()
    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)
