"""Plugin discovery and loading (pluggy).

Sources, in order:

1. built-in plugins (``transcribe_cli.frontends``, ``.decoders``, ``.models``, ``.datasets``),
   registered exactly like third-party ones;
2. installed distributions exposing the entry-point group ``transcribe_cli``;
3. loose ``*.py`` files from ``--plugins-dir`` and the ``TRANSCRIBE_PLUGINS_DIR``
   environment variable (``os.pathsep``-separated folders), for quick experiments.

Environment:

- ``TRANSCRIBE_LOAD_PLUGINS``: comma-separated allow-list of entry-point plugins (by
  distribution name or entry-point name). Set but empty: no entry-point plugins at all.
- ``TRANSCRIBE_TRACE_PLUGINS=1``: print every hook call and what it registered to stderr.

A plugin that fails to import, that implements a hook that does not exist (caught by
``pm.check_pending()``), or whose hook raises, is reported in one line and skipped; it
never takes the CLI down. Loading imports plugin modules only: hooks are cheap by contract.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pluggy

from transcribe_cli import __version__, hookspecs

ENTRY_POINT_GROUP = "transcribe_cli"
ENV_PLUGINS_DIR = "TRANSCRIBE_PLUGINS_DIR"
ENV_LOAD_PLUGINS = "TRANSCRIBE_LOAD_PLUGINS"
ENV_TRACE = "TRANSCRIBE_TRACE_PLUGINS"

BUILTIN_PLUGINS = (
    "transcribe_cli.frontends",
    "transcribe_cli.decoders",
    "transcribe_cli.models",
    "transcribe_cli.datasets",
)


@dataclass
class PluginInfo:
    """What ``transcribe plugins`` shows about one plugin."""

    name: str
    source: str  # "builtin", "entry point", "file"
    version: str | None = None
    location: str | None = None
    registers: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "version": self.version,
            "location": self.location,
            "registers": self.registers,
            "error": self.error,
        }


@dataclass
class LoadedPlugins:
    pm: pluggy.PluginManager
    infos: dict[str, PluginInfo]

    def info_for(self, plugin: object) -> PluginInfo:
        return self.infos[self.pm.get_name(plugin)]

    @property
    def failures(self) -> list[PluginInfo]:
        return [info for info in self.infos.values() if info.error]


def trace_enabled() -> bool:
    return os.environ.get(ENV_TRACE, "").strip().lower() not in ("", "0", "false", "no")


def trace(message: str) -> None:
    if trace_enabled():
        print(f"[transcribe_cli plugins] {message}", file=sys.stderr)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "no message"
    return f"{type(exc).__name__}: {text}"


def _allow_list() -> set[str] | None:
    raw = os.environ.get(ENV_LOAD_PLUGINS)
    if raw is None:
        return None
    return {item.strip() for item in raw.split(",") if item.strip()}


def _plugin_dirs(extra: Iterable[str | os.PathLike] = ()) -> list[Path]:
    dirs = [Path(d) for d in extra]
    env = os.environ.get(ENV_PLUGINS_DIR, "")
    dirs += [Path(d) for d in env.split(os.pathsep) if d.strip()]
    return dirs


def _register(loaded: LoadedPlugins, module: object, info: PluginInfo) -> None:
    """Register ``module`` and validate its hooks; on failure record the error and undo."""
    pm = loaded.pm
    try:
        pm.register(module, name=info.name)
        pm.check_pending()
    except Exception as exc:  # a broken plugin must never take the CLI down
        if pm.get_plugin(info.name) is not None:
            pm.unregister(name=info.name)
        info.error = _one_line(exc)
        trace(f"{info.name}: rejected ({info.error})")
    loaded.infos[info.name] = info


def _load_builtins(loaded: LoadedPlugins) -> None:
    for module_name in BUILTIN_PLUGINS:
        info = PluginInfo(name=module_name, source="builtin", version=__version__)
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            info.error = _one_line(exc)
            loaded.infos[info.name] = info
            continue
        _register(loaded, module, info)


def _load_entry_points(loaded: LoadedPlugins) -> None:
    allow = _allow_list()
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else None
        if allow is not None and ep.name not in allow and dist_name not in allow:
            trace(f"{ep.name}: skipped (not in {ENV_LOAD_PLUGINS})")
            continue
        info = PluginInfo(
            name=ep.name,
            source="entry point",
            version=dist.version if dist is not None else None,
            location=dist_name,
        )
        if info.name in loaded.infos:
            info.error = f"a plugin named {ep.name!r} is already loaded"
            loaded.infos[f"{ep.name} ({dist_name})"] = info
            continue
        try:
            module = ep.load()
        except Exception as exc:
            info.error = _one_line(exc)
            loaded.infos[info.name] = info
            continue
        _register(loaded, module, info)


def _load_directory(loaded: LoadedPlugins, directory: Path) -> None:
    if not directory.is_dir():
        info = PluginInfo(name=str(directory), source="file", location=str(directory))
        info.error = "plugins directory does not exist"
        loaded.infos[info.name] = info
        return
    for path in sorted(directory.glob("*.py")):
        name = f"file:{path.stem}"
        info = PluginInfo(name=name, source="file", location=str(path))
        module_name = f"transcribe_cli_plugin_{path.stem}"
        try:
            spec = importlib.util.spec_from_file_location(module_name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(module_name, None)
            info.error = _one_line(exc)
            loaded.infos[info.name] = info
            continue
        _register(loaded, module, info)


def load_plugins(plugins_dirs: Iterable[str | os.PathLike] = ()) -> LoadedPlugins:
    """Build a plugin manager with every plugin source loaded."""
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    loaded = LoadedPlugins(pm=pm, infos={})
    _load_builtins(loaded)
    _load_entry_points(loaded)
    for directory in _plugin_dirs(plugins_dirs):
        _load_directory(loaded, directory)
    return loaded
