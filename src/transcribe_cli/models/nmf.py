"""Supervised NMF transcription: fixed note templates, gains by multiplicative updates.

Model. The linear magnitude spectrogram ``V`` (``[frames, bins]``, from the ``cqt`` frontend,
read back with the frontends' own inverse ``frontends.arrays.linear``) is explained
as ``V ≈ H Wᵀ`` with a fixed dictionary ``W`` (``[bins, templates]``) and non-negative gains ``H``
(``[frames, templates]``). The dictionary holds ``n_groups`` templates per piano key — column
``g * 88 + k`` is group ``g`` of key ``k`` (A0 + k), e.g. the attack and the sustained part of
two pianos — optionally followed by extra templates (noise) whose gains are discarded. ``H``
minimises the β-divergence ``D_β(V | H Wᵀ) + sparsity · Σ H`` by the multiplicative updates of
Févotte & Idier (2011), ``H ← H ⊙ (ratio)^(relaxation · γ(β))``, where ``γ(β)`` is the exponent
that makes each update provably non-increasing; ``n_iter`` updates from
``H₀[t] = ‖V[t]‖₁ / templates``. ``relaxation > 1`` over-relaxes them (a longer step in log
space, as over-relaxed majorise-minimise schemes do): at β = ½ the bundled ``relaxation = 2``
(exponent 4/3) reaches in 25 updates a fit at least as close as 50 plain ones, with the same
notes on the validation renders; ``relaxation = 3`` (exponent 2) overshoots and oscillates
(``benchmarks/results/nmf_speed.md``; monotone on random problems up to 2.5, measured, not proven).

Frame-wise by construction: with ``W`` fixed, frame ``t`` of ``H`` depends on frame ``t`` of
``V`` only, so the gains do not depend on how a recording is cut into windows (nor into the
blocks of frames the updates run on, :data:`BLOCK_FRAMES`).

Speed. Each update is three GEMMs of frames × bins × templates, nearly all of the model's
time; besides ``n_iter``, two settings make them cheaper:

* ``bin_pool = p`` sums each ``p`` adjacent CQT bins of ``V`` and of ``W`` before solving
  (352 → 176 bins for ``p = 2``: half of every GEMM, a quarter-tone resolution instead of
  an eighth); still frame-wise;
* ``prune_after = i``, ``prune_level = ℓ`` (off in the bundled settings): after ``i``
  updates, a block of frames drops the templates whose gain is below ``ℓ · ‖V[t]‖₁`` in
  every frame ``t`` of the block (their gains become 0 there), and the remaining updates run
  on the templates left — a few dozen of the 367 in a block of piano music. The gains of a
  frame then depend on the other frames of its block through which templates are kept: on
  the bundled example the numpy and torch runtimes (whose blocks hold different frames)
  agreed on only 95 % of the notes with ``ℓ = 0.01`` after 3 updates, which is why it is an
  option, not the default (``benchmarks/results/nmf_speed.md``).

numpy only (float32, no torch): the model runs without torch under ``--runtime auto|numpy``
(with the ``cqt`` frontend's numpy form, :mod:`transcribe_cli.frontends.constant_q_numpy`) and
behind the torch frontend under ``--runtime torch`` (it takes and returns tensors there); the
template learning (``scripts/learn_nmf_templates.py``) uses the same updates.

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
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from ..frontends.arrays import linear
from ..inference import CpuModel
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
#: Frames the updates run on at a time (frame-wise, so any split gives the same gains): the
#: temporaries of a block stay in the CPU cache, and blocks run on several threads.
BLOCK_FRAMES = 256


def mu_exponent(beta: float) -> float:
    """Exponent γ(β) that makes multiplicative updates monotone (Févotte & Idier 2011)."""
    if beta < 1:
        return 1.0 / (2.0 - beta)
    if beta > 2:
        return 1.0 / (beta - 1.0)
    return 1.0


def beta_divergence(V: np.ndarray, V_hat: np.ndarray, beta: float) -> float:
    """Sum of the elementwise β-divergence ``d_β(V | V_hat)`` (β=2: half squared error,
    β=1: generalised Kullback-Leibler, β=0: Itakura-Saito)."""
    V = np.maximum(V, EPS)
    V_hat = np.maximum(V_hat, EPS)
    if beta == 1:
        return float((V * np.log(V / V_hat) - V + V_hat).sum())
    if beta == 0:
        ratio = V / V_hat
        return float((ratio - np.log(ratio) - 1).sum())
    return float(
        ((V**beta + (beta - 1) * V_hat**beta - beta * V * V_hat ** (beta - 1)) / (beta * (beta - 1))).sum()
    )


def _ratio_terms(V: np.ndarray, V_hat: np.ndarray, beta: float, out: np.ndarray | None = None) -> np.ndarray:
    """``[V ⊙ V̂^(β-2), V̂^(β-1)]`` stacked ``[2, T, F]`` (in ``out`` when given): the numerator
    and denominator factors of the updates. ``V_hat`` is clamped to ``EPS`` in place. One power
    per element: ``V̂^(β-2) = V̂^(β-1) / V̂`` (β = ½: ``V̂^(-½)`` by a square root)."""
    terms = np.empty((2, *V.shape), dtype=np.result_type(V, V_hat)) if out is None else out
    num, den = terms[0], terms[1]
    np.maximum(V_hat, EPS, out=V_hat)
    if beta == 1:
        np.divide(V, V_hat, out=num)
        den.fill(1.0)
    elif beta == 2:
        np.copyto(num, V)
        np.copyto(den, V_hat)
    else:
        if beta == 0.5:
            np.sqrt(V_hat, out=den)
            np.reciprocal(den, out=den)
        else:
            np.power(V_hat, beta - 1, out=den)
        np.multiply(V, den, out=num)
        np.divide(num, V_hat, out=num)
    return terms


class _Workspace:
    """Temporaries of :func:`update_h` for ``frames`` frames (reused by every update)."""

    def __init__(self, frames: int, bins: int, templates: int, dtype: Any):
        self.v_hat = np.empty((frames, bins), dtype=dtype)
        self.terms = np.empty((2, frames, bins), dtype=dtype)
        self.ratios = np.empty((2, frames, templates), dtype=dtype)

    def fits(self, frames: int, bins: int, templates: int, dtype: Any) -> bool:
        return self.terms.shape == (2, frames, bins) and self.ratios.shape[2] == templates and self.terms.dtype == dtype


def update_h(
    V: np.ndarray, W: np.ndarray, H: np.ndarray, beta: float, sparsity: float = 0.0, *,
    out: np.ndarray | None = None, work: _Workspace | None = None, relaxation: float = 1.0,
) -> np.ndarray:
    """One multiplicative update of ``H`` ``[T, K]`` for ``V ≈ H Wᵀ`` (``V`` ``[T, F]``, ``W``
    ``[F, K]``) with the penalty ``sparsity · Σ H``, the ratio raised to ``relaxation · γ(β)``.
    Zeros in ``H`` stay zero. Returns the new
    ``H`` (in ``out`` when given, which may be ``H`` itself); ``work`` holds the temporaries."""
    frames, bins = V.shape
    dtype = np.result_type(V, W, H)
    if work is None or not work.fits(frames, bins, W.shape[1], dtype):
        work = _Workspace(frames, bins, W.shape[1], dtype)
    np.matmul(H, W.T, out=work.v_hat)
    terms = _ratio_terms(V, work.v_hat, beta, out=work.terms)
    # numerator and denominator against W in one GEMM
    np.matmul(terms.reshape(2 * frames, bins), W, out=work.ratios.reshape(2 * frames, -1))
    ratio, den = work.ratios[0], work.ratios[1]
    if sparsity:
        den += sparsity
    np.maximum(den, EPS, out=den)
    np.divide(ratio, den, out=ratio)
    gamma = mu_exponent(beta) * relaxation
    if gamma != 1.0:  # ratio ** gamma as exp(gamma * log(ratio)): SIMD exp and log, ~1.4x faster than power
        with np.errstate(divide="ignore"):  # log(0) = -inf, exp(-inf) = 0
            np.log(ratio, out=ratio)
        ratio *= gamma
        np.exp(ratio, out=ratio)
    return np.multiply(H, ratio, out=out)


def update_w(V: np.ndarray, W: np.ndarray, H: np.ndarray, beta: float) -> np.ndarray:
    """One multiplicative update of ``W`` ``[F, K]`` for ``V ≈ H Wᵀ`` (``V`` ``[T, F]``, ``H`` ``[T, K]``)."""
    num, den = _ratio_terms(V, H @ W.T, beta)
    ratio = (num.T @ H) / np.maximum(den.T @ H, EPS)
    gamma = mu_exponent(beta)
    return W * (ratio if gamma == 1.0 else ratio**gamma)


def pool_bins(x: np.ndarray, pool: int) -> np.ndarray:
    """Sum each ``pool`` adjacent entries of the last axis (``pool = 1``: ``x`` itself)."""
    if pool == 1:
        return x
    return x.reshape(*x.shape[:-1], x.shape[-1] // pool, pool).sum(axis=-1)


def initial_h(V: np.ndarray, n_templates: int) -> np.ndarray:
    """Frame-wise start for the updates: every template gets ``‖V[t]‖₁ / n_templates``
    (with L1-normalised templates this explains the frame's total magnitude)."""
    energy = V.sum(axis=-1, keepdims=True)
    return np.repeat(energy / n_templates, n_templates, axis=-1)


def db_level(x: np.ndarray, reference: float, range_db: float) -> np.ndarray:
    """``clip(1 + 20·log10(x / reference) / range_db, 0, 1)`` (0 for ``x <= 0``)."""
    decibels = 20.0 * np.log10(np.maximum(x, EPS) / reference)
    return np.clip(1.0 + decibels / range_db, 0.0, 1.0).astype(x.dtype, copy=False)


def neighbour_max(x: np.ndarray, offsets: tuple[int, ...]) -> np.ndarray:
    """``out[..., k] = max_{o ∈ offsets} x[..., k - o]`` over the last axis (0 outside it)."""
    out = np.zeros_like(x)
    n = x.shape[-1]
    for o in offsets:
        if 0 < o < n:
            np.maximum(out[..., o:], x[..., :-o], out=out[..., o:])
        elif -n < o < 0:
            np.maximum(out[..., :o], x[..., -o:], out=out[..., :o])
    return out


def _single_threaded_blas() -> Any:
    """A context that keeps the BLAS library to one thread: the updates' blocks run on threads
    of their own (BLAS threads on top of them only wait for each other: 2 BLAS threads were
    ~1.4x slower than 1 on the loaded 2-core machine, ``benchmarks/results/nmf_speed.md``), and
    a block's GEMMs, hence the gains, do not depend on the number of threads."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with the dependencies (librosa, scikit-learn)
        return nullcontext()
    return threadpool_limits(1, user_api="blas")


class NMFTranscriber(CpuModel):
    """Piano transcription by supervised NMF with a fixed template dictionary (numpy).

    ``model(features[B, T, bins])`` returns ``{"onset", "frame", "velocity"}`` ``[B, T, n_keys]``:
    numpy arrays for an array, tensors (on the features' device) for a torch tensor — so the
    torch pipeline runs it behind the torch frontend like a network (it computes on the CPU:
    ``.to``, ``.eval`` return the model), and the numpy pipeline behind the numpy frontend.

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
        bin_pool: adjacent bins summed before solving (1 = off; must divide the bin count).
        prune_after: updates before a block drops its unused templates (see the module docstring).
        prune_level: gain relative to the frame's L1 magnitude below which, in every frame of
            a block, a template is dropped (0 = never).
        relaxation: multiplies the updates' exponent ``γ(β)`` (1 = the monotone updates; see
            the module docstring).
        threads: threads the blocks of frames run on (default: the usable CPU cores).
    """

    outputs = ("onset", "frame", "velocity")

    def __init__(
        self,
        W: Any,
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
        bin_pool: int = 1,
        prune_after: int = 0,
        prune_level: float = 0.0,
        relaxation: float = 1.0,
        n_keys: int = PIANO_KEYS,
        threads: int | None = None,
    ) -> None:
        W = np.array(W, dtype=np.float32)
        if W.ndim != 2 or W.shape[1] < n_groups * n_keys or n_groups < 1:
            raise ValueError(f"W must be [bins, >= {n_groups} x {n_keys}] templates, got {tuple(W.shape)}")
        if not bool(np.isfinite(W).all()) or bool((W < 0).any()):
            raise ValueError("W must be finite and non-negative")
        if n_iter < 1 or log_gain <= 0 or reference <= 0 or range_db <= 0 or velocity_range_db <= 0:
            raise ValueError("n_iter >= 1 and positive log_gain, reference and dB ranges are required")
        if sparsity < 0 or onset_suppression < 0:
            raise ValueError("sparsity and onset_suppression must be >= 0")
        if threads is not None and threads < 1:
            raise ValueError("threads must be >= 1")
        if bin_pool < 1 or W.shape[0] % bin_pool:
            raise ValueError(f"bin_pool must be >= 1 and divide the {W.shape[0]} bins, got {bin_pool}")
        if prune_after < 0 or not 0 <= prune_level < 1:
            raise ValueError("prune_after must be >= 0 and prune_level in [0, 1)")
        if not 0 < relaxation <= 4:
            raise ValueError(f"relaxation must be in (0, 4], got {relaxation}")
        W = W / np.maximum(W.sum(axis=0, keepdims=True), np.float32(EPS))
        self.W = np.where(W > TINY, W, np.float32(0.0))
        self.bin_pool = int(bin_pool)
        self.prune_after = int(prune_after)
        self.prune_level = float(prune_level)
        self.relaxation = float(relaxation)
        #: the dictionary the updates run on: ``W`` with its bins pooled (``W`` itself unpooled)
        self.W_solve = np.ascontiguousarray(pool_bins(self.W.T, self.bin_pool).T)
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
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None

    @property
    def n_bins(self) -> int:
        return int(self.W.shape[0])

    def linear(self, features: np.ndarray) -> np.ndarray:
        """Features ``log1p(log_gain · |X|)`` → linear magnitude ``|X|`` (the frontends'
        :func:`~transcribe_cli.frontends.arrays.linear` with the frontend's ``log_gain``)."""
        return linear(features, self.log_gain)

    def gains(self, V: np.ndarray) -> np.ndarray:
        """Solve ``V ≈ H Wᵀ`` for ``H ≥ 0``: ``V`` ``[..., T, bins]`` → ``H`` ``[..., T, templates]``,
        :data:`BLOCK_FRAMES` frames at a time, on :attr:`threads` threads (``bins`` pooled
        by :attr:`bin_pool` first; templates pruned per block, see the module docstring)."""
        W = self.W_solve if V.dtype == np.float32 else self.W_solve.astype(V.dtype)
        frames = np.ascontiguousarray(pool_bins(V.reshape(-1, V.shape[-1]), self.bin_pool))  # [frames, bins]
        H = initial_h(frames, W.shape[1])
        starts = range(0, frames.shape[0], BLOCK_FRAMES)
        prune_at = self.prune_after if self.prune_level > 0 else None

        def solve(start: int) -> None:
            block = slice(start, start + BLOCK_FRAMES)
            V_block, H_block = frames[block], H[block]
            W_block, H_solve = W, H_block
            work = _Workspace(V_block.shape[0], V_block.shape[1], W.shape[1], H.dtype)
            for i in range(self.n_iter):
                if i == prune_at:
                    floor = self.prune_level * V_block.sum(axis=1, keepdims=True)
                    kept = np.flatnonzero((H_block >= floor).any(axis=0) & (H_block > 0).any(axis=0))
                    if len(kept) == 0:  # silence: every gain is 0 and stays 0
                        H_block.fill(0.0)
                        return
                    if len(kept) < W.shape[1]:
                        W_block, H_solve = np.ascontiguousarray(W[:, kept]), np.ascontiguousarray(H_block[:, kept])
                        work = _Workspace(V_block.shape[0], V_block.shape[1], len(kept), H.dtype)
                update_h(V_block, W_block, H_solve, self.beta, self.sparsity, out=H_solve, work=work, relaxation=self.relaxation)
            if H_solve is not H_block:
                H_block.fill(0.0)
                H_block[:, kept] = H_solve

        with _single_threaded_blas():  # the same GEMMs, so the same gains, for any thread count
            if min(self._thread_count(), len(starts)) > 1:
                list(self._executor().map(solve, starts))
            else:
                for start in starts:
                    solve(start)
        return H.reshape(*V.shape[:-1], W.shape[1])

    def _thread_count(self) -> int:
        if self.threads is None:
            from ..workers import usable_cores

            self.threads = usable_cores()
        return self.threads

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._thread_count(), thread_name_prefix="nmf")
        return self._pool

    def key_gains(self, H: np.ndarray) -> np.ndarray:
        """Template gains ``[..., T, templates]`` → key gains ``[..., T, n_keys]`` (sum over groups)."""
        grouped = H[..., : self.n_groups * self.n_keys]
        return grouped.reshape(*H.shape[:-1], self.n_groups, self.n_keys).sum(axis=-2)

    def activations(self, G: np.ndarray) -> dict[str, np.ndarray]:
        """Key gains ``[..., T, n_keys]`` → ``{"onset", "frame", "velocity"}`` in [0, 1]."""
        previous = np.zeros_like(G)
        previous[..., 1:, :] = G[..., :-1, :]
        rise = np.maximum(G - previous, 0.0)
        if self.onset_suppression > 0:
            rise = np.maximum(rise - self.onset_suppression * neighbour_max(rise, SUPPRESSING_OFFSETS), 0.0)
        return {
            "onset": db_level(rise, self.reference, self.range_db),
            "frame": db_level(G, self.reference, self.range_db),
            "velocity": db_level(G, self.reference, self.velocity_range_db),
        }

    def __call__(self, features: Any) -> dict[str, Any]:
        """``features[B, T, bins]`` → activations ``[B, T, n_keys]`` (see the module docstring);
        a torch tensor in gives tensors out, on its device."""
        if isinstance(features, np.ndarray):
            return self.forward(features)
        import torch  # features are a tensor: torch is loaded already

        values = self.forward(features.detach().to("cpu", torch.float32).numpy())
        return {key: torch.from_numpy(value).to(features.device) for key, value in values.items()}

    def forward(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`__call__` on a numpy array."""
        if features.shape[-1] != self.n_bins:
            raise ValueError(f"expected {self.n_bins} feature bins, got {features.shape[-1]}")
        return self.activations(self.key_gains(self.gains(self.linear(features))))

    def __repr__(self) -> str:
        return (
            f"NMFTranscriber(bins={self.n_bins}, templates={self.W.shape[1]}, n_groups={self.n_groups}, "
            f"beta={self.beta:g}, n_iter={self.n_iter}, sparsity={self.sparsity:g}, "
            f"onset_suppression={self.onset_suppression:g}, bin_pool={self.bin_pool}, "
            f"prune_after={self.prune_after}, prune_level={self.prune_level:g}, relaxation={self.relaxation:g})"
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
