"""Training configuration (precedence, flags, resume rules) and losses."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from transcribe_cli.errors import OptionError, TranscribeError
from transcribe_cli.training.config import (
    MAPPING_KEYS,
    SCALAR_KEYS,
    TrainConfig,
    build_config,
    load_saved_config,
    parse_pairs,
    resume_config,
    save_config,
)
from transcribe_cli.training.losses import dice_loss, focal_loss, transcription_loss, velocity_loss
from transcribe_cli.training.loop import lr_factor


def test_precedence_defaults_model_file_flags(tmp_path):
    config_file = tmp_path / "c.yaml"
    config_file.write_text("learning_rate: 0.01\nbatch_size: 3\naugment: {pitch_prob: 0.1}\n")
    config = build_config({"batch_size": 5, "augment": {"noise_prob": 0.2}}, config_file=config_file,
                          model_defaults={"learning_rate": 0.002, "steps": 7})
    assert config.learning_rate == 0.01  # file beats model defaults
    assert config.steps == 7  # model default beats the generic default
    assert config.batch_size == 5  # flag beats file
    assert config.augment == {"pitch_prob": 0.1, "noise_prob": 0.2}  # mappings merge


def test_every_config_key_is_a_flag():
    from transcribe_cli.cli.train import _command_function

    import inspect

    names = set(inspect.signature(_command_function()).parameters)
    assert set(SCALAR_KEYS) | set(MAPPING_KEYS) <= names
    assert set(TrainConfig().to_dict()) == set(SCALAR_KEYS) | set(MAPPING_KEYS)


@pytest.mark.parametrize("override, message", [
    ({"batch_size": "many"}, "integer"),
    ({"learning_rate": "fast"}, "number"),
    ({"amp": "maybe"}, "true or false"),
    ({"stepz": 3}, "unknown config key"),
    ({"steps": 0}, "positive"),
    ({"lr_schedule": "linear"}, "lr_schedule"),
    ({"loss_weights": {"pitch": 1}}, "loss weight"),
    ({"validation_metric": "accuracy"}, "unknown metric"),
])
def test_bad_values_are_one_line_errors(override, message):
    with pytest.raises(OptionError, match=message):
        build_config(override)


def test_bad_yaml_names_the_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: 3\n  bad: [\n")
    with pytest.raises(TranscribeError, match="not valid YAML"):
        build_config({}, config_file=path)


def test_saved_config_round_trips_and_resume_limits_changes(tmp_path):
    config = build_config({"steps": 10, "architecture": {"preset": "tiny"}})
    save_config(config, tmp_path)
    saved = load_saved_config(tmp_path)
    assert resume_config(saved, {}) == config
    longer = resume_config(saved, {"steps": 20, "batch_size": config.batch_size})
    assert longer.steps == 20
    with pytest.raises(OptionError, match="learning_rate cannot change"):
        resume_config(saved, {"learning_rate": 1.0})


@given(st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True),
                       st.one_of(st.integers(-1000, 1000), st.booleans(), st.from_regex(r"[a-z]{1,6}", fullmatch=True)),
                       max_size=5))
@settings(max_examples=50, deadline=None)
def test_parse_pairs_reads_yaml_scalars(values):
    pairs = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in values.items()]
    parsed = parse_pairs("augment", pairs)
    for key, value in values.items():
        if isinstance(value, str) and value in ("yes", "no", "on", "off", "true", "false", "y", "n", "null"):
            continue  # YAML keywords
        assert parsed[key] == value


def test_parse_pairs_needs_an_equals_sign():
    with pytest.raises(OptionError, match="name=value"):
        parse_pairs("augment", ["pitch_prob"])


def test_lr_schedule_warms_up_and_decays():
    config = TrainConfig(steps=100, warmup_steps=10)
    factors = [lr_factor(s, config) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))
    assert factors[-1] == pytest.approx(0.05, abs=0.01)
    step = TrainConfig(steps=100, warmup_steps=0, lr_schedule="step", lr_decay_rate=0.5, lr_decay_steps=10)
    assert lr_factor(25, step) == 0.25


# -- losses -----------------------------------------------------------------------------

def test_focal_loss_is_bce_without_focusing_and_smaller_with_it():
    logits = torch.randn(2, 5, 88)
    target = (torch.rand(2, 5, 88) > 0.9).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    assert focal_loss(logits, target, gamma=0, alpha=0) == pytest.approx(float(bce), rel=1e-6)
    assert focal_loss(logits, target, gamma=2, alpha=0) < bce


def test_dice_and_velocity_losses():
    target = torch.zeros(1, 4, 88)
    target[0, 1, 40] = 1
    perfect = torch.where(target > 0, 20.0, -20.0)
    assert float(dice_loss(perfect, target)) == pytest.approx(0.0, abs=1e-4)
    assert float(dice_loss(-perfect, target)) > 0.9
    velocity = torch.zeros(1, 4, 88)
    velocity[0, 1, 40] = 0.5
    logit = torch.zeros(1, 4, 88)  # sigmoid 0.5 everywhere: exact at the one onset
    assert float(velocity_loss(logit, velocity, target)) == pytest.approx(0.0, abs=1e-7)
    assert float(velocity_loss(logit, velocity, torch.zeros_like(target))) == 0.0


def test_transcription_loss_weights_and_skips_parts():
    torch.manual_seed(0)
    logits = {k: torch.randn(1, 3, 88, requires_grad=True) for k in ("onset", "frame", "velocity")}
    targets = {k: (torch.rand(1, 3, 88) > 0.8).float() for k in ("onset", "frame", "offset", "velocity")}
    total, parts = transcription_loss(logits, targets, {"onset": 2.0, "frame": 1.0, "velocity": 0.0})
    assert set(parts) == {"onset", "frame"}
    assert float(total.detach()) == pytest.approx(2 * parts["onset"] + parts["frame"], rel=1e-5)
    total.backward()
    assert logits["velocity"].grad is None and logits["onset"].grad is not None
    assert math.isfinite(float(total.detach()))


def test_each_model_owns_its_loss_and_an_extra_output_is_one_clear_error():
    """A plugin network with an output the built-in losses do not know scores it in its own
    ``loss``; without one, training stops with one line naming the output and the fix."""
    from transcribe_cli.errors import TranscribeError
    from transcribe_cli.models.neural import TranscriptionNet

    class WithChords(TranscriptionNet):
        outputs = ("frame", "chord")

        def loss(self, logits, targets, **settings):
            base, parts = super().loss({"frame": logits["frame"]}, targets, **settings)
            chord = torch.nn.functional.binary_cross_entropy_with_logits(logits["chord"], targets["frame"])
            return base + chord, {**parts, "chord": float(chord.detach())}

    torch.manual_seed(0)
    logits = {k: torch.randn(1, 3, 88) for k in ("frame", "chord")}
    targets = {"frame": (torch.rand(1, 3, 88) > 0.8).float()}
    total, parts = WithChords().loss(logits, targets, weights={})
    assert set(parts) == {"frame", "chord"} and math.isfinite(float(total))
    with pytest.raises(TranscribeError, match="output 'chord' has no built-in loss") as info:
        TranscriptionNet().loss(logits, targets, weights={})
    assert "loss(" in info.value.hint
