"""The ``transcribe`` command end to end: routing, batches, outputs and every bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from conftest import SRC, piano_tone, run_subprocess

SR = 16000


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert "Traceback" not in stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error:"), stderr
    return lines[0]


@pytest.fixture
def tone_wav(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(path, piano_tone(69, 1.0, SR), SR)
    return path


def test_help_does_not_import_torch(tmp_path):
    code = (
        "import sys\n"
        "from transcribe_cli.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin",
                               "TRANSCRIBE_CACHE_DIR": str(tmp_path)}, timeout=120)
    assert "Usage" in done.stdout
    assert done.stderr.strip().endswith("NO-TORCH"), done.stderr


def modules_imported_by(*args: str, env: dict | None = None) -> set[str]:
    """The modules a fresh interpreter has imported after ``transcribe ARGS`` (pass
    ``TRANSCRIBE_CACHE_DIR`` in ``env`` for a private ``--help`` cache)."""
    code = (
        "import sys\n"
        "from transcribe_cli.cli import main\n"
        f"try:\n    main({list(args)!r})\nexcept SystemExit:\n    pass\n"
        "print('MODULES', *sorted(sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", **(env or {})}, timeout=120)
    line = [line for line in done.stderr.splitlines() if line.startswith("MODULES ")]
    assert line, done.stderr
    return set(line[-1].split()[1:])


#: What `transcribe --help` used to import and no longer needs (benchmarks/results/memory.md).
HEAVY_FOR_HELP = ("typer.rich_utils", "rich", "rich.console", "rich.markdown", "markdown_it", "torch", "numpy")
BUILTIN_COMMAND_MODULES = ("transcribe_cli.cli.transcribe", "transcribe_cli.cli.eval", "transcribe_cli.cli.train",
                           "transcribe_cli.cli.models", "transcribe_cli.cli.cache", "transcribe_cli.training.config")


def test_top_level_help_imports_neither_rich_nor_the_command_modules(tmp_path):
    env = {"TRANSCRIBE_CACHE_DIR": str(tmp_path)}
    rendered = modules_imported_by("--help", env=env)
    assert "transcribe_cli.cli.group" in rendered  # rendered here, nothing cached yet
    assert not rendered & {*HEAVY_FOR_HELP, *BUILTIN_COMMAND_MODULES}, rendered & {*HEAVY_FOR_HELP,
                                                                                   *BUILTIN_COMMAND_MODULES}
    cached = modules_imported_by("--help", env=env)  # from the cache: not even Typer or the plugin scan
    assert not cached & {"typer", "importlib.metadata", "pluggy", "transcribe_cli.registry"}, cached


def test_help_cache_sees_an_installed_plugin_and_an_edited_one(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    env = {"PYTHONPATH": f"{SRC}{os.pathsep}{site}", "TRANSCRIBE_CACHE_DIR": str(tmp_path / "cache")}
    assert "greet" not in run_subprocess("--help", env=env).stdout
    module = site / "greeter_plugin.py"
    module.write_text(GREETER.format(summary="Say hello."))
    info = site / "greeter_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: greeter-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[transcribe_cli]\ngreeter = greeter_plugin\n")
    assert "Say hello." in run_subprocess("--help", env=env).stdout  # a new distribution in a sys.path folder
    module.write_text(GREETER.format(summary="Say goodbye."))
    os.utime(module, ns=(module.stat().st_atime_ns, module.stat().st_mtime_ns + 10**9))
    shown = run_subprocess("--help", env=env).stdout  # an edited plugin module
    assert "Say goodbye." in shown and "Say hello." not in shown


GREETER = """
from transcribe_cli.hookspecs import hookimpl

@hookimpl
def register_commands(app):
    @app.command("greet")
    def greet() -> None:
        \"\"\"{summary}\"\"\"
