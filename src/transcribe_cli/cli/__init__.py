"""The ``transcribe`` command line.

``main()`` builds the Typer app (built-in commands plus those plugins add through
``register_commands``), runs it, and turns every error into one line on stderr and a
non-zero exit; tracebacks only with ``--verbose``. Importing this package never imports
torch, so ``transcribe --help`` stays instant.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Annotated, Optional

import typer

from transcribe_cli import __version__
from transcribe_cli.cli.console import State
from transcribe_cli.cli.group import DefaultCommandGroup
from transcribe_cli.errors import TranscribeError

HELP = """Transcribe recordings into MIDI.

  transcribe song.wav -o song.mid        one file
  transcribe recordings/ -o midi/        a whole folder (recursive)

Run [bold]transcribe run --help[/] for every transcription option.
"""


def _version(value: bool) -> None:
    if value:
        print(f"transcribe-cli {__version__}")
        raise typer.Exit()


def _root(
    plugins_dir: Annotated[
        Optional[list[str]],
        typer.Option("--plugins-dir", help="Load loose plugin .py files from this folder (repeatable).",
                     envvar=None),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show details and tracebacks.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    # --verbose/--quiet (here or after the command) were read once, by main(), into the
    # State every command gets as ``ctx.obj``; they are declared here for --help and parsing
    del plugins_dir, verbose, quiet, version


def _prescan_plugins_dirs(argv: list[str]) -> list[str]:
    """``--plugins-dir`` values, needed before parsing (plugins may add commands)."""
    dirs = []
    for i, token in enumerate(argv):
        if token == "--plugins-dir" and i + 1 < len(argv):
            dirs.append(argv[i + 1])
        elif token.startswith("--plugins-dir="):
            dirs.append(token.split("=", 1)[1])
    return dirs


def build_app(state: State | None = None) -> typer.Typer:
    """The app with every command; broken plugins are reported through ``state`` (not when quiet)."""
    state = state or State()
    from transcribe_cli.cli import models, plugins, transcribe
    from transcribe_cli.cli.help_layout import keep_option_names_whole
    from transcribe_cli.plugins import _one_line

    keep_option_names_whole()
    from transcribe_cli.registry import get_registry

    app = typer.Typer(
        cls=DefaultCommandGroup,
        help=HELP,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode="rich",
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_root)
    transcribe.register(app)
    models.register(app)
    plugins.register(app)
    from transcribe_cli.cli import cache, download

    download.register(app)
    cache.register(app)
    from transcribe_cli.cli import eval as eval_cli

    eval_cli.register(app)
    from transcribe_cli.cli import train

    train.register(app)
    from transcribe_cli.cli import export as export_cli

    export_cli.register(app)
    from transcribe_cli.cli import show as show_cli

    show_cli.register(app)

    registry = get_registry(state.plugins_dirs)
    hook = registry.loaded.pm.hook.register_commands
    for impl in hook.get_hookimpls():
        try:
            impl.function(app=app)
        except Exception as exc:
            registry.loaded.infos[impl.plugin_name].error = f"register_commands failed: {_one_line(exc)}"
    for line in registry.problems():
        state.warn(line)
    return app


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
    try:
        app = build_app(state)
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
