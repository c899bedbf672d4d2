"""Training losses on the networks' logits (see :mod:`transcribe_cli.models.neural`).

- onset, offset: focal loss (Lin et al. 2017) — binary cross-entropy scaled by
  ``(1 - p_t) ** gamma`` so the many easy negatives of a sparse roll stop dominating;
  ``alpha`` weights the positives (``alpha``) against the negatives (``1 - alpha``);
  ``alpha = 0`` leaves them unweighted. Averaged over every element.
- frame: binary cross-entropy + ``dice_weight`` × soft Dice loss (over the whole batch).
- pedal: binary cross-entropy of the sustain-pedal logit ``[B, T, 1]`` per frame.
- velocity: mean squared error of ``sigmoid(logit)`` against velocity / 127, only where
  a note starts (the onset target); 0 when the batch has no onset.

:func:`transcription_loss` sums the parts present in both the logits and the weights and
returns the parts too (for logging). It is the default of every model's own loss
(:meth:`transcribe_cli.models.neural.TranscriptionNet.loss`), which training calls: a model
with another output overrides ``loss`` and may use these functions as helpers.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from transcribe_cli.errors import TranscribeError


def focal_loss(logits: torch.Tensor, target: torch.Tensor, *, gamma: float = 2.0, alpha: float = 0.0) -> torch.Tensor:
    """Mean binary focal loss of ``logits`` against ``target`` in [0, 1]."""
    logits = logits.float()
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    if gamma == 0 and alpha <= 0:
        return bce.mean()
    p = torch.sigmoid(logits)
    p_t = p * target + (1 - p) * (1 - target)
    loss = bce * (1 - p_t).pow(gamma)
    if alpha > 0:
        loss = loss * (alpha * target + (1 - alpha) * (1 - target))
    return loss.mean()


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice loss ``1 - (2|P∩Y| + eps) / (|P| + |Y| + eps)`` over all elements."""
    p = torch.sigmoid(logits.float())
    intersection = (p * target).sum()
    return 1 - (2 * intersection + eps) / (p.sum() + target.sum() + eps)


def velocity_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error of ``sigmoid(logits)`` against ``target`` where ``mask`` is 1."""
    weight = mask.float()
    total = weight.sum()
    if total.item() == 0:
        return logits.sum() * 0.0  # keeps the graph (DDP needs every parameter used)
    error = (torch.sigmoid(logits.float()) - target) ** 2
    return (error * weight).sum() / total


def transcription_loss(
    logits: Mapping[str, torch.Tensor],
    targets: Mapping[str, torch.Tensor],
    weights: Mapping[str, float],
    *,
    focal_gamma: float = 2.0,
    focal_alpha: float = 0.0,
    dice_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted total and each part (``{"onset": ..., ...}`` as floats)."""
    parts: dict[str, torch.Tensor] = {}
    for key, value in logits.items():
        weight = float(weights.get(key, 1.0))
        if weight == 0:
            continue
        if key in ("onset", "offset"):
            parts[key] = focal_loss(value, targets[key], gamma=focal_gamma, alpha=focal_alpha)
        elif key == "frame":
            bce = F.binary_cross_entropy_with_logits(value.float(), targets["frame"])
            parts[key] = bce + dice_weight * dice_loss(value, targets["frame"]) if dice_weight else bce
        elif key == "velocity":
            parts[key] = velocity_loss(value, targets["velocity"], targets["onset"])
        elif key == "pedal":
            parts[key] = F.binary_cross_entropy_with_logits(value.float(), targets["pedal"])
        else:
            raise TranscribeError(
                f"output {key!r} has no built-in loss",
                "give the model a loss(logits, targets, **settings) method that scores it "
                "(transcribe_cli.models.neural.TranscriptionNet.loss)",
            )
    if not parts:
        raise ValueError("every loss weight is 0: nothing to train")
    total = sum(float(weights.get(key, 1.0)) * part for key, part in parts.items())
    return total, {key: float(part.detach()) for key, part in parts.items()}
