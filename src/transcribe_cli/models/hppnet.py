"""HPPNet (Wei et al., ISMIR 2022, "HPPNet: Modeling the harmonic structure and pitch
invariance in piano transcription"), following the reference implementation
(github.com/WX-Wei/HPPNet, ``hppnet/nets.py`` and ``hppnet/transcriber.py``).

Input: ``cqt`` features ``[B, T, 352]`` (48 bins/octave from A0, 50 frames/s).
Output logits ``[B, T, 88]`` for onset, frame, offset and velocity.

A *subnet* is a convolutional trunk followed by one head per output:

* trunk (``[B, 1, T, 352] -> [B, C, T, 88]``): three 7x7 convolutions with 16 channels;
  the harmonic dilated convolution (HD-Conv: the sum of eight 1x3 convolutions along
  frequency dilated by ``round(48 log2 h)`` bins, h = 2..9, i.e. taps at the fundamental
  and at ± the h-th harmonic's distance) to C channels; a 1x3 convolution dilated by an
  octave (48 bins), max-pooled over the 4 bins of each key (352 -> 88); a 1x3
  convolution dilated by an octave at key resolution (12); three 5x1 convolutions along
  time. Every convolution is followed by ReLU, and all but the HD-Conv by an instance
  norm (no affine parameters), in the reference's order conv -> ReLU -> [pool] -> norm.
* head (FG-LSTM, :class:`~.layers.PitchwiseLSTM`): a bidirectional LSTM along time per
  key, shared by the 88 keys, then a linear layer to one logit.

Presets (parameter counts of the reference configurations ``hpp_sp``/``hpp_base``/
``hpp_tiny``):

* ``sp`` (default, ~1.24 M): two subnets with C = 128 — one for onsets; one for frame,
  offset and velocity that runs at half the frame rate (input max-pooled by 2 along time,
  its logits linearly interpolated back to T);
* ``base`` (~0.82 M): one subnet, C = 128, four heads;
* ``tiny`` (~0.24 M): one subnet, C = 64, four heads.

``channels`` and ``lstm_hidden`` (0 = the preset's: C and C / 2) override the preset.

Differences from the reference, none of which changes the parameter count: our CQT starts
at A0 rather than half a semitone below, so the key pooling groups bins ``4k - 2 ... 4k + 1``
(key k's centre bin is 4k) to keep each key's pooling window centred as in the reference;
the frame subnet interpolates logits (the reference interpolates probabilities); inputs
are ``log1p`` magnitudes (the reference uses dB), which the first instance norm absorbs.

Instance norm pools statistics over the whole input (time and frequency), so outputs
depend slightly on the window length: windowed inference is close to, not exactly equal
to, one pass over the recording.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from transcribe_cli.errors import OptionError

from .layers import PitchwiseLSTM, choice
from ..specs import NOTE_ACTIVATIONS
from .neural import N_KEYS, TranscriptionNet

NAME = "hppnet"
N_BINS = 352
BINS_PER_OCTAVE = 48
BINS_PER_KEY = BINS_PER_OCTAVE // 12
HARMONICS = tuple(range(2, 10))
#: dilations of the HD-Conv: 48, 76, 96, 111, 124, 135, 144, 152 bins
HARMONIC_DILATIONS = tuple(round(BINS_PER_OCTAVE * math.log2(h)) for h in HARMONICS)
FRONT_CHANNELS = 16
#: frames per slice of the inference path's bin-resolution stage (HD-Conv -> octave conv ->
#: key pooling, each pointwise in time): the only maps at 352 bins and ``channels`` channels,
#: held for ``TIME_CHUNK`` frames instead of the whole window (:meth:`Trunk.key_maps`)
TIME_CHUNK = 64

PRESETS: dict[str, dict[str, object]] = {
    "sp": {"channels": 128, "split": True},
    "base": {"channels": 128, "split": False},
    "tiny": {"channels": 64, "split": False},
}
ONSET_HEADS = ("onset",)
FRAME_HEADS = ("frame", "offset", "velocity")


def conv_block(c_in: int, c_out: int, kernel: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> nn.Sequential:
    """conv ('same' padding) -> ReLU -> instance norm, the reference's block order."""
    padding = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=padding, dilation=dilation), nn.ReLU(inplace=True),
        nn.InstanceNorm2d(c_out),
    )


