"""Training checkpoints: everything needed to continue a run exactly, in the weight-file
format of :mod:`transcribe_cli.models.neural` (so ``--model RUN/best.pt`` transcribes).

Entries beyond ``meta``/``state_dict``: ``optimizer``, ``scheduler``, ``scaler`` (mixed
precision), ``step`` (optimizer steps done), ``best`` (best validation score and its step),
``elapsed`` (training seconds over every session), ``rng`` (torch CPU/CUDA generator
states), ``config`` (the run's settings). Batches are drawn from a generator seeded by
``(seed, step, rank)``, so the step alone fixes the data position; with the RNG states the
continuation is the run that would have happened without the interruption.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from transcribe_cli.models.neural import load_checkpoint, save_weights

LAST = "last.pt"
BEST = "best.pt"


@dataclass
class Progress:
    step: int = 0
    best_score: float = -1.0
    best_step: int = -1
    elapsed: float = 0.0
    bad_validations: int = 0  # validations in a row without improvement (for patience)


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_checkpoint(
    path: Path,
    *,
    meta: dict[str, Any],
    network: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    progress: Progress,
    config: dict[str, Any],
) -> Path:
    return save_weights(path, {
        "meta": meta,
        "state_dict": network.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "step": progress.step,
        "best": {"score": progress.best_score, "step": progress.best_step, "bad": progress.bad_validations},
        "elapsed": progress.elapsed,
        "rng": rng_state(),
        "config": config,
    })


def restore_training_checkpoint(
    path: Path, *, network: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, scaler: Any,
    checkpoint: dict[str, Any] | None = None,
) -> tuple[Progress, dict[str, Any]]:
    """Load ``path`` into the given objects; the run's progress and the checkpoint's meta.
    ``checkpoint``: ``path`` already read (:func:`load_checkpoint`), so it is not read again."""
    from transcribe_cli.errors import TranscribeError

    checkpoint = load_checkpoint(path) if checkpoint is None else checkpoint
    missing = [key for key in ("optimizer", "scheduler", "step") if key not in checkpoint]
    if missing:
        raise TranscribeError(f"{path} holds weights only, not a training state ({', '.join(missing)} missing)",
                              "resume from a run's last.pt")
    network.load_state_dict(checkpoint["state_dict"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    if checkpoint.get("scaler"):
        scaler.load_state_dict(checkpoint["scaler"])
    if "rng" in checkpoint:
        set_rng_state(checkpoint["rng"])
    best = checkpoint.get("best", {})
    progress = Progress(
        step=int(checkpoint["step"]),
        best_score=float(best.get("score", -1.0)),
        best_step=int(best.get("step", -1)),
        elapsed=float(checkpoint.get("elapsed", 0.0)),
        bad_validations=int(best.get("bad", 0)),
    )
    return progress, dict(checkpoint["meta"])
