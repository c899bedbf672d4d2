"""hppnet's lean inference path (issue 11; ``benchmarks/results/memory.md``): without
gradients the bin-resolution stage runs in slices of ``TIME_CHUNK`` frames and the FG-LSTM
heads in chunks of keys. Each is the same function as the whole-window form, and the
largest tensor any operation makes stays bounded by the slice, not the window."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from transcribe_cli.models.hppnet import HARMONIC_DILATIONS, N_BINS, TIME_CHUNK, HPPNet
from transcribe_cli.models.layers import PitchwiseLSTM


class LargestOutput(TorchDispatchMode):
    """Records the largest number of elements of any tensor an operation returns."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(value, torch.Tensor):
                self.largest = max(self.largest, value.numel())
        return out


@pytest.fixture(scope="module")
def network():
    torch.manual_seed(0)
    return HPPNet(preset="tiny").eval()


def test_sliced_bin_stage_equals_the_whole_window(network):
    trunk = network.subnets[0].trunk
    x = torch.rand(1, 16, 2 * TIME_CHUNK + 37, N_BINS)  # not a whole number of slices
    with torch.no_grad():
        whole = trunk.bin_stage(x)
        for chunk in (TIME_CHUNK, 50):
            torch.testing.assert_close(trunk.key_maps(x, chunk), whole, rtol=1e-5, atol=1e-5)


def test_key_chunked_lstm_equals_all_keys_at_once():
    torch.manual_seed(1)
    head = PitchwiseLSTM(8, 4, key_chunk=22).eval()
    x = torch.rand(2, 8, 50, 88)
    with torch.no_grad():
        whole = head.keys_logits(x)
        for chunk in (22, 5, 88):
            head.key_chunk = chunk
            torch.testing.assert_close(head(x), whole, rtol=1e-6, atol=1e-6)
    head.key_chunk = 22
    torch.testing.assert_close(head(x), whole, rtol=1e-6, atol=1e-6)  # with gradients: all keys at once


def test_inference_outputs_equal_the_training_path(network):
    features = torch.rand(1, 90, N_BINS) * 4
    with torch.no_grad():
        lean = network(features)
    with torch.enable_grad():
        whole = {key: value.detach() for key, value in network(features).items()}
    for key in whole:
        torch.testing.assert_close(lean[key], whole[key], rtol=1e-5, atol=1e-5)


def test_inference_working_set_is_bounded_by_the_slices(network):
    """No tensor of a window's forward is larger than the whole-window maps the network must
    keep (16 channels x 352 bins, or C channels x 88 keys) or one slice's stack of shifted
    copies: without the slicing the HD-Conv's stack alone is ``17 x 16 x T x 352``."""
    frames = 200
    channels = network.subnets[0].trunk.octave.out_channels
    stack = (2 * len(HARMONIC_DILATIONS) + 1) * 16 * TIME_CHUNK * N_BINS
    bound = max(16 * frames * N_BINS, channels * frames * 88, stack)
    trunk, features = network.subnets[0].trunk, torch.rand(1, 1, frames, N_BINS) * 4
    with torch.inference_mode(), LargestOutput() as lean:
        trunk(features)
    assert lean.largest <= bound
    with torch.enable_grad(), LargestOutput() as whole:  # the training path holds the window's stack
        trunk(features)
    assert whole.largest >= (2 * len(HARMONIC_DILATIONS) + 1) * 16 * frames * N_BINS > bound


def test_key_chunked_heads_bound_the_lstm_tensors(network):
    head = network.subnets[0].heads["onset"]
    frames, channels = 100, head.lstm.rnn.input_size
    x = torch.rand(1, channels, frames, 88)
    with torch.inference_mode(), LargestOutput() as lean:
        head(x)
    assert lean.largest <= head.key_chunk * frames * max(channels, head.lstm.output_size, 4 * head.lstm.rnn.hidden_size)
    with torch.enable_grad(), LargestOutput() as whole:
        head(x)
    assert whole.largest >= 88 * frames * channels
