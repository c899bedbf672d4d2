"""The ``transcribe`` Typer app: the root options, the built-in commands (imported when they
run, see :mod:`transcribe_cli.cli.group`) and the commands plugins add through
``register_commands``."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from transcribe_cli import __version__
from transcribe_cli.cli.console import State
from transcribe_cli.cli.group import DefaultCommandGroup, LazyCommand

# click's formatter: \b keeps the next paragraph's lines as they are
HELP = """Transcribe recordings into MIDI.

\b
  transcribe song.wav -o song.mid        one file
  transcribe recordings/ -o midi/        a whole folder (recursive)

Run `transcribe run --help` for every transcription option.
"""

#: The built-in commands in the order ``--help`` lists them: the module whose ``register(app)``
#: adds each, and its summary for ``--help`` (tests/test_cli.py checks it against the command).
BUILTIN_COMMANDS = {
    "run": LazyCommand("transcribe_cli.cli.transcribe",
                       "Transcribe audio files or folders into MIDI (or CSV/JSON note lists)."),
    "models": LazyCommand("transcribe_cli.cli.models",
                          "List models and their weights; models info NAME shows a model's card."),
    "plugins": LazyCommand("transcribe_cli.cli.plugins",
                           "List loaded plugins with their version and what each registers."),
    "download": LazyCommand("transcribe_cli.cli.download",
                            "Download model weights into the cache now, so later runs work offline."),
    "cache": LazyCommand("transcribe_cli.cli.cache",
                         "Downloaded model weights: list them, or delete some or all."),
    "eval": LazyCommand("transcribe_cli.cli.eval",
                        "Score models on a labelled dataset with mir_eval: frame, note, note+offset, "
                        "note+offset+velocity."),
    "train": LazyCommand("transcribe_cli.cli.train",
                         "Train a neural model on a dataset; resumable, validated, logged to the run folder."),
    "export": LazyCommand("transcribe_cli.cli.export",
                          "Export a trained model for deployment: transcribe export runs/NAME --onnx."),
    "show": LazyCommand("transcribe_cli.cli.show",
                        "Print a compact piano roll of a MIDI/CSV/JSON note file (beats marked with ' on top)."),
}


class RootGroup(DefaultCommandGroup):
    lazy_commands = BUILTIN_COMMANDS


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


def build_app(state: State | None = None) -> typer.Typer:
    """The app with every command; broken plugins are reported through ``state`` (not when quiet)."""
    from transcribe_cli.plugins import _one_line
    from transcribe_cli.registry import get_registry

    state = state or State()
    app = typer.Typer(
        cls=RootGroup,
        help=HELP,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode="rich",
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_root)  # the built-in commands are RootGroup's lazy_commands
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


def root_help(app: typer.Typer, state: State) -> str:
    """What ``transcribe --help`` prints."""
    from typer import _click

    command = typer.main.get_command(app)
    ctx = _click.Context(command, info_name="transcribe", obj=state, **command.context_settings)
    return ctx.get_help()
