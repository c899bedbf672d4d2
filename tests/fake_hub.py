"""A fake Hugging Face Hub on 127.0.0.1 for download tests (no internet needed).

It serves ``/{owner}/{repo}/resolve/{revision}/{path}`` the way the Hub's resolve endpoint
does for ``huggingface_hub.hf_hub_download``: ``HEAD`` answers with ``X-Repo-Commit``,
``ETag`` (the sha256 for binary, LFS-style files; the git blob sha1 for ``.json`` files, as
the Hub does for small files kept in git) and ``Content-Length``; ``GET`` serves the bytes,
honouring ``Range: bytes=a-[b]``; a missing repository, revision or file is a 404 with the
Hub's ``X-Error-Code``. Every request is logged (method, path, range, authorization) so
tests can count them, and faults can be injected: error statuses, a connection dropped
mid-body, a slow body, bytes that differ from the advertised ETag.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest

_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<path>.+)$")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


@dataclass
class Request:
    method: str
    path: str
    repo: str | None
    revision: str | None
    filename: str | None
    range: str | None
    authorization: str | None
    status: int = 0


@dataclass
class Fault:
    status: int
    method: str | None = None  # None: any method
    filename: str | None = None  # None: any file
    times: int | None = None  # None: forever


@dataclass
class FakeHub:
    repos: dict[str, dict[str, dict[str, bytes]]] = field(default_factory=dict)  # repo → commit → files
    refs: dict[str, dict[str, str]] = field(default_factory=dict)  # repo → branch → commit
    log: list[Request] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    served: dict[tuple[str, str, str], bytes] = field(default_factory=dict)  # bytes sent instead (tampering)
    chunk_delay: float = 0.0  # seconds between 64 KiB chunks of a GET body
    drop_after: int | None = None  # drop the connection after this many body bytes, once
    url: str = ""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- content ----------------------------------------------------------------------
    def publish(self, repo: str, files: dict[str, bytes], branch: str = "main") -> str:
        """A new commit of ``repo`` holding ``files``; moves ``branch`` to it. Returns its hash."""
        previous = self.repos.get(repo, {}).get(self.refs.get(repo, {}).get(branch, ""), {})
        content = {**previous, **files}
        commit = hashlib.sha1(repr(sorted((k, sha256(v)) for k, v in content.items())).encode()
                              + str(len(self.repos.get(repo, {}))).encode()).hexdigest()
        self.repos.setdefault(repo, {})[commit] = content
        self.refs.setdefault(repo, {})[branch] = commit
        return commit

    def tamper(self, repo: str, commit: str, filename: str, data: bytes) -> None:
        """Serve ``data`` for that file while still advertising the original's ETag and size."""
        self.served[(repo, commit, filename)] = data

    def fail(self, status: int, method: str | None = None, filename: str | None = None,
             times: int | None = None) -> None:
        self.faults.append(Fault(status, method, filename, times))

    # -- inspection -------------------------------------------------------------------
    def requests(self, method: str | None = None, filename: str | None = None) -> list[Request]:
        """Requests for repository files (not huggingface_hub's own API calls, such as the
        once-a-day ``/api/agent-harnesses`` fetch it makes to build its user agent)."""
        with self._lock:
            return [r for r in self.log if r.filename is not None and (method is None or r.method == method)
                    and (filename is None or r.filename == filename)]

    def all_requests(self) -> list[Request]:
        with self._lock:
            return list(self.log)

    def reset_log(self) -> None:
        with self._lock:
            self.log.clear()

    # -- server -----------------------------------------------------------------------
    def start(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_HEAD(self) -> None:
                hub._answer(self, head=True)

            def do_GET(self) -> None:
                hub._answer(self, head=False)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _fault_for(self, method: str, filename: str | None) -> int | None:
        with self._lock:
            for fault in self.faults:
                if (fault.method in (None, method) and fault.filename in (None, filename)
                        and (fault.times is None or fault.times > 0)):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault.status
        return None

    def _answer(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        method = "HEAD" if head else "GET"
        match = _RESOLVE.match(h.path.split("?", 1)[0])
        repo = revision = filename = None
        if match:
            repo, revision, filename = match["repo"], unquote(match["revision"]), unquote(match["path"])
        request = Request(method, h.path, repo, revision, filename, h.headers.get("Range"),
                          h.headers.get("Authorization"))
        with self._lock:
            self.log.append(request)

        def reply(status: int, headers: dict[str, str], body: bytes = b"", length: int | None = None) -> None:
            """Status and headers, then ``body`` unless HEAD; ``length`` overrides Content-Length."""
            request.status = status
            h.send_response(status)
            for key, value in headers.items():
                h.send_header(key, value)
            h.send_header("Content-Length", str(len(body) if length is None else length))
            h.end_headers()
            if body and not head:
                h.wfile.write(body)

        fault = self._fault_for(method, filename)
        if fault is not None:
            return reply(fault, {}, b"injected failure")
        if match is None or repo not in self.repos:
            return reply(404, {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})
        commit = self.refs[repo].get(revision, revision)
        if commit not in self.repos[repo]:
            return reply(404, {"X-Error-Code": "RevisionNotFound", "X-Error-Message": "Invalid rev id"})
        files = self.repos[repo][commit]
        if filename not in files:
            return reply(404, {"X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found",
                               "X-Repo-Commit": commit})
        original = files[filename]
        data = self.served.get((repo, commit, filename), original)
        etag = git_sha1(original) if filename.endswith(".json") else sha256(original)
        headers = {"X-Repo-Commit": commit, "ETag": f'"{etag}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        if head:
            return reply(200, headers, length=len(original))
        start, status = 0, 200
        wanted = h.headers.get("Range")
        if wanted:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted.strip())
            if not m or int(m[1]) >= len(data):
                return reply(416, {"Content-Range": f"bytes */{len(data)}"})
            start = int(m[1])
            end = int(m[2]) if m[2] else len(data) - 1
            data = data[start:end + 1]
            status = 206
            headers["Content-Range"] = f"bytes {start}-{start + len(data) - 1}/{len(original)}"
        request.status = status
        h.send_response(status)
        for key, value in headers.items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        with self._lock:
            drop, self.drop_after = self.drop_after, None
        sent = 0
        for i in range(0, len(data), 1 << 16):
            chunk = data[i:i + (1 << 16)]
            if drop is not None and sent + len(chunk) > drop:
                h.wfile.write(chunk[: drop - sent])
                h.wfile.flush()
                h.close_connection = True
                return
            h.wfile.write(chunk)
            sent += len(chunk)
            if self.chunk_delay:
                h.wfile.flush()
                time.sleep(self.chunk_delay)


# -- fixtures (import them into a test module to use them) ---------------------------------

@pytest.fixture
def hub_server():
    server = FakeHub().start()
    yield server
    server.stop()


@pytest.fixture
def hub_env(hub_server, tmp_path, monkeypatch):
    """The fake Hub as ``HF_ENDPOINT``, a private ``TRANSCRIBE_CACHE_DIR``, online, no token."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_ENDPOINT", hub_server.url)
    monkeypatch.setenv("TRANSCRIBE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for var in ("HF_HUB_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    # huggingface_hub reads HF_HUB_OFFLINE once, at import: neutralise a CI-wide setting
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    return hub_server


@pytest.fixture
def hub_subprocess_env(hub_env, tmp_path):
    """``env(cache_dir)``: the environment of a subprocess talking to the fake Hub with that cache."""
    import os

    src = Path(__file__).resolve().parents[1] / "src"

    def env(cache) -> dict[str, str]:
        out = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_TOKEN", "PYTHONPATH")}
        out.update(HF_ENDPOINT=hub_env.url, TRANSCRIBE_CACHE_DIR=str(cache), NO_PROXY="127.0.0.1,localhost",
                   PYTHONPATH=str(src), HF_HUB_DISABLE_PROGRESS_BARS="1", COLUMNS="200")
        return out

    return env
