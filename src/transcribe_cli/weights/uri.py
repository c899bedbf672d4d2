"""What ``--model`` may name: a registered model, a Hub checkpoint URI, or a local checkpoint.

- a registered name (``nmf``): the model as its plugin registered it;
- ``hf://owner/repo[@revision]/path/in/repo`` (``models/`` may precede ``owner``): a checkpoint
  in a Hugging Face model repository, downloaded once into the cache. The revision is a
  commit hash (recommended: immutable, no request once cached), a branch or a tag; special
  refs (``refs/pr/3``) are written as is, other revisions containing ``/`` URL-encoded.
  Without a revision the default branch is used (one request per run to resolve it).
  Same grammar as ``huggingface_hub``'s ``hf://`` URIs, restricted to model repositories;
- a path to a checkpoint file.

A checkpoint names the registered model that builds it in its metadata (see
:mod:`transcribe_cli.weights.checkpoint_meta`); that model's frontend, decoder and options apply,
adjusted by the checkpoint's metadata (tuned ``decoder_options``; an ``.onnx`` file runs on
onnxruntime, see :func:`~transcribe_cli.weights.checkpoint_meta.checkpoint_spec`).
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from transcribe_cli.weights.checkpoint_meta import (
    CHECKPOINT_SUFFIXES,
    ONNX_SUFFIX,
    SIDECAR,
    checkpoint_spec,
    model_name_from,
    read_checkpoint_meta,
    read_sidecar_meta,
)
from transcribe_cli.errors import TranscribeError, UnknownNameError
from transcribe_cli.weights.hub import SPECIAL_REF_RE, HubFile, HubFileNotFoundError, explicit_path, fetch, resolve_weights
from transcribe_cli.registry import Registry
from transcribe_cli.specs import ModelSpec, WeightsSource

HF_PREFIX = "hf://"
_OTHER_REPO_TYPES = ("datasets", "spaces", "kernels", "buckets")
_REPO_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")
URI_HELP = "expected hf://owner/repo[@revision]/file"


def is_hf_uri(text: str) -> bool:
    """Whether ``text`` is meant as a Hub URI (it may still be malformed).

    ``hf:/`` (one slash) counts too: ``pathlib.Path`` collapses the double slash of a URI
    passed through a ``Path``-typed option."""
    return str(text).startswith(("hf://", "hf:/"))


def _bad(uri: str, why: str) -> TranscribeError:
    return TranscribeError(f"bad Hub URI {uri!r}: {why}", URI_HELP)


def _check_repo_id(uri: str, repo_id: str) -> None:
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts):
        raise _bad(uri, f"repository must be 'owner/name', got {repo_id!r}")
    for part in parts:
        if not _REPO_PART.fullmatch(part) or "--" in part or ".." in part:
            raise _bad(uri, f"{part!r} is not a valid owner or repository name")


def parse_hf_uri(uri: str) -> HubFile:
    """``hf://owner/repo[@revision]/path`` → :class:`HubFile`. Raises :class:`TranscribeError`."""
    text = str(uri)
    if text.startswith("hf://"):
        body = text[len("hf://"):]
    elif text.startswith("hf:/"):
        body = text[len("hf:/"):]
    else:
        raise _bad(text, "it does not start with hf://")
    location = body.strip("/")
    first, _, rest = location.partition("/")
    if first in _OTHER_REPO_TYPES:
        raise _bad(text, f"only model repositories hold models, not {first}")
    if first == "models":
        location = rest.strip("/")
    if not location:
        raise _bad(text, "no repository")
    at = location.find("@")
    revision: str | None
    if at == -1 or location[:at].count("/") > 1:  # no revision ('@' in a file name is literal)
        parts = location.split("/", 2)
        repo_id = "/".join(parts[:2])
        path = parts[2] if len(parts) > 2 else ""
        revision = None
    else:
        repo_id, rev_and_path = location[:at], location[at + 1:]
        special = SPECIAL_REF_RE.match(rev_and_path)
        if special:
            revision, path = special.group(), rev_and_path[special.end():].lstrip("/")
        else:
            revision, _, path = rev_and_path.partition("/")
        revision = unquote(revision)
        if not revision:
            raise _bad(text, "empty revision after '@'")
    _check_repo_id(text, repo_id)
    if not path:
        raise _bad(text, "no file inside the repository")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise _bad(text, f"file path {path!r} is not a plain path inside the repository")
    return HubFile(repo_id, path, revision)


@dataclass(frozen=True)
class ModelChoice:
    """A ``--model`` argument, resolved: the spec to build and, when the argument itself
    named a checkpoint, that file; ``weights``: the ``--weights`` file given with a registered
    name, resolved (otherwise the spec's own weights apply)."""

    spec: ModelSpec
    checkpoint: Path | None
    kind: str  # "registered", "hub" or "file"
    weights: Path | None = None


def _model_for(name: str | None, registry: Registry, origin: str) -> ModelSpec:
    names = registry.names("model")
    if name is None:
        raise TranscribeError(
            f"checkpoint {origin} does not say which model it is for",
            "add metadata {\"model\": NAME} to it or a config.json beside it (docs/model-cards.md), "
            f"or run --model NAME --weights FILE; registered models: {', '.join(names) or 'none'}",
        )
    if name not in names:
        raise TranscribeError(
            f"checkpoint {origin} is for model {name!r}, which no installed plugin registers",
            f"install the plugin that provides it; registered models: {', '.join(names) or 'none'}",
        )
    return registry.model(name)


