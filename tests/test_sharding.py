"""``--shard I/N``: a deterministic, position-independent split of a batch."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import piano_tone
from transcribe_cli.batch import Job
from transcribe_cli.errors import TranscribeError
from transcribe_cli.sharding import Shard, parse_shard, select_shard, shard_key, shard_of

SR = 16000
# An existing folder to act as the input root (the sources below it need not exist).
ROOT = Path(__file__).resolve().parent

names = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\\0"),
                min_size=1, max_size=12).filter(lambda s: s not in (".", ".."))
rel_paths = st.lists(names, min_size=1, max_size=3).map("/".join)


def jobs_for(rels: list[str], root: Path = ROOT) -> list[Job]:
    return [Job(root / rel, Path("out") / rel) for rel in rels]


@settings(max_examples=200, deadline=None)
@given(st.lists(rel_paths, unique=True, max_size=40), st.integers(1, 9))
def test_shards_partition_the_batch_in_order(rels, count):
    jobs = jobs_for(rels)
    shards = [select_shard(jobs, Shard(i, count), [ROOT]) for i in range(count)]
    # every job in exactly one shard
    assert sorted(j.source for s in shards for j in s) == sorted(j.source for j in jobs)
    assert sum(len(s) for s in shards) == len(jobs)
    # each shard keeps the batch's order (a subsequence of it)
    position = {job: i for i, job in enumerate(jobs)}
    for shard in shards:
        assert [position[j] for j in shard] == sorted(position[j] for j in shard)
    # the same call again selects the same files
    assert shards == [select_shard(jobs, Shard(i, count), [ROOT]) for i in range(count)]


@settings(max_examples=100, deadline=None)
@given(st.lists(rel_paths, unique=True, min_size=2, max_size=30), st.integers(2, 9), st.randoms())
def test_adding_or_reordering_files_moves_no_file_to_another_shard(rels, count, rnd):
    before = {j.source: i for i in range(count) for j in select_shard(jobs_for(rels[:-1]), Shard(i, count), [ROOT])}
    shuffled = list(rels)
    rnd.shuffle(shuffled)
    after = {j.source: i for i in range(count) for j in select_shard(jobs_for(shuffled), Shard(i, count), [ROOT])}
    assert all(after[source] == shard for source, shard in before.items())


def test_key_is_the_path_below_its_folder_whatever_the_mount(tmp_path):
    a, b = tmp_path / "data" / "rec", tmp_path / "mnt" / "other" / "rec"
    for root in (a, b):
        (root / "sub").mkdir(parents=True)
    assert shard_key(a / "sub" / "x.flac", [a]) == shard_key(b / "sub" / "x.flac", [b]) == "sub/x.flac"
    assert shard_key(tmp_path / "loose.wav", [a, tmp_path / "loose.wav"]) == "loose.wav"  # a file given directly
    # names stored decomposed (macOS) and composed (Linux) go to the same shard
    assert shard_of(unicodedata.normalize("NFD", "Café/é.wav"), 1000) == shard_of("Café/é.wav", 1000)


def test_hash_is_pinned():
    """Changing the hash would reshuffle every fanned-out run in flight: keep it fixed."""
    assert [shard_of("a/b.wav", 16), shard_of("take.flac", 7), shard_of("Café/é.wav", 1000)] == [5, 2, 841]


def test_shards_are_balanced():
    counts = [0] * 4
    for i in range(4000):
        counts[shard_of(f"piece{i:05d}/take.flac", 4)] += 1
    assert all(900 < c < 1100 for c in counts), counts


@given(st.integers(1, 10_000).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n))))
def test_parse_valid(pair):
    index, count = pair
    assert parse_shard(f"{index}/{count}") == Shard(index, count)
    assert parse_shard(f" {index} / {count} ") == Shard(index, count)
    assert str(Shard(index, count)) == f"{index}/{count}"


@pytest.mark.parametrize("spec", ["3/3", "4/3", "0/0", "1", "-1/4", "a/b", "1/2/3", "", "1.0/2"])
def test_parse_invalid_is_one_line(spec):
    with pytest.raises(TranscribeError) as info:
        parse_shard(spec)
    assert "\n" not in str(info.value) and "shard" in str(info.value)


@given(st.text(max_size=10))
def test_parse_never_crashes(spec):
    try:
        shard = parse_shard(spec)
    except TranscribeError:
        return
    assert 0 <= shard.index < shard.count


def test_cli_shards_cover_the_folder_once(cli, tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    expected = set()
    for i in range(8):
        rel = f"sub/{i:02d}.wav" if i % 3 == 0 else f"{i:02d}.wav"
        sf.write(src / rel, piano_tone(50 + i, 0.3, SR), SR)
        expected.add(rel.replace(".wav", ".mid"))
    for index in range(2):
        result = cli(src, "-o", out, "--shard", f"{index}/2", "-q")
        assert result.exit_code == 0, result.stderr
    records = {}
    for index in range(2):
        manifest = out / f"transcribe-manifest.shard-{index}-of-2.jsonl"
        lines = [json.loads(line) for line in manifest.read_text().splitlines()]
        assert lines and all(r["shard"] == f"{index}/2" and r["status"] == "ok" for r in lines)
        for r in lines:
            assert r["output"] not in records  # no file in two shards
            records[r["output"]] = r
    assert set(records) == expected
    assert {p.relative_to(out).as_posix() for p in out.rglob("*.mid")} == expected
    assert not (out / "transcribe-manifest.jsonl").exists()
    # a shard with nothing in it is no error (Slurm arrays may have more tasks than files)
    result = cli(src / "01.wav", "-o", f"{tmp_path}/one/", "--shard", f"{1 - shard_of('01.wav', 2)}/2")
    assert result.exit_code == 0 and not (tmp_path / "one").exists()
