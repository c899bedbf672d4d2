"""``transcribe train``: train a registered neural model on a registered dataset.

    transcribe train --model hppnet --dataset synth --out runs/hppnet
    transcribe train --config runs.yaml --out runs/x --architecture preset=tiny --augment pitch_prob=0.3
    transcribe train --out runs/hppnet --resume            # continue after an interruption
    torchrun --nproc-per-node 4 -m transcribe_cli train --config c.yaml --out runs/big   # DDP

Every key of the config file is also a flag (built from
:class:`transcribe_cli.training.config.TrainConfig`, so they cannot drift apart).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from transcribe_cli.cli.console import State, get_state
from transcribe_cli.training.config import MAPPING_KEYS, SCALAR_KEYS, default_value

HELP = {
    "model": "Registered model to train (transcribe models lists them).",
    "architecture": "Architecture option of the model, name=value (e.g. preset=tiny); repeatable.",
    "init_weights": "Fine-tune: start from these weights ('published' = the model's own, or a .pt file; "
                    "the architecture comes from the file). Default: random initialisation.",
    "dataset": "Registered dataset (maestro, pairs, synth, or a plugin's).",
    "root": "Dataset folder (synth: a MIDI folder, default $TRANSCRIBE_MIDI_DIR).",
    "dataset_options": "Dataset option name=value (e.g. soundfont=a.sf2,b.sf2); repeatable.",
    "train_split": "Split to train on.",
    "validation_split": "Split to validate on ('' = no validation).",
    "sustain_pedal": "Extend note offsets while the sustain pedal is down (MAESTRO convention).",
    "steps": "Optimizer steps in total.",
    "max_minutes": "Stop (saving a checkpoint) after this many minutes of training; 0 = no limit.",
    "patience": "Stop after this many validations without improvement; 0 = never.",
    "batch_size": "Segments per optimizer step, per process.",
    "segment_seconds": "Length of each training segment in seconds.",
    "learning_rate": "Peak AdamW learning rate.",
    "weight_decay": "AdamW weight decay.",
    "lr_schedule": "cosine (to 5 %), constant or step (lr_decay_rate every lr_decay_steps).",
    "warmup_steps": "Linear warm-up steps.",
    "lr_decay_rate": "Factor of the step schedule.",
    "lr_decay_steps": "Steps between decays of the step schedule.",
    "grad_clip": "Clip the gradient norm to this; 0 = off.",
    "amp": "Mixed precision (fp16 autocast) on CUDA.",
    "loss_weights": "Weight of a loss part, name=value (onset, frame, offset, velocity); repeatable.",
    "focal_gamma": "Focal-loss gamma of the onset and offset losses.",
    "focal_alpha": "Focal-loss weight of positives (0 = unweighted).",
    "dice_weight": "Weight of the Dice term of the frame loss.",
    "augment": "Augmentation setting name=value (enabled, gain_db, noise_prob, pitch_prob, ...); repeatable.",
    "jobs": "Processes that render/convert the training audio before training.",
    "validate_every": "Validate every this many steps.",
    "validation_files": "Validation files (0 = the whole split).",
    "validation_seconds": "Score the first this many seconds of each validation file (0 = all).",
    "validation_metric": "Metric that picks best.pt (transcribe eval names, e.g. onset_f1, frame_f1).",
    "tune_decoder": "Tune the decoder threshold on validation and store it with the weights.",
    "decoder_options": "Decoder option for validation, name=value; repeatable.",
    "checkpoint_every": "Write last.pt every this many steps.",
    "log_every": "Write a metrics.jsonl line every this many steps.",
    "seed": "Seed of initialisation, data order and augmentation.",
    "device": "auto, cpu or cuda[:N].",
    "threads": "Torch CPU threads (0 = torch's default).",
    "tensorboard": "Also log to RUN/tensorboard (needs the tensorboard package).",
}


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _parameter(key: str) -> inspect.Parameter:
    default = default_value(key)
    if key in MAPPING_KEYS:
        annotation: Any = Annotated[Optional[list[str]], typer.Option(_flag(key), help=HELP[key],
                                                                      show_default=False)]
    elif isinstance(default, bool):
        annotation = Annotated[Optional[bool], typer.Option(f"{_flag(key)}/--no-{key.replace('_', '-')}",
                                                            help=f"{HELP[key]} [default: {default}]",
                                                            show_default=False)]
    else:
        kind = type(default)
        shown = repr(default) if isinstance(default, str) else default
        annotation = Annotated[Optional[kind], typer.Option(_flag(key), help=f"{HELP[key]} [default: {shown}]",
                                                            show_default=False)]
    return inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)


def _collect_flags(values: dict[str, Any]) -> dict[str, Any]:
    from transcribe_cli.training.config import parse_pairs

    flags: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        flags[key] = parse_pairs(key, value) if key in MAPPING_KEYS else value
        if key in MAPPING_KEYS and not flags[key]:
            del flags[key]
    return flags


def train_command(
    state: State, out: Path, config_file: Optional[Path], resume: bool, **values: Any
) -> None:
    from transcribe_cli.registry import get_registry
    from transcribe_cli.training.config import build_config, load_saved_config, read_yaml, resume_config
    from transcribe_cli.training.loop import Trainer

    flags = _collect_flags(values)
    registry = get_registry(state.plugins_dirs)
    if resume:
        if config_file is not None:
            from transcribe_cli.errors import OptionError

            raise OptionError("--resume uses the run's saved config.yaml", "drop --config")
        config = resume_config(load_saved_config(out), flags)
    else:
        name = flags.get("model") or (read_yaml(config_file).get("model") if config_file else None) \
            or default_value("model")
        config = build_config(flags, config_file=config_file,
                              model_defaults=registry.model(str(name)).train_defaults)
    reporter = (lambda message: None) if state.quiet else state.info
    trainer = Trainer(config, out, resume=resume, registry=registry, reporter=reporter)
    from transcribe_cli.cli.train_display import TrainDisplay

    with TrainDisplay(config.steps, trainer.progress.step, console=state.err,
                      quiet=state.quiet or not trainer.world.is_main) as display:
        result = trainer.run(on_step=display.update)
    if trainer.world.is_main:
        best = f"best {config.validation_metric} {result.best_score:.3f} at step {result.best_step}" \
            if result.best_step >= 0 else "no validation"
        state.info(f"{result.stopped} at step {result.step} after {result.elapsed / 60:.1f} min; {best}")
        state.info(f"weights: {out / 'best.pt'} (transcribe --model {out / 'best.pt'} song.wav); "
             f"resume with: transcribe train --out {out} --resume")


def _command_function():
    def command(**kwargs: Any) -> None:
        train_command(get_state(kwargs.pop("ctx")), kwargs.pop("out"), kwargs.pop("config_file"),
                      kwargs.pop("resume"), **kwargs)

    parameters = [
        inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context),
        inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[
            Path, typer.Option("--out", "-o", help="Run folder (checkpoints, config.yaml, metrics.jsonl).")]),
        inspect.Parameter("config_file", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
            Optional[Path], typer.Option("--config", "-c", help="YAML file of config keys (flags override it).")]),
        inspect.Parameter("resume", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
            bool, typer.Option("--resume", help="Continue the run in --out from its last.pt.")]),
        *(_parameter(key) for key in SCALAR_KEYS + MAPPING_KEYS),
    ]
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__doc__ = __doc__.split("\n\n")[0]
    return command


def register(app: typer.Typer) -> None:
    app.command(
        "train",
        help="Train a neural model on a dataset; resumable, validated, logged to the run folder.",
        epilog="Every key of a --config YAML file is also a flag; mapping keys take name=value.",
    )(_command_function())
