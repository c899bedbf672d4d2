"""Model cards: every card matches its registered model, every pretrained model has one,
and the parser/validator catch what a card gets wrong."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT
from transcribe_cli.errors import TranscribeError
from transcribe_cli.weights.hub import bundled_path
from transcribe_cli.weights.cards import (
    find_card,
    iter_source_tree_cards,
    load_card,
    needs_card,
    parse_card,
    source_tree_cards_dir,
    validate_card,
)
from transcribe_cli.registry import get_registry
from transcribe_cli.specs import ModelSpec, WeightsSource
from weights_plugin import write_plugin

# -- the project's own cards --------------------------------------------------------------

CARD_FILES = sorted(p for p in (ROOT / "model_cards").glob("*.md") if p.name.lower() != "readme.md")


def test_source_tree_cards_dir_is_found():
    assert source_tree_cards_dir() == ROOT / "model_cards"
    assert [Path(c.source) for c in iter_source_tree_cards()] == CARD_FILES


@pytest.mark.parametrize("path", CARD_FILES, ids=[p.stem for p in CARD_FILES])
def test_card_matches_its_registered_model(path):
    card = load_card(path)
    registry = get_registry()
    assert card.name in registry.names("model"), f"{path.name}: no registered model named {card.name!r}"
    assert validate_card(card, registry.model(card.name)) == []


def test_every_registered_pretrained_model_has_a_valid_card():
    registry = get_registry()
    missing, invalid = [], {}
    for spec in registry.specs("model"):
        if not needs_card(spec):
            continue
        card = find_card(spec)
        if card is None:
            missing.append(spec.name)
        elif problems := validate_card(card, spec):
            invalid[spec.name] = problems
    assert missing == [], f"pretrained models without a card in model_cards/: {missing}"
    assert invalid == {}


# -- a model to validate against ----------------------------------------------------------

BUNDLED_REF = "transcribe_cli:py.typed"  # any file shipped inside the package will do


def bundled_spec(**changes) -> ModelSpec:
    sha = hashlib.sha256(bundled_path(BUNDLED_REF).read_bytes()).hexdigest()
    base = ModelSpec(name="demo", family="demo family", factory=print, frontend="cqt", decoder="onset-peaks",
                     weights=WeightsSource(bundled=BUNDLED_REF, sha256=sha))
    return dataclasses.replace(base, **changes)


def card_text(spec: ModelSpec, **front) -> str:
    weights = {"bundled": spec.weights.bundled, "sha256": spec.weights.sha256} if spec.weights.bundled else {
        "repo": spec.weights.hub_repo, "revision": spec.weights.revision,
        "filename": spec.weights.filename, "sha256": spec.weights.sha256}
    meta = {
        "name": spec.name, "family": spec.family, "frontend": spec.frontend, "decoder": spec.decoder,
        "weights": weights, "parameters": 1234,
        "training_data": [{"name": "MAESTRO v3", "license": "CC BY-NC-SA 4.0"}],
        "metrics": [{"dataset": "maestro test", "command": f"transcribe eval maestro --model {spec.name}",
                     "results": {"note_f1": 0.8, "onset_f1": 0.9}}],
        "license": "MIT",
    }
    for key, value in front.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    body = "\n# Demo\n\n## Intended use\n\nTesting.\n\n## Limitations\n\nNone known.\n"
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n" + body


def test_a_complete_card_is_valid():
    spec = bundled_spec()
    assert validate_card(parse_card(card_text(spec)), spec) == []


def test_licence_spelling_is_accepted():
    spec = bundled_spec()
    text = card_text(spec).replace("license:", "licence:")
    card = parse_card(text)
    assert card.license == "MIT" and card.meta["training_data"][0]["license"] == "CC BY-NC-SA 4.0"
    assert validate_card(card, spec) == []


@pytest.mark.parametrize(
    "front, expected",
    [
        ({"license": None}, "license: missing"),
        ({"metrics": None}, "metrics: missing"),
        ({"frontend": "logmel"}, "frontend: 'logmel' differs from the registered 'cqt'"),
        ({"decoder": "frame-threshold"}, "decoder: 'frame-threshold' differs"),
        ({"family": "other"}, "family: 'other' differs"),
        ({"name": "other"}, "name: 'other' is not the model's name 'demo'"),
        ({"parameters": "many"}, "parameters: must be the number"),
        ({"weights": {"bundled": BUNDLED_REF, "sha256": "0" * 64}}, "weights.sha256: 000000000000… differs"),
        ({"weights": {"bundled": "pkg:other.npz", "sha256": "0" * 64}}, "weights.bundled: 'pkg:other.npz' differs"),
        ({"weights": {"bundled": BUNDLED_REF}}, "weights.sha256: must be the file's sha256"),
        ({"training_data": [{"name": "MAESTRO"}]}, "training_data[0]: needs a name and a license"),
        ({"metrics": [{"dataset": "x", "command": "transcribe eval maestro", "results": {"f1": 0.5}}]},
         "must pass --model demo"),
        ({"metrics": [{"dataset": "x", "command": "python scripts/eval.py", "results": {}}]},
         "metrics[0].results: must map score names to numbers"),
    ],
)
def test_validation_names_each_problem(front, expected):
    spec = bundled_spec()
    problems = validate_card(parse_card(card_text(spec, **front)), spec)
    assert any(expected in p for p in problems), problems


def test_bundled_file_hash_is_checked_against_the_card():
    spec = bundled_spec(weights=WeightsSource(bundled=BUNDLED_REF))  # the spec carries no hash itself
    card = parse_card(card_text(bundled_spec()))
    assert validate_card(card, spec) == []
    wrong = card_text(spec, weights={"bundled": BUNDLED_REF, "sha256": "a" * 64})
    assert any("does not match the bundled file" in p for p in validate_card(parse_card(wrong), spec))


def test_hub_weights_need_a_pinned_commit_and_a_registered_hash():
    spec = bundled_spec(weights=WeightsSource(hub_repo="acme/demo", revision="main", filename="w.npz",
                                              sha256="b" * 64))
    problems = validate_card(parse_card(card_text(spec)), spec)
    assert problems == ["weights.revision: must be a pinned commit hash (40 lowercase hex digits)"]
    pinned = dataclasses.replace(spec, weights=dataclasses.replace(spec.weights, revision="c" * 40))
    assert validate_card(parse_card(card_text(pinned)), pinned) == []
    unhashed = dataclasses.replace(pinned, weights=dataclasses.replace(pinned.weights, sha256=None))
    card = parse_card(card_text(pinned))
    assert any("no sha256" in p for p in validate_card(card, unhashed))


def test_prose_needs_intended_use_and_limitations():
    spec = bundled_spec()
    text = card_text(spec).replace("## Limitations", "## Notes")
    assert validate_card(parse_card(text), spec) == ["prose: no 'Limitations' section"]
    assert validate_card(parse_card(text.replace("## Notes", "### Limits")), spec) == []


@pytest.mark.parametrize(
    "text, expected",
    [
        ("# no front matter\n", "has no YAML front matter"),
        ("---\nname: [unclosed\n---\nbody\n", "not valid YAML"),
        ("---\n- a list\n---\nbody\n", "must be a mapping"),
    ],
)
def test_malformed_front_matter_is_one_clear_error(text, expected):
    with pytest.raises(TranscribeError, match=expected) as err:
        parse_card(text, "bad.md")
    assert "\n" not in str(err.value)


# cards are text files: no control characters or Unicode line/paragraph separators (NEL, LS, PS)
_CHARS = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\x85")
_KEY = st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True).filter(lambda k: k != "licence")
_SCALAR = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                    st.booleans(), st.text(_CHARS, max_size=20), st.none())
_VALUE = st.recursive(_SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(_KEY, inner, max_size=3)), max_leaves=8)


@settings(max_examples=100, deadline=None)
@given(meta=st.dictionaries(_KEY, _VALUE, min_size=1, max_size=6), body=st.text(st.one_of(_CHARS, st.just("\n")), max_size=200))
def test_front_matter_round_trips(meta, body):
    text = "---\n" + yaml.safe_dump(meta, allow_unicode=True) + "---\n" + body
    card = parse_card(text)
    assert card.meta == meta
    assert card.body == body


# -- where cards are found ----------------------------------------------------------------

def test_a_loose_plugin_card_sits_beside_it(tmp_path):
    plugins = write_plugin(tmp_path / "plugins")
    spec = get_registry([plugins]).model("peaks-hub")
    assert find_card(spec) is None
    (plugins / "model_cards").mkdir()
    (plugins / "model_cards" / "peaks-hub.md").write_text(card_text(spec))
    card = find_card(spec)
    assert card is not None and card.source == str(plugins / "model_cards" / "peaks-hub.md")


@pytest.fixture
def card_package(tmp_path, monkeypatch):
    """An importable package ``cardpkg`` whose model ships its card as package data."""
    pkg = tmp_path / "site" / "cardpkg"
    (pkg / "model_cards").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "model.py").write_text(textwrap.dedent("""
        def build(weights_path=None, **options):
            return None
    """))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield pkg
    for name in [m for m in sys.modules if m == "cardpkg" or m.startswith("cardpkg.")]:
        del sys.modules[name]


def test_a_package_card_is_found_as_package_data(card_package):
    model = importlib.import_module("cardpkg.model")
    spec = bundled_spec(name="pkg-model", factory=model.build)
    assert find_card(spec) is None
    (card_package / "model_cards" / "pkg-model.md").write_text(card_text(spec))
    assert find_card(spec).name == "pkg-model"


def test_a_card_field_on_the_spec_wins(card_package):
    @dataclasses.dataclass(frozen=True)
    class SpecWithCard(ModelSpec):  # the field proposed for specs.py
        card: str | None = None

    model = importlib.import_module("cardpkg.model")
    (card_package / "elsewhere.md").write_text(card_text(bundled_spec(name="pkg-model")))
    (card_package / "model_cards" / "pkg-model.md").write_text("---\nname: wrong\n---\n")
    spec = SpecWithCard(name="pkg-model", factory=model.build, frontend="cqt", decoder="onset-peaks",
                        card="cardpkg:elsewhere.md")
    assert find_card(spec).source.endswith("elsewhere.md")


def test_only_models_with_weights_need_a_card():
    assert needs_card(bundled_spec())
    assert needs_card(bundled_spec(weights=WeightsSource(hub_repo="a/b", filename="w", revision="c" * 40)))
    assert not needs_card(bundled_spec(weights=WeightsSource()))
