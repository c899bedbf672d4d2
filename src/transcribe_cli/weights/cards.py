"""Model cards: where they are found, how they are parsed, and what a valid one holds.

A card is a Markdown file named after the registered model (``NAME.md``) with YAML front
matter between two ``---`` lines, then prose. Front matter fields (``license`` may also be
spelt ``licence``, here and in ``training_data``):

``name``, ``family``, ``frontend``, ``decoder``
    exactly as the model is registered;
``weights``
    ``bundled: package:relative/path`` or ``repo: owner/name`` + ``revision: <40-hex commit>``
    + ``filename``; always ``sha256`` (of the file), optionally ``size`` (bytes);
``parameters``
    number of trained parameters (an integer);
``training_data``
    a list of ``{name, license}`` (``url`` optional): what the weights were fitted on;
``metrics``
    a list of ``{dataset, command, results}``: ``results`` maps score names to numbers, and
    ``command`` is the exact command that produced them (``transcribe eval ... --model NAME``
    or a script);
``license``
    the licence of the weights.

The prose must have an "Intended use" and a "Limitations" section (Markdown headings).

Where cards are looked for, first found wins (:func:`find_card`):

1. ``spec.card`` when the spec has such a field: a ``package:relative/path`` resource;
2. ``model_cards/NAME.md`` inside the package whose module defines the model's factory (for
   a loose plugin file: beside it), so cards ship in wheels as package data;
3. ``model_cards/NAME.md`` at the root of a source checkout of transcribe-cli.
"""

from __future__ import annotations

import importlib.resources
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transcribe_cli.errors import TranscribeError
from transcribe_cli.specs import ModelSpec

CARDS_DIR = "model_cards"
REQUIRED_FIELDS = (
    "name", "family", "frontend", "decoder", "weights", "parameters", "training_data", "metrics", "license",
)
# (heading prefix, name in messages): "## Limitations" and "## Limits" both do
REQUIRED_SECTIONS = (("intended use", "Intended use"), ("limit", "Limitations"))
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_COMMIT = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ModelCard:
    """A parsed card: front matter (``meta``, ``licence`` normalised to ``license``) and prose."""

    meta: Mapping[str, Any]
    body: str
    source: str = "<card>"
    sections: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str | None:
        value = self.meta.get("name")
        return str(value) if value is not None else None

    @property
    def license(self) -> str | None:
        return self.meta.get("license")


def _normalise(value: Any) -> Any:
    """``licence`` → ``license`` at every level (both spellings are accepted)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            key = "license" if key == "licence" else key
            out.setdefault(key, _normalise(item))
        return out
    if isinstance(value, list):
        return [_normalise(item) for item in value]
    return value


def parse_card(text: str, source: str = "<card>") -> ModelCard:
    """Split a card into front matter and prose. Raises :class:`TranscribeError` when the
    front matter is missing or is not a YAML mapping."""
    import yaml

    text = text.lstrip("\ufeff")
    match = _FRONT_MATTER.match(text)
    if not match:
        raise TranscribeError(f"model card {source} has no YAML front matter",
                              "start the file with a '---' line, the fields, and another '---' line")
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark is not None else ""
        raise TranscribeError(f"model card {source}: front matter is not valid YAML{where}") from None
    if not isinstance(meta, dict):
        raise TranscribeError(f"model card {source}: front matter must be a mapping of fields")
    body = text[match.end():]
    sections = tuple(h.strip().lower() for h in _HEADING.findall(body))
    return ModelCard(_normalise(meta), body, source, sections)


def load_card(path: str | Path) -> ModelCard:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TranscribeError(f"cannot read model card {path}: {exc.strerror or exc}") from None
    return parse_card(text, str(path))


# -- lookup -------------------------------------------------------------------------------

def source_tree_cards_dir() -> Path | None:
    """``model_cards/`` of the source checkout this package runs from, if it does."""
    root = Path(__file__).resolve().parents[3]
    folder = root / CARDS_DIR
    return folder if folder.is_dir() and (root / "pyproject.toml").is_file() else None


def _factory_module(spec: ModelSpec):
    factory = getattr(spec.factory, "func", spec.factory)  # functools.partial
    return sys.modules.get(getattr(factory, "__module__", "") or "")


def card_candidates(spec: ModelSpec) -> list[Any]:
    """Places (paths or package resources) where ``spec``'s card may be, in lookup order."""
    filename = f"{spec.name}.md"
    found: list[Any] = []
    ref = getattr(spec, "card", None)
    if ref:
        package, _, relative = str(ref).partition(":")
        try:
            found.append(importlib.resources.files(package).joinpath(relative))
        except (ModuleNotFoundError, TypeError, ValueError):
            pass
    module = _factory_module(spec)
    if module is not None:
        top = sys.modules.get(module.__name__.split(".")[0])
        if top is not None and hasattr(top, "__path__"):
            try:
                found.append(importlib.resources.files(top.__name__).joinpath(CARDS_DIR, filename))
            except (ModuleNotFoundError, TypeError, ValueError):
                pass
        elif getattr(module, "__file__", None):
            found.append(Path(module.__file__).parent / CARDS_DIR / filename)
    tree = source_tree_cards_dir()
    if tree is not None:
        found.append(tree / filename)
    return found


def find_card(spec: ModelSpec) -> ModelCard | None:
    """``spec``'s card, parsed, or ``None`` when it has none."""
    for place in card_candidates(spec):
        try:
            if place.is_file():
                return parse_card(place.read_text(encoding="utf-8"), str(place))
        except OSError:
            continue
    return None


def iter_source_tree_cards() -> Iterator[ModelCard]:
    """Every card in the source checkout's ``model_cards/`` (none when installed from a wheel)."""
    folder = source_tree_cards_dir()
    if folder is None:
        return
    for path in sorted(folder.glob("*.md")):
        if path.name.lower() == "readme.md":
            continue
        yield load_card(path)


