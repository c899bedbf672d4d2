"""The training loop behind ``transcribe train``.

One optimizer step = one batch of ``batch_size`` random segments *per process* of
``segment_seconds`` each (see :mod:`transcribe_cli.training.segments`), run through the
model's frontend (no gradients; it has no parameters) and the network's logits, scored by
the model's own ``loss`` (by default :func:`~transcribe_cli.training.losses.transcription_loss`), AdamW with warm-up + the
chosen schedule, gradient-norm clipping and, on CUDA, fp16 autocast with a gradient scaler.

Every ``validate_every`` steps (and at the end) rank 0 transcribes the validation files with
the model's decoder and scores them like ``transcribe eval``; a better
``validation_metric`` writes ``best.pt`` (with the tuned decoder threshold in its meta).
``last.pt`` is written every ``checkpoint_every`` steps, after each validation, at the end,
and when the run is interrupted (Ctrl-C, SIGTERM) or reaches ``max_minutes``/``patience``.
"""

from __future__ import annotations

import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from transcribe_cli.errors import TranscribeError
from transcribe_cli.pipeline import Pipeline, build_frontend
from transcribe_cli.models.neural import load_checkpoint
from transcribe_cli.training.checkpoint import BEST, LAST, Progress, restore_training_checkpoint, save_training_checkpoint
from transcribe_cli.training.config import TrainConfig, save_config
from transcribe_cli.training.distributed import World, barrier, broadcast_flag, setup, teardown, unwrap, world_from_env, wrap
from transcribe_cli.specs import ACTIVATIONS
from transcribe_cli.training.run_log import RunLog
from transcribe_cli.training.validation import load_validation_set, validate


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    best_score: float
    best_step: int
    elapsed: float
    stopped: str  # "finished", "interrupted", "time limit", "patience"


class _Logits(torch.nn.Module):
    """Calls ``forward_logits`` through ``forward``, so DDP sees (and syncs) the call."""

    def __init__(self, network: torch.nn.Module):
        super().__init__()
        self.network = network

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.network.forward_logits(features)


class StopRequest:
    """The first Ctrl-C (or SIGTERM) asks the loop to save and stop after this step; a
    second Ctrl-C aborts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopRequest":
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: no handler, no graceful stop
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def lr_factor(step: int, config: TrainConfig) -> float:
    """Multiplier of ``learning_rate`` at ``step``: linear warm-up, then the schedule."""
    if config.warmup_steps and step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.lr_schedule == "constant":
        return 1.0
    if config.lr_schedule == "step":
        return config.lr_decay_rate ** (step // max(1, config.lr_decay_steps))
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))  # cosine to 5 %


def batch_rng(config: TrainConfig, step: int, rank: int) -> np.random.Generator:
    """The generator of step ``step``'s batch on ``rank``: the data position is the step."""
    return np.random.default_rng([config.seed, step, rank])


