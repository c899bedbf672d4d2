"""Note files: MIDI, CSV and JSON, written atomically and read back.

Formats (see :data:`FORMATS`):

* ``mid`` — a Standard MIDI File, see :mod:`transcribe_cli.io.midi`.
* ``csv`` — header ``onset,offset,pitch,velocity``, one note per row, sorted by onset then
  pitch; times in seconds with 4 decimals.
* ``json`` — ``{"metadata": {...}, "notes": [{"onset", "offset", "pitch", "velocity"}, ...]}``
  (``metadata`` only when given), same order and precision as CSV.

Rounding to 4 decimals (0.1 ms, far below any transcription's accuracy) keeps the files
readable; a note whose rounded offset would not be after its rounded onset is given the
minimum duration of 0.0001 s, so every written note reads back as a valid
:class:`~transcribe_cli.notes.Note`. Reading a CSV or JSON file that is not of this shape
raises :class:`~transcribe_cli.errors.MidiError` naming the file and the offending row.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MidiError, OutputError
from .fileio import atomic_write
from ..notes import Note, Pedal, sort_notes

if TYPE_CHECKING:
    from ..tempo import TempoMap

__all__ = ["CSV_HEADER", "FORMATS", "TIME_DECIMALS", "format_for_path", "note_file_format", "notes_text", "read_notes", "write_notes"]

FORMATS: tuple[str, ...] = ("mid", "csv", "json", "musicxml", "png")
#: Formats that :func:`read_notes` reads back (musicxml and png are for people).
NOTE_FORMATS: tuple[str, ...] = ("mid", "csv", "json")
CSV_HEADER: tuple[str, ...] = ("onset", "offset", "pitch", "velocity")
TIME_DECIMALS = 4

_SUFFIXES = {".mid": "mid", ".midi": "mid", ".csv": "csv", ".json": "json", ".musicxml": "musicxml", ".png": "png"}
_MIN_DURATION = 10.0**-TIME_DECIMALS


def note_file_format(path: str | os.PathLike[str]) -> str | None:
    """The format (one of :data:`FORMATS`) named by ``path``'s suffix, or ``None``."""
    return _SUFFIXES.get(Path(path).suffix.lower())


def format_for_path(path: str | os.PathLike[str]) -> str:
    """The format (one of :data:`FORMATS`) named by ``path``'s suffix: .mid/.midi, .csv, .json."""
    fmt = note_file_format(path)
    if fmt is None:
        suffix = Path(path).suffix.lower()
        raise OutputError(
            f"cannot tell the note file format of {path} from its suffix {suffix or '(none)'!r}",
            "use .mid, .midi, .csv or .json",
        )
    return fmt


def write_notes(
    notes: Iterable[Note],
    path: str | os.PathLike[str],
    fmt: str | None = None,
    *,
    metadata: Mapping[str, Any] | None = None,
    tempo: float = 120.0,
    pedals: Iterable[Pedal] = (),
    tempo_map: TempoMap | None = None,
) -> None:
    """Write ``notes`` to ``path`` in ``fmt`` (inferred from the suffix when None).

    ``metadata`` (JSON-serialisable; other values are written with ``str``) is stored in
    JSON files only; ``tempo`` and ``tempo_map`` only affect MIDI files; ``pedals`` are
    CC64 events in MIDI and a ``"pedals"`` list in JSON (CSV holds notes only). musicxml
    and png go through :func:`transcribe_cli.writing.write_transcription`.
    """
    fmt = format_for_path(path) if fmt is None else fmt.lower().lstrip(".")
    if fmt == "midi":
        fmt = "mid"
    if fmt not in FORMATS:
        raise OutputError(f"unknown note file format {fmt!r}", f"choose one of: {', '.join(FORMATS)}")
    if fmt == "mid":
        from .midi import write_midi

        write_midi(notes, path, tempo=tempo, pedals=pedals, tempo_map=tempo_map)
        return
    if fmt in ("musicxml", "png"):
        from ..notes import Transcription
        from ..writing import write_transcription

        write_transcription(Transcription(list(notes), list(pedals)), Path(path), fmt)
        return
    text = notes_text(notes, fmt, metadata=metadata, pedals=pedals)
    with atomic_write(path, "w", newline="") as handle:
        handle.write(text)