class HarmonicDilatedConv(nn.Module):
    """HD-Conv: ``ReLU(sum_h conv_h(x))``, each ``conv_h`` a 1x3 convolution along frequency
    dilated by ``dilations[h]`` bins (``[B, c_in, T, F] -> [B, c_out, T, F]``).

    Parameters are the reference's (one ``Conv2d`` per dilation). Off CUDA the sum is
    computed as a single 1x1 convolution over the ``2 len(dilations) + 1`` shifted copies of
    the input (the centre taps and the biases summed): the same function, ~1.7x faster on
    a CPU at 128 channels (forward + backward; 16-channel dilated convolutions are slow
    there), at the cost of holding the shifted copies for the backward pass.
    """

    def __init__(self, c_in: int, c_out: int, dilations: Sequence[int] = HARMONIC_DILATIONS):
        super().__init__()
        self.dilations = tuple(int(d) for d in dilations)
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, (1, 3), padding=(0, d), dilation=(1, d)) for d in self.dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.summed_convs(x) if x.is_cuda else self.one_conv(x))

    def summed_convs(self, x: torch.Tensor) -> torch.Tensor:
        """The pre-ReLU sum, one convolution per dilation (the reference's computation)."""
        total = self.convs[0](x)
        for conv in self.convs[1:]:
            total = total + conv(x)
        return total

    def one_conv(self, x: torch.Tensor) -> torch.Tensor:
        """The same pre-ReLU sum as one 1x1 convolution over shifted copies of ``x``."""
        return shifted_conv(x, *self.stacked_weights(), list(self.dilations))

    def stacked_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The weight ``[c_out, (2H + 1) c_in, 1, 1]`` and bias of :func:`shifted_conv` (the
        centre taps and the biases summed)."""
        weights = [sum(conv.weight[..., 1] for conv in self.convs)]  # centre taps: [c_out, c_in, 1]
        for conv in self.convs:
            weights += [conv.weight[..., 0], conv.weight[..., 2]]
        return torch.cat(weights, dim=1).unsqueeze(-1), sum(conv.bias for conv in self.convs)


def shifted_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, dilations: list[int]) -> torch.Tensor:
    """The HD-Conv's pre-ReLU sum: a 1x1 convolution over ``x`` and its copies shifted by
    ``-d`` and ``+d`` bins for each dilation ``d`` (zero beyond the edges)."""
    reach = max(dilations)
    width = x.shape[-1]
    padded = F.pad(x, [reach, reach])
    inputs = [x]
    for d in dilations:  # x[..., f - d] and x[..., f + d]
        inputs.append(padded[..., reach - d : reach - d + width])
        inputs.append(padded[..., reach + d : reach + d + width])
    return F.conv2d(torch.cat(inputs, dim=1), weight, bias)


def pool_keys(x: torch.Tensor, bins_per_key: int = BINS_PER_KEY, keys: int = N_KEYS) -> torch.Tensor:
    """Max-pool the 352 CQT bins to 88 keys, ``[..., 352] -> [..., 88]``: key k takes bins
    4k-2 … 4k+1, centred on its own bin 4k (the pooling pads 2 bins each side, so there are
    89 windows; the last, above C8, is dropped)."""
    return F.max_pool2d(x, [1, bins_per_key], padding=[0, bins_per_key // 2])[..., :keys]


class Trunk(nn.Module):
    """The acoustic model of a subnet: ``[B, 1, T, 352] -> [B, channels, T, 88]``."""

    def __init__(self, channels: int, front_channels: int = FRONT_CHANNELS):
        super().__init__()
        c = front_channels
        self.front = nn.Sequential(
            conv_block(1, c, (7, 7)), conv_block(c, c, (7, 7)), conv_block(c, c, (7, 7))
        )
        self.harmonic = HarmonicDilatedConv(c, channels)
        self.octave = nn.Conv2d(channels, channels, (1, 3), padding=(0, BINS_PER_OCTAVE), dilation=(1, BINS_PER_OCTAVE))
        self.octave_norm = nn.InstanceNorm2d(channels)
        self.key_octave = conv_block(channels, channels, (1, 3), (1, 12))
        self.temporal = nn.Sequential(*(conv_block(channels, channels, (5, 1)) for _ in range(3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.front(x)
        x = self.bin_stage(x) if torch.is_grad_enabled() else self.key_maps(x)
        x = self.octave_norm(x)
        return self.temporal(self.key_octave(x))

    def bin_stage(self, x: torch.Tensor) -> torch.Tensor:
        """HD-Conv -> ReLU -> octave convolution -> ReLU -> key pooling (before the octave
        norm): ``[B, c, T, 352] -> [B, channels, T, 88]``. Every step is pointwise in time."""
        return pool_keys(torch.relu(self.octave(self.harmonic(x))))

    def key_maps(self, x: torch.Tensor, time_chunk: int = TIME_CHUNK) -> torch.Tensor:
        """:meth:`bin_stage` without gradients, ``time_chunk`` frames at a time
        (:func:`sliced_bin_stage`): the same function, with the ``channels x 352``-bin maps
        and the HD-Conv's stack of ``2 H + 1`` shifted copies held for one slice (515 MB of
        stack for one 1,344-frame window at once). Exports to ONNX as a ``Loop``."""
        weight, bias = self.harmonic.stacked_weights()
        return sliced_bin_stage(x, weight, bias, list(self.harmonic.dilations), self.octave.weight,
                                self.octave.bias, time_chunk)


@torch.jit.script_if_tracing
def sliced_bin_stage(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, dilations: list[int],
                     octave_weight: torch.Tensor, octave_bias: torch.Tensor, time_chunk: int,
                     octave: int = BINS_PER_OCTAVE) -> torch.Tensor:
    """:meth:`Trunk.bin_stage` (HD-Conv as :func:`shifted_conv`) over slices of ``time_chunk``
    frames, concatenated (scripted when traced, so the loop follows the input's length)."""
    parts: list[torch.Tensor] = []
    for start in range(0, x.shape[2], time_chunk):
        y = torch.relu(shifted_conv(x[:, :, start : start + time_chunk], weight, bias, dilations))
        y = torch.relu(F.conv2d(y, octave_weight, octave_bias, padding=[0, octave], dilation=[1, octave]))
        parts.append(pool_keys(y))
    return torch.cat(parts, dim=2)


class SubNet(nn.Module):
    """A trunk and one FG-LSTM head per output key: ``[B, 1, T, 352] -> {key: [B, T, 88]}``.

    With ``time_pooling`` the trunk and heads run at half the frame rate (max-pooling by 2
    along time, rounding up) and the logits are linearly interpolated back to ``T`` frames.
    """

    def __init__(self, channels: int, lstm_hidden: int, heads: Sequence[str], time_pooling: bool = False):
        super().__init__()
        self.trunk = Trunk(channels)
        self.heads = nn.ModuleDict({key: PitchwiseLSTM(channels, lstm_hidden) for key in heads})
        self.time_pooling = time_pooling

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        frames = x.shape[2]
        if self.time_pooling:
            x = F.max_pool2d(x, (2, 1), ceil_mode=True)
        y = self.trunk(x)
        logits = {}
        for key, head in self.heads.items():
            out = head(y)  # [B, T', 88]
            if self.time_pooling:
                out = F.interpolate(out.transpose(1, 2), size=frames, mode="linear", align_corners=False)
                out = out.transpose(1, 2)
            logits[key] = out
        return logits


class HPPNet(TranscriptionNet):
    """HPPNet; see the module docstring. ``forward_logits(features[B, T, 352])``."""

    outputs = NOTE_ACTIVATIONS

    def __init__(self, preset: str = "sp", channels: int = 0, lstm_hidden: int = 0):
        super().__init__()
        choice(NAME, "preset", preset, tuple(PRESETS))
        for key, value in (("channels", channels), ("lstm_hidden", lstm_hidden)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise OptionError(
                    f"model {NAME!r}: architecture option {key} must be an integer >= 0 (0 = the preset's), "
                    f"got {value!r}"
                )
        settings = PRESETS[preset]
        channels = channels or int(settings["channels"])  # type: ignore[call-overload]
        lstm_hidden = lstm_hidden or max(1, channels // 2)
        if settings["split"]:
            self.subnets = nn.ModuleList([
                SubNet(channels, lstm_hidden, ONSET_HEADS),
                SubNet(channels, lstm_hidden, FRAME_HEADS, time_pooling=True),
            ])
        else:
            self.subnets = nn.ModuleList([SubNet(channels, lstm_hidden, NOTE_ACTIVATIONS)])

    def forward_logits(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        x = features.unsqueeze(1)
        logits: dict[str, torch.Tensor] = {}
        for subnet in self.subnets:
            logits.update(subnet(x))
        return {key: logits[key] for key in self.outputs}


def build(preset: str = "sp", channels: int = 0, lstm_hidden: int = 0) -> HPPNet:
    """A freshly initialised :class:`HPPNet` (the ``network`` of the ``hppnet`` spec)."""
    return HPPNet(preset=preset, channels=channels, lstm_hidden=lstm_hidden)
