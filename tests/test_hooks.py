"""Every plugin hook is documented for plugin authors and exercised by a test plugin.

A hook added to :mod:`transcribe_cli.hookspecs` without a section in
``docs/writing-a-plugin.md`` or without a test plugin implementing it (or a test calling it
through a plugin manager) fails here.
"""

from __future__ import annotations

import inspect
import re

import pytest

from conftest import ROOT
from transcribe_cli import hookspecs

HOOKS = sorted(
    name for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(function, "transcribe_cli_spec")
)
GUIDE = ROOT / "docs" / "writing-a-plugin.md"


def _implementations(hook: str) -> list[str]:
    """Test files and test plugins (tests/, outside this file) that implement ``hook`` or call
    it through a plugin manager."""
    pattern = re.compile(rf"^def {hook}\(|\.hook\.{hook}\(", re.MULTILINE)
    return [
        str(path.relative_to(ROOT)) for path in sorted((ROOT / "tests").rglob("*.py"))
        if path.name != "test_hooks.py" and pattern.search(path.read_text(encoding="utf-8"))
    ]


def test_the_hooks_are_found():
    assert {"register_frontends", "register_models", "register_decoders"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented_for_plugin_authors(hook):
    assert f"`{hook}`" in GUIDE.read_text(encoding="utf-8"), f"{hook} is missing from {GUIDE.name}"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_exercised_by_a_test(hook):
    assert _implementations(hook), f"no test plugin or test under tests/ implements or calls {hook}"
