"""``maestro``: the MAESTRO v2/v3 layout.

``ROOT/maestro-v3.0.0.csv`` (or ``maestro-v2.0.0.csv``) lists every performance with its
``split`` (train/validation/test), ``midi_filename`` and ``audio_filename`` relative to ROOT.
"""

from __future__ import annotations

import csv
from pathlib import Path

from transcribe_cli.datasets.base import Item, check_split, limit_items, require_root
from transcribe_cli.errors import TranscribeError

REQUIRED_COLUMNS = ("split", "midi_filename", "audio_filename")


def find_metadata(root: Path) -> Path:
    candidates = sorted(root.glob("maestro-v*.csv"), reverse=True)  # newest version first
    if not candidates:
        raise TranscribeError(
            f"{root} is not a MAESTRO folder (no maestro-v*.csv)",
            "pass --root pointing at the unpacked maestro-v3.0.0 folder",
        )
    return candidates[0]


def open_maestro(root: str | Path | None, split: str = "test", *, limit: int = 0) -> list[Item]:
    root = require_root(root, "maestro")
    if not root.is_dir():
        raise TranscribeError(f"MAESTRO folder not found: {root}", "pass --root pointing at maestro-v3.0.0/")
    check_split(split)
    metadata = find_metadata(root)
    with metadata.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    missing = [c for c in REQUIRED_COLUMNS if rows and c not in rows[0]]
    if not rows or missing:
        raise TranscribeError(f"{metadata} lacks the columns {', '.join(missing) or REQUIRED_COLUMNS}")
    items = []
    for row in rows:
        if split != "all" and row["split"] != split:
            continue
        audio, labels = root / row["audio_filename"], root / row["midi_filename"]
        if not audio.is_file() or not labels.is_file():
            raise TranscribeError(
                f"{metadata.name} lists {row['audio_filename']}, which is missing under {root}",
                "download the full dataset, or use --dataset pairs for a partial copy",
            )
        items.append(Item(row["audio_filename"], audio, labels))
    if not items:
        raise TranscribeError(f"no recordings in {metadata.name} for split {split!r}")
    return limit_items(items, limit)