"""


def test_a_command_imports_its_own_module_only():
    imported = modules_imported_by("run", "--help")
    assert "transcribe_cli.cli.transcribe" in imported and "typer.rich_utils" in imported  # rich help here
    assert not imported & {"transcribe_cli.cli.eval", "transcribe_cli.cli.train", "torch"}


def test_builtin_command_summaries_match_the_commands():
    """`--help` lists the built-in commands from BUILTIN_COMMANDS without importing them."""
    import re

    from transcribe_cli.cli.app import BUILTIN_COMMANDS, RootGroup

    group = RootGroup(name="transcribe")
    for name, lazy in BUILTIN_COMMANDS.items():
        first_paragraph = " ".join(group._load(name).help.split("\n\n")[0].split())
        assert re.sub(r"\[/?[a-z ]*\]", "", first_paragraph) == lazy.summary, name


def test_help_lists_every_command_and_no_arguments_prints_it(cli):
    from transcribe_cli.cli.app import BUILTIN_COMMANDS

    shown = cli("--help").stdout
    commands = shown.split("Commands:")[1].split()
    assert all(name in commands for name in BUILTIN_COMMANDS), shown
    bare = cli()
    assert bare.exit_code == 2 and bare.stderr.strip() == shown.strip()


def test_version_and_subcommand_routing(cli, tone_wav):
    assert cli("--version").stdout.startswith("transcribe-cli ")
    assert "--skip-existing" in cli("run", "--help").stdout
    assert "Commands" in cli("--help").stdout
    # a file name as first argument goes to `run`, options may come first
    result = cli("-o", tone_wav.with_suffix(".csv"), tone_wav)
    assert result.exit_code == 0, result.stderr
    assert tone_wav.with_suffix(".csv").read_text().startswith("onset,offset,pitch,velocity")


def test_single_file_default_output_next_to_input(cli, tone_wav):
    result = cli(tone_wav)
    assert result.exit_code == 0, result.stderr
    midi = pretty_midi.PrettyMIDI(str(tone_wav.with_suffix(".mid")))
    assert [n.pitch for n in midi.instruments[0].notes] == [69]
    assert midi.instruments[0].program == 0


def test_formats(cli, tone_wav, tmp_path):
    out = tmp_path / "notes.json"
    assert cli(tone_wav, "-o", out).exit_code == 0
    payload = json.loads(out.read_text())
    assert [n["pitch"] for n in payload["notes"]] == [69]
    assert payload["metadata"]["model"] == "piano"  # the default model
    assert cli(tone_wav, "-o", f"{tmp_path / 'dir'}/", "--format", "csv").exit_code == 0  # a folder: trailing /
    assert sorted(p.suffix for p in (tmp_path / "dir").iterdir()) == [".csv", ".jsonl"]  # the notes, the manifest
    from transcribe_cli.io.outputs import read_notes

    assert [n.pitch for n in read_notes(tmp_path / "dir" / "tone.csv")] == [69]


def test_option_passthrough_changes_the_result(cli, tone_wav, tmp_path):
    strict = tmp_path / "strict.json"
    assert cli(tone_wav, "-o", strict, "-O", "frame_threshold=1.0").exit_code == 0
    assert json.loads(strict.read_text())["notes"] == []
    bad = cli(tone_wav, "-o", tmp_path / "x.mid", "-O", "frame_treshold=0.5")
    assert bad.exit_code != 0 and "accepted:" in one_error_line(bad.stderr)
    assert not (tmp_path / "x.mid").exists()


def make_batch(root, n=20, corrupt="07_broken.wav"):
    (root / "sub" / "deeper").mkdir(parents=True)
    for i in range(n - 1):
        folder = root / ("sub" if i % 3 == 0 else "") / ("deeper" if i % 6 == 0 else "")
        sf.write(folder / f"{i:02d}_tone.flac", piano_tone(48 + i, 0.6, SR), SR)
    (root / corrupt).write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 10)
    (root / "notes.txt").write_text("not audio, ignored by the folder scan")


def test_batch_with_one_corrupt_file(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    make_batch(src)
    done = run_subprocess(src, "-o", out, "--jobs", "2")
    assert done.returncode == 1
    mids = sorted(p.relative_to(out) for p in out.rglob("*.mid"))
    assert len(mids) == 19
    assert (out / "sub" / "deeper" / "00_tone.mid").exists()  # folder structure kept
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "07_broken.wav" in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    assert "transcription summary" in done.stdout
    # nothing half-written anywhere
    assert not [p for p in out.rglob("*")
                if p.is_file() and p.suffix != ".mid" and p.name != "transcribe-manifest.jsonl"]


def test_skip_existing_and_overwrite(cli, tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(3):
        sf.write(src / f"{i}.wav", piano_tone(60 + i, 0.5, SR), SR)
    assert cli(src, "-o", out).exit_code == 0
    stamp = (out / "0.mid").stat().st_mtime_ns
    again = cli(src, "-o", out, "--skip-existing")
    assert again.exit_code == 0 and (out / "0.mid").stat().st_mtime_ns == stamp
    assert "3" in again.stdout  # summary counts the skipped files
    assert cli(src, "-o", out, "--overwrite").exit_code == 0
    assert (out / "0.mid").stat().st_mtime_ns != stamp


# -- bad input: one clear line, non-zero exit, no partial output ---------------------------

def _bad_inputs(tmp_path):
    text = tmp_path / "text.wav"
    text.write_text("this is not audio\n" * 50)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    tiny = tmp_path / "tiny.wav"
    sf.write(tiny, np.zeros(160, np.float32) + 0.1, SR)  # 10 ms
    no_audio = tmp_path / "no_audio"
    no_audio.mkdir()
    (no_audio / "readme.txt").write_text("x")
    return {
        "missing": (tmp_path / "missing.wav", "no such file"),
        "no-audio-dir": (no_audio, "no audio files found"),
        "text-as-wav": (text, "not a readable audio file"),
        "empty": (empty, "empty"),
        "10ms": (tiny, "too short"),
    }


@pytest.mark.parametrize("case", ["missing", "no-audio-dir", "text-as-wav", "empty", "10ms"])
def test_bad_input_is_one_line(cli, tmp_path, case):
    path, expected = _bad_inputs(tmp_path)[case]
    out = tmp_path / "out.mid"
    result = cli(path, "-o", out)
    assert result.exit_code != 0
    assert expected in one_error_line(result.stderr).lower()
    assert not out.exists()
    assert not list(tmp_path.glob("*.tmp*")) and not list(tmp_path.glob(".*tmp*"))


def test_silence_gives_empty_valid_midi(cli, tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(SR * 2, np.float32), SR)
    result = cli(path, "-o", tmp_path / "silence.mid")
    assert result.exit_code == 0, result.stderr
    midi = pretty_midi.PrettyMIDI(str(tmp_path / "silence.mid"))
    assert sum(len(i.notes) for i in midi.instruments) == 0


@pytest.mark.parametrize("flag, kind", [("--model", "model"), ("--decoder", "decoder")])
def test_unknown_names_list_the_available_ones(cli, tone_wav, tmp_path, flag, kind):
    result = cli(tone_wav, "-o", tmp_path / "x.mid", flag, "nope")
    assert result.exit_code != 0
    line = one_error_line(result.stderr)
    assert f"unknown {kind} 'nope'" in line and "available:" in line
    assert ("nmf" in line) if kind == "model" else ("frame-threshold" in line)


def test_unwritable_output(cli, tone_wav, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    result = cli(tone_wav, "-o", blocker / "x.mid")
    assert result.exit_code != 0
    assert "output" in one_error_line(result.stderr)


def test_verbose_shows_traceback(cli, tmp_path):
    result = cli("-v", tmp_path / "missing.wav")
    assert result.exit_code != 0 and "Traceback" in result.stderr


def test_cuda_without_gpu_is_one_line(cli, tone_wav, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    result = cli(tone_wav, "-o", tmp_path / "x.mid", "--device", "cuda")
    assert "no CUDA GPU" in one_error_line(result.stderr)