def _checkpoint_meta(path: Path, origin: str, sidecar: Callable[[], Path | None]) -> tuple[str | None, dict]:
    """The model a checkpoint names and its metadata (over its ``config.json``'s, if needed)."""
    meta = read_checkpoint_meta(path)
    name = model_name_from(meta, origin)
    if name is None:
        config = sidecar()
        if config is not None:
            meta = {**read_sidecar_meta(config), **meta}
            name = model_name_from(meta, f"{origin} ({SIDECAR})")
    return name, meta


def _hub_sidecar(ref: HubFile, offline: bool | None, progress: bool) -> Callable[[], Path | None]:
    def fetch_sidecar() -> Path | None:
        side = ref.sibling(posixpath.join(posixpath.dirname(ref.filename), SIDECAR))
        try:
            return fetch(side, offline=offline, progress=progress)
        except HubFileNotFoundError:
            return None  # no config.json in the repository: the checkpoint had to say it

    return fetch_sidecar


def resolve_model_argument(
    model: str,
    registry: Registry,
    *,
    weights: str | os.PathLike | None = None,
    offline: bool | None = None,
    progress: bool = True,
) -> ModelChoice:
    """Turn a ``--model`` value into a :class:`ModelChoice` (downloads a Hub checkpoint).

    A registered name alone never touches the disk or the network here; its weights are
    resolved later by :func:`transcribe_cli.weights.hub.resolve_weights`. With ``weights`` (a
    path or an ``hf://`` URI) that file is found (downloaded) here and its metadata read."""
    model = str(model)
    if model in registry.names("model"):
        if weights is not None and str(weights).lower().endswith(ONNX_SUFFIX):
            raise TranscribeError("--weights cannot be an .onnx file", f"pass it as --model {weights}")
        spec = registry.model(model)
        if weights is None:
            return ModelChoice(spec, None, "registered")
        path = _weights_file(weights, offline, progress)
        return ModelChoice(_as_weights_say(spec, path, str(weights)), None, "registered", path)
    if is_hf_uri(model):
        ref = parse_hf_uri(model)
        if weights is not None:
            raise TranscribeError(f"--model {model} already names the weights", "drop --weights")
        path = fetch(ref, name=ref.uri, offline=offline, progress=progress)
        name, meta = _checkpoint_meta(path, ref.uri, _hub_sidecar(ref, offline, progress))
        base = _model_for(name, registry, ref.uri)
        source = WeightsSource(hub_repo=ref.repo_id, revision=ref.revision, filename=ref.filename)
        return ModelChoice(checkpoint_spec(dataclasses.replace(base, weights=source), path, meta), path, "hub")
    candidate = Path(model).expanduser()
    if candidate.is_file():
        if weights is not None:
            raise TranscribeError(f"--model {model} already names the weights", "drop --weights")
        sidecar = candidate.parent / SIDECAR
        name, meta = _checkpoint_meta(candidate, str(candidate), lambda: sidecar if sidecar.is_file() else None)
        return ModelChoice(checkpoint_spec(_model_for(name, registry, str(candidate)), candidate, meta),
                           candidate, "file")
    if os.sep in model or "/" in model or candidate.suffix.lower() in CHECKPOINT_SUFFIXES:
        raise TranscribeError(f"model file not found: {candidate}",
                              "pass a registered model name, hf://owner/repo@revision/file or an existing file")
    raise UnknownNameError("model", model, registry.names("model"))


def _weights_file(weights: str | os.PathLike, offline: bool | None, progress: bool) -> Path:
    """The ``--weights`` file: an ``hf://`` URI fetched (cached), or an existing path."""
    if is_hf_uri(str(weights)):
        ref = parse_hf_uri(str(weights))
        return fetch(ref, name=ref.uri, offline=offline, progress=progress)
    return explicit_path(weights)


def _as_weights_say(spec: ModelSpec, path: Path, origin: str) -> ModelSpec:
    """``spec`` run with the ``--weights`` file at ``path``: its metadata's tuned decoder options
    and model settings (:func:`checkpoint_spec`) apply as they do for ``--model FILE``, unless it
    names another model (then the file is only the weights, as before)."""
    meta = read_checkpoint_meta(path)
    if model_name_from(meta, origin) not in (None, spec.name):
        return spec
    return checkpoint_spec(spec, path, meta)


def resolve_model_weights(
    choice: ModelChoice,
    weights: str | os.PathLike | None = None,
    *,
    offline: bool | None = None,
    progress: bool = True,
) -> Path | None:
    """The weights file for a resolved ``--model``: its checkpoint, ``--weights`` (a path or
    an ``hf://`` URI), or the model's own weights."""
    if choice.checkpoint is not None:
        return choice.checkpoint
    if choice.weights is not None:  # found by resolve_model_argument
        return choice.weights
    if weights is not None:
        return _weights_file(weights, offline, progress)
    return resolve_weights(choice.spec, offline=offline, progress=progress)
