"""Supervised NMF transcription: fixed note templates, activations by multiplicative updates.

The magnitude spectrogram ``V`` (``[frames, bins]``, linear, from the ``cqt`` frontend) is
explained as ``V ≈ H Wᵀ`` with a fixed dictionary ``W`` (``[bins, n_templates]``, one
template per piano key in columns 0..87, optionally followed by extra templates for noise
or other sounds) and non-negative gains ``H`` (``[frames, n_templates]``). ``H`` minimises
the β-divergence ``D_β(V | H Wᵀ) + λ Σ H`` by the multiplicative updates of Févotte & Idier
(2011), with the exponent ``γ(β)`` that makes every update non-increasing.

Frame-wise by construction: with ``W`` fixed, frame ``t`` of ``H`` depends on frame ``t`` of
``V`` only (the initialisation ``H₀[t] = ‖V[t]‖₁ / n_templates`` is frame-wise too), so the
result does not depend on how a recording is cut into windows. Activations in [0, 1] are
``1 - exp(-H[:, k] / scale[k])`` with per-key scales learned from training renders; the
pipeline peak-normalises the whole recording first, so gains are comparable across files.

Reference: C. Févotte and J. Idier, "Algorithms for nonnegative matrix factorization with
the β-divergence", Neural Computation 23(9), 2011.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from ..notes import PIANO_KEYS

EPS = 1e-10


def mu_exponent(beta: float) -> float:
    """Exponent γ(β) that makes multiplicative updates monotone (Févotte & Idier 2011)."""
    if beta < 1:
        return 1.0 / (2.0 - beta)
    if beta > 2:
        return 1.0 / (beta - 1.0)
    return 1.0


def beta_divergence(V: torch.Tensor, V_hat: torch.Tensor, beta: float) -> torch.Tensor:
    """Sum of the elementwise β-divergence ``d_β(V | V_hat)`` (β=2: half squared error,
    β=1: generalised Kullback-Leibler, β=0: Itakura-Saito)."""
    V = V.clamp_min(EPS)
    V_hat = V_hat.clamp_min(EPS)
    if beta == 1:
        return (V * torch.log(V / V_hat) - V + V_hat).sum()
    if beta == 0:
        ratio = V / V_hat
        return (ratio - torch.log(ratio) - 1).sum()
    return (
        (V**beta + (beta - 1) * V_hat**beta - beta * V * V_hat ** (beta - 1)) / (beta * (beta - 1))
    ).sum()


def _ratio_terms(V: torch.Tensor, V_hat: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(V ⊙ V̂^(β-2), V̂^(β-1))``, the numerator and denominator factors of the updates."""
    V_hat = V_hat.clamp_min(EPS)
    if beta == 1:
        return V / V_hat, torch.ones_like(V_hat)
    if beta == 2:
        return V, V_hat
    return V * V_hat ** (beta - 2), V_hat ** (beta - 1)


def update_h(
    V: torch.Tensor, W: torch.Tensor, H: torch.Tensor, beta: float, sparsity: float = 0.0
) -> torch.Tensor:
    """One multiplicative update of ``H`` ``[..., T, K]`` for ``V ≈ H Wᵀ`` (``V`` ``[..., T, F]``,
    ``W`` ``[F, K]``) with an L1 penalty ``sparsity * Σ H``. Zeros in ``H`` stay zero."""
    num, den = _ratio_terms(V, H @ W.T, beta)
    ratio = (num @ W) / (den @ W + sparsity).clamp_min(EPS)
    gamma = mu_exponent(beta)
    return H * (ratio if gamma == 1.0 else ratio**gamma)


def update_w(V: torch.Tensor, W: torch.Tensor, H: torch.Tensor, beta: float) -> torch.Tensor:
    """One multiplicative update of ``W`` ``[F, K]`` for ``V ≈ H Wᵀ`` (``V`` ``[T, F]``, ``H`` ``[T, K]``)."""
    num, den = _ratio_terms(V, H @ W.T, beta)
    ratio = (num.T @ H) / (den.T @ H).clamp_min(EPS)
    gamma = mu_exponent(beta)
    return W * (ratio if gamma == 1.0 else ratio**gamma)


def initial_h(V: torch.Tensor, n_templates: int) -> torch.Tensor:
    """Frame-wise start for the updates: every template gets ``‖V[t]‖₁ / n_templates``
    (templates are L1-normalised, so this explains the frame's total energy)."""
    energy = V.sum(dim=-1, keepdim=True)
    return energy.expand(*V.shape[:-1], n_templates) / n_templates


