"""The configuration of a training run: defaults, YAML files, flags, and the saved copy.

Precedence (later wins): the defaults below < the model's ``train_defaults`` < the YAML
file of ``--config`` < flags on the command line. ``transcribe train --resume`` starts from
the run's saved ``config.yaml`` instead and lets only :data:`RESUME_OVERRIDABLE` keys
change (more steps, another time budget…); anything else would not be the same run.

Every key is a flag: scalar keys as ``--key value`` (``learning_rate`` → ``--learning-rate``),
mapping keys (``architecture``, ``dataset_options``, ``augment``, ``loss_weights``,
``decoder_options``) as repeatable ``--key name=value`` whose values are read as YAML
scalars (``--augment pitch_prob=0.3``). Torch-free, so ``--help`` stays fast.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transcribe_cli.specs import ACTIVATIONS
from transcribe_cli.errors import OptionError, TranscribeError

CONFIG_FILE = "config.yaml"


@dataclass
class TrainConfig:
    """Every setting of a training run (see the module docstring for precedence)."""

    # what to train, on what
    model: str = "hppnet"
    architecture: dict[str, Any] = field(default_factory=dict)
    init_weights: str = ""  # start from these weights: "" = random, "published" = the model's own, or a file
    dataset: str = "synth"
    root: str = ""
    dataset_options: dict[str, Any] = field(default_factory=dict)
    train_split: str = "train"
    validation_split: str = "validation"
    sustain_pedal: bool = True
    # length of the run
    steps: int = 20000
    max_minutes: float = 0.0  # stop (and save) after this much wall time; 0 = no limit
    patience: int = 0  # stop after this many validations without improvement; 0 = never
    # optimisation
    batch_size: int = 8
    segment_seconds: float = 5.0
    learning_rate: float = 6e-4
    weight_decay: float = 0.01
    lr_schedule: str = "cosine"  # cosine | constant | step
    warmup_steps: int = 200
    lr_decay_rate: float = 0.98  # "step": multiply by this every lr_decay_steps
    lr_decay_steps: int = 1000
    grad_clip: float = 3.0  # max gradient norm; 0 = off
    amp: bool = True  # mixed precision, CUDA only
    loss_weights: dict[str, float] = field(
        default_factory=lambda: {"onset": 1.0, "frame": 1.0, "offset": 1.0, "velocity": 1.0}
    )
    focal_gamma: float = 2.0
    focal_alpha: float = 0.0  # weight of positives (negatives: 1 - alpha) in the focal loss; 0 = unweighted
    dice_weight: float = 1.0  # frame loss = BCE + dice_weight * Dice
    # data
    augment: dict[str, Any] = field(default_factory=dict)
    jobs: int = 1  # processes preparing (rendering, resampling) audio before training
    # validation and checkpoints
    validate_every: int = 500
    validation_files: int = 8  # 0 = every file of the validation split
    validation_seconds: float = 60.0  # score the first N seconds of each file; 0 = whole files
    validation_metric: str = "onset_f1"
    tune_decoder: bool = True  # pick the decoder threshold with the best validation_metric
    decoder_options: dict[str, Any] = field(default_factory=dict)
    checkpoint_every: int = 100
    log_every: int = 10
    # machine
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    tensorboard: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: Keys that ``--resume`` may change; the rest define the run.
RESUME_OVERRIDABLE = frozenset(
    {"steps", "max_minutes", "patience", "validate_every", "checkpoint_every", "log_every", "device",
     "threads", "tensorboard", "jobs", "validation_files", "validation_seconds"}
)

_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
#: Mapping-valued keys (flags take ``name=value``).
MAPPING_KEYS = ("architecture", "dataset_options", "augment", "loss_weights", "decoder_options")
SCALAR_KEYS = tuple(name for name in _FIELDS if name not in MAPPING_KEYS)


def default_value(key: str) -> Any:
    f = _FIELDS[key]
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _coerce(key: str, value: Any) -> Any:
    """``value`` as the type of ``key``'s default; :class:`OptionError` when it does not fit."""
    default = default_value(key)
    if key in MAPPING_KEYS:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise OptionError(f"config key {key!r} must be a mapping, got {value!r}")
        return {str(k): v for k, v in value.items()}
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            return value.lower() in ("true", "yes", "1", "on")
        raise OptionError(f"config key {key!r} must be true or false, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())
                                           or (isinstance(value, str) and value.strip().lstrip("-").isdigit())):
            raise OptionError(f"config key {key!r} must be an integer, got {value!r}")
        return int(value)
    if isinstance(default, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise OptionError(f"config key {key!r} must be a number, got {value!r}") from None
    return "" if value is None else str(value)


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied; mapping keys merge one level deep."""
    merged = dict(base)
    for key, value in overrides.items():
        if key not in _FIELDS:
            close = [k for k in _FIELDS if k.startswith(key[:4])]
            raise OptionError(f"unknown config key {key!r}", f"did you mean {', '.join(close)}?" if close
                              else "see transcribe train --help")
        value = _coerce(key, value)
        if key in MAPPING_KEYS:
            merged[key] = {**(merged.get(key) or {}), **value}
        else:
            merged[key] = value
    return merged


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML config file (one-line errors)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TranscribeError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TranscribeError(f"cannot read {path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise TranscribeError(f"{path} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TranscribeError(f"{path} must hold a mapping of config keys, not {type(data).__name__}")
    return data


def parse_pairs(key: str, pairs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["a=1", "b=x"]`` → ``{"a": 1, "b": "x"}`` (values as YAML scalars)."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise OptionError(f"--{key.replace('_', '-')} expects name=value, got {pair!r}")
        try:
            out[name.strip()] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            out[name.strip()] = text
    return out


def build_config(
    flags: Mapping[str, Any],
    *,
    config_file: str | Path | None = None,
    model_defaults: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """Defaults < ``model_defaults`` < ``config_file`` < ``flags`` (``None`` flags are unset)."""
    values = TrainConfig().to_dict()
    values = merge(values, dict(model_defaults or {}))
    if config_file is not None:
        values = merge(values, read_yaml(config_file))
    values = merge(values, {k: v for k, v in flags.items() if v is not None})
    config = TrainConfig(**values)
    validate(config)
    return config


def resume_config(saved: Mapping[str, Any], flags: Mapping[str, Any]) -> TrainConfig:
    """The saved run's config with the overridable ``flags`` applied; other changes refused."""
    values = merge(TrainConfig().to_dict(), saved)
    given = {k: v for k, v in flags.items() if v is not None}
    changed = sorted(k for k, v in given.items()
                     if k not in RESUME_OVERRIDABLE and merge(values, {k: v})[k] != values[k])
    if changed:
        raise OptionError(
            f"--resume continues the saved run; {', '.join(changed)} cannot change",
            f"only {', '.join(sorted(RESUME_OVERRIDABLE))} may; start a new run with another --out",
        )
    config = TrainConfig(**merge(values, {k: v for k, v in given.items() if k in RESUME_OVERRIDABLE}))
    validate(config)
    return config


def validate(config: TrainConfig) -> None:
    """Value checks that need no registry (names are checked when the run starts)."""
    positive = ("steps", "batch_size", "validate_every", "checkpoint_every", "log_every")
    for key in positive:
        if getattr(config, key) <= 0:
            raise OptionError(f"{key} must be positive, got {getattr(config, key)}")
    if config.segment_seconds <= 0 or config.learning_rate <= 0:
        raise OptionError("segment_seconds and learning_rate must be positive")
    if config.lr_schedule not in ("cosine", "constant", "step"):
        raise OptionError(f"unknown lr_schedule {config.lr_schedule!r}", "use cosine, constant or step")
    for key, weight in config.loss_weights.items():
        if key not in ACTIVATIONS:
            raise OptionError(f"unknown loss weight {key!r}", f"use {', '.join(ACTIVATIONS)}")
        if not isinstance(weight, (int, float)) or weight < 0:
            raise OptionError(f"loss weight {key} must be a non-negative number, got {weight!r}")
    from transcribe_cli.evaluation.scoring import metric_key

    config.validation_metric = metric_key(config.validation_metric)


def save_config(config: TrainConfig, run_dir: Path) -> Path:
    import yaml

    from transcribe_cli.io.fileio import atomic_write

    path = run_dir / CONFIG_FILE
    with atomic_write(path, "w") as f:
        yaml.safe_dump(config.to_dict(), f, sort_keys=False)
    return path


def load_saved_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise TranscribeError(f"{run_dir} has no {CONFIG_FILE}", "is it a run folder made by transcribe train?")
    return read_yaml(path)
