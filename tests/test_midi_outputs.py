"""Tests for atomic writes (fileio), MIDI I/O (midi) and note files (outputs)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

mido = pytest.importorskip("mido")
pytest.importorskip("pretty_midi")

from transcribe_cli.errors import MidiError, OutputError  # noqa: E402
from transcribe_cli.io.fileio import atomic_write  # noqa: E402
from transcribe_cli.io.midi import apply_sustain_pedal, read_midi, write_midi  # noqa: E402
from transcribe_cli.notes import Note, sort_notes  # noqa: E402
from transcribe_cli.io.outputs import FORMATS, NOTE_FORMATS, format_for_path, read_notes, write_notes  # noqa: E402

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
needs_real = pytest.mark.skipif(not (REAL / "stereo_sample.mid").exists(), reason="shared/data/real not available")

HALF_TICK = 0.5 * 60 / (120 * 480)  # default tempo and resolution: 0.52 ms

EXAMPLE = [
    Note(0.5, 1.25, 60, 80),
    Note(0.5, 0.75, 64, 90),
    Note(1.0, 2.0, 67, 1),
    Note(2.3456789, 2.9, 21, 127),
    Note(3.0, 3.1, 108, 64),
]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def assert_close_notes(read: list[Note], expected: list[Note], tol: float) -> None:
    key = lambda n: (n.pitch, n.onset)  # noqa: E731 - stable under sub-tick shifts
    read, expected = sorted(read, key=key), sorted(expected, key=key)
    assert len(read) == len(expected)
    for got, want in zip(read, expected, strict=True):
        assert (got.pitch, got.velocity) == (want.pitch, want.velocity)
        assert got.onset == pytest.approx(want.onset, abs=tol)
        assert got.offset == pytest.approx(want.offset, abs=tol)


# --------------------------------------------------------------------------- atomic_write


def test_atomic_write_creates_and_replaces(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_write(target) as f:
        f.write(b"first")
    assert target.read_bytes() == b"first"
    with atomic_write(target) as f:
        f.write(b"second")
        assert target.read_bytes() == b"first"  # nothing visible before the block ends
    assert target.read_bytes() == b"second"
    assert leftovers(tmp_path) == []


def test_atomic_write_failure_keeps_target_and_cleans_up(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("precious")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(target, "w") as f:
            f.write("half-written garbage")
            raise RuntimeError("boom")
    assert target.read_text() == "precious"
    assert leftovers(tmp_path) == []
    new = tmp_path / "never.txt"
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(new, "w") as f:
            f.write("x")
            raise KeyboardInterrupt
    assert not new.exists() and leftovers(tmp_path) == []


def test_atomic_write_text_mode_and_newlines(tmp_path):
    target = tmp_path / "t.csv"
    with atomic_write(target, "w", newline="") as f:
        f.write("a,b\r\nc,d\n")
    assert target.read_bytes() == b"a,b\r\nc,d\n"
    with pytest.raises(ValueError):
        with atomic_write(target, "a"):
            pass


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_atomic_write_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.txt"
        with atomic_write(fresh, "w") as f:
            f.write("x")
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o644  # like open(), not mkstemp's 0600
        kept = tmp_path / "kept.txt"
        kept.write_text("old")
        kept.chmod(0o640)
        with atomic_write(kept, "w") as f:
            f.write("new")
        assert stat.S_IMODE(kept.stat().st_mode) == 0o640
    finally:
        os.umask(umask)


def test_atomic_write_missing_directory(tmp_path):
    with pytest.raises(OutputError) as excinfo:
        with atomic_write(tmp_path / "no" / "such" / "dir" / "x.mid"):
            pass
    message = str(excinfo.value)
    assert "does not exist" in message and "create it" in message and "\n" not in message


def test_atomic_write_path_is_directory(tmp_path):
    with pytest.raises(OutputError, match="is a directory"):
        with atomic_write(tmp_path):
            pass


def test_atomic_write_parent_is_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="not a directory"):
        with atomic_write(blocker / "x.mid"):
            pass


def test_atomic_write_permission_denied(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", refuse)  # works for root too
    with pytest.raises(OutputError) as excinfo:
        with atomic_write(tmp_path / "x.mid"):
            pass
    assert "permission denied" in str(excinfo.value) and "writable" in str(excinfo.value)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_atomic_write_read_only_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="permission denied"):
            with atomic_write(locked / "x.mid"):
                pass
    finally:
        locked.chmod(0o700)


def test_atomic_write_disk_full_in_block(tmp_path):
    import errno

    with pytest.raises(OutputError, match="no space left"):
        with atomic_write(tmp_path / "x.bin"):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------- write_midi


def test_midi_round_trip_within_half_a_tick(tmp_path):
    path = tmp_path / "out.mid"
    write_midi(EXAMPLE, path)
    assert_close_notes(read_midi(path), EXAMPLE, HALF_TICK + 1e-9)
    assert leftovers(tmp_path) == []


def test_midi_file_structure(tmp_path):
    path = tmp_path / "out.mid"
    write_midi(EXAMPLE, path, tempo=90.0, name="Transcription")
    midi = mido.MidiFile(str(path))
    assert midi.type == 1 and midi.ticks_per_beat == 480
    tempos = [m.tempo for t in midi.tracks for m in t if m.type == "set_tempo"]
    assert tempos == [666667]  # 90 BPM
    note_track = midi.tracks[1]
    assert [m.name for m in note_track if m.type == "track_name"] == ["Transcription"]
    assert [m.program for m in note_track if m.type == "program_change"] == [0]
    assert sorted(m.velocity for m in note_track if m.type == "note_on") == sorted(n.velocity for n in EXAMPLE)
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(path))
    assert pm.get_tempo_changes()[1][0] == pytest.approx(90.0, rel=1e-5)
    assert len(pm.instruments) == 1 and pm.instruments[0].program == 0 and not pm.instruments[0].is_drum
    # seconds are kept whatever the tempo
    assert_close_notes(read_midi(path), EXAMPLE, 0.5 * 60 / (90 * 480) + 1e-9)


def test_midi_program_option(tmp_path):
    path = tmp_path / "guitar.mid"
    write_midi(EXAMPLE[:1], path, program=24)
    assert [m.program for m in mido.MidiFile(str(path)).tracks[1] if m.type == "program_change"] == [24]


def test_empty_midi_is_valid(tmp_path):
    path = tmp_path / "empty.mid"
    write_midi([], path)
    assert read_midi(path) == []
    assert len(mido.MidiFile(str(path)).tracks) == 2


def test_midi_writer_makes_the_inexpressible_explicit(tmp_path):
    path = tmp_path / "edge.mid"
    tick = 60 / (120 * 480)
    notes = [
        Note(0.1, 0.1 + tick / 10, 50, 60),  # shorter than a tick -> one tick
        Note(1.0, 2.0, 60, 70),  # overlapped by a re-strike at 1.5 -> ends at 1.5
        Note(1.5, 2.5, 60, 80),
        Note(3.0, 3.2, 62, 40),  # same pitch, same onset -> merged
        Note(3.0, 3.6, 62, 90),
    ]
    write_midi(notes, path)
    got = read_midi(path)
    expected = [
        Note(0.1, 0.1 + tick, 50, 60),
        Note(1.0, 1.5, 60, 70),
        Note(1.5, 2.5, 60, 80),
        Note(3.0, 3.6, 62, 90),
    ]
    assert_close_notes(got, expected, HALF_TICK + 1e-9)
    with pytest.raises(ValueError):  # velocity 0 is a note-off in MIDI: not a Note
        Note(4.0, 4.5, 64, 0)


def test_midi_writer_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        write_midi(EXAMPLE, tmp_path / "x.mid", tempo=0)
    with pytest.raises(ValueError):
        write_midi(EXAMPLE, tmp_path / "x.mid", program=128)
    with pytest.raises(ValueError):
        write_midi([Note(0.0, float("inf"), 60, 60)], tmp_path / "x.mid")
    assert not (tmp_path / "x.mid").exists()


def test_midi_writer_memory_does_not_grow_by_a_message_object_per_note(tmp_path):
    """60 minutes of piano is ~26,500 notes: the writer once held a tuple, a dict and a mido
    message per event (~1.1 KB a note, 30 MB); it now holds four integer arrays and makes
    each message as the file is written. The file is the same either way (round trip)."""
    import random
    import tracemalloc

    rng = random.Random(7)
    notes = []
    for i in range(20_000):  # a key comes back every 88 notes (11.9 s), after its note ended
        onset = i * 0.135 + rng.random() * 0.05
        notes.append(Note(pitch=21 + (i * 7) % 88, onset=onset, offset=onset + 0.05 + rng.random(),
                          velocity=rng.randint(1, 127)))
    path = tmp_path / "long.mid"
    tracemalloc.start()
    try:
        write_midi(notes, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, f"write_midi peaked at {peak / 2**20:.1f} MB for 20,000 notes"
    assert_close_notes(read_midi(path), notes, HALF_TICK + 1e-9)


def test_midi_write_to_missing_directory(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        write_midi(EXAMPLE, tmp_path / "missing" / "out.mid")


# --------------------------------------------------------------------------- read_midi + pedal


def build_pedal_midi(path: Path) -> None:
    """Hand-made file: 120 BPM, 480 ticks per beat, so 960 ticks per second."""
    tps = 960

    def t(seconds: float) -> int:
        return round(seconds * tps)

    piano = [
        ("cc", 1.0, 64),  # pedal down (64 counts as down)
        ("cc", 3.0, 63),  # pedal up (63 counts as up)
        ("cc", 4.0, 100),  # down again, never lifted
        ("on", 0.5, 60, 80),
        ("off", 1.5, 60),  # released under pedal -> 3.0
        ("on", 0.5, 62, 81),
        ("off", 0.8, 62),  # released before pedal -> 0.8
        ("on", 0.2, 67, 82),
        ("off", 1.0, 67),  # released as the pedal goes down -> 3.0
        ("on", 1.2, 64, 83),
        ("off", 1.4, 64),  # re-struck at 2.0 under pedal -> 2.0
        ("on", 2.0, 64, 84),
        ("off", 2.2, 64),  # -> pedal up at 3.0
        ("on", 2.5, 65, 85),
        ("off", 3.5, 65),  # key held past pedal up -> 3.5
        ("on", 4.1, 69, 86),
        ("off", 4.3, 69),  # pedal down until the end -> last event 4.6
        ("on", 4.2, 71, 87),
        ("off", 4.6, 71),  # last event of the file -> 4.6
    ]
    other = [("on", 0.25, 48, 70), ("off", 0.75, 48)]  # a second instrument, no pedal
    drums = [("on", 0.0, 36, 100), ("off", 0.1, 36)]

    def track(events, channel, program):
        messages = []
        for e in events:
            if e[0] == "cc":
                messages.append((t(e[1]), 0, mido.Message("control_change", control=64, value=e[2], channel=channel)))
            elif e[0] == "on":
                messages.append((t(e[1]), 2, mido.Message("note_on", note=e[2], velocity=e[3], channel=channel)))
            else:
                messages.append((t(e[1]), 1, mido.Message("note_off", note=e[2], velocity=0, channel=channel)))
        messages.sort(key=lambda m: (m[0], m[1]))
        out = mido.MidiTrack([mido.Message("program_change", program=program, channel=channel, time=0)])
        now = 0
        for tick, _, message in messages:
            out.append(message.copy(time=tick - now))
            now = tick
        return out

    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000, time=0)]))
    midi.tracks.append(track(piano, 0, 0))
    midi.tracks.append(track(other, 1, 40))
    midi.tracks.append(track(drums, 9, 0))
    midi.save(str(path))


def test_sustain_pedal_extends_offsets_by_hand(tmp_path):
    path = tmp_path / "pedal.mid"
    build_pedal_midi(path)
    expected = sort_notes(
        [
            Note(0.5, 3.0, 60, 80),
            Note(0.5, 0.8, 62, 81),
            Note(0.2, 3.0, 67, 82),
            Note(1.2, 2.0, 64, 83),
            Note(2.0, 3.0, 64, 84),
            Note(2.5, 3.5, 65, 85),
            Note(4.1, 4.6, 69, 86),
            Note(4.2, 4.6, 71, 87),
            Note(0.25, 0.75, 48, 70),
        ]
    )
    assert_close_notes(read_midi(path), expected, 1e-9)


def test_without_pedal_and_with_drums(tmp_path):
    path = tmp_path / "pedal.mid"
    build_pedal_midi(path)
    raw = read_midi(path, sustain_pedal=False)
    assert len(raw) == 9
    assert Note(0.5, 1.5, 60, 80) in raw and Note(1.2, 1.4, 64, 83) in raw
    with_drums = read_midi(path, sustain_pedal=False, include_drums=True)
    assert len(with_drums) == 10 and Note(0.0, 0.1, 36, 100) in with_drums
    assert Note(0.0, 0.1, 36, 100) in read_midi(path, include_drums=True)  # drums never pedalled


def test_pedal_re_strike_at_the_same_instant_drops_the_empty_note():
    notes = [(1.0, 1.2, 60, 50), (1.0, 1.5, 60, 70)]
    out = apply_sustain_pedal(notes, [(0.5, 127)])
    assert out == [(1.0, 1.5, 60, 70)]


note_tuples = st.lists(
    st.tuples(
        st.integers(0, 400).map(lambda k: k / 100),  # onset on a 10 ms grid: ties happen
        st.integers(1, 100).map(lambda k: k / 100),  # duration
        st.integers(58, 62),  # few pitches: re-strikes happen
        st.integers(1, 127),
    ).map(lambda n: (n[0], n[0] + n[1], n[2], n[3])),
    max_size=25,
)
pedal_events = st.lists(st.tuples(st.integers(0, 500).map(lambda k: k / 100), st.integers(0, 127)), max_size=8)


@settings(max_examples=200, deadline=None)
@given(notes=note_tuples, pedal=pedal_events)
def test_property_pedal_only_moves_offsets_to_known_times(notes, pedal):
    out = apply_sustain_pedal(notes, pedal)
    last_event = max([t for n in notes for t in n[:2]] + [t for t, _ in pedal], default=0.0)
    pedal_up = {t for t, v in pedal if v < 64}
    by_identity = {}
    for n in notes:
        by_identity.setdefault((n[0], n[2], n[3]), []).append(n)
    for onset, offset, pitch, velocity in out:
        assert offset > onset
        originals = by_identity[(onset, pitch, velocity)]
        if any(o[1] == offset for o in originals):
            continue
        restrikes = {n[0] for n in notes if n[2] == pitch and n[0] > onset}
        # a changed offset is a pedal release, a re-strike of the same key, or the end
        assert offset in pedal_up | restrikes | {last_event}
    if not any(v >= 64 for _, v in pedal):
        assert out == [n for n in notes]


@needs_real
def test_read_real_midi_files():
    stereo = read_midi(REAL / "stereo_sample.mid")
    assert len(stereo) == 8
    assert stereo == sort_notes(stereo)
    assert all(isinstance(n.onset, float) and isinstance(n.pitch, int) for n in stereo)
    assert stereo[0].pitch == 72 and stereo[0].onset == pytest.approx(0.146875)
    assert max(n.offset for n in stereo) == pytest.approx(4.148958, abs=1e-5)
    # MAESTRO clip (220 ticks per beat, 120 BPM): pedal down from tick 0; G4 released at
    # tick 796 is sustained to the file's last event, C5's release at tick 839.
    maestro = read_midi(REAL / "maestro_2018_chamber3_clip.mid")
    raw = read_midi(REAL / "maestro_2018_chamber3_clip.mid", sustain_pedal=False)
    assert [(n.pitch, n.velocity) for n in maestro] == [(67, 52), (72, 67)]
    assert raw[0].offset == pytest.approx(796 / 440)
    assert maestro[0].offset == pytest.approx(839 / 440)
    assert maestro[1].offset == raw[1].offset == pytest.approx(839 / 440)
    guitar = read_midi(REAL / "guitarset_03_BN3-119-G_solo_mic.mid")
    assert [(n.pitch, round(n.onset, 4)) for n in guitar if n.pitch < 100] == [(67, 0.7614), (71, 1.5068), (71, 1.7795)]


def test_unreadable_midi(tmp_path):
    text = tmp_path / "fake.mid"
    text.write_text("not a midi file at all")
    with pytest.raises(MidiError) as excinfo:
        read_midi(text)
    assert "fake.mid" in str(excinfo.value) and "\n" not in str(excinfo.value)
    truncated = tmp_path / "cut.mid"
    write_midi(EXAMPLE, tmp_path / "whole.mid")
    truncated.write_bytes((tmp_path / "whole.mid").read_bytes()[:40])
    with pytest.raises(MidiError):
        read_midi(truncated)
    with pytest.raises(MidiError, match="not found"):
        read_midi(tmp_path / "missing.mid")
    with pytest.raises(MidiError, match="directory"):
        read_midi(tmp_path)


@settings(max_examples=60, deadline=None)
@given(blob=st.binary(max_size=200), header=st.sampled_from([b"", b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0"]))
def test_fuzz_midi_reader_raises_only_midi_error(tmp_path_factory, blob, header):
    path = tmp_path_factory.mktemp("fuzz") / "f.mid"
    path.write_bytes(header + blob)
    try:
        notes = read_midi(path)
    except MidiError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(isinstance(n, Note) for n in notes)


# --------------------------------------------------------------------------- outputs


@pytest.mark.parametrize(
    "name, fmt",
    [("a.mid", "mid"), ("a.MIDI", "mid"), ("dir.v2/a.csv", "csv"), ("a.JSON", "json")],
)
def test_format_for_path(name, fmt):
    assert format_for_path(name) == fmt
    assert fmt in FORMATS


@pytest.mark.parametrize("name", ["a.txt", "a", "a.mid.bak"])
def test_format_for_path_rejects_unknown(name):
    with pytest.raises(OutputError, match="use .mid, .midi, .csv or .json"):
        format_for_path(name)


def test_csv_layout(tmp_path):
    path = tmp_path / "notes.csv"
    write_notes([Note(1.0, 1.00001, 61, 5), Note(0.123456, 0.5, 60, 100)], path)
    assert path.read_text() == "onset,offset,pitch,velocity\n0.1235,0.5000,60,100\n1.0000,1.0001,61,5\n"


def test_json_layout_with_metadata(tmp_path):
    path = tmp_path / "notes.json"
    write_notes(EXAMPLE[:2], path, "json", metadata={"model": "tiny", "source": Path("song.wav")})
    document = json.loads(path.read_text())
    assert document["metadata"] == {"model": "tiny", "source": "song.wav"}
    assert document["notes"] == [
        {"onset": 0.5, "offset": 1.25, "pitch": 60, "velocity": 80},
        {"onset": 0.5, "offset": 0.75, "pitch": 64, "velocity": 90},
    ]
    assert read_notes(path) == sort_notes(EXAMPLE[:2])


@pytest.mark.parametrize("fmt", NOTE_FORMATS)
def test_write_notes_dispatch_and_empty(tmp_path, fmt):
    path = tmp_path / f"out.{fmt}"
    write_notes([], path, fmt)
    assert read_notes(path) == []
    write_notes(EXAMPLE, path)  # format from the suffix
    assert_close_notes(read_notes(path), EXAMPLE, HALF_TICK + 1e-9)
    assert leftovers(tmp_path) == []


def test_write_notes_unknown_format(tmp_path):
    with pytest.raises(OutputError, match="unknown note file format"):
        write_notes(EXAMPLE, tmp_path / "x.csv", "xml")


def test_read_notes_accepts_tolerant_inputs(tmp_path):
    csv_path = tmp_path / "ref.csv"
    csv_path.write_text("\ufeffPitch,Onset,Offset\n60,0.5,1.0\n\n61,1,2\n")  # BOM, any order, no velocity
    assert read_notes(csv_path) == [Note(0.5, 1.0, 60, 64), Note(1.0, 2.0, 61, 64)]
    json_path = tmp_path / "ref.json"
    json_path.write_text('[{"onset": 0, "offset": 1, "pitch": 60.0, "velocity": 10}]')
    assert read_notes(json_path) == [Note(0.0, 1.0, 60, 10)]


@pytest.mark.parametrize(
    "name, content, fragment",
    [
        ("a.csv", "start,end,note\n1,2,60\n", "lacks column(s) onset, offset, pitch"),
        ("b.csv", "onset,offset,pitch\n1,2,60\n2,1,60\n", "line 3"),
        ("c.csv", "onset,offset,pitch\n1,2,sixty\n", "line 2"),
        ("d.csv", "onset,offset,pitch\n1,2,60.5\n", "expected an integer"),
        ("e.json", "{not json", "not valid JSON"),
        ("f.json", '{"notes": {"onset": 1}}', "no list of notes"),
        ("g.json", '{"notes": [{"onset": 1, "pitch": 60}]}', "missing field 'offset'"),
        ("h.json", '{"notes": [{"onset": 1, "offset": 2, "pitch": 200}]}', "note 0"),
        ("i.json", '{"notes": [1, 2]}', "not an object"),
        ("j.json", '{"notes": [{"onset": 1, "offset": "inf", "pitch": 60}]}', "finite"),
    ],
)
def test_read_notes_errors(tmp_path, name, content, fragment):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(MidiError) as excinfo:
        read_notes(path)
    assert fragment in str(excinfo.value) and name in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_read_notes_missing(tmp_path):
    with pytest.raises(MidiError, match="not found"):
        read_notes(tmp_path / "nope.csv")


# --------------------------------------------------------------------------- properties

valid_notes = st.builds(
    lambda onset, duration, pitch, velocity: Note(onset, onset + duration, pitch, velocity),
    st.floats(0, 3600, allow_nan=False, allow_infinity=False),
    st.floats(1e-6, 60, allow_nan=False, allow_infinity=False),
    st.integers(0, 127),
    st.integers(1, 127),
).filter(lambda n: n.offset > n.onset)


def as_written(note: Note) -> Note:
    """What the CSV/JSON writers promise: 4 decimals, at least 0.0001 s long."""
    onset = float(f"{note.onset:.4f}")
    offset = float(f"{note.offset:.4f}")
    if offset <= onset:
        offset = float(f"{onset + 0.0001:.4f}")
    return Note(onset, offset, note.pitch, note.velocity)


@pytest.fixture(scope="module")
def prop_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("prop")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(notes=st.lists(valid_notes, max_size=30), fmt=st.sampled_from(["csv", "json"]))
def test_property_csv_json_round_trip_exactly(prop_dir, notes, fmt):
    path = prop_dir / f"notes.{fmt}"
    write_notes(notes, path)
    assert read_notes(path) == sort_notes(as_written(n) for n in notes)


@st.composite
def midi_expressible_notes(draw):
    """Notes MIDI can carry unchanged: velocity >= 1, at least 2 ms long, and notes of one
    pitch that do not overlap (they may touch)."""
    notes = []
    for pitch in draw(st.lists(st.integers(0, 127), max_size=8, unique=True)):
        t = draw(st.floats(0, 100))
        for _ in range(draw(st.integers(1, 4))):
            t += draw(st.floats(0, 5))
            duration = draw(st.floats(0.002, 5))
            notes.append(Note(t, t + duration, pitch, draw(st.integers(1, 127))))
            t += duration
    return notes


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(notes=midi_expressible_notes())
def test_property_midi_round_trip_within_tick_precision(prop_dir, notes):
    path = prop_dir / "notes.mid"
    write_notes(notes, path)
    assert_close_notes(read_notes(path, sustain_pedal=False), notes, HALF_TICK + 1e-9)
