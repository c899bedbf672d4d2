"""Weights resolution and Hub downloads, against a fake Hub on 127.0.0.1 (no internet)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weights_plugin import write_plugin
from transcribe_cli.weights import hub
from transcribe_cli.errors import TranscribeError, UnknownNameError
from transcribe_cli.weights.hub import HubFile, NotCachedError, cached_file, fetch, resolve_weights, weights_status
from transcribe_cli.weights.uri import parse_hf_uri, resolve_model_argument, resolve_model_weights
from transcribe_cli.specs import ModelSpec, WeightsSource



def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


REPO = "acme/piano-model"
WEIGHTS = b"\x93NUMPY-not-really" + bytes(range(256)) * 400  # ~100 kB, several 64 KiB chunks


def hub_spec(ref: HubFile, name: str = "hub-model") -> ModelSpec:
    source = WeightsSource(hub_repo=ref.repo_id, revision=ref.revision, filename=ref.filename, sha256=ref.sha256)
    return ModelSpec(name=name, factory=lambda path, **o: None, frontend="cqt", decoder="frame-threshold",
                     weights=source)


# -- first download, cache hits, revisions ------------------------------------------------

def test_first_download_then_cache_hit_makes_no_request(hub_env):
    commit = hub_env.publish(REPO, {"weights.npz": WEIGHTS})
    ref = HubFile(REPO, "weights.npz", commit, sha256(WEIGHTS))

    path = fetch(ref, progress=False)
    assert path.read_bytes() == WEIGHTS
    assert Path(hub.hub_cache_dir()) in path.parents
    assert [r.method for r in hub_env.requests()] == ["HEAD", "GET"]
    assert hub_env.requests("GET")[0].revision == commit

    hub_env.reset_log()
    assert fetch(ref, progress=False) == path
    assert resolve_weights(hub_spec(ref), progress=False) == path
    assert hub_env.all_requests() == []


def test_revision_pinning_serves_each_revision_its_own_bytes(hub_env):
    first = hub_env.publish(REPO, {"weights.npz": b"version one"})
    second = hub_env.publish(REPO, {"weights.npz": b"version two, longer"})
    assert first != second
    assert fetch(HubFile(REPO, "weights.npz", first), progress=False).read_bytes() == b"version one"
    assert fetch(HubFile(REPO, "weights.npz", second), progress=False).read_bytes() == b"version two, longer"
    # the branch follows the latest commit; the pinned first revision is still served from the cache
    assert fetch(HubFile(REPO, "weights.npz", "main"), progress=False).read_bytes() == b"version two, longer"
    hub_env.reset_log()
    assert fetch(HubFile(REPO, "weights.npz", first), progress=False).read_bytes() == b"version one"
    assert hub_env.all_requests() == []


def test_unpinned_revision_asks_the_hub_which_commit_is_current(hub_env):
    hub_env.publish(REPO, {"weights.npz": b"v1"})
    assert fetch(HubFile(REPO, "weights.npz"), progress=False).read_bytes() == b"v1"
    hub_env.publish(REPO, {"weights.npz": b"v2"})
    hub_env.reset_log()
    assert fetch(HubFile(REPO, "weights.npz"), progress=False).read_bytes() == b"v2"
    assert [r.method for r in hub_env.requests()] == ["HEAD", "GET"]


# -- integrity ----------------------------------------------------------------------------

def _cache_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() or p.is_symlink()]


def test_sha256_mismatch_deletes_the_file_and_fails_in_one_line(hub_env):
    commit = hub_env.publish(REPO, {"weights.npz": WEIGHTS})
    ref = HubFile(REPO, "weights.npz", commit, sha256(b"what the model card promised"))
    with pytest.raises(TranscribeError) as err:
        resolve_weights(hub_spec(ref, "pinned-model"), progress=False)
    message = str(err.value)
    assert "\n" not in message
    assert "integrity check" in message and "deleted" in message and "'pinned-model'" in message
    assert cached_file(HubFile(REPO, "weights.npz", commit)) is None
    repo_dir = hub.hub_cache_dir() / "models--acme--piano-model"
    assert not [p for p in _cache_files(repo_dir / "blobs")] and not _cache_files(repo_dir / "snapshots")


def test_bytes_that_differ_from_the_hub_etag_are_rejected_without_a_spec_hash(hub_env):
    commit = hub_env.publish(REPO, {"weights.npz": WEIGHTS})
    tampered = bytearray(WEIGHTS)
    tampered[5000] ^= 0xFF
    hub_env.tamper(REPO, commit, "weights.npz", bytes(tampered))
    with pytest.raises(TranscribeError, match="integrity check"):
        fetch(HubFile(REPO, "weights.npz", commit), progress=False)
    assert cached_file(HubFile(REPO, "weights.npz", commit)) is None


def test_small_git_files_are_checked_against_their_git_sha1(hub_env):
    config = json.dumps({"model": "x"}).encode()
    commit = hub_env.publish(REPO, {"config.json": config})
    path = fetch(HubFile(REPO, "config.json", commit), progress=False)
    assert path.read_bytes() == config
    assert len(Path(os.path.realpath(path)).name) == 40  # blob named by its git sha1


def test_corrupted_cache_entry_is_deleted_and_downloaded_again(hub_env):
    commit = hub_env.publish(REPO, {"weights.npz": WEIGHTS})
    ref = HubFile(REPO, "weights.npz", commit, sha256(WEIGHTS))
    path = fetch(ref, progress=False)
    blob = Path(os.path.realpath(path))
    blob.write_bytes(b"bit rot")
    hub_env.reset_log()
    assert fetch(ref, progress=False).read_bytes() == WEIGHTS
    assert len(hub_env.requests("GET")) == 1


# -- failures -----------------------------------------------------------------------------

@pytest.fixture
def no_backoff(monkeypatch):
    """huggingface_hub retries 5xx with exponential backoff (~23 s): skip the sleeping."""
    import huggingface_hub.utils._http as http

    monkeypatch.setattr(http.time, "sleep", lambda s: None)


@pytest.mark.parametrize("method", ["HEAD", "GET"])
def test_server_error_is_one_clear_line(hub_env, no_backoff, method):
    commit = hub_env.publish(REPO, {"weights.npz": WEIGHTS})
    hub_env.fail(500, method=method)
    with pytest.raises(TranscribeError) as err:
        fetch(HubFile(REPO, "weights.npz", commit), name="hub-model", progress=False)
    message = str(err.value)
    assert "\n" not in message and "HTTP 500" in message and "hf://acme/piano-model@" in message
    assert cached_file(HubFile(REPO, "weights.npz", commit)) is None
    assert not list((hub.hub_cache_dir()).rglob("*.incomplete"))


@pytest.mark.parametrize(
    "ref, expected",
    [
        (HubFile("acme/nope", "weights.npz", "main"), "repository 'acme/nope' not found"),
        (HubFile(REPO, "weights.npz", "f" * 40), "revision 'ffff"),
        (HubFile(REPO, "missing.npz", "main"), "file 'missing.npz' not found"),
    ],
)
def test_missing_repo_revision_or_file(hub_env, ref, expected):
    hub_env.publish(REPO, {"weights.npz": WEIGHTS})
    with pytest.raises(TranscribeError, match=expected) as err:
        fetch(ref, progress=False)
    assert "\n" not in str(err.value)


def test_unreachable_endpoint_says_so(hub_env, monkeypatch, no_backoff):
    hub_env.stop()
    with pytest.raises(TranscribeError, match="could not download hf://acme/piano-model@main/w.npz") as err:
        fetch(HubFile(REPO, "w.npz", "main"), progress=False)
    assert "\n" not in str(err.value)


def test_hf_token_is_sent_to_the_hub(hub_env, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_private_test_token")
    commit = hub_env.publish(REPO, {"weights.npz": WEIGHTS})
    fetch(HubFile(REPO, "weights.npz", commit), progress=False)
    assert {r.authorization for r in hub_env.requests()} == {"Bearer hf_private_test_token"}


# -- offline ------------------------------------------------------------------------------

def test_offline_without_the_file_says_what_to_download(hub_env, monkeypatch):
    commit = hub_env.publish(REPO, {"weights.npz": WEIGHTS})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ref = HubFile(REPO, "weights.npz", commit, sha256(WEIGHTS))
    with pytest.raises(NotCachedError) as err:
        resolve_weights(hub_spec(ref, "hub-model"))
    message = str(err.value)
    assert "offline mode is on" in message and "transcribe download hub-model" in message
    assert "\n" not in message
    assert hub_env.all_requests() == []


def test_offline_with_the_file_cached_makes_no_request(hub_env, monkeypatch):
    commit = hub_env.publish(REPO, {"weights.npz": WEIGHTS})
    pinned = HubFile(REPO, "weights.npz", commit, sha256(WEIGHTS))
    branch = HubFile(REPO, "weights.npz", "main")
    path = fetch(pinned, progress=False)
    fetch(branch, progress=False)
    hub_env.reset_log()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert fetch(pinned) == path
    assert fetch(branch).read_bytes() == WEIGHTS  # a branch resolves through the cached ref
    assert hub_env.all_requests() == []


def test_offline_flag_wins_over_the_environment(hub_env, monkeypatch):
    commit = hub_env.publish(REPO, {"weights.npz": WEIGHTS})
    with pytest.raises(NotCachedError):
        fetch(HubFile(REPO, "weights.npz", commit), offline=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert fetch(HubFile(REPO, "weights.npz", commit), offline=False, progress=False).read_bytes() == WEIGHTS


def test_offline_corrupted_cache_entry_is_an_error(hub_env, monkeypatch):
    commit = hub_env.publish(REPO, {"weights.npz": WEIGHTS})
    ref = HubFile(REPO, "weights.npz", commit, sha256(WEIGHTS))
    Path(os.path.realpath(fetch(ref, progress=False))).write_bytes(b"bit rot")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TranscribeError, match="are corrupted"):
        fetch(ref)
    assert cached_file(ref) is None


def test_download_works_where_no_lock_file_can_be_made(hub_env, monkeypatch, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setattr(hub, "locks_dir", lambda: blocker / "locks")
    commit = hub_env.publish(REPO, {"weights.npz": WEIGHTS})
    assert fetch(HubFile(REPO, "weights.npz", commit, sha256(WEIGHTS)), progress=False).read_bytes() == WEIGHTS


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("ON", True), ("0", False), ("", False)])
def test_offline_mode_reads_hf_hub_offline(monkeypatch, value, expected):
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert hub.offline_mode() is expected
    assert hub.offline_mode(True) is True


# -- interrupted and concurrent downloads -------------------------------------------------

def test_dropped_connection_is_resumed_or_redone(hub_env, monkeypatch):
    """huggingface_hub keeps what it has written (whole 10 MiB chunks) and asks for the rest
    with a Range request; a connection dropped before that is simply redone."""
    import huggingface_hub.constants as constants
    import huggingface_hub.file_download as fd

    monkeypatch.setattr(fd.time, "sleep", lambda s: None)
    chunk = constants.DOWNLOAD_CHUNK_SIZE
    big = np.random.default_rng(0).integers(0, 256, chunk + chunk // 4, dtype=np.uint8).tobytes()
    commit = hub_env.publish(REPO, {"small.npz": WEIGHTS, "big.npz": big})

    hub_env.drop_after = 70_000
    assert fetch(HubFile(REPO, "small.npz", commit, sha256(WEIGHTS)), progress=False).read_bytes() == WEIGHTS
    assert [g.range for g in hub_env.requests("GET", "small.npz")] == [None, None]

    hub_env.drop_after = chunk + 1000
    assert fetch(HubFile(REPO, "big.npz", commit, sha256(big)), progress=False).read_bytes() == big
    assert [g.range for g in hub_env.requests("GET", "big.npz")] == [None, f"bytes={chunk}-"]


_DOWNLOAD_SCRIPT = """
import sys, time
from transcribe_cli.weights.hub import HubFile, fetch
start = time.time()
path = fetch(HubFile(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]), progress=False)
print(path, start, time.time())
"""


def test_killed_download_leaves_nothing_usable_and_is_redone(hub_env, hub_subprocess_env, tmp_path):
    commit = hub_env.publish(REPO, {"weights.npz": WEIGHTS})
    ref = HubFile(REPO, "weights.npz", commit, sha256(WEIGHTS))
    hub_env.chunk_delay = 0.5  # ~1 s per download: time to kill it mid-body
    proc = subprocess.Popen(
        [sys.executable, "-c", _DOWNLOAD_SCRIPT, REPO, "weights.npz", commit, ref.sha256],
        env=hub_subprocess_env(tmp_path / "cache"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while not hub_env.requests("GET") and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # the body is being written
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL  # killed while the body was streaming
    assert cached_file(ref) is None  # nothing half-written is visible as the file
    hub_env.chunk_delay = 0.0
    assert fetch(ref, progress=False).read_bytes() == WEIGHTS


def test_two_processes_download_the_same_file_once(hub_env, hub_subprocess_env, tmp_path):
    commit = hub_env.publish(REPO, {"weights.npz": WEIGHTS})
    hub_env.chunk_delay = 0.5  # the body takes ~1 s: both processes run while it streams
    env = hub_subprocess_env(tmp_path / "cache")
    args = [sys.executable, "-c", _DOWNLOAD_SCRIPT, REPO, "weights.npz", commit, sha256(WEIGHTS)]
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outputs]
    results = [o[0].split() for o in outputs]
    (path_a, start_a, end_a), (path_b, start_b, end_b) = results
    assert path_a == path_b and Path(path_a).read_bytes() == WEIGHTS
    assert float(start_a) < float(end_b) and float(start_b) < float(end_a), "the downloads did not overlap"
    # one process downloaded; the other waited for the lock, then found the file cached
    assert [r.method for r in hub_env.requests()] == ["HEAD", "GET"], hub_env.requests()


# -- bundled, explicit, none --------------------------------------------------------------

def test_explicit_path_wins_over_the_model_own_weights(tmp_path, hub_env):
    mine = tmp_path / "mine.npz"
    mine.write_bytes(b"x")
    ref = HubFile(REPO, "weights.npz", "a" * 40, "b" * 64)
    assert resolve_weights(hub_spec(ref), mine) == mine
    assert hub_env.all_requests() == []
    with pytest.raises(TranscribeError, match="weights file not found"):
        resolve_weights(hub_spec(ref), tmp_path / "missing.npz")


def test_bundled_weights_and_bad_references():
    spec = ModelSpec(name="b", factory=print, frontend="cqt", decoder="d",
                     weights=WeightsSource(bundled="transcribe_cli:py.typed"))
    path = resolve_weights(spec)
    assert path.name == "py.typed" and path.is_file()
    status = weights_status(spec)
    assert status.available_offline and status.source == "bundled" and status.size == path.stat().st_size
    with pytest.raises(TranscribeError, match="bad bundled weights reference"):
        hub.bundled_path("no-colon")
    with pytest.raises(TranscribeError, match="is not installed"):
        hub.bundled_path("no_such_package_xyz:w.npz")
    with pytest.raises(TranscribeError, match="missing from the installed package"):
        hub.bundled_path("transcribe_cli:data/does-not-exist.npz")


def test_model_without_weights_needs_nothing():
    spec = ModelSpec(name="free", factory=print, frontend="cqt", decoder="d")
    assert resolve_weights(spec) is None
    assert weights_status(spec).available_offline and weights_status(spec).source == "none"


def test_weights_status_of_a_hub_model_follows_the_cache(hub_env):
    commit = hub_env.publish(REPO, {"weights.npz": WEIGHTS})
    spec = hub_spec(HubFile(REPO, "weights.npz", commit, sha256(WEIGHTS)))
    assert not weights_status(spec).available_offline
    fetch(HubFile.from_source(spec.weights), progress=False)
    hub_env.reset_log()
    status = weights_status(spec)
    assert status.available_offline and status.size == len(WEIGHTS)
    assert hub_env.all_requests() == []


def test_cache_dir_env_override_and_default(monkeypatch, tmp_path):
    monkeypatch.setenv("TRANSCRIBE_CACHE_DIR", str(tmp_path / "c"))
    assert hub.hub_cache_dir() == tmp_path / "c" / "hub"
    monkeypatch.delenv("TRANSCRIBE_CACHE_DIR")
    import platformdirs

    assert hub.hub_cache_dir() == Path(platformdirs.user_cache_dir("transcribe-cli")) / "hub"


# -- model URIs ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "uri, expected",
    [
        ("hf://acme/model/weights.npz", ("acme/model", None, "weights.npz")),
        ("hf://acme/model@" + "a" * 40 + "/weights.npz", ("acme/model", "a" * 40, "weights.npz")),
        ("hf://acme/model@v1.0/sub/dir/w.pt", ("acme/model", "v1.0", "sub/dir/w.pt")),
        ("hf://models/acme/model@main/w.pt", ("acme/model", "main", "w.pt")),
        ("hf://acme/model@refs/pr/3/w.pt", ("acme/model", "refs/pr/3", "w.pt")),
        ("hf://acme/model@refs%2Fheads%2Fdev/w.pt", ("acme/model", "refs/heads/dev", "w.pt")),
        ("hf://acme/model/w@2.npz", ("acme/model", None, "w@2.npz")),
        ("hf:/acme/model@main/w.npz", ("acme/model", "main", "w.npz")),  # as pathlib.Path leaves it
    ],
)
def test_parse_hf_uri(uri, expected):
    ref = parse_hf_uri(uri)
    assert (ref.repo_id, ref.revision, ref.filename) == expected
    assert parse_hf_uri(ref.uri) == ref


@pytest.mark.parametrize(
    "uri, why",
    [
        ("hf://", "no repository"),
        ("hf://acme", "owner/name"),
        ("hf://acme/model", "no file"),
        ("hf://acme/model@", "empty revision"),
        ("hf://acme/model@/w.npz", "empty revision"),
        ("hf://datasets/acme/data/x.csv", "only model repositories"),
        ("hf://acme/mo--del/w.npz", "not a valid"),
        ("hf://acme/model@main/../w.npz", "not a plain path"),
        ("http://acme/model/w.npz", "does not start with hf://"),
    ],
)
def test_parse_hf_uri_rejects(uri, why):
    with pytest.raises(TranscribeError, match=why):
        parse_hf_uri(uri)


_NAME = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9_]{0,10}[A-Za-z0-9])?", fullmatch=True)
_REV = st.one_of(st.none(), st.from_regex(r"[0-9a-f]{40}", fullmatch=True),
                 st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,12}", fullmatch=True),
                 st.integers(1, 999).map(lambda n: f"refs/pr/{n}"))
_PATH = st.lists(st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,10}", fullmatch=True), min_size=1, max_size=3)


@settings(max_examples=200, deadline=None)
@given(owner=_NAME, name=_NAME, revision=_REV, parts=_PATH)
def test_parse_hf_uri_agrees_with_huggingface_hub(owner, name, revision, parts):
    hf_uris = pytest.importorskip("huggingface_hub.utils")
    path = "/".join(parts)
    uri = f"hf://{owner}/{name}" + (f"@{revision}" if revision else "") + f"/{path}"
    ours = parse_hf_uri(uri)
    theirs = hf_uris.parse_hf_uri(uri)
    assert (ours.repo_id, ours.revision, ours.filename) == (theirs.id, theirs.revision, theirs.path_in_repo)
    assert parse_hf_uri(ours.uri) == ours


# -- --model arguments --------------------------------------------------------------------

def _npz(path: Path, meta: dict | None, **arrays) -> Path:
    if meta is not None:
        arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    return path


@pytest.fixture
def registry(tmp_path):
    from transcribe_cli.registry import get_registry

    return get_registry([write_plugin(tmp_path / "plugins")])


@pytest.fixture
def some_model(registry):
    assert "peaks-test" in registry.names("model"), registry.problems()
    return "peaks-test"


def test_registered_name_is_used_as_is(registry, some_model, hub_env):
    choice = resolve_model_argument(some_model, registry)
    assert choice.kind == "registered" and choice.checkpoint is None
    assert choice.spec is registry.model(some_model)
    assert hub_env.all_requests() == []


def test_local_checkpoint_names_its_model(tmp_path, registry, some_model):
    ckpt = _npz(tmp_path / "mine.npz", {"model": some_model}, w=np.zeros(3))
    choice = resolve_model_argument(str(ckpt), registry)
    assert choice.kind == "file" and choice.checkpoint == ckpt and choice.spec.name == some_model
    assert resolve_model_weights(choice) == ckpt
    with pytest.raises(TranscribeError, match="drop --weights"):
        resolve_model_argument(str(ckpt), registry, weights=ckpt)


def test_config_json_beside_a_checkpoint_names_its_model(tmp_path, registry, some_model):
    ckpt = _npz(tmp_path / "bare.npz", None, w=np.zeros(3))
    with pytest.raises(TranscribeError, match="does not say which model"):
        resolve_model_argument(str(ckpt), registry)
    (tmp_path / "config.json").write_text(json.dumps({"model": some_model}))
    assert resolve_model_argument(str(ckpt), registry).spec.name == some_model


def test_torch_and_safetensors_checkpoints_carry_metadata(tmp_path):
    import struct

    import torch

    from transcribe_cli.weights.checkpoint_meta import read_checkpoint_meta

    torch.save({"meta": {"model": "m1"}, "state_dict": {"w": torch.zeros(2)}}, tmp_path / "a.pt")
    torch.save({"meta": json.dumps({"model": "m2"})}, tmp_path / "b.ckpt")
    header = json.dumps({"__metadata__": {"model": "m3"}}).encode()
    (tmp_path / "c.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    assert read_checkpoint_meta(tmp_path / "a.pt")["model"] == "m1"
    assert read_checkpoint_meta(tmp_path / "b.ckpt")["model"] == "m2"
    assert read_checkpoint_meta(tmp_path / "c.safetensors")["model"] == "m3"
    (tmp_path / "evil.pt").write_bytes(b"not a pickle")
    with pytest.raises(TranscribeError, match="cannot read checkpoint"):
        read_checkpoint_meta(tmp_path / "evil.pt")


def test_checkpoint_for_an_unregistered_model_lists_the_registered_ones(tmp_path, registry):
    ckpt = _npz(tmp_path / "x.npz", {"model": "no-such-model"})
    with pytest.raises(TranscribeError, match="'no-such-model', which no installed plugin registers"):
        resolve_model_argument(str(ckpt), registry)
    with pytest.raises(TranscribeError, match="metadata entry 'model'"):
        resolve_model_argument(str(_npz(tmp_path / "y.npz", {"model": 3})), registry)


def test_missing_file_and_unknown_name(tmp_path, registry):
    with pytest.raises(TranscribeError, match="model file not found"):
        resolve_model_argument(str(tmp_path / "nope.npz"), registry)
    with pytest.raises(UnknownNameError):
        resolve_model_argument("no-such-model", registry)


def test_hf_uri_downloads_the_checkpoint_and_its_config(hub_env, registry, some_model, tmp_path):
    bare = tmp_path / "bare.npz"
    _npz(bare, None, w=np.zeros(3))
    commit = hub_env.publish(REPO, {"w.npz": bare.read_bytes(),
                                    "config.json": json.dumps({"model": some_model}).encode()})
    choice = resolve_model_argument(f"hf://{REPO}@{commit}/w.npz", registry, progress=False)
    assert choice.kind == "hub" and choice.spec.name == some_model
    assert choice.spec.weights == WeightsSource(hub_repo=REPO, revision=commit, filename="w.npz")
    assert choice.checkpoint.read_bytes() == bare.read_bytes()
    assert {r.filename for r in hub_env.requests("GET")} == {"w.npz", "config.json"}
    # the same checkpoint through --weights hf://… with a registered name
    spec_choice = resolve_model_argument(some_model, registry)
    assert resolve_model_weights(spec_choice, f"hf://{REPO}@{commit}/w.npz") == choice.checkpoint
