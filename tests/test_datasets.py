"""The built-in datasets: ``maestro``, ``pairs`` and ``synth`` (splits, limits, errors, rendering)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from conftest import REAL, ROOT, needs_fluidsynth
from fixtures.eval_data import PIECES, build_maestro, write_numpy_pair, write_pedal_midi
from hypothesis import given, settings
from hypothesis import strategies as st

from transcribe_cli.datasets.base import SPLITS, hash_split
from transcribe_cli.datasets.synth import (
    choose_variants,
    default_midi_root,
    font_label,
    parse_presets,
    parse_soundfonts,
    piece_key,
)
from transcribe_cli.errors import OptionError, TranscribeError
from transcribe_cli.notes import Note
from transcribe_cli.registry import get_registry


def open_dataset(name, root, split=None, **options):
    spec = get_registry().dataset(name)
    return spec.factory(root, split, **options) if split else spec.factory(root, **options)


def test_builtin_datasets_are_registered_with_typed_options():
    registry = get_registry()
    assert {"maestro", "pairs", "synth"} <= set(registry.names("dataset"))
    synth = registry.dataset("synth")
    assert synth.options["program"] == 0 and synth.options["soundfont"] == ""
    assert registry.owner("dataset", "synth") == "transcribe_cli.datasets"


# -- maestro --------------------------------------------------------------------------------

@pytest.fixture
def maestro(tmp_path):
    return build_maestro(tmp_path / "maestro-v3.0.0", {"scale": "test", "chords": "train", "bass": "test"})


def test_maestro_splits_and_limit(maestro):
    names = [item.name for item in open_dataset("maestro", maestro)]  # default split: test
    assert names == ["2004/MIDI-Unprocessed_scale.wav", "2006/MIDI-Unprocessed_bass.wav"]
    assert [i.name for i in open_dataset("maestro", maestro, "train")] == ["2005/MIDI-Unprocessed_chords.wav"]
    assert len(open_dataset("maestro", maestro, "all")) == 3
    assert len(open_dataset("maestro", maestro, "test", limit=1)) == 1
    item = open_dataset("maestro", maestro, "train")[0]
    assert item.audio_path.is_file() and item.labels_path.suffix == ".midi"
    assert item.notes() == PIECES["chords"]


def test_maestro_errors(maestro, tmp_path):
    with pytest.raises(OptionError, match="needs a folder"):
        open_dataset("maestro", None)
    with pytest.raises(TranscribeError, match="not a MAESTRO folder"):
        open_dataset("maestro", tmp_path)
    with pytest.raises(TranscribeError, match="MAESTRO folder not found"):
        open_dataset("maestro", tmp_path / "nope")
    with pytest.raises(OptionError, match="unknown split 'dev'"):
        open_dataset("maestro", maestro, "dev")
    with pytest.raises(TranscribeError, match="no recordings .* 'validation'"):
        open_dataset("maestro", maestro, "validation")
    (maestro / "2006" / "MIDI-Unprocessed_bass.wav").unlink()
    with pytest.raises(TranscribeError, match="MIDI-Unprocessed_bass.wav, which is missing"):
        open_dataset("maestro", maestro)


# -- pairs ----------------------------------------------------------------------------------

def test_pairs_on_the_real_recordings():
    if not REAL.is_dir():
        pytest.skip("../shared/data/real is not there")
    items = open_dataset("pairs", REAL)
    names = [item.name for item in items]
    assert "stereo_sample.m4a" in names and "maestro_2018_chamber3_clip.wav" in names
    by_name = {item.name: item for item in items}
    assert by_name["stereo_sample.flac"].labels_path.name == "stereo_sample.mid"
    assert len(by_name["stereo_sample.wav"].notes()) == 8


def test_pairs_keeps_one_take_in_one_split(tmp_path):
    # the same take in two containers always lands in the same split
    for i in range(12):
        write_numpy_pair(tmp_path / f"take{i}.wav", tmp_path / f"take{i}.mid", PIECES["bass"])
        (tmp_path / f"take{i}.flac").write_bytes((tmp_path / f"take{i}.wav").read_bytes())
    seen = {}
    for split in SPLITS:
        try:
            items = open_dataset("pairs", tmp_path, split)
        except TranscribeError:
            continue
        for item in items:
            seen.setdefault(Path(item.name).stem, set()).add(split)
    assert len(seen) == 12 and all(len(splits) == 1 for splits in seen.values())
    assert all(hash_split(stem) in splits for stem, splits in seen.items())


def test_pairs_split_file(tmp_path):
    for name in ("a", "b", "c"):
        write_numpy_pair(tmp_path / "data" / f"{name}.wav", tmp_path / "data" / f"{name}.mid", PIECES["bass"])
    listing = tmp_path / "val.txt"
    listing.write_text("# validation\nb.wav\n\nc.wav  # second\n")
    items = open_dataset("pairs", tmp_path / "data", split_file=str(listing))
    assert [item.name for item in items] == ["b.wav", "c.wav"]
    listing.write_text("b.wav\nzzz.wav\n")
    with pytest.raises(TranscribeError, match="lists zzz.wav"):
        open_dataset("pairs", tmp_path / "data", split_file=str(listing))
    with pytest.raises(TranscribeError, match="cannot read split file"):
        open_dataset("pairs", tmp_path / "data", split_file=str(tmp_path / "missing.txt"))
    with pytest.raises(OptionError, match="needs a folder"):
        open_dataset("pairs", None)


def test_item_notes_follow_the_pedal_switch(tmp_path):
    notes = [Note(0.1, 0.4, 60, 80)]
    write_pedal_midi(tmp_path / "p.mid", notes, [(0.2, 1.0)])
    write_numpy_pair(tmp_path / "p.wav", tmp_path / "unused.mid", notes)
    item = open_dataset("pairs", tmp_path)[0]
    assert item.notes(sustain_pedal=False)[0].offset == pytest.approx(0.4, abs=1e-3)
    assert item.notes()[0].offset == pytest.approx(1.0, abs=1e-3)


# -- synth: splits by piece -------------------------------------------------------------------

@pytest.mark.parametrize(
    "path, group_by, key",
    [
        ("asap/Bach/Fugue/bwv_846/Shi05M.mid", "auto", "asap/Bach/Fugue/bwv_846"),
        ("asap/Liszt/Mephisto_Waltz/ChernovA04M.mid", "auto", "asap/Liszt/Mephisto_Waltz"),
        ("Bach/Fugue/bwv_846/Shi05M.mid", "auto", "Bach/Fugue/bwv_846"),  # root = asap/
        ("pop909/875.mid", "auto", "pop909/875.mid"),
        ("875.mid", "auto", "875.mid"),
        ("pop909/875.mid", "folder", "pop909"),
        ("asap/Bach/Fugue/bwv_846/Shi05M.mid", "file", "asap/Bach/Fugue/bwv_846/Shi05M.mid"),
    ],
)
def test_piece_keys(path, group_by, key):
    assert piece_key(PurePosixPath(path), group_by) == key


def test_piece_key_rejects_unknown_grouping():
    with pytest.raises(OptionError, match="group_by"):
        piece_key(PurePosixPath("a/b.mid"), "composer")


_segment = st.text("abcdefgh", min_size=1, max_size=4)


@settings(max_examples=100, deadline=None)
@given(piece=st.lists(_segment, min_size=2, max_size=4), performers=st.lists(_segment, min_size=1, max_size=5))
def test_all_performances_of_a_piece_share_a_split(piece, performers):
    keys = {piece_key(PurePosixPath(*piece, f"{p}.mid")) for p in performers}
    assert keys == {"/".join(piece)}  # one key, so one split


def test_soundfont_lists_and_labels():
    assert parse_soundfonts("") == [None]
    assert parse_soundfonts(" a.sf2, b.sf2 ,") == ["a.sf2", "b.sf2"]
    assert font_label("asap/x/y.mid", "/usr/share/sounds/sf2/FluidR3_GM.sf2") == "asap/x/y[FluidR3_GM].mid"


def test_preset_lists():
    assert parse_presets("", 0) == [0] and parse_presets("", -1) == [None]
    assert parse_presets(" 0, 1 ,0", 5) == [0, 1]  # given presets replace program; duplicates dropped
    assert parse_presets("4,-1") == [4, None]
    with pytest.raises(OptionError, match="program 128"):
        parse_presets("0,128")
    with pytest.raises(OptionError, match="'piano' is not a General-MIDI program"):
        parse_presets("piano")


FONTS = ["/sf/FluidR3_GM.sf2", "/sf/TimGM6mb.sf2"]


def test_variants_all_tag_only_what_varies():
    assert choose_variants("a/b.mid", FONTS[:1], [0]) == [("a/b.mid", FONTS[0], 0)]  # unchanged names
    assert [n for n, _, _ in choose_variants("a/b.mid", FONTS, [0])] == [
        font_label("a/b.mid", f) for f in FONTS
    ]
    assert choose_variants("b.mid", FONTS[:1], [0, None]) == [
        ("b[p0].mid", FONTS[0], 0), ("b[own].mid", FONTS[0], None)
    ]
    every = choose_variants("a/b.midi", FONTS, [0, 1])
    assert [n for n, _, _ in every] == [
        "a/b[FluidR3_GM][p0].midi", "a/b[FluidR3_GM][p1].midi", "a/b[TimGM6mb][p0].midi", "a/b[TimGM6mb][p1].midi"
    ]
    assert {(f, p) for _, f, p in every} == {(f, p) for f in FONTS for p in (0, 1)}
    with pytest.raises(OptionError, match="unknown variants 'some'"):
        choose_variants("b.mid", FONTS, [0], "some")


def test_variants_random_pick_one_stable_choice_per_piece():
    names = [f"pop/{i:03d}.mid" for i in range(40)]
    picks = [choose_variants(name, FONTS, [0, 1], "random") for name in names]
    assert all(len(p) == 1 for p in picks)
    assert picks == [choose_variants(name, FONTS, [0, 1], "random") for name in names]  # stable
    assert len({(f, p) for (_, f, p), in picks}) == 4  # every combination gets used
    for name, ((label, font, preset),) in zip(names, picks):
        assert label == next(n for n, f, p in choose_variants(name, FONTS, [0, 1]) if (f, p) == (font, preset))
    assert choose_variants("x.mid", FONTS[:1], [0], "random") == [("x.mid", FONTS[0], 0)]


def test_default_midi_root_is_the_env_var_and_nothing_else(monkeypatch, tmp_path):
    monkeypatch.setenv("TRANSCRIBE_MIDI_DIR", str(tmp_path))
    assert default_midi_root() == tmp_path
    monkeypatch.delenv("TRANSCRIBE_MIDI_DIR")
    monkeypatch.chdir(ROOT)  # ../shared/data/midi may exist beside this checkout: not a default
    with pytest.raises(TranscribeError) as caught:
        default_midi_root()
    assert "--root" in str(caught.value) and "TRANSCRIBE_MIDI_DIR" in str(caught.value)


def test_synth_without_a_root_is_one_line(cli, monkeypatch):
    monkeypatch.delenv("TRANSCRIBE_MIDI_DIR", raising=False)
    result = cli("eval", "-d", "synth", "-m", "nmf")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code != 0 and len(lines) == 1, result.stderr
    assert lines[0] == ("error: no MIDI folder for --dataset synth (pass --root DIR (a folder of .mid files) "
                        "or set TRANSCRIBE_MIDI_DIR)")


def _corpus(root: Path) -> Path:
    """An ASAP-like folder (two pieces, several performers each) plus flat pop-like files."""
    from transcribe_cli.io.midi import write_midi

    notes = PIECES["bass"]
    for piece in ("Bach/Fugue/bwv_846", "Chopin/Etudes/1"):
        for performer in ("A01", "B02", "C03"):
            (root / "asap" / piece).mkdir(parents=True, exist_ok=True)
            write_midi(notes, root / "asap" / piece / f"{performer}.mid")
    (root / "pop").mkdir(parents=True)
    for i in range(8):
        write_midi(notes, root / "pop" / f"{i:03d}.mid")
    return root


@needs_fluidsynth
def test_synth_items_split_by_piece_without_rendering(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSCRIBE_CACHE_DIR", str(tmp_path / "cache"))
    root = _corpus(tmp_path / "midi")
    every = open_dataset("synth", root, "all")
    assert len(every) == 14
    by_split = {}
    for split in SPLITS:
        try:
            by_split[split] = [item.name for item in open_dataset("synth", root, split)]
        except TranscribeError:
            by_split[split] = []
    assert sorted(sum(by_split.values(), [])) == sorted(item.name for item in every)
    for piece in ("asap/Bach/Fugue/bwv_846", "asap/Chopin/Etudes/1"):
        splits = {s for s, names in by_split.items() for n in names if n.startswith(piece)}
        assert len(splits) == 1, piece
    limited = open_dataset("synth", root, "all", limit=5)
    assert len(limited) == 5 and [i.name for i in limited] == sorted(i.name for i in limited)
    assert not (tmp_path / "cache").exists()  # opening renders nothing


@needs_fluidsynth
def test_synth_presets_and_variants_without_rendering(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSCRIBE_CACHE_DIR", str(tmp_path / "cache"))
    root = _corpus(tmp_path / "midi")
    plain = open_dataset("synth", root, "all")
    assert open_dataset("synth", root, "all", presets="", variants="all") == plain  # the defaults
    both = open_dataset("synth", root, "all", presets="0,1")
    assert len(both) == 2 * len(plain)
    assert [i.name for i in both[:2]] == [plain[0].name.replace(".mid", "[p0].mid"),
                                          plain[0].name.replace(".mid", "[p1].mid")]
    assert [i.program for i in both[:2]] == [0, 1] and both[0].labels_path == both[1].labels_path
    one = open_dataset("synth", root, "all", presets="0,1", variants="random")
    assert len(one) == len(plain) and {i.program for i in one} == {0, 1}
    assert {i.name for i in one} <= {i.name for i in both}
    assert one == open_dataset("synth", root, "all", presets="0,1", variants="random")
    with pytest.raises(OptionError, match="unknown variants"):
        open_dataset("synth", root, "all", variants="each")
    with pytest.raises(OptionError, match="program 300"):
        open_dataset("synth", root, "all", presets="0,300")
    assert not (tmp_path / "cache").exists()  # opening renders nothing


@needs_fluidsynth
def test_synth_option_errors(tmp_path):
    root = _corpus(tmp_path / "midi")
    with pytest.raises(OptionError, match="program 200"):
        open_dataset("synth", root, "all", program=200)
    with pytest.raises(OptionError, match="group_by"):
        open_dataset("synth", root, "all", group_by="x")
    with pytest.raises(TranscribeError, match="SoundFont not found"):
        open_dataset("synth", root, "all", soundfont="no-such-font.sf2")
    with pytest.raises(TranscribeError, match="MIDI folder not found"):
        open_dataset("synth", tmp_path / "nope", "all")


@pytest.mark.render
@needs_fluidsynth
def test_synth_renders_once_and_labels_match(tmp_path, monkeypatch):
    import soundfile as sf

    from transcribe_cli.rendering import find_soundfonts

    monkeypatch.setenv("TRANSCRIBE_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "midi"
    from transcribe_cli.io.midi import write_midi

    root.mkdir()
    write_midi(PIECES["chords"], root / "chords.mid")
    fonts = [p.name for p in find_soundfonts()][:2]
    items = open_dataset("synth", root, "all", soundfont=",".join(fonts))
    assert len(items) == len(fonts)
    if len(fonts) == 2:
        assert items[0].name != items[1].name and all("[" in i.name for i in items)
    item = items[0]
    audio = item.audio_path
    info = sf.info(audio)
    last = max(n.offset for n in PIECES["chords"])
    assert info.samplerate == 16000 and last <= info.duration <= last + 5  # plus the release tail
    assert item.notes() == PIECES["chords"]
    mtime = audio.stat().st_mtime_ns
    again = open_dataset("synth", root, "all", soundfont=",".join(fonts))[0]
    assert again.audio_path == audio and audio.stat().st_mtime_ns == mtime  # from the cache
    data, _ = sf.read(audio)
    assert np.abs(data).max() > 0.01  # the piano sounds


def test_synth_keeps_drum_notes_when_a_program_is_forced(tmp_path):
    import pretty_midi

    from transcribe_cli.datasets.synth import SynthItem

    midi = pretty_midi.PrettyMIDI()
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    drums.notes.append(pretty_midi.Note(velocity=90, pitch=38, start=0.1, end=0.3))
    midi.instruments.append(drums)
    midi.write(str(tmp_path / "d.mid"))
    forced = SynthItem("d.mid", tmp_path / "d.mid", None, 0, 16000, 0.8)
    kept = SynthItem("d.mid", tmp_path / "d.mid", None, None, 16000, 0.8)
    assert [n.pitch for n in forced.notes()] == [38]  # rendered as piano, so labelled
    assert kept.notes() == []  # rendered as percussion, not a pitched note
