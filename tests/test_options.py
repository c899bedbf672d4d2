import pytest
from hypothesis import given
from hypothesis import strategies as st

from transcribe_cli.errors import OptionError
from transcribe_cli.options import coerce, parse_options, split_pair

DECODER = {"threshold": 0.5, "median_frames": 3, "smooth": True, "mode": "fast"}
MODEL = {"n_iter": 50, "threshold": 0.1}


def test_types_follow_defaults():
    model, decoder, _ = parse_options(
        ["threshold=0.25", "median_frames=5", "smooth=no", "mode=exact", "n_iter=10"], MODEL, DECODER
    )
    assert decoder == {"threshold": 0.25, "median_frames": 5, "smooth": False, "mode": "exact"}
    assert model == {"n_iter": 10}


def test_prefix_disambiguates_shared_names():
    model, decoder, _ = parse_options(["model.threshold=0.3", "decoder.threshold=0.7"], MODEL, DECODER)
    assert model == {"threshold": 0.3} and decoder == {"threshold": 0.7}
    # unprefixed goes to the decoder first
    assert parse_options(["threshold=0.9"], MODEL, DECODER) == ({}, {"threshold": 0.9}, {})


def test_frontend_options_are_parsed_and_checked_like_the_others():
    from transcribe_cli.options import effective_options
    from transcribe_cli.registry import get_registry

    assert parse_options(["frontend.log_gain=10", "n_iter=3"], MODEL, DECODER, {"log_gain": 1000.0}) == (
        {"n_iter": 3}, {}, {"log_gain": 10.0})
    registry = get_registry()
    spec = registry.model("nmf")
    decoder, frontend = registry.decoder(spec.decoder), registry.frontend(spec.frontend)
    assert effective_options(spec, decoder, ["log_gain=20"], frontend).frontend == {"log_gain": 20.0}
    with pytest.raises(OptionError, match="frontend 'cqt'.*positive"):
        effective_options(spec, decoder, ["frontend.log_gain=0"], frontend)


@pytest.mark.parametrize("bad", ["threshold", "=3", "nope=1", "model.median_frames=3", "median_frames=2.5",
                                 "smooth=maybe", "threshold=high"])
def test_bad_options_are_one_clear_error(bad):
    with pytest.raises(OptionError) as info:
        parse_options([bad], MODEL, DECODER)
    assert "\n" not in str(info.value)


def test_unknown_option_lists_accepted():
    with pytest.raises(OptionError, match="decoder.threshold"):
        parse_options(["bogus=1"], MODEL, DECODER)


@given(st.text(min_size=1).filter(lambda s: "=" not in s and s.strip()), st.text())
def test_split_pair_roundtrip(key, value):
    k, v = split_pair(f"{key}={value}")
    assert k == key.strip() and v == value.strip()


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_coercion_roundtrip(x):
    assert coerce("k", repr(x), 0.5) == x


@given(st.integers())
def test_int_coercion_roundtrip(n):
    assert coerce("k", str(n), 1) == n


@given(st.sampled_from(["1", "true", "YES", "on", "0", "false", "No", "off"]))
def test_bool_words(word):
    assert coerce("k", word, False) is (word.lower() in ("1", "true", "yes", "on"))
