"""Where transcribe-cli keeps files between runs (Hub downloads, renders, locks)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "TRANSCRIBE_CACHE_DIR"


def cache_root() -> Path:
    """The cache root: ``$TRANSCRIBE_CACHE_DIR`` or the platform's user cache dir."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("transcribe-cli"))