# -- validation ---------------------------------------------------------------------------

def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _check_weights(weights: Any, spec: ModelSpec, check_files: bool) -> Iterable[str]:
    from transcribe_cli.weights.hub import bundled_path, file_digest

    if not isinstance(weights, dict):
        yield "weights: must be a mapping (bundled, or repo/revision/filename; and sha256)"
        return
    source = spec.weights
    sha = weights.get("sha256")
    if not (isinstance(sha, str) and _SHA256.fullmatch(sha)):
        yield "weights.sha256: must be the file's sha256 (64 lowercase hex digits)"
        sha = None
    if source.sha256 and sha and source.sha256.lower() != sha:
        yield f"weights.sha256: {sha[:12]}… differs from the registered {source.sha256[:12]}…"
    size = weights.get("size")
    if size is not None and not (isinstance(size, int) and size > 0):
        yield "weights.size: must be the file size in bytes"
        size = None
    if source.peer:
        for key, registered in (("peer", source.peer), ("filename", source.filename)):
            if weights.get(key) != registered:
                yield f"weights.{key}: {weights.get(key)!r} differs from the registered {registered!r}"
        if not source.sha256:
            yield "the registered spec has no sha256: the peer's wheel cannot be verified"
    elif source.bundled:
        if weights.get("bundled") != source.bundled:
            yield f"weights.bundled: {weights.get('bundled')!r} differs from the registered {source.bundled!r}"
        elif check_files:
            try:
                path = bundled_path(source.bundled)
            except TranscribeError as exc:
                yield f"weights.bundled: {exc}"
                return
            if sha and file_digest(path) != sha:
                yield f"weights.sha256: does not match the bundled file {source.bundled} ({file_digest(path)[:12]}…)"
            if size is not None and path.stat().st_size != size:
                yield f"weights.size: {size} differs from the bundled file's {path.stat().st_size} bytes"
    elif source.hub_repo:
        for key, registered in (("repo", source.hub_repo), ("revision", source.revision),
                                ("filename", source.filename)):
            if weights.get(key) != registered:
                yield f"weights.{key}: {weights.get(key)!r} differs from the registered {registered!r}"
        if not (isinstance(weights.get("revision"), str) and _COMMIT.fullmatch(weights["revision"])):
            yield "weights.revision: must be a pinned commit hash (40 lowercase hex digits)"
        if not source.sha256:
            yield "the registered spec has no sha256: downloads of it cannot be verified"
    else:
        yield "weights: the registered model needs no weights, so it needs no weights entry"


def _check_training_data(entries: Any) -> Iterable[str]:
    if not isinstance(entries, list) or not entries:
        yield "training_data: must be a non-empty list of {name, license}"
        return
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not _is_text(entry.get("name")) or not _is_text(entry.get("license")):
            yield f"training_data[{i}]: needs a name and a license"


def _check_metrics(entries: Any, name: str) -> Iterable[str]:
    if not isinstance(entries, list) or not entries:
        yield "metrics: must be a non-empty list of {dataset, command, results}"
        return
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            yield f"metrics[{i}]: must be a mapping"
            continue
        if not _is_text(entry.get("dataset")):
            yield f"metrics[{i}].dataset: missing"
        command = entry.get("command")
        if not _is_text(command):
            yield f"metrics[{i}].command: missing (the exact command that produced the numbers)"
        elif command.strip().startswith("transcribe eval") and not re.search(
            rf"(--model|-m)[ =]{re.escape(name)}(\s|$)", command
        ):
            yield f"metrics[{i}].command: a `transcribe eval` command must pass --model {name}"
        results = entry.get("results")
        if not isinstance(results, dict) or not results or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in results.values()
        ):
            yield f"metrics[{i}].results: must map score names to numbers"


def validate_card(card: ModelCard, spec: ModelSpec, *, check_files: bool = True) -> list[str]:
    """Every way ``card`` disagrees with the registered ``spec`` or misses a required part
    (empty list: valid). ``check_files`` hashes bundled weights against the card."""
    meta = card.meta
    problems = [f"{key}: missing" for key in REQUIRED_FIELDS if key not in meta]
    if card.name is not None and card.name != spec.name:
        problems.append(f"name: {card.name!r} is not the model's name {spec.name!r}")
    stem = Path(card.source).stem
    if card.source.endswith(".md") and stem != spec.name:
        problems.append(f"file name: {stem}.md should be {spec.name}.md")
    for key in ("family", "frontend", "decoder"):
        if key in meta and meta[key] != getattr(spec, key):
            problems.append(f"{key}: {meta[key]!r} differs from the registered {getattr(spec, key)!r}")
    if "weights" in meta:
        problems.extend(_check_weights(meta["weights"], spec, check_files))
    if "parameters" in meta and not (isinstance(meta["parameters"], int) and not isinstance(meta["parameters"], bool)
                                     and meta["parameters"] >= 0):
        problems.append("parameters: must be the number of trained parameters (an integer)")
    if "training_data" in meta:
        problems.extend(_check_training_data(meta["training_data"]))
    if "metrics" in meta:
        problems.extend(_check_metrics(meta["metrics"], spec.name))
    if "license" in meta and not _is_text(meta["license"]):
        problems.append("license: must name the weights' licence")
    for prefix, title in REQUIRED_SECTIONS:
        if not any(heading.startswith(prefix) for heading in card.sections):
            problems.append(f"prose: no '{title}' section")
    return problems


def needs_card(spec: ModelSpec) -> bool:
    """Whether ``spec`` is a pretrained model (it has weights) and so must have a card."""
    return bool(spec.weights.bundled or spec.weights.hub_repo)
