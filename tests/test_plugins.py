"""Plugin discovery: built-ins, loose files, entry points, allow-list, tracing, broken plugins."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import ROOT, run_subprocess, sine
from transcribe_cli.registry import get_registry

LOOSE_DECODER = """
from transcribe_cli.hookspecs import hookimpl
from transcribe_cli.specs import DecoderSpec

def _factory():
    def decode(activations, frame_rate, **options):
        return []
    return decode

@hookimpl
def register_decoders(register):
    register(DecoderSpec(name="{name}", factory=_factory, requires=("frame",), options={{"k": 1}}))
"""


def write_plugin(folder: Path, stem: str, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.py"
    path.write_text(textwrap.dedent(source))
    return path


def test_builtins_register_the_core_pieces():
    registry = get_registry()
    assert {"cqt", "vqt", "logmel"} <= set(registry.names("frontend"))
    assert {"onset-peaks", "onsets-frames", "frame-threshold"} <= set(registry.names("decoder"))
    assert "nmf" in registry.names("model")
    assert registry.owner("model", "nmf") == "transcribe_cli.models"
    assert registry.problems() == []


def test_plugins_dir_flag_and_env(tmp_path, monkeypatch, cli):
    write_plugin(tmp_path / "a", "mine", LOOSE_DECODER.format(name="mine-decoder"))
    write_plugin(tmp_path / "b", "other", LOOSE_DECODER.format(name="env-decoder"))
    assert "mine-decoder" in get_registry([tmp_path / "a"]).names("decoder")
    monkeypatch.setenv("TRANSCRIBE_PLUGINS_DIR", str(tmp_path / "b"))
    result = cli("--plugins-dir", tmp_path / "a", "plugins", "--json")
    assert result.exit_code == 0, result.stderr
    by_name = {p["name"]: p for p in json.loads(result.stdout)}
    assert by_name["file:mine"]["registers"] == {"decoders": ["mine-decoder"]}
    assert by_name["file:other"]["registers"] == {"decoders": ["env-decoder"]}
    assert by_name["transcribe_cli.models"]["version"]


@pytest.mark.parametrize(
    "source, expected",
    [
        ("import no_such_module_xyz\n", "ModuleNotFoundError"),
        ("def broken(:\n", "SyntaxError"),
        (  # a misspelt hook is caught by pm.check_pending()
            "from transcribe_cli.hookspecs import hookimpl\n@hookimpl\ndef register_model(register):\n    pass\n",
            "register_model",
        ),
        (  # a hook that raises
            "from transcribe_cli.hookspecs import hookimpl\n@hookimpl\ndef register_decoders(register):\n"
            "    raise RuntimeError('boom')\n",
            "boom",
        ),
        (  # a hook that registers something that is not a spec
            "from transcribe_cli.hookspecs import hookimpl\n@hookimpl\ndef register_models(register):\n"
            "    register('nmf')\n",
            "expected ModelSpec",
        ),
    ],
)
def test_broken_plugin_is_reported_in_one_line_and_skipped(tmp_path, cli, source, expected):
    write_plugin(tmp_path, "bad", source)
    write_plugin(tmp_path, "good", LOOSE_DECODER.format(name="good-decoder"))
    result = cli("--plugins-dir", tmp_path, "plugins", "--json")
    assert result.exit_code == 0
    warnings = [line for line in result.stderr.splitlines() if "file:bad" in line]
    assert len(warnings) == 1 and expected in warnings[0], result.stderr
    names = {p["name"]: p for p in json.loads(result.stdout)}
    assert names["file:good"]["registers"] == {"decoders": ["good-decoder"]}
    assert names["file:bad"]["error"]


def test_failed_hook_rolls_back_its_registrations(tmp_path):
    write_plugin(tmp_path, "half", """
        from transcribe_cli.hookspecs import hookimpl
        from transcribe_cli.specs import DecoderSpec

        @hookimpl
        def register_decoders(register):
            register(DecoderSpec(name="half-decoder", factory=list, requires=("frame",)))
            raise ValueError("after the first registration")
    """)
    registry = get_registry([tmp_path])
    assert "half-decoder" not in registry.names("decoder")
    assert any("after the first registration" in line for line in registry.problems())


def test_duplicate_name_keeps_the_first(tmp_path):
    write_plugin(tmp_path, "dup", LOOSE_DECODER.format(name="frame-threshold"))
    registry = get_registry([tmp_path])
    assert registry.owner("decoder", "frame-threshold") == "transcribe_cli.decoders"
    assert any("already registered" in line for line in registry.problems())


def test_trace_env_var_prints_hook_calls(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRANSCRIBE_TRACE_PLUGINS", "1")
    write_plugin(tmp_path, "traced", LOOSE_DECODER.format(name="traced-decoder"))
    get_registry([tmp_path])
    err = capsys.readouterr().err
    assert "file:traced: register_decoders() registered ['traced-decoder']" in err
    assert "transcribe_cli.models: register_models()" in err


LOOSE_COMMAND = """
import typer

