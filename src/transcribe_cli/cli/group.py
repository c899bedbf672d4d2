"""A Typer group whose first argument may be a file: ``transcribe song.wav`` runs the
default command, ``transcribe eval ...`` runs a subcommand.

Typer (≥ 0.26) vendors click, so click-default-group no longer fits; this subclass
inserts the default command's name in front of the arguments when the first token is
neither a subcommand nor one of the group's own options.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup

DEFAULT_COMMAND = "run"


class DefaultCommandGroup(TyperGroup):
    default_command = DEFAULT_COMMAND

    def _group_option_arity(self, ctx: Any) -> dict[str, int]:
        """Each group-level option string → how many values follow it."""
        arity: dict[str, int] = {}
        for param in self.get_params(ctx):
            for opt in (*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())):
                if opt.startswith("-"):
                    arity[opt] = 0 if getattr(param, "is_flag", False) or getattr(param, "count", False) else 1
        return arity

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        arity = self._group_option_arity(ctx)
        i = 0
        while i < len(args):
            token = args[i]
            name = token.split("=", 1)[0]
            if token.startswith("-") and name in arity:
                i += 1 + (arity[name] if "=" not in token else 0)
                continue
            break
        if i < len(args) and args[i] not in self.commands and args[i] != "--help":
            args = [*args[:i], self.default_command, *args[i:]]
        return super().parse_args(ctx, args)