class Trainer:
    """Builds everything a run needs, then :meth:`run` trains. Rank 0 owns the run folder."""

    def __init__(self, config: TrainConfig, run_dir: Path, *, resume: bool = False, registry: Any = None,
                 reporter: Callable[[str], None] | None = None):
        from transcribe_cli.inference import select_device
        from transcribe_cli.models.neural import build_network
        from transcribe_cli.registry import get_registry

        self.config = config
        self.run_dir = Path(run_dir)
        self.world: World = world_from_env()
        self.report = reporter or (lambda message: None)
        registry = registry or get_registry()
        self.spec = registry.model(config.model)
        if not self.spec.trainable:
            trainable = [s.name for s in registry.specs("model") if s.trainable]
            raise TranscribeError(f"model {config.model!r} cannot be trained by transcribe train",
                                  f"trainable models: {', '.join(trainable) or 'none'}")
        self.frontend_spec = registry.frontend(self.spec.frontend)
        self.decoder = registry.decoder(self.spec.decoder)
        self.dataset = registry.dataset(config.dataset)
        self._check_run_dir(resume)
        if config.threads > 0:
            torch.set_num_threads(config.threads)
        self.device = setup(self.world, select_device(config.device))
        torch.manual_seed(config.seed)
        initial = None if resume or not config.init_weights else self._initial_weights(config.init_weights)
        # the network's shape: the run's own checkpoint on --resume (a run started from
        # --init-weights took that file's architecture, which its config does not repeat), else
        # the initial weights', then the config's architecture over it
        resumed = load_checkpoint(self.run_dir / LAST) if resume else None  # read once, restored below
        source = resumed["meta"] if resumed else initial["meta"] if initial else {}
        architecture = {**source.get("architecture", {}), **config.architecture}
        self.network = build_network(self.spec, architecture).to(self.device)
        if initial:
            self._load_initial(initial, config.init_weights)
        self.architecture = {**self.spec.architecture, **architecture}
        self.model = wrap(_Logits(self.network), self.world, self.device)
        self.frontend = build_frontend(self.frontend_spec, self.device)
        self.optimizer = torch.optim.AdamW(self.network.parameters(), lr=config.learning_rate,
                                           weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(s, config))
        self.use_amp = bool(config.amp and self.device.type == "cuda")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.progress = Progress()
        self.decoder_options = dict(config.decoder_options)
        if resume:
            self.progress, meta = restore_training_checkpoint(
                self.run_dir / LAST, network=self.network, optimizer=self.optimizer,
                scheduler=self.scheduler, scaler=self.scaler, checkpoint=resumed)
            self.decoder_options = {**meta.get("decoder_options", {}), **self.decoder_options}
        self.segment_frames = max(1, int(round(config.segment_seconds * self.frontend_spec.frame_rate)))

    # -- setup -------------------------------------------------------------------------

    def _initial_weights(self, source: str) -> dict[str, Any]:
        """The checkpoint a fine-tuning run starts from: ``published`` (the model's own
        weights, bundled or from the Hub) or a weight file of the same model."""
        from transcribe_cli.models.neural import load_model_checkpoint
        from transcribe_cli.weights.hub import resolve_weights

        path = resolve_weights(self.spec, None if source == "published" else source)
        if path is None:
            raise TranscribeError(f"model {self.spec.name!r} has no published weights to start from",
                                  "pass --init-weights FILE, or leave it out for a random start")
        return load_model_checkpoint(self.spec, path)

    def _load_initial(self, checkpoint: dict[str, Any], source: str) -> None:
        from transcribe_cli.models.neural import load_state

        load_state(self.network, checkpoint, f"--init-weights {source} does not fit this architecture",
                   "leave --architecture out to take the file's own")
        self.report(f"starting from the weights of {source}")

    def _check_run_dir(self, resume: bool) -> None:
        last = self.run_dir / LAST
        if resume and not last.is_file():
            raise TranscribeError(f"nothing to resume: {last} does not exist", "start the run without --resume")
        if not resume and last.is_file():
            raise TranscribeError(f"{self.run_dir} already holds a run",
                                  "pass --resume to continue it, or choose another --out")

    def _open(self, split: str, limit: int | None = None) -> list[Any]:
        options = dict(self.config.dataset_options)
        if limit is not None:
            options["limit"] = limit
        return list(self.dataset.factory(self.config.root or None, split, **options))

    def _prepare_data(self) -> None:
        from transcribe_cli.training.augment import AugmentConfig
        from transcribe_cli.training.segments import SegmentSource

        config = self.config
        augment = AugmentConfig.from_mapping(config.augment)
        # rank 0 renders/converts into the shared cache first; the others then only read it
        if not self.world.is_main:
            barrier(self.world)
        self.report("preparing training audio…")
        self.source = SegmentSource(
            self._open(config.train_split), sample_rate=self.frontend_spec.sample_rate,
            hop_length=self.frontend_spec.hop_length, segment_frames=self.segment_frames,
            normalization=self.spec.audio_normalization, sustain_pedal=config.sustain_pedal,
            augment=augment, jobs=config.jobs,
        )
        self.validation = None
        if self.world.is_main and config.validation_split:
            items = self._open(config.validation_split, limit=config.validation_files)
            self.validation = load_validation_set(
                items, sample_rate=self.frontend_spec.sample_rate, normalization=self.spec.audio_normalization,
                seconds=config.validation_seconds, sustain_pedal=config.sustain_pedal)
        if self.world.is_main:
            barrier(self.world)
        self.report(f"training on {len(self.source)} pieces ({self.source.total_seconds / 3600:.1f} h of audio)"
                    + (f", validating on {len(self.validation)} files" if self.validation else ""))

    # -- one step ----------------------------------------------------------------------

    def train_step(self, step: int) -> dict[str, float]:
        batch = self.source.batch(batch_rng(self.config, step, self.world.rank), self.config.batch_size)
        audio = torch.from_numpy(batch["audio"]).to(self.device, non_blocking=True)
        targets = {key: torch.from_numpy(batch[key]).to(self.device, non_blocking=True) for key in ACTIVATIONS}
        with torch.no_grad():
            features = self.frontend(audio)[:, : self.segment_frames]
        self.model.train()
        with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.use_amp):
            logits = self.model(features)
        loss, parts = self.network.loss(
            logits, targets, weights=self.config.loss_weights, focal_gamma=self.config.focal_gamma,
            focal_alpha=self.config.focal_alpha, dice_weight=self.config.dice_weight)
        if not torch.isfinite(loss):
            raise TranscribeError(f"the loss became {loss.item()} at step {step}",
                                  "lower --learning-rate or --grad-clip, and resume from last.pt")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        grad_norm = float("nan")
        if self.config.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.config.grad_clip))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return {"loss": float(loss.detach()), **{f"loss_{k}": v for k, v in parts.items()}, "grad_norm": grad_norm}

    # -- validation and checkpoints ----------------------------------------------------

    def meta(self, **extra: Any) -> dict[str, Any]:
        from transcribe_cli.models.neural import network_meta

        return network_meta(self.spec, self.architecture, decoder_options=dict(self.decoder_options),
                            trained={"dataset": self.config.dataset, "step": self.progress.step,
                                     "seconds": round(self.progress.elapsed, 1)}, **extra)

    def save(self, name: str, **meta: Any) -> Path:
        return save_training_checkpoint(
            self.run_dir / name, meta=self.meta(**meta), network=self.network, optimizer=self.optimizer,
            scheduler=self.scheduler, scaler=self.scaler, progress=self.progress, config=self.config.to_dict())

    def run_validation(self, log: RunLog) -> bool:
        """Validate (rank 0); True when the score improved (``best.pt`` written)."""
        assert self.validation is not None
        config = self.config
        started = time.perf_counter()
        pipeline = Pipeline(
            model_spec=self.spec, frontend_spec=self.frontend_spec, decoder_spec=self.decoder,
            frontend=self.frontend, model=self.network, device=self.device,
            decoder_options={**self.decoder.options, **self.spec.decoder_options, **self.decoder_options})
        result = validate(pipeline, self.validation, metric=config.validation_metric, tune=config.tune_decoder)
        score = result.metrics.get(config.validation_metric, 0.0)
        tuned = list(self.decoder.tunable) if config.tune_decoder else []
        log.write({"kind": "validation", "step": self.progress.step, "time": round(self.progress.elapsed, 2),
                   **result.metrics, "seconds": round(time.perf_counter() - started, 2),
                   "decoder_options": result.decoder_options,
                   **({"per_threshold": {str(k): v for k, v in result.per_threshold.items()}}
                      if result.per_threshold else {})})
        improved = score > self.progress.best_score
        self.report(f"step {self.progress.step}: validation {config.validation_metric} {score:.3f}"
                    f" (best {max(score, self.progress.best_score):.3f})"
                    + "".join(f", {option}={result.decoder_options[option]:g}" for option in tuned))
        if improved:
            self.progress.best_score, self.progress.best_step = score, self.progress.step
            self.progress.bad_validations = 0
            self.decoder_options.update({option: result.decoder_options[option] for option in tuned})
            self.save(BEST, validation={config.validation_metric: score, "step": self.progress.step})
        else:
            self.progress.bad_validations += 1
        return improved

    # -- the loop ----------------------------------------------------------------------

    def run(self, *, on_step: Callable[[int, dict[str, float]], None] | None = None) -> TrainResult:
        config = self.config
        main = self.world.is_main
        try:
            # Ctrl-C or SIGTERM while the audio is prepared: stop the preparing workers too (left to
            # SIGTERM's default, the process died and its spawned renderers ran on, orphaned)
            from transcribe_cli.signals import interrupts_as_exceptions

            with interrupts_as_exceptions():
                self._prepare_data()
            log = None
            if main:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                save_config(config, self.run_dir)
                resumed = self.progress.step if (self.run_dir / LAST).is_file() else None
                log = RunLog(self.run_dir, resume_step=resumed, tensorboard=config.tensorboard)
            stopped = self._loop(log, on_step)
        finally:
            teardown(self.world)
        if main and log is not None:
            log.close()
        return TrainResult(self.run_dir, self.progress.step, self.progress.best_score, self.progress.best_step,
                           self.progress.elapsed, stopped)

    def _loop(self, log: RunLog | None, on_step: Callable[[int, dict[str, float]], None] | None) -> str:
        config = self.config
        main = self.world.is_main
        session_start = time.perf_counter()
        elapsed_before = self.progress.elapsed
        window: list[dict[str, float]] = []
        window_start = time.perf_counter()
        segment_audio = config.batch_size * self.world.size * self.config.segment_seconds
        stopped = "finished"
        with StopRequest() as stop:
            while self.progress.step < config.steps:
                step = self.progress.step
                record = self.train_step(step)
                self.progress.step = step + 1
                self.progress.elapsed = elapsed_before + time.perf_counter() - session_start
                window.append(record)
                if on_step is not None:
                    on_step(self.progress.step, record)
                if main and (self.progress.step % config.log_every == 0 or self.progress.step == config.steps):
                    seconds = time.perf_counter() - window_start
                    mean = {k: float(np.nanmean([r[k] for r in window])) for k in window[0]}
                    assert log is not None
                    log.write({"kind": "train", "step": self.progress.step, "time": round(self.progress.elapsed, 2),
                               **mean, "lr": self.scheduler.get_last_lr()[0],
                               "audio_seconds_per_second": len(window) * segment_audio / max(seconds, 1e-9),
                               "processes": self.world.size})
                    window, window_start = [], time.perf_counter()
                reason = None
                if main:
                    if self.validation is not None and self.progress.step % config.validate_every == 0:
                        assert log is not None
                        self.run_validation(log)
                        if config.patience and self.progress.bad_validations >= config.patience:
                            reason = "patience"
                    if config.max_minutes and self.progress.elapsed >= config.max_minutes * 60:
                        reason = reason or "time limit"
                    if stop.requested:
                        reason = "interrupted"
                if self.world.distributed and broadcast_flag(reason is not None, self.world, self.device):
                    reason = reason or "stopped by rank 0"
                if reason is not None:
                    stopped = reason
                    break
                if main and self.progress.step % config.checkpoint_every == 0:
                    self.save(LAST)
            if main:
                if (stopped == "finished" and self.validation is not None
                        and self.progress.step % config.validate_every != 0):
                    assert log is not None
                    self.run_validation(log)
                self.save(LAST)
                if not (self.run_dir / BEST).is_file():  # no validation ran: the last weights are the best known
                    self.save(BEST)
            barrier(self.world)
        return stopped
