"""Shared fixtures: an isolated plugin environment and an in-process CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from transcribe_cli.testing import CliResult as Result  # noqa: F401  (tests import Result from here)
from transcribe_cli.testing import fluidsynth_available as have_fluidsynth
from transcribe_cli.testing import invoke

pytest_plugins = ("fake_hub",)  # fixtures: hub_server, hub_env, hub_subprocess_env

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
REAL = SHARED / "data" / "real"
SRC = ROOT / "src"

needs_fluidsynth = pytest.mark.skipif(not have_fluidsynth(), reason="FluidSynth or a SoundFont is not installed")


@pytest.fixture(autouse=True)
def _isolated_plugins(monkeypatch, tmp_path):
    """No stray plugin env vars, a fresh registry and a private ``--help`` cache for every test."""
    from transcribe_cli.cli import help_cache
    from transcribe_cli.registry import reset_registry

    monkeypatch.setattr(help_cache, "_path", lambda: tmp_path / "help-cache" / help_cache.FILE_NAME)
    for var in ("TRANSCRIBE_PLUGINS_DIR", "TRANSCRIBE_LOAD_PLUGINS", "TRANSCRIBE_TRACE_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    reset_registry()
    yield
    reset_registry()


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run ``transcribe ARGS`` in-process; returns exit code, stdout and stderr."""
    monkeypatch.setenv("COLUMNS", "200")  # read by each invocation's consoles

    def run(*args: str) -> Result:
        return invoke(capsys, *args)

    return run


def run_subprocess(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 300):
    """Run ``python -m transcribe_cli ARGS`` in a fresh interpreter."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SRC), full_env.get("PYTHONPATH", "")) if p
    )
    return subprocess.run(
        [sys.executable, "-m", "transcribe_cli", *map(str, args)],
        capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout,
    )


def sine(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def piano_tone(midi: int, seconds: float, sr: int, amp: float = 0.5, harmonics: int = 6) -> np.ndarray:
    """A decaying harmonic tone: a crude but pitch-exact stand-in for a piano note."""
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    t = np.arange(int(seconds * sr)) / sr
    tone = sum((0.6**h) * np.sin(2 * np.pi * f0 * (h + 1) * t) for h in range(harmonics) if f0 * (h + 1) < sr / 2)
    tone = tone * np.exp(-1.5 * t) * np.minimum(1, t / 0.005)
    return (amp * tone / np.max(np.abs(tone))).astype(np.float32)


_TORCH_REPORT = """
import json, sys
from transcribe_cli.cli import main
sys.argv = ["transcribe", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "torch": sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))}))
"""


def cli_torch_modules(*args: str, home: Path, timeout: float = 300) -> tuple[dict, str]:
    """Run ``transcribe ARGS`` in a fresh interpreter (a clean environment, ``home`` as its home
    and cache): ``({"code": exit code, "torch": torch modules it imported}, stderr)``."""
    import json

    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", "HOME": str(home),
           "TRANSCRIBE_CACHE_DIR": str(home / "cache")}
    result = subprocess.run([sys.executable, "-c", _TORCH_REPORT, *map(str, args)],
                            capture_output=True, text=True, env=env, timeout=timeout)
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr
