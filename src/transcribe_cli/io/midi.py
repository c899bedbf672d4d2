"""Standard MIDI files in and out.

Writing (:func:`write_midi`): a type-1 file with a tempo track (one ``set_tempo``, 4/4 —
or, given a :class:`~transcribe_cli.tempo.TempoMap`, a tempo per beat and its time
signature, so bar lines fall where the music has them) and one piano track (``program``,
default 0 = Acoustic Grand Piano) on channel 0, or one track per part (the hands) on
channels 0, 1, …; sustain-pedal intervals are written as CC64 127/0 on each track. Times are
converted to ticks with the tempo in force, so a note's timing error is at most half a tick
(``60 / (tempo * resolution) / 2`` s: 0.52 ms at the defaults 120 BPM, 480 ticks per
beat). What MIDI cannot express is made explicit rather than left to chance:

* a note shorter than one tick is lengthened to one tick;
* a note that starts while another note of the same pitch still sounds ends that note
  (a key cannot be struck twice without being released); two notes of the same pitch
  starting on the same tick become one (the later offset, the louder velocity);
* velocity 0 would mean note-off, so it is written as 1; times before 0 become 0.

The file is written with :mod:`mido` (exact integer tempo, explicit event order) through
:func:`~transcribe_cli.io.fileio.atomic_write`; the events wait as integer arrays and each
message is made as the file is written, so an hour of piano costs about 5 MB, not 30.

Reading (:func:`read_midi`): :mod:`pretty_midi` parses the file (tempo maps, running
status, note-on velocity 0 as note-off); the notes of all non-drum instruments are merged.
With ``sustain_pedal=True`` note offsets are extended over the sustain pedal, following
``note_seq.sequences_lib.apply_sustain_control_changes`` (the MAESTRO / Onsets and Frames
convention), per instrument:

* the pedal is down while the last CC64 value is >= 64;
* a key released while the pedal is down keeps sounding until the pedal is lifted, or
  until the same pitch is struck again, whichever comes first;
* events at the same instant are ordered pedal-down, pedal-up, note-on, note-off, so a key
  released exactly when the pedal goes down is sustained;
* notes still sustained at the last event of the file end there.

Notes left with zero or negative duration are **dropped** (e.g. a duplicate note-on of
the same pitch at the same instant while the pedal is down).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import MidiError
from .fileio import atomic_write
from ..notes import Note, Pedal, sort_notes

if TYPE_CHECKING:
    from ..tempo import TempoMap

__all__ = ["DEFAULT_RESOLUTION", "SUSTAIN_CC", "apply_sustain_pedal", "read_midi", "write_midi"]

DEFAULT_RESOLUTION = 480  # ticks per quarter note
SUSTAIN_CC = 64

# Event kinds in processing order for events at the same time (note_seq's order).
_SUSTAIN_ON, _SUSTAIN_OFF, _NOTE_ON, _NOTE_OFF = 0, 1, 2, 3


# --------------------------------------------------------------------------- writing


def write_midi(
    notes: Iterable[Note] | Mapping[str, Iterable[Note]],
    path: str | os.PathLike[str],
    *,
    tempo: float = 120.0,
    program: int = 0,
    name: str = "Piano",
    resolution: int = DEFAULT_RESOLUTION,
    pedals: Iterable[Pedal] = (),
    tempo_map: TempoMap | None = None,
) -> None:
    """Write ``notes`` to ``path`` as a MIDI file, atomically.

    ``notes`` is one track (named ``name``), or a mapping of track name → notes for one
    track each (e.g. the two hands), on MIDI channels 0, 1, … with the same ``program``.
    ``pedals`` become sustain-pedal CC64 events (127 down, 0 up) on every track's channel;
    pedals that touch or overlap are merged. ``tempo`` (BPM) is the file's single tempo,
    or ``tempo_map`` (:class:`transcribe_cli.tempo.TempoMap`) gives a tempo per beat and
    its time signature so bars line up; either way note times in seconds are kept to half
    a tick. An empty ``notes`` gives a valid file with no notes.
    """
    import mido

    if not (tempo > 0 and tempo < float("inf")):
        raise ValueError(f"tempo must be a positive number of BPM, not {tempo!r}")
    if not 0 <= program <= 127:
        raise ValueError(f"program must be 0..127, not {program!r}")
    if resolution <= 0:
        raise ValueError(f"resolution must be positive, not {resolution!r}")
    parts = dict(notes) if isinstance(notes, Mapping) else {name: notes}
    if not 1 <= len(parts) <= 15:
        raise ValueError(f"write_midi writes 1..15 tracks, not {len(parts)}")

    if tempo_map is not None:
        grid = tempo_map.tick_grid(resolution)
        to_tick = grid.to_ticks
        conductor = [
            mido.MetaMessage("time_signature", numerator=tempo_map.beats_per_bar, denominator=4, time=0)
        ]
        now = 0
        for tick, microseconds in zip(grid.ticks, grid.tempos, strict=True):
            conductor.append(mido.MetaMessage("set_tempo", tempo=microseconds, time=tick - now))
            now = tick
    else:
        microseconds_per_beat = round(60_000_000 / tempo)
        ticks_per_second = resolution * 1_000_000 / microseconds_per_beat

        def to_tick(seconds: float) -> int:
            return max(0, round(seconds * ticks_per_second))

        conductor = [
            mido.MetaMessage("set_tempo", tempo=microseconds_per_beat, time=0),
            mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0),
        ]
    midi = mido.MidiFile(type=1, ticks_per_beat=resolution)
    midi.tracks.append(mido.MidiTrack([*conductor, mido.MetaMessage("end_of_track", time=0)]))

    pedal_ticks = _pedal_ticks(pedals, to_tick)
    for channel, (track_name, part_notes) in enumerate(parts.items()):
        channel = channel if channel < 9 else channel + 1  # skip the percussion channel
        header = [
            mido.MetaMessage("track_name", name=track_name, time=0),
            mido.Message("program_change", program=program, channel=channel, time=0),
        ]
        midi.tracks.append(_Track(header, _track_events(pedal_ticks, _to_ticks(part_notes, to_tick)), channel))

    with atomic_write(path, "wb") as handle:
        midi.save(file=handle)


def _pedal_ticks(pedals: Iterable[Pedal], to_tick: Callable[[float], int]) -> list[tuple[int, int]]:
    """(down, up) ticks of ``pedals``, merged where they touch or overlap."""
    spans: list[list[int]] = []
    for pedal in sorted(pedals, key=lambda p: (p.onset, p.offset)):
        if not (_finite(pedal.onset) and _finite(pedal.offset)):
            raise ValueError(f"cannot write a pedal with non-finite time to MIDI: {pedal}")
        down = to_tick(pedal.onset)
        up = max(down + 1, to_tick(pedal.offset))
        if spans and down <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], up)
        else:
            spans.append([down, up])
    return [(down, up) for down, up in spans]


#: a track's events as arrays, in file order: tick, kind (``_EVENT_KINDS``), key or controller, value
_Events = tuple["np.ndarray", "np.ndarray", "np.ndarray", "np.ndarray"]
_CC, _ON, _OFF = 0, 1, 2
_EVENT_KINDS = ("control_change", "note_on", "note_off")


def _track_events(pedal_ticks: Sequence[tuple[int, int]], notes: _Events) -> _Events:
    """The CC64 and note events of one track, sorted by tick; at one tick pedal events come
    first, then note-offs, then note-ons (so a re-struck key works), each by key. Four integer
    arrays (tick, kind, key, value), 30 bytes an event, where message objects took about a
    kilobyte a note (60 minutes of piano: 30 MB)."""
    import numpy as np

    starts, ends, keys, velocities = notes
    pedal = np.asarray(pedal_ticks, dtype=np.int64).reshape(-1, 2)
    n_pedal, n_notes = len(pedal), len(starts)
    ticks = np.concatenate([pedal.reshape(-1), np.stack([starts, ends], axis=1).reshape(-1)])
    # sort keys: pedal events before note-offs before note-ons at the same tick, then by key
    order = np.concatenate([np.full(2 * n_pedal, -1), np.tile([1, 0], n_notes)])
    key = np.concatenate([np.full(2 * n_pedal, SUSTAIN_CC), np.stack([keys, keys], axis=1).reshape(-1)])
    kind = np.concatenate([np.full(2 * n_pedal, _CC), np.tile([_ON, _OFF], n_notes)]).astype(np.int8)
    value = np.concatenate([np.tile([127, 0], n_pedal),
                            np.stack([velocities, np.zeros_like(velocities)], axis=1).reshape(-1)])
    index = np.lexsort((key, order, ticks))  # pedal spans never share a tick (merged); stable otherwise
    return ticks[index], kind[index], key[index], value[index]


class _Track:
    """A :class:`mido.MidiTrack` made message by message as :meth:`mido.MidiFile.save`
    iterates it (``header`` messages, then ``events`` on ``channel``, then end of track), so
    the messages of a long transcription are never all in memory."""

    CHUNK = 4096

    def __init__(self, header: list, events: _Events, channel: int):
        self.header, self.events, self.channel = header, events, channel

    def __iter__(self):
        import mido

        yield from self.header
        now = 0
        channel = self.channel
        for first in range(0, len(self.events[0]), self.CHUNK):  # Python ints a chunk at a time
            rows = zip(*(column[first : first + self.CHUNK].tolist() for column in self.events))
            for tick, kind, key, value in rows:
                if kind == _CC:
                    yield mido.Message("control_change", channel=channel, control=key, value=value, time=tick - now)
                else:
                    yield mido.Message(_EVENT_KINDS[kind], channel=channel, note=key, velocity=value, time=tick - now)
                now = tick
        yield mido.MetaMessage("end_of_track", time=0)


def _to_ticks(notes: Iterable[Note], to_tick: Callable[[float], int]) -> _Events:
    """Quantise to ticks and resolve what MIDI cannot express (see module docstring):
    (start, end, key, velocity) arrays, sorted by key and start."""
    from array import array

    import numpy as np

    columns = (array("q"), array("q"), array("q"), array("q"))  # 8 bytes a value, not a Python int's 36
    starts, ends, keys, velocities = columns
    for note in notes:
        if not (_finite(note.onset) and _finite(note.offset)):
            raise ValueError(f"cannot write a note with non-finite time to MIDI: {note}")
        start = to_tick(note.onset)
        starts.append(start)
        ends.append(max(start + 1, to_tick(note.offset)))
        keys.append(note.pitch)
        velocities.append(max(1, note.velocity))
    start, end, key, velocity = (np.frombuffer(c, dtype=np.int64) if len(c) else np.zeros(0, np.int64) for c in columns)
    if not len(start):
        return start, end, key, velocity
    index = np.lexsort((end, start, key))
    start, end, key, velocity = start[index], end[index], key[index], velocity[index]
    # two notes of one key starting on one tick become one: the later end, the louder velocity
    first = np.ones(len(start), dtype=bool)
    first[1:] = (key[1:] != key[:-1]) | (start[1:] != start[:-1])
    heads = np.flatnonzero(first)
    end, velocity = np.maximum.reduceat(end, heads), np.maximum.reduceat(velocity, heads)
    start, key = start[heads], key[heads]
    # a note still sounding when its key is struck again ends there
    again = key[1:] == key[:-1]
    end[:-1][again] = np.minimum(end[:-1][again], start[1:][again])
    return start, end, key, velocity


def _finite(x: float) -> bool:
    return x == x and x not in (float("inf"), float("-inf"))


# --------------------------------------------------------------------------- reading


def _parse_midi(path: str | os.PathLike[str]):
    """``pretty_midi.PrettyMIDI`` of ``path``, or a one-line :class:`MidiError`."""
    file = Path(path)
    if not file.exists():
        raise MidiError(f"MIDI file not found: {file}", "check the path and spelling")
    if file.is_dir():
        raise MidiError(f"{file} is a directory, not a MIDI file", "pass a .mid file")

    import pretty_midi

    try:
        with warnings.catch_warnings():
            # e.g. "Tempo, Key or Time signature change events found on non-zero tracks"
            warnings.simplefilter("ignore")
            pm = pretty_midi.PrettyMIDI(str(file))
    except PermissionError:
        raise MidiError(f"cannot read MIDI file {file}: permission denied", "check the file permissions") from None
    except Exception as exc:  # noqa: BLE001 - mido/pretty_midi raise many types on bad data
        if isinstance(exc, MemoryError):
            raise
        raise MidiError(
            f"{file} is not a readable MIDI file (corrupt or not a Standard MIDI File)",
            "re-export it as a Standard MIDI File (.mid)",
        ) from None

    return pm


def read_pedals(path: str | os.PathLike[str], *, threshold: int = 64) -> list[Pedal]:
    """Sustain-pedal intervals (CC64 ``>= threshold`` = down) of ``path``'s non-drum
    instruments, merged across instruments and sorted; a pedal still down at the end of
    the file is lifted at its last event."""
    pm = _parse_midi(path)
    end = float(pm.get_end_time())
    intervals: list[tuple[float, float]] = []
    for instrument in pm.instruments:
        if instrument.is_drum:
            continue
        down: float | None = None
        for cc in sorted((c for c in instrument.control_changes if c.number == SUSTAIN_CC), key=lambda c: c.time):
            if cc.value >= threshold and down is None:
                down = float(cc.time)
            elif cc.value < threshold and down is not None:
                intervals.append((down, float(cc.time)))
                down = None
        if down is not None:
            intervals.append((down, max(end, down)))
    merged: list[list[float]] = []
    for on, off in sorted(intervals):
        if merged and on <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], off)
        else:
            merged.append([on, off])
    return [Pedal(on, off) for on, off in merged if off > on]


def read_midi(path: str | os.PathLike[str], *, sustain_pedal: bool = True, include_drums: bool = False) -> list[Note]:
    """Notes of every (non-drum, unless ``include_drums``) instrument in ``path``, sorted
    by onset then pitch, with offsets extended over the sustain pedal if
    ``sustain_pedal``. Raises :class:`~transcribe_cli.errors.MidiError` for a missing or
    unreadable file."""
    pm = _parse_midi(path)
    notes: list[Note] = []
    for instrument in pm.instruments:
        if instrument.is_drum and not include_drums:
            continue
        raw = [(float(n.start), float(n.end), int(n.pitch), int(n.velocity)) for n in instrument.notes]
        if sustain_pedal and not instrument.is_drum:
            pedal = [(float(cc.time), int(cc.value)) for cc in instrument.control_changes if cc.number == SUSTAIN_CC]
            raw = apply_sustain_pedal(raw, pedal)
        notes.extend(Note(s, e, p, v) for s, e, p, v in raw if e > s)
    return sort_notes(notes)


def extend_over_pedal(notes: list[Note], pedals: list[Pedal]) -> list[Note]:
    """Key-release ``notes`` extended over the sustain ``pedals`` (the MAESTRO convention,
    :func:`apply_sustain_pedal`)."""
    if not pedals:
        return list(notes)
    events = [(p.onset, 127) for p in pedals] + [(p.offset, 0) for p in pedals]
    raw = [(n.onset, n.offset, n.pitch, n.velocity) for n in notes]
    return sort_notes(Note(a, b, p, v) for a, b, p, v in apply_sustain_pedal(raw, sorted(events)))


def apply_sustain_pedal(
    notes: Sequence[tuple[float, float, int, int]],
    pedal: Sequence[tuple[float, int]],
) -> list[tuple[float, float, int, int]]:
    """Extend ``(onset, offset, pitch, velocity)`` notes of one instrument over the sustain
    pedal given as ``(time, cc64_value)`` events; see the module docstring for the rules.
    Returns new tuples in the input order; notes that end up with no duration are dropped."""
    ends = [n[1] for n in notes]

    events: list[tuple[float, int, int]] = []  # (time, kind, note index or -1)
    for i, (onset, offset, _, _) in enumerate(notes):
        events.append((onset, _NOTE_ON, i))
        events.append((offset, _NOTE_OFF, i))
    for time, value in pedal:
        events.append((time, _SUSTAIN_ON if value >= 64 else _SUSTAIN_OFF, -1))
    events.sort(key=lambda e: (e[0], e[1]))

    sustain = False
    active: list[int] = []  # sounding notes: key held, or released under the pedal
    time = 0.0
    for time, kind, i in events:
        if kind == _SUSTAIN_ON:
            sustain = True
        elif kind == _SUSTAIN_OFF:
            sustain = False
            still = []
            for j in active:
                if ends[j] < time:  # released earlier, held by the pedal until now
                    ends[j] = time
                else:
                    still.append(j)
            active = still
        elif kind == _NOTE_ON:
            if sustain:
                pitch = notes[i][2]
                still = []
                for j in active:
                    if notes[j][2] == pitch:  # re-struck: the sustained note ends here
                        ends[j] = time
                    else:
                        still.append(j)
                active = still
            active.append(i)
        elif not sustain and i in active:  # _NOTE_OFF with the pedal up
            active.remove(i)
    for j in active:  # still sustained at the last event: end there
        ends[j] = time

    return [
        (onset, end, pitch, velocity)
        for (onset, _, pitch, velocity), end in zip(notes, ends, strict=True)
        if end > onset
    ]
