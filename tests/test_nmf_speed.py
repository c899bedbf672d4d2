"""Speed measures of the ``nmf`` model that must not change its numbers (issue 11)."""

from __future__ import annotations

import numpy as np

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
