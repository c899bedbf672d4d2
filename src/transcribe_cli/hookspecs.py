"""Plugin hooks (pluggy, register-callback style).

Every ``register_*`` hook is called once with a ``register`` function; the plugin calls
it with one spec per thing it provides. Hooks must be cheap: no torch import, no weights.
All hooks are called for every plugin (no ``firstresult``); results are ignored.
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

hookspec = pluggy.HookspecMarker("transcribe_cli")
hookimpl = pluggy.HookimplMarker("transcribe_cli")


@hookspec
def register_frontends(register: Callable[[Any], None]) -> None:
    """Register spectrogram frontends: ``register(FrontendSpec(...))``."""


@hookspec
def register_models(register: Callable[[Any], None]) -> None:
    """Register models and named pretrained models: ``register(ModelSpec(...))``."""


@hookspec
def register_decoders(register: Callable[[Any], None]) -> None:
    """Register activation-to-note decoders: ``register(DecoderSpec(...))``."""


@hookspec
def register_datasets(register: Callable[[Any], None]) -> None:
    """Register labelled datasets for ``eval`` and ``train``: ``register(DatasetSpec(...))``."""


@hookspec
def register_commands(app: Any) -> None:
    """Add subcommands to the ``transcribe`` Typer app: ``@app.command()``."""
