"""``transcribe --help`` kept on disk, so that printing it needs neither Typer nor the plugin
scan (``importlib.metadata`` over every installed distribution).

The text is stored with what it was made from: transcribe-cli's version, the interpreter,
``sys.path``, ``TRANSCRIBE_LOAD_PLUGINS`` and the help's width, and the modification time of
every ``sys.path`` folder (installing, upgrading or removing a distribution changes the folder
it goes into, and so the set of plugins) and of every module file imported while rendering
it (an edited command or plugin). When any of these differs the help is rendered again.
Not used with loose plugin files (``--plugins-dir``, ``TRANSCRIBE_PLUGINS_DIR``), with
``TRANSCRIBE_TRACE_PLUGINS``, or when a plugin is broken (its warning is printed each time).
Kept in ``<cache root>/help.json`` (see :mod:`transcribe_cli.paths`); a cache that cannot be
read or written is simply not used.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

FILE_NAME = "help.json"
#: Renderings kept (``python -m transcribe_cli`` and the ``transcribe`` script differ in
#: ``sys.path``; so do virtual environments sharing a cache): the most recent first.
MAX_ENTRIES = 8
#: Set, and the help is rendered every time (loose plugins are files we do not track).
BYPASS_ENV = ("TRANSCRIBE_PLUGINS_DIR", "TRANSCRIBE_TRACE_PLUGINS")
HELP_FLAGS = ("-h", "--help")
VERBOSITY_FLAGS = ("-v", "--verbose", "-q", "--quiet")


def is_top_level_help(argv: list[str]) -> bool:
    """``transcribe --help`` (or ``-h``), with at most ``-v``/``-q`` besides."""
    rest = [arg for arg in argv if arg not in VERBOSITY_FLAGS]
    return len(rest) == 1 and rest[0] in HELP_FLAGS


def usable(plugins_dirs: tuple[str, ...]) -> bool:
    return not plugins_dirs and not any(os.environ.get(name) for name in BYPASS_ENV)


def _path() -> Path:
    from transcribe_cli.paths import cache_root

    return cache_root() / FILE_NAME


def _sys_path() -> list[str]:
    return [entry or os.getcwd() for entry in sys.path]  # "" is the current folder


def _key() -> dict[str, Any]:
    import shutil

    from transcribe_cli import __version__

    return {
        "version": __version__,
        "python": sys.executable,
        "sys_path": _sys_path(),
        "load_plugins": os.environ.get("TRANSCRIBE_LOAD_PLUGINS"),
        "width": max(min(shutil.get_terminal_size().columns, 80) - 2, 50),  # click's HelpFormatter's
    }


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _entries() -> list[dict[str, Any]]:
    try:
        entries = json.loads(_path().read_text(encoding="utf-8"))["entries"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [entry for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else []


def load() -> str | None:
    """The stored help, if it was made from exactly what is here now."""
    key = _key()
    for entry in _entries():
        try:
            if entry["key"] == key and all(_mtime(path) == mtime for path, mtime in entry["stamps"].items()):
                return str(entry["text"])
        except (KeyError, TypeError, AttributeError):
            continue
    return None


def store(text: str) -> None:
    """Keep ``text`` with the stamps of ``sys.path`` and of every module imported so far."""
    files = {getattr(module, "__file__", None) for module in list(sys.modules.values())}
    paths = _sys_path() + sorted(f for f in files if isinstance(f, str))
    key = _key()
    entry = {"key": key, "stamps": {path: _mtime(path) for path in paths}, "text": text}
    others = [old for old in _entries() if old.get("key") != key]
    payload = {"entries": [entry, *others][:MAX_ENTRIES]}
    try:
        target = _path()
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(payload), encoding="utf-8")
        os.replace(partial, target)
    except OSError:
        pass
