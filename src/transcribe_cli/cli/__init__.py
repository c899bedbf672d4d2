"""The ``transcribe`` command line.

``main()`` builds the Typer app (:mod:`transcribe_cli.cli.app`), runs it, and turns every
error into one line on stderr and a non-zero exit; tracebacks only with ``--verbose``.
``transcribe --help`` is printed from :mod:`transcribe_cli.cli.help_cache` when nothing it
depends on changed (no Typer, no plugin scan), else rendered without torch or Typer's rich
formatter.
"""

from __future__ import annotations

import os
import sys
import traceback

from transcribe_cli.cli.console import State
from transcribe_cli.errors import TranscribeError


def _prescan_plugins_dirs(argv: list[str]) -> list[str]:
    """``--plugins-dir`` values, needed before parsing (plugins may add commands)."""
    dirs = []
    for i, token in enumerate(argv):
        if token == "--plugins-dir" and i + 1 < len(argv):
            dirs.append(argv[i + 1])
        elif token.startswith("--plugins-dir="):
            dirs.append(token.split("=", 1)[1])
    return dirs


#: OpenMP (torch's CPU threads) spins while its threads wait for work; on a loaded machine
#: the spinning threads take the cores from the ones with work, and measured 6x the CPU time
#: and 6x the wall time of one thread (benchmarks/results/memory.md). Passive waiting adds a
#: wake-up per parallel region on idle cores (not measured: the machine was never idle). Set
#: before torch loads; a value in the user's environment wins.
OPENMP_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}


def main(argv: list[str] | None = None) -> None:
    for name, value in OPENMP_DEFAULTS.items():
        os.environ.setdefault(name, value)  # inherited by spawned workers too
    argv = list(sys.argv[1:] if argv is None else argv)
    # the one place verbosity is set: before parsing, since building the app may already warn
    verbose = any(a in ("-v", "--verbose") for a in argv)
    state = State(verbose=verbose, quiet=any(a in ("-q", "--quiet") for a in argv) and not verbose,
                  plugins_dirs=tuple(_prescan_plugins_dirs(argv)))
    from transcribe_cli.cli import help_cache

    top_level_help = help_cache.is_top_level_help(argv) and help_cache.usable(state.plugins_dirs)
    if top_level_help and (text := help_cache.load()) is not None:
        print(text)
        sys.exit(0)
    from transcribe_cli.allocator import fix_mmap_threshold

    fix_mmap_threshold()  # a window's buffers reused, not churned or left to creep (its docstring); workers inherit it
    try:
        from transcribe_cli.cli.app import build_app, root_help

        app = build_app(state)
        if top_level_help:
            from transcribe_cli.registry import get_registry

            text = root_help(app, state)
            if not get_registry(state.plugins_dirs).problems():  # a broken plugin is reported each time
                help_cache.store(text)
            print(text)
            sys.exit(0)
        app(args=argv, prog_name="transcribe", obj=state)
    except TranscribeError as exc:
        if state.verbose:
            traceback.print_exc()
        state.error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        from transcribe_cli.signals import exit_code

        state.error("interrupted")
        sys.exit(exit_code(exc))
    except Exception as exc:  # a bug: one line unless --verbose
        if state.verbose:
            traceback.print_exc()
        state.error(f"unexpected {type(exc).__name__}: {exc} (run with --verbose for the traceback)")
        sys.exit(1)
