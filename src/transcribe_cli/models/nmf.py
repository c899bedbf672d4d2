"""Supervised NMF transcription: fixed note templates, gains by multiplicative updates.

Model. The linear magnitude spectrogram ``V`` (``[frames, bins]``, from the ``cqt`` frontend,
read back with the frontends' own inverse ``frontends.base.linear``) is explained
as ``V ≈ H Wᵀ`` with a fixed dictionary ``W`` (``[bins, templates]``) and non-negative gains ``H``
(``[frames, templates]``). The dictionary holds ``n_groups`` templates per piano key — column
``g * 88 + k`` is group ``g`` of key ``k`` (A0 + k), e.g. the attack and the sustained part of
two pianos — optionally followed by extra templates (noise) whose gains are discarded. ``H``
minimises the β-divergence ``D_β(V | H Wᵀ) + sparsity · Σ H`` by the multiplicative updates of
Févotte & Idier (2011), with the exponent ``γ(β)`` that makes each update non-increasing;
``n_iter`` updates from ``H₀[t] = ‖V[t]‖₁ / templates``.

Frame-wise by construction: with ``W`` fixed, frame ``t`` of ``H`` depends on frame ``t`` of
``V`` only, so the gains do not depend on how a recording is cut into windows.

Activations. The gain of key ``k`` is ``G[t, k] = Σ_g H[t, g·88 + k]`` (templates are
L1-normalised, so ``G`` is the magnitude the key explains). Levels are mapped to [0, 1] on
a decibel scale, ``level(x) = clip(1 + 20·log10(x / reference) / range_db, 0, 1)``: 1 at
``reference`` and above, 0 at ``range_db`` below it. Because the pipeline peak-normalises
the whole recording first (``audio_normalization="peak"``), ``reference`` (learned from
training renders) means the same in every file and every window.

* ``frame``    = ``level(G[t])`` — how loud the key sounds;
* ``onset``    = ``level(max(D[t, k] - onset_suppression · max_{j ∈ N(k)} D[t, j], 0))`` with
  ``D[t] = max(G[t] - G[t-1], 0)``, how much a key rose since the previous frame (piano
  notes start with their loudest frame). ``N(k)`` holds the semitone neighbours and the
  keys an octave, an octave and a fifth and two octaves below (whose 2nd, 3rd and 4th
  partials fall on ``k``): a rise there explains part of ``k``'s, so ghost onsets from
  template mismatch are damped. It compares keys within one frame, so it stays frame-wise.
  Needs one frame of context before a window (``ModelSpec.context_frames = 1``); before
  the first frame the signal is silence;
* ``velocity`` = ``level(G[t])`` on the velocity scale ``velocity_range_db`` — read by the
  decoders at each note's onset frame.

Reference: C. Févotte and J. Idier, "Algorithms for nonnegative matrix factorization with
the β-divergence", Neural Computation 23(9), 2011.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..frontends.base import linear
from ..notes import PIANO_KEYS

EPS = 1e-12
#: Template values at or below this (after L1 normalisation) are set to 0. The bundled
#: templates hold float32 subnormals (< 1.2e-38, 0.2 % of the entries), and a GEMM with
#: subnormal inputs ran 3x slower on x86 (every update, not just those entries). A value this
#: small adds nothing to ``H Wᵀ`` (which is clamped to >= ``EPS``) in float32 arithmetic.
TINY = 1e-30
#: ``k - j`` for the keys ``j`` whose onsets damp key ``k``'s (see ``onset_suppression``).
SUPPRESSING_OFFSETS = (1, -1, 12, 19, 24)
#: Format version of the template file written by ``scripts/learn_nmf_templates.py``.
TEMPLATE_FORMAT = 1


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
    """``(V ⊙ V̂^(β-2), V̂^(β-1))``: the numerator and denominator factors of the updates.
    One power per element: ``V̂^(β-2) = V̂^(β-1) / V̂`` (β = ½: ``V̂^(-½)`` by ``rsqrt``)."""
    V_hat = V_hat.clamp_min(EPS)
    if beta == 1:
        return V / V_hat, torch.ones_like(V_hat)
    if beta == 2:
        return V, V_hat
    den = V_hat.rsqrt() if beta == 0.5 else V_hat.pow(beta - 1)
    return (V * den).div_(V_hat), den


def update_h(
    V: torch.Tensor, W: torch.Tensor, H: torch.Tensor, beta: float, sparsity: float = 0.0
) -> torch.Tensor:
    """One multiplicative update of ``H`` ``[..., T, K]`` for ``V ≈ H Wᵀ`` (``V`` ``[..., T, F]``,
    ``W`` ``[F, K]``) with the penalty ``sparsity · Σ H``. Zeros in ``H`` stay zero."""
    num, den = _ratio_terms(V, H @ W.T, beta)
    ratio = (num @ W).div_((den @ W).add_(sparsity).clamp_min_(EPS))
    gamma = mu_exponent(beta)
    return H * (ratio if gamma == 1.0 else ratio.pow_(gamma))


def update_w(V: torch.Tensor, W: torch.Tensor, H: torch.Tensor, beta: float) -> torch.Tensor:
    """One multiplicative update of ``W`` ``[F, K]`` for ``V ≈ H Wᵀ`` (``V`` ``[T, F]``, ``H`` ``[T, K]``)."""
    num, den = _ratio_terms(V, H @ W.T, beta)
    ratio = (num.T @ H) / (den.T @ H).clamp_min(EPS)
    gamma = mu_exponent(beta)
    return W * (ratio if gamma == 1.0 else ratio**gamma)


def initial_h(V: torch.Tensor, n_templates: int) -> torch.Tensor:
    """Frame-wise start for the updates: every template gets ``‖V[t]‖₁ / n_templates``
    (with L1-normalised templates this explains the frame's total magnitude)."""
    energy = V.sum(dim=-1, keepdim=True)
    return (energy / n_templates).expand(*V.shape[:-1], n_templates).contiguous()


def db_level(x: torch.Tensor, reference: float, range_db: float) -> torch.Tensor:
    """``clip(1 + 20·log10(x / reference) / range_db, 0, 1)`` (0 for ``x <= 0``)."""
    decibels = 20.0 * torch.log10(x.clamp_min(EPS) / reference)
    return (1.0 + decibels / range_db).clamp(0.0, 1.0)


def neighbour_max(x: torch.Tensor, offsets: tuple[int, ...]) -> torch.Tensor:
    """``out[..., k] = max_{o ∈ offsets} x[..., k - o]`` over the last axis (0 outside it)."""
    out = torch.zeros_like(x)
    n = x.shape[-1]
    for o in offsets:
        if 0 < o < n:
            out[..., o:] = torch.maximum(out[..., o:], x[..., :-o])
        elif -n < o < 0:
            out[..., :o] = torch.maximum(out[..., :o], x[..., -o:])
    return out


class NMFTranscriber(nn.Module):
    """Piano transcription by supervised NMF with a fixed template dictionary.

    Args:
        W: dictionary ``[bins, n_groups * n_keys + extra]`` (see the module docstring);
            columns are L1-normalised here.
        n_groups: templates per key.
        reference: gain that maps to activation 1 (for peak-normalised audio).
        range_db: dB below ``reference`` that map to activation 0 (frame and onset).
        velocity_range_db: the same for the velocity activation.
        log_gain: the frontend's ``log_gain`` (features are ``log1p(log_gain · |X|)``).
        n_iter: multiplicative updates per forward pass.
        beta: β of the divergence (1 = KL, 0.5 is the default learned setting).
        sparsity: L1 penalty on ``H`` (units of the L1-normalised magnitude).
        onset_suppression: weight of the neighbouring keys' rises subtracted from a key's
            rise in the onset activation (0 = off).
    """

    outputs = ("onset", "frame", "velocity")

    def __init__(
        self,
        W: np.ndarray | torch.Tensor,
        *,
        n_groups: int = 1,
        reference: float = 1.0,
        range_db: float = 80.0,
        velocity_range_db: float = 40.0,
        log_gain: float = 1.0,
        n_iter: int = 50,
        beta: float = 0.5,
        sparsity: float = 0.0,
        onset_suppression: float = 0.0,
        n_keys: int = PIANO_KEYS,
    ) -> None:
        super().__init__()
        W = torch.as_tensor(np.asarray(W, dtype=np.float32))
        if W.ndim != 2 or W.shape[1] < n_groups * n_keys or n_groups < 1:
            raise ValueError(f"W must be [bins, >= {n_groups} x {n_keys}] templates, got {tuple(W.shape)}")
        if not bool(torch.isfinite(W).all()) or bool((W < 0).any()):
            raise ValueError("W must be finite and non-negative")
        if n_iter < 1 or log_gain <= 0 or reference <= 0 or range_db <= 0 or velocity_range_db <= 0:
            raise ValueError("n_iter >= 1 and positive log_gain, reference and dB ranges are required")
        if sparsity < 0 or onset_suppression < 0:
            raise ValueError("sparsity and onset_suppression must be >= 0")
        W = W / W.sum(dim=0, keepdim=True).clamp_min(EPS)
        self.register_buffer("W", torch.where(W > TINY, W, torch.zeros_like(W)))
        self.n_groups = int(n_groups)
        self.n_keys = int(n_keys)
        self.reference = float(reference)
        self.range_db = float(range_db)
        self.velocity_range_db = float(velocity_range_db)
        self.log_gain = float(log_gain)
        self.n_iter = int(n_iter)
        self.beta = float(beta)
        self.sparsity = float(sparsity)
        self.onset_suppression = float(onset_suppression)

    @property
    def n_bins(self) -> int:
        return int(self.W.shape[0])

    def linear(self, features: torch.Tensor) -> torch.Tensor:
        """Features ``log1p(log_gain · |X|)`` → linear magnitude ``|X|`` (the frontends'
        :func:`~transcribe_cli.frontends.base.linear` with the frontend's ``log_gain``)."""
        return linear(features.float(), self.log_gain)

    def gains(self, V: torch.Tensor) -> torch.Tensor:
        """Solve ``V ≈ H Wᵀ`` for ``H ≥ 0``: ``V`` ``[..., T, bins]`` → ``H`` ``[..., T, templates]``."""
        W = self.W.to(V.dtype)
        frames = V.reshape(-1, V.shape[-1])  # one [frames, bins] matrix: plain GEMMs, no batched ones
        H = initial_h(frames, W.shape[1])
        for _ in range(self.n_iter):
            H = update_h(frames, W, H, self.beta, self.sparsity)
        return H.reshape(*V.shape[:-1], W.shape[1])

    def key_gains(self, H: torch.Tensor) -> torch.Tensor:
        """Template gains ``[..., T, templates]`` → key gains ``[..., T, n_keys]`` (sum over groups)."""
        grouped = H[..., : self.n_groups * self.n_keys]
        return grouped.unflatten(-1, (self.n_groups, self.n_keys)).sum(dim=-2)

    def activations(self, G: torch.Tensor) -> dict[str, torch.Tensor]:
        """Key gains ``[..., T, n_keys]`` → ``{"onset", "frame", "velocity"}`` in [0, 1]."""
        previous = torch.nn.functional.pad(G, (0, 0, 1, 0))[..., :-1, :]
        rise = (G - previous).clamp_min(0.0)
        if self.onset_suppression > 0:
            rise = (rise - self.onset_suppression * neighbour_max(rise, SUPPRESSING_OFFSETS)).clamp_min(0.0)
        return {
            "onset": db_level(rise, self.reference, self.range_db),
            "frame": db_level(G, self.reference, self.range_db),
            "velocity": db_level(G, self.reference, self.velocity_range_db),
        }

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """``features[B, T, bins]`` → activations ``[B, T, n_keys]`` (see the module docstring)."""
        if features.shape[-1] != self.n_bins:
            raise ValueError(f"expected {self.n_bins} feature bins, got {features.shape[-1]}")
        return self.activations(self.key_gains(self.gains(self.linear(features))))

    def extra_repr(self) -> str:
        return (
            f"bins={self.n_bins}, templates={self.W.shape[1]}, n_groups={self.n_groups}, "
            f"beta={self.beta:g}, n_iter={self.n_iter}, sparsity={self.sparsity:g}, "
            f"onset_suppression={self.onset_suppression:g}"
        )


def load_templates(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a template file: ``(W [bins, templates], meta)``.

    The file is an ``.npz`` with ``W`` and ``meta`` (a JSON object string, the project's
    checkpoint-metadata convention: ``meta["model"] == "nmf"``; ``meta["settings"]`` holds
    the constructor arguments of :class:`NMFTranscriber` the templates were tuned with).
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            W = np.asarray(data["W"], dtype=np.float32)
            meta = json.loads(str(data["meta"]))
    except (OSError, KeyError, ValueError) as exc:
        from ..errors import TranscribeError

        raise TranscribeError(
            f"{path} is not an NMF template file ({exc})", "pass a file written by scripts/learn_nmf_templates.py"
        ) from None
    return W, meta


def build(path: str | Path, options: Mapping[str, Any]) -> NMFTranscriber:
    """An :class:`NMFTranscriber` from a template file; ``options`` override its settings."""
    from ..errors import OptionError

    W, meta = load_templates(path)
    settings = {**meta.get("settings", {}), **options}
    try:
        return NMFTranscriber(W, **settings)
    except (TypeError, ValueError) as exc:
        raise OptionError(f"invalid nmf model options: {exc}", "see `transcribe models info nmf`") from None
