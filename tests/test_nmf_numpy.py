"""``nmf`` without torch (issue 11): the numpy updates against a torch reference, the model on
tensors and arrays, block and thread independence, the ``numpy`` runtime, and a whole command
that never imports torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import ROOT, cli_torch_modules

from transcribe_cli.errors import TranscribeError
from transcribe_cli.models import build_nmf
from transcribe_cli.models.nmf import EPS, NMFTranscriber, initial_h, mu_exponent, update_h

EXAMPLE = ROOT / "examples" / "pop909_003.flac"


def torch_update(V: torch.Tensor, W: torch.Tensor, H: torch.Tensor, beta: float, sparsity: float) -> torch.Tensor:
    """The textbook multiplicative update (Févotte & Idier 2011) in torch: the reference (the
    torch implementation the model had before it moved to numpy)."""
    V_hat = (H @ W.T).clamp_min(EPS)
    ratio = ((V * V_hat ** (beta - 2)) @ W) / ((V_hat ** (beta - 1)) @ W + sparsity).clamp_min(EPS)
    return H * ratio ** mu_exponent(beta)


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
@pytest.mark.parametrize("sparsity", [0.0, 0.05])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numpy_updates_equal_the_torch_reference(beta, sparsity, dtype):
    rng = np.random.default_rng(int(beta * 10) + int(sparsity * 100))
    V = (rng.random((60, 40)) ** 2 + 1e-3).astype(dtype)
    W = (rng.random((40, 12)) + 1e-3).astype(dtype)
    W /= W.sum(0)
    H = initial_h(V, 12)
    H_ref = torch.from_numpy(H.copy())
    V_t, W_t = torch.from_numpy(V), torch.from_numpy(W)
    rtol = 1e-10 if dtype == np.float64 else 2e-4
    for _ in range(20):
        H = update_h(V, W, H, beta, sparsity)
        H_ref = torch_update(V_t, W_t, H_ref, beta, sparsity)
        assert H.dtype == dtype
        np.testing.assert_allclose(H, H_ref.numpy(), rtol=rtol, atol=1e-30)


def test_in_place_update_with_a_workspace_equals_the_plain_one():
    rng = np.random.default_rng(7)
    V = rng.random((33, 20)).astype(np.float32)
    W = rng.random((20, 9)).astype(np.float32)
    H = initial_h(V, 9)
    expected = update_h(V, W, H, 0.5)
    update_h(V, W, H, 0.5, out=H)
    np.testing.assert_array_equal(H, expected)


@pytest.fixture(scope="module")
def model():
    return build_nmf(None)


@pytest.fixture(scope="module")
def features():
    """Features of a few seconds of the example, through the numpy cqt."""
    from transcribe_cli.frontends import build_cqt_numpy
    from transcribe_cli.inference import normalize_audio
    from transcribe_cli.io.audio import load_audio

    audio = normalize_audio(load_audio(EXAMPLE, 16000)[: 8 * 16000], "peak")
    return build_cqt_numpy()(audio[None])


def test_model_on_tensors_equals_the_model_on_arrays(model, features):
    """Under ``--runtime torch`` the model gets tensors: the same numpy computation."""
    from_arrays = model(features)
    from_tensors = model(torch.from_numpy(features))
    assert set(from_arrays) == set(model.outputs)
    for key, value in from_arrays.items():
        assert isinstance(value, np.ndarray) and value.dtype == np.float32 and value.shape == (*features.shape[:2], 88)
        assert isinstance(from_tensors[key], torch.Tensor)
        np.testing.assert_array_equal(from_tensors[key].numpy(), value)
    assert model.to("cpu") is model and model.eval() is model


def test_gains_do_not_depend_on_threads_or_blocks(model, features, monkeypatch):
    import transcribe_cli.models.nmf as nmf

    V = model.linear(features[0])
    one, two = (NMFTranscriber(model.W, n_groups=4, n_iter=10, beta=0.5, threads=n) for n in (1, 2))
    expected = one.gains(V)
    np.testing.assert_array_equal(two.gains(V), expected)  # BLAS on one thread in both
    monkeypatch.setattr(nmf, "BLOCK_FRAMES", 37)
    np.testing.assert_allclose(two.gains(V), expected, rtol=1e-5, atol=1e-7)


# -- the numpy runtime ------------------------------------------------------------------------


def test_auto_picks_numpy_for_nmf_on_the_cpu():
    from transcribe_cli.inference import ArrayModel
    from transcribe_cli.pipeline import Transcriber
    from transcribe_cli.registry import get_registry
    from transcribe_cli.resolution import resolve_transcriber
    from transcribe_cli.runtime import _numpy_mismatch

    run = Transcriber("nmf", threads=1)
    assert run.runtime == "numpy" and run.frontend is None and isinstance(run.model, ArrayModel)
    assert run.model.model.threads == 1
    assert Transcriber("nmf", device="cpu", runtime="numpy").runtime == "numpy"
    assert Transcriber("nmf", runtime="torch").runtime == "torch"
    resolved = resolve_transcriber("nmf", registry=get_registry())
    assert "numpy runs on the CPU" in _numpy_mismatch(resolved, "cuda")
    with pytest.raises(TranscribeError, match="--runtime numpy: model 'hppnet' has no numpy implementation"):
        Transcriber("hppnet", runtime="numpy")


def test_numpy_runtime_equals_the_torch_runtime_on_the_example():
    """Same notes; activations equal to float32 rounding: the two frontends round differently
    (features up to ~2e-4 apart where they are near 0), which 50 updates carry into frame
    levels up to ~3e-5 apart (~0.003 dB) and the onset, a difference of gains, more."""
    from transcribe_cli.io.audio import load_audio
    from transcribe_cli.pipeline import Transcriber

    audio = load_audio(EXAMPLE, 16000)
    numpy_run, torch_run = Transcriber("nmf", runtime="numpy"), Transcriber("nmf", runtime="torch")
    got, expected = numpy_run.activations(audio), torch_run.activations(audio)
    assert set(got) == set(expected) == {"onset", "frame", "velocity"}
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], atol=2e-3 if key == "onset" else 2e-4, err_msg=key)
    streamed, _ = numpy_run.transcribe_path(EXAMPLE)
    rounded = [(n.pitch, round(n.onset, 4), round(n.offset, 4), n.velocity) for n in streamed.notes]
    assert rounded == [(n.pitch, round(n.onset, 4), round(n.offset, 4), n.velocity)
                       for n in torch_run.transcribe_path(EXAMPLE)[0].notes]
    assert len(rounded) > 100


def test_nmf_runs_without_importing_torch(tmp_path):
    """``transcribe FILE --model nmf`` (default tempo tracking included) never imports torch."""
    out = tmp_path / "out.mid"
    report, stderr = cli_torch_modules(EXAMPLE, "-o", out, "--model", "nmf", "-q", home=tmp_path)
    assert report == {"code": 0, "torch": []}, stderr
    assert out.is_file() and out.stat().st_size > 100
