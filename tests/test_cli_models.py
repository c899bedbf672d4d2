"""``transcribe models`` / ``models info`` / ``download`` / ``cache``, and ``--model hf://…``
end to end, against the fake Hub (no internet)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import piano_tone
from weights_plugin import checkpoint_bytes, write_plugin



def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


REPO = "acme/peaks"

CARD = """---
name: peaks-hub
family: spectral peaks
frontend: cqt
decoder: frame-threshold
weights:
  repo: {repo}
  revision: {revision}
  filename: weights.npz
  sha256: {sha256}
  size: {size}
parameters: 1
training_data:
  - name: synthetic harmonic tones
    licence: CC0-1.0
metrics:
  - dataset: synthetic single notes
    command: transcribe eval synth --model peaks-hub
    results: {{note_f1: 0.97}}
license: MIT
---
# peaks-hub

Loudest constant-Q bins at piano-key frequencies.

## Intended use

Tests of the **download** path.

## Limitations

Monophonic toy.
"""


@pytest.fixture
def published(hub_env, tmp_path):
    """The peaks checkpoint on the fake Hub, and a plugins dir whose ``peaks-hub`` pins it."""
    data = checkpoint_bytes(tmp_path)
    commit = hub_env.publish(REPO, {"weights.npz": data})
    plugins = write_plugin(tmp_path / "plugins", repo=REPO, revision=commit, sha256=sha256(data))
    return {"hub": hub_env, "commit": commit, "data": data, "plugins": plugins,
            "uri": f"hf://{REPO}@{commit}/weights.npz"}


def rows(result) -> dict[str, dict]:
    assert result.exit_code == 0, result.stderr
    return {row["name"]: row for row in json.loads(result.stdout)}


# -- transcribe models --------------------------------------------------------------------

def test_models_shows_source_offline_availability_and_size(cli, published):
    plugins = published["plugins"]
    before = rows(cli("--plugins-dir", plugins, "models", "--json"))
    hub_model = before["peaks-hub"]
    assert hub_model["weights_source"] == "hub" and hub_model["available_offline"] is False
    assert hub_model["weights"].startswith(f"hf://{REPO}@{published['commit'][:12]}")
    assert hub_model["size_bytes"] is None and hub_model["plugin"] == "file:peaks_plugin"
    assert before["peaks-test"]["weights_source"] == "none"
    assert published["hub"].all_requests() == []  # listing never touches the network

    assert cli("--plugins-dir", plugins, "download", "peaks-hub").exit_code == 0
    after = rows(cli("--plugins-dir", plugins, "models", "--json"))["peaks-hub"]
    assert after["available_offline"] is True and after["size_bytes"] == len(published["data"])

    table = cli("--plugins-dir", plugins, "models")
    assert table.exit_code == 0
    line = next(line for line in table.stdout.splitlines() if line.lstrip().startswith("peaks-hub"))
    for text in ("spectral peaks", "cqt", "frame-threshold", "hf://acme/peaks@", "yes", f"{len(published['data'])} B"):
        assert text in line, line
    header = table.stdout.splitlines()[0]
    for column in ("family", "frontend", "decoder", "weights", "offline", "size"):
        assert column in header


def test_models_info_renders_the_card(cli, published):
    plugins = published["plugins"]
    card = CARD.format(repo=REPO, revision=published["commit"], sha256=sha256(published["data"]),
                       size=len(published["data"]))
    (plugins / "model_cards").mkdir()
    (plugins / "model_cards" / "peaks-hub.md").write_text(card)
    shown = cli("--plugins-dir", plugins, "models", "info", "peaks-hub")
    assert shown.exit_code == 0, shown.stderr
    for text in ("Intended use", "Limitations", "Tests of the download path", "MIT",
                 "synthetic harmonic tones (CC0-1.0)", "note_f1 0.970", "transcribe eval synth --model peaks-hub"):
        assert text in shown.stdout, text
    assert "**" not in shown.stdout  # Markdown is rendered, not printed raw
    assert "card" not in shown.stderr  # a valid card: no warnings

    as_json = json.loads(cli("--plugins-dir", plugins, "models", "info", "peaks-hub", "--json").stdout)
    assert as_json["card_meta"]["license"] == "MIT" and as_json["card_problems"] == []
    assert rows(cli("--plugins-dir", plugins, "models", "--json"))["peaks-hub"]["size_bytes"] == len(published["data"])

    (plugins / "model_cards" / "peaks-hub.md").write_text(card.replace("decoder: frame-threshold", "decoder: other"))
    warned = cli("--plugins-dir", plugins, "models", "info", "peaks-hub")
    assert "decoder: 'other' differs from the registered 'frame-threshold'" in warned.stderr


def test_models_info_without_a_card_or_for_an_unknown_model(cli, published):
    plugins = published["plugins"]
    missing = cli("--plugins-dir", plugins, "models", "info", "peaks-hub")
    assert missing.exit_code == 0 and "has no model card" in missing.stderr
    unknown = cli("--plugins-dir", plugins, "models", "info", "no-such-model")
    assert unknown.exit_code != 0 and "unknown model 'no-such-model'" in unknown.stderr


# -- transcribe download / cache ----------------------------------------------------------

def test_download_fetches_once_then_uses_the_cache(cli, published):
    plugins, hub = published["plugins"], published["hub"]
    first = cli("--plugins-dir", plugins, "download", "peaks-hub")
    assert first.exit_code == 0, first.stderr
    assert "peaks-hub:" in first.stdout and "sha256 verified" in first.stdout
    assert len(hub.requests("GET")) == 1
    hub.reset_log()
    again = cli("--plugins-dir", plugins, "download", "peaks-hub", published["uri"])
    assert again.exit_code == 0, again.stderr
    assert "(model 'peaks-test')" in again.stdout
    assert hub.all_requests() == []


def test_download_reports_each_failure_and_exits_non_zero(cli, published):
    result = cli("--plugins-dir", published["plugins"], "download", "no-such-model", "peaks-hub",
                 f"hf://{REPO}@{published['commit']}/missing.npz")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert "unknown model 'no-such-model'" in errors[0] and "file 'missing.npz' not found" in errors[1]
    assert "peaks-hub:" in result.stdout  # the good one was still downloaded
    nothing = cli("download")
    assert nothing.exit_code != 0 and "nothing to download" in nothing.stderr


def test_download_all_then_offline_transcription_needs_no_network(cli, published, tmp_path, monkeypatch):
    import soundfile as sf

    plugins = published["plugins"]
    wav = tmp_path / "a4.wav"
    sf.write(wav, piano_tone(69, 1.0, 16000), 16000)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    refused = cli("--plugins-dir", plugins, wav, "--model", "peaks-hub", "-o", tmp_path / "a.json")
    assert refused.exit_code != 0
    assert "offline mode is on" in refused.stderr and "transcribe download peaks-hub" in refused.stderr

    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert cli("--plugins-dir", plugins, "download", "--all").exit_code == 0
    published["hub"].reset_log()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    done = cli("--plugins-dir", plugins, wav, "--model", "peaks-hub", "-o", tmp_path / "a.json")
    assert done.exit_code == 0, done.stderr
    assert [n["pitch"] for n in json.loads((tmp_path / "a.json").read_text())["notes"]] == [69]
    assert published["hub"].all_requests() == []


def test_cache_list_and_clear(cli, published):
    plugins = published["plugins"]
    empty = json.loads(cli("--plugins-dir", plugins, "cache", "list", "--json").stdout)
    assert empty["files"] == []
    cli("--plugins-dir", plugins, "download", "peaks-hub")
    listed = json.loads(cli("--plugins-dir", plugins, "cache", "list", "--json").stdout)
    (entry,) = listed["files"]
    assert entry["repo"] == REPO and entry["revision"] == published["commit"] and entry["file"] == "weights.npz"
    assert entry["models"] == ["peaks-hub"] and entry["size_bytes"] == len(published["data"])
    table = cli("--plugins-dir", plugins, "cache", "list")
    assert "acme/peaks" in table.stdout and "peaks-hub" in table.stdout

    cleared = cli("--plugins-dir", plugins, "cache", "clear", "peaks-hub")
    assert cleared.exit_code == 0 and "deleted 1 cached revision" in cleared.stderr
    assert json.loads(cli("--plugins-dir", plugins, "cache", "list", "--json").stdout)["files"] == []

    cli("--plugins-dir", plugins, "download", "peaks-hub")
    refused = cli("cache", "clear")  # stdin is not a terminal under pytest
    assert refused.exit_code != 0 and "--yes" in refused.stderr
    assert cli("cache", "clear", "--yes").exit_code == 0
    assert not Path(listed["cache_dir"]).exists()


# -- end to end ---------------------------------------------------------------------------

def test_hf_uri_transcribes_a_file_end_to_end(published, hub_subprocess_env, tmp_path):
    import soundfile as sf

    from transcribe_cli.io.midi import read_midi

    wav = tmp_path / "tone.wav"
    sf.write(wav, piano_tone(69, 1.0, 16000), 16000)
    out = tmp_path / "out.mid"
    env = hub_subprocess_env(tmp_path / "cache")
    done = subprocess.run(
        [sys.executable, "-m", "transcribe_cli", "--plugins-dir", str(published["plugins"]), str(wav),
         "--model", published["uri"], "-o", str(out)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert [n.pitch for n in read_midi(out)] == [69]
    assert [r.filename for r in published["hub"].requests("GET")] == ["weights.npz"]


NMF_WEIGHTS = "transcribe_cli:data/nmf_piano_cqt.npz"


def test_bundled_nmf_weights_served_by_the_hub_give_the_same_transcription(hub_env, hub_subprocess_env, tmp_path):
    """A copy of the bundled nmf checkpoint, published on the (fake) Hub and run by URI,
    transcribes exactly like the bundled model."""
    import soundfile as sf

    from transcribe_cli.weights.checkpoint_meta import read_checkpoint_meta
    from transcribe_cli.errors import TranscribeError
    from transcribe_cli.weights.hub import bundled_path
    from transcribe_cli.registry import get_registry

    try:
        weights = bundled_path(NMF_WEIGHTS)
    except TranscribeError:
        pytest.skip("the nmf model's weights are not bundled yet")
    (name,) = [s.name for s in get_registry().specs("model") if s.weights.bundled == NMF_WEIGHTS]
    files = {"nmf_piano_cqt.npz": weights.read_bytes()}
    if read_checkpoint_meta(weights).get("model") is None:  # no metadata: name the model in config.json
        files["config.json"] = json.dumps({"model": name}).encode()
    else:
        assert read_checkpoint_meta(weights)["model"] == name
    commit = hub_env.publish("acme/nmf", files)

    wav = tmp_path / "chord.wav"
    sf.write(wav, piano_tone(60, 1.5, 16000) + piano_tone(64, 1.5, 16000) + piano_tone(67, 1.5, 16000), 16000)
    env = hub_subprocess_env(tmp_path / "cache")
    notes = {}
    for label, model in (("bundled", name), ("hub", f"hf://acme/nmf@{commit}/nmf_piano_cqt.npz")):
        out = tmp_path / f"{label}.json"
        done = subprocess.run([sys.executable, "-m", "transcribe_cli", str(wav), "--model", model, "-o", str(out)],
                              capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        notes[label] = json.loads(out.read_text())["notes"]
    assert notes["hub"] == notes["bundled"]
    assert {60, 64, 67} <= {n["pitch"] for n in notes["hub"]}