def notes_text(
    notes: Iterable[Note], fmt: str, *, metadata: Mapping[str, Any] | None = None, pedals: Iterable[Pedal] = ()
) -> str:
    """The CSV or JSON note list ``write_notes`` writes, as text (e.g. for stdout)."""
    rows = [_rounded(n) for n in sort_notes(notes)]
    if fmt == "csv":
        handle = io.StringIO()
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        for onset, offset, pitch, velocity in rows:
            writer.writerow((_fmt_time(onset), _fmt_time(offset), pitch, velocity))
        return handle.getvalue()
    if fmt != "json":
        raise OutputError(f"{fmt} is not a text note list format", "use csv or json")
    document: dict[str, Any] = {}
    if metadata is not None:
        document["metadata"] = dict(metadata)
    document["notes"] = [dict(zip(CSV_HEADER, row, strict=True)) for row in rows]
    pedal_list = sorted(pedals, key=lambda p: (p.onset, p.offset))
    if pedal_list:
        document["pedals"] = [{"onset": _round_time(p.onset), "offset": _round_time(p.offset)} for p in pedal_list]
    return json.dumps(document, indent=1, default=str, allow_nan=False) + "\n"


def read_notes(path: str | os.PathLike[str], *, sustain_pedal: bool = True) -> list[Note]:
    """Notes from a .mid/.midi, .csv or .json file, sorted by onset then pitch.

    ``sustain_pedal`` applies to MIDI files (see :func:`transcribe_cli.io.midi.read_midi`).
    """
    fmt = format_for_path(path)
    if fmt not in NOTE_FORMATS:
        raise MidiError(f"{path} is a {fmt} file, which holds no note list to read back", "pass a .mid, .csv or .json file")
    if fmt == "mid":
        from .midi import read_midi

        return read_midi(path, sustain_pedal=sustain_pedal)
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise MidiError(f"note file not found: {file}", "check the path and spelling") from None
    except IsADirectoryError:
        raise MidiError(f"{file} is a directory, not a note file", "pass a .csv or .json file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MidiError(f"cannot read note file {file}: {exc}", "check that it is a UTF-8 text file") from None
    return sort_notes(_parse_csv(text, file) if fmt == "csv" else _parse_json(text, file))


# --------------------------------------------------------------------------- helpers


def _round_time(t: float) -> float:
    return float(f"{t:.{TIME_DECIMALS}f}")


def _fmt_time(t: float) -> str:
    return f"{t:.{TIME_DECIMALS}f}"


def _rounded(note: Note) -> tuple[float, float, int, int]:
    """The note as written: times rounded, at least the minimum duration."""
    if not (math.isfinite(note.onset) and math.isfinite(note.offset)):
        raise ValueError(f"cannot write a note with non-finite time: {note}")
    onset = _round_time(note.onset)
    offset = _round_time(note.offset)
    if offset <= onset:
        offset = _round_time(onset + _MIN_DURATION)
    return onset, offset, int(note.pitch), int(note.velocity)


def _make_note(values: Mapping[str, Any], file: Path, where: str) -> Note:
    try:
        onset = float(values["onset"])
        offset = float(values["offset"])
        pitch = _as_int(values["pitch"])
        velocity = _as_int(values.get("velocity", 64))
        if not (math.isfinite(onset) and math.isfinite(offset)):
            raise ValueError("times must be finite numbers")
        return Note(onset, offset, pitch, velocity)
    except KeyError as exc:
        raise MidiError(f"{file}: {where}: missing field {exc.args[0]!r}", _shape_hint(file)) from None
    except (TypeError, ValueError) as exc:
        raise MidiError(f"{file}: {where}: invalid note ({exc})", _shape_hint(file)) from None


def _as_int(value: Any) -> int:
    """An integer from an int, an integral float or a string such as "60" or "60.0"."""
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, got {value!r}")
    number = float(value)
    if not number.is_integer():
        raise ValueError(f"expected an integer, got {value!r}")
    return int(number)


def _shape_hint(file: Path) -> str:
    if file.suffix.lower() == ".csv":
        return "expected a header onset,offset,pitch,velocity and one note per row"
    return 'expected {"notes": [{"onset": s, "offset": s, "pitch": n, "velocity": n}, ...]}'


def _parse_csv(text: str, file: Path) -> list[Note]:
    reader = csv.DictReader(text.splitlines())
    fields = [f.strip().lower() for f in (reader.fieldnames or [])]
    missing = [c for c in ("onset", "offset", "pitch") if c not in fields]
    if missing:
        raise MidiError(f"{file}: CSV header lacks column(s) {', '.join(missing)}", _shape_hint(file))
    reader.fieldnames = fields
    notes = []
    for row in reader:
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # blank line
        values = {k: v for k, v in row.items() if v not in (None, "")}
        notes.append(_make_note(values, file, f"line {reader.line_num}"))
    return notes


def _parse_json(text: str, file: Path) -> list[Note]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MidiError(f"{file}: not valid JSON (line {exc.lineno}: {exc.msg})", _shape_hint(file)) from None
    items = document.get("notes") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise MidiError(f"{file}: no list of notes found", _shape_hint(file))
    notes = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise MidiError(f"{file}: note {index} is not an object", _shape_hint(file))
        notes.append(_make_note(item, file, f"note {index}"))
    return notes
