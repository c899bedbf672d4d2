"""Speed measures of the ``nmf`` model that must not change its numbers (issue 11)."""

from __future__ import annotations

import numpy as np
import pytest

from transcribe_cli.models import build_nmf
from transcribe_cli.models.nmf import TINY, NMFTranscriber

SUBNORMAL = np.finfo(np.float32).tiny  # the smallest normal float32


def test_bundled_templates_have_no_subnormal_values():
    """Subnormal template values made every update's GEMM ~3x slower on x86."""
    W = build_nmf().W
    assert not bool(((W > 0) & (W < 1e-30)).any())


def test_tiny_template_values_are_zeroed_without_changing_the_gains():
    rng = np.random.default_rng(0)
    W = rng.random((24, 12)).astype(np.float32) ** 3
    W_sub = W.copy()
    W_sub[rng.random(W.shape) < 0.1] = SUBNORMAL / 16  # subnormal entries
    V = rng.random((50, 24)).astype(np.float32) ** 2
    exact, cleaned = NMFTranscriber(W_sub, n_keys=12), NMFTranscriber(np.where(W_sub < TINY, 0, W_sub), n_keys=12)
    assert not bool(((exact.W > 0) & (exact.W <= TINY)).any())
    np.testing.assert_array_equal(exact.gains(V), cleaned.gains(V))


def _mixture(rng: np.random.Generator, frames: int = 300, bins: int = 48, keys: int = 12):
    """Random comb-like templates (2 groups of ``keys``, 4 peaks each over a floor) and a sparse
    mixture of them."""
    W = np.full((bins, 2 * keys), 1e-3, dtype=np.float32)
    for k in range(2 * keys):
        W[rng.choice(bins, 4, replace=False), k] += rng.random(4).astype(np.float32) + 0.5
    truth = np.where(rng.random((frames, 2 * keys)) < 0.15, rng.random((frames, 2 * keys)) * 10, 0.0)
    truth[:, : keys // 2] = truth[:, keys : keys + keys // 2] = 0.0  # keys that never sound
    truth[np.arange(frames), rng.integers(keys // 2, keys, frames)] += 5.0  # no silent frame
    V = (truth @ (W / W.sum(0)).T).astype(np.float32)
    return W, V, truth


def test_pooled_bins_solve_the_pooled_problem():
    """``bin_pool = 2`` gives the gains of the model whose templates and spectra are summed in
    bin pairs beforehand."""
    rng = np.random.default_rng(1)
    W, V, _ = _mixture(rng)
    pooled = NMFTranscriber(W, n_keys=12, n_groups=2, n_iter=20, bin_pool=2)
    reference = NMFTranscriber(W[0::2] + W[1::2], n_keys=12, n_groups=2, n_iter=20)
    np.testing.assert_allclose(pooled.gains(V), reference.gains(V[:, 0::2] + V[:, 1::2]), rtol=1e-5, atol=1e-6)
    assert pooled.n_bins == 48  # it takes the frontend's bins
    with pytest.raises(ValueError, match="bin_pool"):
        NMFTranscriber(W, n_keys=12, n_groups=2, bin_pool=5)


def test_pruning_zeroes_the_unused_templates_and_keeps_the_others(monkeypatch):
    """Templates below the level in every frame of a block are 0 there; with a level of 0 the
    gains are those without pruning; the kept templates explain the mixture as well."""
    import transcribe_cli.models.nmf as nmf

    rng = np.random.default_rng(2)
    W, V, truth = _mixture(rng)
    plain = NMFTranscriber(W, n_keys=12, n_groups=2, n_iter=40)
    off = NMFTranscriber(W, n_keys=12, n_groups=2, n_iter=40, prune_after=3, prune_level=0.0)
    np.testing.assert_array_equal(off.gains(V), plain.gains(V))
    monkeypatch.setattr(nmf, "BLOCK_FRAMES", 50)
    pruned = NMFTranscriber(W, n_keys=12, n_groups=2, n_iter=40, prune_after=3, prune_level=0.02)
    H, H_plain = pruned.gains(V), plain.gains(V)
    dropped = 0
    for start in range(0, V.shape[0], 50):
        block = H[start : start + 50]
        zero = (block == 0).all(axis=0)
        dropped += int(zero.sum())
        assert bool((truth[start : start + 50][:, zero] == 0).all())  # only unused templates went
    assert dropped >= 18  # of the 12 silent templates x 6 blocks, at least a quarter
    fit = np.abs(H @ (W / W.sum(0)).T - V).sum() / V.sum()
    fit_plain = np.abs(H_plain @ (W / W.sum(0)).T - V).sum() / V.sum()
    assert fit < fit_plain * 1.5 + 1e-3, (fit, fit_plain)


def test_pruned_silence_gives_zero_gains():
    W = np.random.default_rng(3).random((48, 24)).astype(np.float32)
    model = NMFTranscriber(W, n_keys=12, n_groups=2, n_iter=10, prune_after=2, prune_level=0.05, bin_pool=2)
    V = np.zeros((70, 48), dtype=np.float32)
    V[40:] = 1.0
    H = model.gains(V)
    assert float(np.abs(H[:40]).max()) == 0.0 and bool(np.isfinite(H).all()) and float(H[40:].sum()) > 0