from transcribe_cli.cli.console import get_state
from transcribe_cli.hookspecs import hookimpl

@hookimpl
def register_commands(app):
    @app.command("greet")
    def greet(ctx: typer.Context) -> None:
        \"\"\"Say hello (a loose plugin's command).\"\"\"
        state = get_state(ctx)
        print(f"verbose={state.verbose} dirs={len(state.plugins_dirs)}")
        state.info("hello on stderr")
"""


def test_plugin_command_reads_verbose_and_quiet_from_the_context(tmp_path, cli):
    write_plugin(tmp_path / "cmd", "greeter", LOOSE_COMMAND)
    plain = cli("--plugins-dir", tmp_path / "cmd", "greet")
    assert plain.exit_code == 0, plain.stderr
    assert plain.stdout.strip() == "verbose=False dirs=1" and "hello on stderr" in plain.stderr
    quiet = cli("--plugins-dir", tmp_path / "cmd", "-q", "greet")
    assert quiet.stdout.strip() == "verbose=False dirs=1" and quiet.stderr == ""
    assert cli("--plugins-dir", tmp_path / "cmd", "-v", "greet").stdout.strip() == "verbose=True dirs=1"
    listed = cli("--plugins-dir", tmp_path / "cmd", "--help").stdout
    assert "greet" in listed and "Say hello" in listed


def test_missing_plugins_dir_is_reported(tmp_path, cli):
    result = cli("--plugins-dir", tmp_path / "nope", "plugins")
    assert result.exit_code == 0
    assert "plugins directory does not exist" in result.stderr


# -- a real third-party package installed with pip --------------------------------------

@pytest.fixture(scope="module")
def installed_example_plugin(tmp_path_factory) -> Path:
    """``pip install`` tests/fixtures/example_plugin into a private folder (no env changes)."""
    target = tmp_path_factory.mktemp("site")
    source = ROOT / "tests" / "fixtures" / "example_plugin"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-cache-dir", "--target", str(target), str(source)],
        check=True, capture_output=True, timeout=300,
    )
    assert list(target.glob("transcribe_example_plugin-0.3.1.dist-info"))
    return target


def test_third_party_package_model_is_listed_and_usable(installed_example_plugin, tmp_path):
    import soundfile as sf

    env = {"PYTHONPATH": str(installed_example_plugin)}
    listed = run_subprocess("models", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    models = {m["name"]: m for m in json.loads(listed.stdout)}
    assert models["example-peaks"]["plugin"] == "example"
    assert models["example-peaks"]["frontend"] == "cqt"

    plugins = {p["name"]: p for p in json.loads(run_subprocess("plugins", "--json", env=env).stdout)}
    assert plugins["example"]["version"] == "0.3.1"
    assert plugins["example"]["registers"] == {"models": ["example-peaks"]}

    hello = run_subprocess("example-hello", env=env)
    assert hello.stdout.strip() == "hello from transcribe-example-plugin"

    wav = tmp_path / "a4.wav"
    sf.write(wav, sine(440.0, 1.0, 16000), 16000)
    out = tmp_path / "a4.json"
    done = run_subprocess(wav, "--model", "example-peaks", "-o", out, env=env)
    assert done.returncode == 0, done.stderr
    notes = json.loads(out.read_text())["notes"]
    assert [n["pitch"] for n in notes] == [69]


def test_allow_list_limits_entry_points(installed_example_plugin):
    base = {"PYTHONPATH": str(installed_example_plugin)}
    blocked = run_subprocess("models", "--json", env={**base, "TRANSCRIBE_LOAD_PLUGINS": ""})
    assert "example-peaks" not in {m["name"] for m in json.loads(blocked.stdout)}
    allowed = run_subprocess("models", "--json", env={**base, "TRANSCRIBE_LOAD_PLUGINS": "transcribe-example-plugin"})
    assert "example-peaks" in {m["name"] for m in json.loads(allowed.stdout)}
