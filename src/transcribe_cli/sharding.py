"""``--shard I/N``: a deterministic split of a batch for schedulers that fan it out.

Each input file belongs to exactly one of ``N`` shards, chosen by a hash of its *shard key*:
its path relative to the input folder it was found in (``sub/take.flac``), or its file name
when it was given directly. The key does not depend on the file's position in the list, on
where the collection is mounted (``/data`` on one node, ``/mnt/data`` on another), on the
output format, or on the other files, so

* the shards of one run are disjoint and together hold every input, in the batch's order;
* re-running a shard selects the same files, and adding files to the collection never moves
  an existing file to another shard (a new file simply joins the shard its key hashes to).

The hash is BLAKE2b of the key's UTF-8 bytes after Unicode NFC normalisation (macOS stores
names decomposed, Linux as typed), so every machine and Python version agrees. Shards are
numbered from 0, as Slurm arrays and Kubernetes indexed jobs number their tasks:
``--shard $SLURM_ARRAY_TASK_ID/16``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from transcribe_cli.errors import TranscribeError

if TYPE_CHECKING:
    from transcribe_cli.batch import Job

__all__ = ["Shard", "parse_shard", "select_shard", "shard_key", "shard_of"]

_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (``0 <= index < count``)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1:
            raise TranscribeError(f"--shard {self.index}/{self.count}: there must be at least one shard",
                                  "e.g. --shard 0/4")
        if not 0 <= self.index < self.count:
            raise TranscribeError(f"--shard {self.index}/{self.count} does not exist",
                                  f"shards count from 0: 0/{self.count} … {self.count - 1}/{self.count}")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def label(self) -> str:
        """A file-name-safe name, e.g. ``shard-3-of-16``."""
        return f"shard-{self.index}-of-{self.count}"


def parse_shard(spec: str) -> Shard:
    """``"3/16"`` → ``Shard(3, 16)``; anything else is a one-line error."""
    match = _SPEC.fullmatch(spec)
    if match is None:
        raise TranscribeError(f"--shard {spec!r} is not I/N", "e.g. --shard 0/4 … --shard 3/4 (shards count from 0)")
    return Shard(int(match[1]), int(match[2]))


def shard_of(key: str, count: int) -> int:
    """The shard (``0 <= s < count``) that ``key`` belongs to."""
    data = unicodedata.normalize("NFC", key).encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big") % count


def shard_key(source: Path, inputs: Sequence[Path]) -> str:
    """``source``'s path relative to the first input folder containing it (POSIX
    separators), else its file name."""
    for root in inputs:
        if root.is_dir():
            try:
                return source.relative_to(root).as_posix()
            except ValueError:
                continue
    return source.name


def select_shard(jobs: Iterable[Job], shard: Shard, inputs: Iterable[str | Path]) -> list[Job]:
    """The jobs of ``shard``, in their original order."""
    roots = [Path(p) for p in inputs]
    return [job for job in jobs if shard_of(shard_key(job.source, roots), shard.count) == shard.index]
