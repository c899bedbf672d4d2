"""What a dataset yields: labelled recordings, ordered and reproducible."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from transcribe_cli.notes import Note, Pedal

SPLITS = ("train", "validation", "test")
# deterministic hash split of the ``pairs`` dataset: fractions of train/validation/test
HASH_FRACTIONS = (0.8, 0.1, 0.1)


@dataclass(frozen=True)
class Item:
    """One labelled recording. ``name`` is unique within its dataset (a relative path)."""

    name: str
    audio_path: Path
    labels_path: Path

    def notes(self, sustain_pedal: bool = True) -> list[Note]:
        from transcribe_cli.io.outputs import read_notes

        return read_notes(self.labels_path, sustain_pedal=sustain_pedal)


def item_pedals(item: object) -> list[Pedal]:
    """The sustain-pedal intervals of a dataset item: its ``pedals()`` when it has one, else
    the CC64 events of a MIDI label file, else none (CSV/JSON labels carry no pedal)."""
    pedals = getattr(item, "pedals", None)
    if callable(pedals):
        return list(pedals())
    labels = Path(getattr(item, "labels_path", "") or "")
    if labels.suffix.lower() in (".mid", ".midi"):
        from transcribe_cli.io.midi import read_pedals

        return read_pedals(labels)
    return []


def hash_split(key: str, fractions: tuple[float, float, float] = HASH_FRACTIONS) -> str:
    """A stable split for ``key`` (the same on every machine and Python version)."""
    digest = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    u = digest / 2**64
    edge = 0.0
    for split, fraction in zip(SPLITS, fractions):
        edge += fraction
        if u < edge:
            return split
    return SPLITS[-1]


def check_split(split: str, allowed: tuple[str, ...] = (*SPLITS, "all")) -> str:
    from transcribe_cli.errors import OptionError

    if split not in allowed:
        raise OptionError(f"unknown split {split!r}", f"use one of {', '.join(allowed)}")
    return split


def require_root(root: str | Path | None, dataset: str) -> Path:
    """``root`` as a path; a clear error when the dataset needs one and none was given."""
    from transcribe_cli.errors import OptionError

    if root is None or str(root) == "":
        raise OptionError(f"dataset {dataset!r} needs a folder", "pass --root DIR")
    return Path(root).expanduser()


def limit_items(items: list[Item], limit: int) -> list[Item]:
    return items[:limit] if limit and limit > 0 else items
