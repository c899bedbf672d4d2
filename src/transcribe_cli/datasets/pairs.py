"""``pairs``: a folder of recordings, each with a same-stem label file beside it.

Labels are ``.mid``/``.midi`` (or ``.csv``/``.json`` note lists). A split is chosen by a
``split_file`` (one relative audio path per line, ``#`` comments allowed; it replaces
``split``) or, without one, by a deterministic hash of each file's relative path *without
its suffix*, so one take stored in several containers (``a.wav``, ``a.flac``) stays in
one split.
"""

from __future__ import annotations

from pathlib import Path

from transcribe_cli.datasets.base import (
    Item,
    check_split,
    hash_split,
    limit_items,
    require_root,
)
from transcribe_cli.errors import TranscribeError

LABEL_SUFFIXES = (".mid", ".midi", ".json", ".csv")


def label_for(audio: Path) -> Path | None:
    for suffix in LABEL_SUFFIXES:
        for candidate in (audio.with_suffix(suffix), audio.with_suffix(suffix.upper())):
            if candidate.is_file():
                return candidate
    return None


def read_split_file(path: Path) -> set[str]:
    """The relative audio paths listed in ``path`` (one per line, ``#`` starts a comment)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TranscribeError(f"cannot read split file {path}: {exc}", "pass a UTF-8 text file") from None
    return {line.split("#", 1)[0].strip() for line in lines} - {""}


def open_pairs(
    root: str | Path | None, split: str = "all", *, split_file: str = "", limit: int = 0
) -> list[Item]:
    from transcribe_cli.io.audio import find_audio

    root = require_root(root, "pairs")
    check_split(split)
    if not root.is_dir():
        raise TranscribeError(f"dataset folder not found: {root}", "pass --root DIR")
    chosen = read_split_file(Path(split_file)) if split_file else None
    items = []
    for audio in find_audio(root):
        name = audio.relative_to(root).as_posix()
        labels = label_for(audio)
        if labels is None:
            continue
        if chosen is not None:
            if name not in chosen:
                continue
        elif split != "all" and hash_split(Path(name).with_suffix("").as_posix()) != split:
            continue
        items.append(Item(name, audio, labels))
    if chosen is not None:
        missing = sorted(chosen - {item.name for item in items})
        if missing:
            raise TranscribeError(
                f"{split_file} lists {missing[0]}, which is not a labelled recording under {root}"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
                "paths in a split file are relative to --root",
            )
    if not items:
        raise TranscribeError(
            f"no labelled recordings in {root} for split {split!r}",
            "each audio file needs a same-stem .mid/.midi beside it",
        )
    return limit_items(items, limit)
