"""Where a model's weights come from: bundled files, local paths, the Hugging Face Hub.

Resolution (:func:`resolve_weights`), first match wins:

1. an explicit local file (``--weights PATH``) — the user asked for it, so it overrides the rest;
2. weights bundled in an installed package (``WeightsSource.bundled``, ``package:relative/path``);
3. the Hub cache (``WeightsSource.hub_repo`` + ``revision`` + ``filename``), no network at all
   when the revision is a pinned commit hash and the file is cached;
4. a download with :func:`huggingface_hub.hf_hub_download` at that revision into the cache.

Every Hub file is checked before it is used: against the ``sha256`` of the model's spec when
it has one, else against the Hub's own content hash (the blob name of an LFS file is its
sha256, that of a plain git file its git blob sha1). A file that fails the check is deleted
and the call fails with one line; a cached file that fails is deleted and downloaded again.

Conventions:

- Cache: ``$TRANSCRIBE_CACHE_DIR/hub`` or, without that variable, ``hub/`` in the platform's
  user cache dir (``platformdirs.user_cache_dir("transcribe-cli")``). The layout inside is the
  standard Hugging Face cache layout, so ``huggingface_hub`` tools work on it.
- Offline: ``HF_HUB_OFFLINE=1`` (read at call time) or ``offline=True``; a file that is not
  cached is then an error that says how to get it (``transcribe download NAME``).
- ``HF_ENDPOINT`` is read at call time (``huggingface_hub`` itself reads it at import);
  ``HF_TOKEN`` is left to ``huggingface_hub``, which sends it with every request.
- Concurrency: one process downloads a given file at a time (a file lock per file in
  ``<cache root>/locks``); the others wait and then find it cached. ``huggingface_hub``
  writes to a unique temporary file and renames it into place, so an interrupted download
  is never used half-written, and a dropped connection is resumed with an HTTP Range request.

``huggingface_hub`` is imported inside functions only: listing models or ``--help`` never
pays for it.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import re
from contextlib import contextmanager
from contextvars import ContextVar
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transcribe_cli.errors import TranscribeError
from transcribe_cli.paths import CACHE_ENV, cache_root
from transcribe_cli.specs import ModelSpec, WeightsSource

ENV_CACHE_DIR = CACHE_ENV
ENV_OFFLINE = "HF_HUB_OFFLINE"
ENV_ENDPOINT = "HF_ENDPOINT"
_TRUE = {"1", "on", "yes", "true"}
COMMIT_RE = re.compile(r"[0-9a-f]{40}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
# revisions written unencoded in hf:// URIs although they contain '/' (huggingface_hub's grammar)
SPECIAL_REF_RE = re.compile(r"^refs/(?:convert/[\w.-]+|pr/\d+)")
_LOCK_NOTICE_AFTER_S = 2.0


class HubFileNotFoundError(TranscribeError):
    """The Hub has the repository but not this file at this revision."""


class NotCachedError(TranscribeError):
    """Offline mode is on and the file is not in the cache."""


# -- places -------------------------------------------------------------------------------

def hub_cache_dir() -> Path:
    """Where Hub downloads live (Hugging Face cache layout)."""
    return cache_root() / "hub"


def locks_dir() -> Path:
    return cache_root() / "locks"


#: ``--offline`` while a pipeline is built (:func:`offline_scope`), for code that fetches
#: without an ``offline`` argument (a peer model's own wheel fetch)
_OFFLINE_SCOPE: ContextVar[bool | None] = ContextVar("transcribe_offline", default=None)


def offline_mode(offline: bool | None = None) -> bool:
    """``offline`` when given, else the enclosing :func:`offline_scope`'s, else whether
    ``HF_HUB_OFFLINE`` is set to a true value."""
    if offline is not None:
        return offline
    if _OFFLINE_SCOPE.get() is not None:
        return bool(_OFFLINE_SCOPE.get())
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in _TRUE


@contextmanager
def offline_scope(offline: bool | None) -> Iterator[None]:
    """Within the block, :func:`offline_mode` answers ``offline`` (``None``: unchanged)."""
    token = _OFFLINE_SCOPE.set(offline if offline is not None else _OFFLINE_SCOPE.get())
    try:
        yield
    finally:
        _OFFLINE_SCOPE.reset(token)


def hub_endpoint() -> str | None:
    """``HF_ENDPOINT`` as set now (``None``: huggingface_hub's default)."""
    value = os.environ.get(ENV_ENDPOINT, "").strip()
    return value.rstrip("/") or None


# -- what to fetch ------------------------------------------------------------------------

@dataclass(frozen=True)
class HubFile:
    """One file of a Hub model repository at a revision, optionally with its expected sha256."""

    repo_id: str
    filename: str
    revision: str | None = None  # None: the repository's default branch ("main")
    sha256: str | None = None

    @classmethod
    def from_source(cls, source: WeightsSource) -> HubFile:
        if not source.hub_repo or not source.filename:
            raise TranscribeError(
                f"weights source {source.describe()!r} names no Hub repository and file",
                "a Hub weights source needs hub_repo and filename",
            )
        return cls(source.hub_repo, source.filename, source.revision, source.sha256)

    @property
    def pinned(self) -> bool:
        """Whether the revision is a full commit hash (immutable, cacheable without a request)."""
        return bool(self.revision and COMMIT_RE.fullmatch(self.revision))

    @property
    def uri(self) -> str:
        from urllib.parse import quote

        if not self.revision:
            rev = ""
        elif SPECIAL_REF_RE.fullmatch(self.revision):
            rev = f"@{self.revision}"
        else:
            rev = f"@{quote(self.revision, safe='')}"
        return f"hf://{self.repo_id}{rev}/{self.filename}"

    def sibling(self, filename: str) -> HubFile:
        """Another file of the same repository at the same revision (no expected hash)."""
        return HubFile(self.repo_id, filename, self.revision)


# -- bundled and explicit files -----------------------------------------------------------

def bundled_path(ref: str) -> Path:
    """``"package:relative/path"`` → the file inside the installed package."""
    package, sep, relative = ref.partition(":")
    if not sep or not package or not relative:
        raise TranscribeError(f"bad bundled weights reference {ref!r}", "expected 'package:relative/path'")
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError:
        raise TranscribeError(
            f"weights package {package!r} is not installed", f"pip install {package}"
        ) from None
    path = Path(str(root.joinpath(relative)))
    if not path.is_file():
        raise TranscribeError(
            f"bundled weights {ref!r} are missing from the installed package",
            "reinstall the package that provides this model",
        )
    return path


def explicit_path(weights: str | os.PathLike) -> Path:
    path = Path(weights).expanduser()
    if not path.is_file():
        raise TranscribeError(f"weights file not found: {path}", "check the --weights path")
    return path


# -- integrity ----------------------------------------------------------------------------

_HASH_MEMO: dict[tuple[str, str, int, int], str] = {}


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file (memoised per process on path, size and mtime)."""
    real = os.path.realpath(path)
    stat = os.stat(real)
    key = (algorithm, real, stat.st_size, stat.st_mtime_ns)
    if key not in _HASH_MEMO:
        digest = hashlib.new(algorithm)
        with open(real, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _HASH_MEMO[key] = digest.hexdigest()
    return _HASH_MEMO[key]


def git_blob_sha1(path: str | os.PathLike) -> str:
    """The git object id of a file's content (what the Hub uses as ETag for non-LFS files)."""
    size = os.path.getsize(path)
    digest = hashlib.sha1(f"blob {size}\0".encode())
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_mismatch(path: Path, expected_sha256: str | None) -> tuple[str, str] | None:
    """``(expected, actual)`` when ``path`` fails its check, else ``None``.

    The check is the expected sha256 when given, else the Hub's content hash carried by
    the blob's file name in the cache (sha256 for LFS files, git sha1 for others)."""
    if expected_sha256:
        actual = file_digest(path)
        return None if actual == expected_sha256.lower() else (expected_sha256.lower(), actual)
    blob_name = Path(os.path.realpath(path)).name
    if SHA256_RE.fullmatch(blob_name):
        actual = file_digest(path)
        return None if actual == blob_name else (blob_name, actual)
    if COMMIT_RE.fullmatch(blob_name):
        actual = git_blob_sha1(path)
        return None if actual == blob_name else (blob_name, actual)
    return None


def remove_cached(path: Path) -> None:
    """Delete a cached Hub file: its snapshot entry and the blob it points to."""
    blob = Path(os.path.realpath(path))
    for p in (path, blob):
        try:
            p.unlink()
        except FileNotFoundError:
            pass
    for key in [k for k in _HASH_MEMO if k[1] == str(blob)]:
        del _HASH_MEMO[key]


# -- the Hub cache and downloads ------------------------------------------------------------

def cached_file(ref: HubFile) -> Path | None:
    """The cached copy of ``ref`` (no network, not verified), or ``None``."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(
        ref.repo_id, ref.filename, cache_dir=hub_cache_dir(), revision=ref.revision or "main"
    )
    return Path(found) if isinstance(found, str) and os.path.isfile(found) else None


def _lock_path(ref: HubFile) -> Path:
    key = hashlib.sha1(f"{ref.repo_id}\0{ref.revision or 'main'}\0{ref.filename}".encode()).hexdigest()[:24]
    return locks_dir() / f"{key}.lock"


class _hold_lock:
    """A per-file inter-process lock that says once when it has to wait for another process.

    Where no lock file can be created (a read-only copy of the cache) it does nothing:
    nothing can be downloaded there anyway."""

    def __init__(self, ref: HubFile, notify):
        from filelock import FileLock

        self.ref = ref
        self.notify = notify
        path = _lock_path(ref)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.lock: Any = FileLock(str(path))
        except OSError:
            self.lock = None

    def __enter__(self):
        from filelock import Timeout

        if self.lock is None:
            return self
        try:
            self.lock.acquire(timeout=_LOCK_NOTICE_AFTER_S)
        except Timeout:
            if self.notify:
                self.notify(f"waiting for another process downloading {self.ref.uri}")
            self.lock.acquire()
        except OSError:
            self.lock = None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.lock is not None:
            self.lock.release()


def _quiet_tqdm():
    from tqdm.auto import tqdm

    class QuietTqdm(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return QuietTqdm


def _download(ref: HubFile, *, force: bool, progress: bool) -> Path:
    from huggingface_hub import hf_hub_download

    from transcribe_cli import __version__

    return Path(
        hf_hub_download(
            ref.repo_id,
            ref.filename,
            revision=ref.revision,
            cache_dir=hub_cache_dir(),
            force_download=force,
            endpoint=hub_endpoint(),
            library_name="transcribe-cli",
            library_version=__version__,
            tqdm_class=None if progress else _quiet_tqdm(),
        )
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]


def _http_status(exc: BaseException) -> int | None:
    for cause in _causes(exc):
        response = getattr(cause, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            return status
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def hub_error(exc: Exception, ref: HubFile, name: str | None = None) -> TranscribeError:
    """A one-line :class:`TranscribeError` for a failed Hub download."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    what = f"{ref.uri}" + (f" (model {name!r})" if name and name != ref.uri else "")
    if isinstance(exc, GatedRepoError):
        return TranscribeError(f"{what}: repository {ref.repo_id!r} is gated",
                               "accept its terms on the Hub, then set HF_TOKEN to a token of that account")
    if isinstance(exc, RepositoryNotFoundError):
        return TranscribeError(f"{what}: repository {ref.repo_id!r} not found on the Hub",
                               "check the name; for a private repository set HF_TOKEN")
    if isinstance(exc, RevisionNotFoundError):
        return TranscribeError(f"{what}: revision {ref.revision!r} not found in {ref.repo_id!r}",
                               "check the revision (a commit hash, branch or tag)")
    if isinstance(exc, EntryNotFoundError) and not isinstance(exc, LocalEntryNotFoundError):
        return HubFileNotFoundError(f"{what}: file {ref.filename!r} not found in {ref.repo_id!r} "
                               f"at revision {ref.revision or 'main'}", "check the file name")
    status = _http_status(exc)
    if status is not None:
        kind = "server error" if status >= 500 else "request refused"
        return TranscribeError(f"could not download {what}: the Hub answered HTTP {status} ({kind})",
                               "try again later, or check HF_ENDPOINT and HF_TOKEN")
    cause = next((c for c in list(_causes(exc))[1:]), None)
    detail = _first_line(cause or exc)
    return TranscribeError(f"could not download {what}: {detail}",
                           "check your connection (and HF_ENDPOINT if set), then retry")


def _offline_error(ref: HubFile, name: str | None) -> NotCachedError:
    target = name or ref.uri
    return NotCachedError(
        f"weights {ref.uri}" + (f" for model {name!r}" if name and name != ref.uri else "")
        + f" are not in the cache ({hub_cache_dir()}) and offline mode is on",
        f"run `transcribe download {target}` on a connected machine and copy its cache folder "
        f"here (or point {ENV_CACHE_DIR} at a copy), or unset {ENV_OFFLINE}",
    )


def fetch(
    ref: HubFile,
    *,
    name: str | None = None,
    offline: bool | None = None,
    force: bool = False,
    progress: bool = True,
    notify=None,
) -> Path:
    """The verified local path of ``ref``: from the cache, else downloaded into it.

    ``name`` (a model name or URI) is used in messages; ``notify(line)`` is told when the
    call waits for another process. Raises :class:`TranscribeError` on every failure."""
    offline = offline_mode(offline)
    if offline and force:
        raise TranscribeError("cannot force a download in offline mode", f"unset {ENV_OFFLINE}")
    if not force:  # a cache hit needs no lock: files appear in the cache complete, by rename
        hit = cached_file(ref)
        if hit is not None and (ref.pinned or offline):  # offline, a cached branch is the best we have
            bad = content_mismatch(hit, ref.sha256)
            if bad is None:
                return hit
            if offline:
                try:
                    remove_cached(hit)
                except OSError:
                    pass
                raise TranscribeError(
                    f"cached weights {ref.uri} are corrupted (sha256 {bad[1][:12]}…, expected {bad[0][:12]}…)",
                    "download them again when online (transcribe download)")
        if offline:
            raise _offline_error(ref, name)
    with _hold_lock(ref, notify):
        if not force:  # another process may have downloaded it while we waited
            hit = cached_file(ref)
            if hit is not None and ref.pinned:
                if content_mismatch(hit, ref.sha256) is None:
                    return hit
                remove_cached(hit)  # corrupted cache entry: download it again
        try:
            path = _download(ref, force=force, progress=progress)
        except TranscribeError:
            raise
        except Exception as exc:  # huggingface_hub / httpx / OS errors → one line
            raise hub_error(exc, ref, name) from exc
        return _verified(path, ref, name)


def _verified(path: Path, ref: HubFile, name: str | None) -> Path:
    bad = content_mismatch(path, ref.sha256)
    if bad is None:
        return path
    remove_cached(path)
    expected, actual = bad
    owner = f" for model {name!r}" if name and name != ref.uri else ""
    raise TranscribeError(
        f"weights {ref.uri}{owner} failed their integrity check (expected sha256 {expected[:16]}…, "
        f"got {actual[:16]}…); the file was deleted",
        "the file on the Hub differs from the pinned one: report it to the model's maintainers",
    )


# -- per-model resolution -----------------------------------------------------------------

def resolve_weights(
    spec: ModelSpec,
    weights: str | os.PathLike | None = None,
    *,
    offline: bool | None = None,
    progress: bool = True,
) -> Path | None:
    """The local file holding ``spec``'s weights, or ``None`` if it needs none (see module doc)."""
    if weights is not None:
        return explicit_path(weights)
    source: WeightsSource = spec.weights
    if source.peer:  # a peer's own wheel (transcribe_cli.peers)
        from transcribe_cli.peers import weights_file

        return weights_file(source, name=spec.name, offline=offline, progress=progress)
    if source.bundled:
        try:
            return bundled_path(source.bundled)
        except TranscribeError:
            if not source.hub_repo:  # nothing to fall back on
                raise
    if source.hub_repo:
        return fetch(HubFile.from_source(source), name=spec.name, offline=offline, progress=progress)
    return None


@dataclass(frozen=True)
class WeightsStatus:
    """What ``transcribe models`` shows about a model's weights (no network)."""

    source: str  # "none", "bundled", "hub" or "peer"
    description: str
    available_offline: bool
    path: Path | None = None
    size: int | None = None


def weights_status(spec: ModelSpec) -> WeightsStatus:
    """Whether ``spec``'s weights are on this machine, where and how big (no network, no hashing)."""
    source = spec.weights
    description = source.describe()
    if source.peer:
        from transcribe_cli.peers import local_root

        root = local_root(source.peer)
        path = root / source.filename if root is not None and source.filename else None
        if path is None or not path.is_file():
            return WeightsStatus("peer", description, False)
        return WeightsStatus("peer", description, True, path, path.stat().st_size)
    if source.bundled:
        try:
            path = bundled_path(source.bundled)
            return WeightsStatus("bundled", description, True, path, path.stat().st_size)
        except TranscribeError:
            if not source.hub_repo:
                return WeightsStatus("bundled", description, False)
    if source.hub_repo and source.filename:
        path = cached_file(HubFile.from_source(source))
        if path is None:
            return WeightsStatus("hub", description, False)
        return WeightsStatus("hub", description, True, path, path.stat().st_size)
    if spec.trainable:  # a neural model nobody has published weights for: train one
        return WeightsStatus("none", "none published (train one)", False)
    return WeightsStatus("none", description, True)
