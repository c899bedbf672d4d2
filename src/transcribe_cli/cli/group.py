"""The root ``transcribe`` group: a default command, commands imported when they run, and a
``--help`` that needs neither.

- **Default command.** ``transcribe song.wav`` runs ``run``, ``transcribe eval ...`` runs a
  subcommand. Typer (≥ 0.26) vendors click, so click-default-group no longer fits; this
  group inserts the default command's name in front of the arguments when the first token
  is neither a subcommand nor one of the group's own options.
- **Lazy commands.** The built-in commands are listed in :attr:`lazy_commands` (name → the
  module that registers it and a one-line summary); a module is imported only when its
  command runs (or is asked for its own ``--help``).
- **Plain top-level help.** ``transcribe --help`` is rendered by click's own formatter from
  those summaries: Typer's rich formatter (``typer.rich_utils``, with ``rich.markdown``) costs
  more than the whole help should. A subcommand's ``--help`` stays rich.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

from typer.core import TyperGroup

DEFAULT_COMMAND = "run"


class LazyCommand(NamedTuple):
    """A built-in command: ``module.register(app)`` adds it to a Typer app."""

    module: str
    summary: str


class DefaultCommandGroup(TyperGroup):
    default_command = DEFAULT_COMMAND
    #: name → :class:`LazyCommand`, in the order ``--help`` lists them (before plugin commands)
    lazy_commands: dict[str, LazyCommand] = {}

    # -- commands ---------------------------------------------------------------------

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.lazy_commands, *(name for name in self.commands if name not in self.lazy_commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            self.commands[cmd_name] = self._load(cmd_name)
        return self.commands.get(cmd_name)

    def _load(self, name: str) -> Any:
        """Import the module of built-in command ``name`` and build its click command."""
        import typer

        app = typer.Typer(rich_markup_mode=self.rich_markup_mode, pretty_exceptions_enable=False)
        importlib.import_module(self.lazy_commands[name].module).register(app)
        return typer.main.get_group(app).commands[name]

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, command, rest = super().resolve_command(ctx, args)
        if any(arg in ctx.help_option_names for arg in rest) or isinstance(command, TyperGroup):
            from transcribe_cli.cli.help_layout import keep_option_names_whole

            keep_option_names_whole()  # this command's help is about to be rendered by rich
        return name, command, rest

    # -- the default command -----------------------------------------------------------

    def _group_option_arity(self, ctx: Any) -> dict[str, int]:
        """Each group-level option string → how many values follow it."""
        arity: dict[str, int] = {}
        for param in self.get_params(ctx):
            for opt in (*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())):
                if opt.startswith("-"):
                    arity[opt] = 0 if getattr(param, "is_flag", False) or getattr(param, "count", False) else 1
        return arity

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            from typer import _click

            # click's way (help on stderr, exit 2); Typer's rich error handler prints nothing here
            _click.echo(ctx.get_help(), err=True)
            ctx.exit(2)
        arity = self._group_option_arity(ctx)
        i = 0
        while i < len(args):
            token = args[i]
            name = token.split("=", 1)[0]
            if token.startswith("-") and name in arity:
                i += 1 + (arity[name] if "=" not in token else 0)
                continue
            break
        if i < len(args) and args[i] not in self.list_commands(ctx) and args[i] not in ctx.help_option_names:
            args = [*args[:i], self.default_command, *args[i:]]
        return super().parse_args(ctx, args)

    # -- plain top-level help ------------------------------------------------------------

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from typer import _click

        _click.Command.format_help(self, ctx, formatter)  # click's, not Typer's rich one

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy_commands and name not in self.commands:
                rows.append((name, self.lazy_commands[name].summary))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                limit = formatter.width - 6 - max(map(len, self.list_commands(ctx)))
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