class NMFTranscriber(nn.Module):
    """Transcribe piano by supervised NMF with a fixed template dictionary.

    Args:
        W: dictionary ``[n_bins, n_templates]``; columns ``0..n_keys-1`` are the keys A0..C8,
            any further columns are extra (noise) templates whose gains are discarded.
            Columns are L1-normalised here.
        scale: per-key activation scale ``[n_keys]`` (or a scalar): activation
            ``= 1 - exp(-H / scale)``.
        log_gain: the frontend's compression gain; features are ``log1p(log_gain * |X|)``.
        n_iter: multiplicative updates per forward pass.
        beta: β of the divergence (1 = KL).
        sparsity: L1 penalty on ``H`` (in units of the L1-normalised magnitude).
        onset: also return an ``"onset"`` activation from the rise of ``H`` over one frame
            (needs one frame of context before each window).
    """

    def __init__(
        self,
        W: np.ndarray | torch.Tensor,
        scale: np.ndarray | torch.Tensor | float = 1.0,
        *,
        log_gain: float = 1.0,
        n_iter: int = 50,
        beta: float = 1.0,
        sparsity: float = 0.0,
        n_keys: int = PIANO_KEYS,
        onset: bool = False,
    ) -> None:
        super().__init__()
        W = torch.as_tensor(np.asarray(W, dtype=np.float32))
        if W.ndim != 2 or W.shape[1] < n_keys:
            raise ValueError(f"W must be [bins, >= {n_keys}] templates, got {tuple(W.shape)}")
        if bool((W < 0).any()):
            raise ValueError("W must be non-negative")
        W = W / W.sum(dim=0, keepdim=True).clamp_min(EPS)
        scale_t = torch.as_tensor(np.asarray(scale, dtype=np.float32)).reshape(-1)
        scale_t = scale_t.expand(n_keys).clone() if scale_t.numel() == 1 else scale_t
        if scale_t.shape != (n_keys,) or bool((scale_t <= 0).any()):
            raise ValueError(f"scale must be positive, one per key ({n_keys})")
        if n_iter < 1 or log_gain <= 0:
            raise ValueError("n_iter must be >= 1 and log_gain > 0")
        self.register_buffer("W", W)
        self.register_buffer("scale", scale_t)
        self.log_gain = float(log_gain)
        self.n_iter = int(n_iter)
        self.beta = float(beta)
        self.sparsity = float(sparsity)
        self.n_keys = int(n_keys)
        self.onset = bool(onset)

    @property
    def n_bins(self) -> int:
        return int(self.W.shape[0])

    def linear(self, features: torch.Tensor) -> torch.Tensor:
        """Features ``log1p(log_gain * |X|)`` → linear magnitude ``|X|``."""
        return torch.expm1(features.float()).clamp_min(0) / self.log_gain

    def gains(self, V: torch.Tensor) -> torch.Tensor:
        """Solve ``V ≈ H Wᵀ`` for ``H ≥ 0`` (``V`` ``[..., T, bins]`` linear → ``[..., T, templates]``)."""
        W = self.W.to(V.dtype)
        H = initial_h(V, W.shape[1])
        for _ in range(self.n_iter):
            H = update_h(V, W, H, self.beta, self.sparsity)
        return H

    def activations(self, H: torch.Tensor) -> torch.Tensor:
        """Key gains ``H[..., :n_keys]`` → activations in [0, 1]."""
        return 1.0 - torch.exp(-H[..., : self.n_keys] / self.scale)

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        if features.shape[-1] != self.n_bins:
            raise ValueError(f"expected {self.n_bins} feature bins, got {features.shape[-1]}")
        H = self.gains(self.linear(features))
        frame = self.activations(H)
        out = {"frame": frame}
        if self.onset:
            previous = torch.nn.functional.pad(frame, (0, 0, 1, 0))[..., :-1, :]
            out["onset"] = (frame - previous).clamp_min(0)
        return out


def load_templates(path: str | Path) -> dict[str, Any]:
    """Read a template file written by ``scripts/learn_nmf_templates.py``.

    Returns ``{"W": [bins, templates], "scale": [88], "metadata": dict}``.
    """
    import json

    with np.load(path, allow_pickle=False) as data:
        W = np.asarray(data["W"], dtype=np.float32)
        scale = np.asarray(data["scale"], dtype=np.float32)
        metadata = json.loads(str(data["metadata"]))
    return {"W": W, "scale": scale, "metadata": metadata}


def build(path: str | Path, options: Mapping[str, Any]) -> NMFTranscriber:
    """An :class:`NMFTranscriber` from a template file; ``options`` override its settings."""
    templates = load_templates(path)
    meta = templates["metadata"]
    settings = dict(meta.get("model", {}))
    settings.update(options)
    return NMFTranscriber(
        templates["W"],
        templates["scale"],
        log_gain=float(settings.pop("log_gain", meta.get("frontend", {}).get("log_gain", 1.0))),
        **settings,
    )
