"""``piano``: the default piano model — harmonic convolutions and pitch-shared dilated
temporal convolutions on the ``cqt``, with onset, frame, offset, velocity and sustain-pedal
heads. Built for CPU speed: no recurrent layers, every layer a plain convolution.

The design keeps what makes HPPNet (Wei et al., ISMIR 2022) generalise — a harmonic
convolution that looks at each key's partials, and weights shared by all 88 keys so that
every key learns from every other — and replaces its per-key BiLSTMs, which dominate its CPU
time, by a stack of dilated temporal convolutions (WaveNet/TCN style, residual), as
measured in ``benchmarks/results/model_speed.md``.

Input: ``cqt`` features ``[B, T, 352]`` (48 bins/octave from A0, 50 frames/s, ``log1p``
magnitudes). Layers (``C = channels``):

1. **front**: a 5x5 convolution (time x frequency) to ``front_channels`` maps at bin
   resolution, then *folded* to key resolution: the 4 bins of each key become channels
   (``[B, F, T, 352] -> [B, 4F, T, 88]``, nothing pooled away, so fine tuning survives),
   and a 1x1 convolution to C channels, batch norm, ReLU.
2. **harmonic**: a (depthwise-separable) convolution whose taps sit at each key's harmonics
   and sub-harmonics, ``HARMONIC_OFFSETS`` keys away (0, +12, +19, +24, +28, +31, +34, +36
   for partials 1–8 and -12, -19, -24 so that a key can tell it is itself the partial of a
   lower note — the octave-above ghost notes); residual.
3. **neighbours**: a 1x3 convolution across adjacent keys; residual.
4. **temporal**: ``len(dilations)`` residual blocks of a 3x1 convolution along time dilated
   by 1, 2, 4 … (receptive field ± ``sum(dilations) + 3`` frames, 1.3 s by default), each
   key on its own, weights shared by all keys.
5. **heads**: per output a 3x1 convolution to C/4, ReLU, 1x1 to one logit per key and
   frame (onset, frame, offset, velocity). The **pedal** head pools the trunk over keys
   (mean and max), runs two dilated 1-D convolutions over time and gives one logit per
   frame, ``[B, T, 1]``.

Batch norm, not instance norm: outputs do not depend on the window, so windowed inference
with ``context_frames`` of margin equals one pass over the recording.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .layers import positive
from ..specs import ACTIVATIONS, NOTE_ACTIVATIONS
from .neural import N_KEYS, TranscriptionNet

NAME = "piano"
N_BINS = 352
BINS_PER_KEY = 4
#: key offsets of the harmonic convolution's taps: partials 1..8, then sub-harmonics 2..4
HARMONIC_OFFSETS = (0, 12, 19, 24, 28, 31, 34, 36, -12, -19, -24)
OUTPUTS = ACTIVATIONS
DEFAULT_DILATIONS = (1, 2, 4, 8, 16, 32)


def receptive_frames(dilations: Sequence[int]) -> int:
    """Frames of context on each side one output frame depends on (front 2 + temporal
    blocks + head 1, pedal head 1 + 4 more)."""
    return 2 + sum(int(d) for d in dilations) + 1 + 5


class HarmonicConv(nn.Module):
    """A depthwise-separable convolution along keys with taps at ``offsets`` keys:
    ``out[c, k] = sum_j a[j, c] * z[c, k + offsets[j]] + b[c]`` with ``z = W x`` (a 1x1
    convolution mixing channels), zero beyond the keyboard (``[B, C, T, K] -> [B, C, T, K]``).

    Separable because the dense version (a 1x1 convolution over every shifted copy) costs
    ``len(offsets)`` times the channels squared per key and frame and moves ``len(offsets)``
    copies of the map through memory; this one costs one channel mix plus a few
    multiply-adds per tap (measured 8x faster on a CPU, ``benchmarks/results/model_speed.md``).
    """

    def __init__(self, channels: int, offsets: Sequence[int]):
        super().__init__()
        self.offsets = tuple(int(o) for o in offsets)
        self.reach = max(abs(o) for o in self.offsets)
        self.mix = nn.Conv2d(channels, channels, 1, bias=False)
        self.taps = nn.Parameter(torch.randn(len(self.offsets), channels, 1, 1) / len(self.offsets) ** 0.5)
        self.bias = nn.Parameter(torch.zeros(channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keys = x.shape[-1]
        z = F.pad(self.mix(x), (self.reach, self.reach))
        r = self.reach
        out = torch.addcmul(self.bias, self.taps[0], z[..., r + self.offsets[0] : r + self.offsets[0] + keys])
        for j in range(1, len(self.offsets)):
            offset = self.offsets[j]
            out = out.addcmul_(self.taps[j], z[..., r + offset : r + offset + keys])
        return out


class TemporalBlock(nn.Module):
    """Residual ``x + ReLU(BN(conv_3x1, dilated(x)))`` along time, per key."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, (3, 1), padding=(dilation, 0), dilation=(dilation, 1))
        self.norm = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.norm(self.conv(x)))


class KeyHeads(nn.Module):
    """``[B, C, T, 88] -> {key: [B, T, 88]}`` logits for each of ``keys``: per head a 3x1
    convolution to ``hidden`` channels, ReLU, and a 1x1 to one logit (the heads run as one
    convolution and one grouped convolution)."""

    def __init__(self, channels: int, keys: Sequence[str], hidden: int):
        super().__init__()
        self.keys = tuple(keys)
        n = len(self.keys)
        self.conv = nn.Conv2d(channels, n * hidden, (3, 1), padding=(1, 0))
        self.out = nn.Conv2d(n * hidden, n, 1, groups=n)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        y = self.out(torch.relu(self.conv(x)))  # [B, n, T, 88]
        return {key: y[:, i] for i, key in enumerate(self.keys)}


class PedalHead(nn.Module):
    """``[B, C, T, 88] -> [B, T, 1]`` sustain-pedal logits from the key-pooled trunk."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv1d(2 * channels, channels, 3, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, padding=4, dilation=4)
        self.out = nn.Conv1d(channels, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=-1), x.amax(dim=-1)], dim=1)  # [B, 2C, T]
        y = torch.relu(self.conv1(pooled))
        y = y + torch.relu(self.conv2(y))
        return self.out(y).transpose(1, 2)  # [B, T, 1]


class PianoNet(TranscriptionNet):
    """See the module docstring. ``forward_logits(features[B, T, 352])``."""

    outputs = OUTPUTS
    window_independent = True  # batch norm and convolutions only (see the module docstring)

    def __init__(self, channels: int = 32, front_channels: int = 8, dilations: Sequence[int] = DEFAULT_DILATIONS):
        super().__init__()
        dilations = tuple(int(d) for d in dilations)
        positive(NAME, channels=channels, front_channels=front_channels)
        if not dilations:
            positive(NAME, dilations=0)
        for d in dilations:
            positive(NAME, dilation=d)
        c = channels
        self.front = nn.Conv2d(1, front_channels, (5, 5), padding=(2, 2))
        self.project = nn.Sequential(nn.Conv2d(front_channels * BINS_PER_KEY, c, 1), nn.BatchNorm2d(c), nn.ReLU())
        self.harmonic = HarmonicConv(c, HARMONIC_OFFSETS)
        self.harmonic_norm = nn.BatchNorm2d(c)
        self.neighbours = nn.Conv2d(c, c, (1, 3), padding=(0, 1))
        self.neighbours_norm = nn.BatchNorm2d(c)
        self.temporal = nn.Sequential(*(TemporalBlock(c, d) for d in dilations))
        self.heads = KeyHeads(c, NOTE_ACTIVATIONS, max(c // 4, 4))
        self.pedal = PedalHead(c)

    def trunk(self, features: torch.Tensor) -> torch.Tensor:
        batch, frames, bins = features.shape
        x = torch.relu(self.front(features.unsqueeze(1)))  # [B, F, T, 352]
        # fold the 4 bins of each key into channels: [B, F, T, 88, 4] -> [B, 4F, T, 88]
        x = x.reshape(batch, -1, frames, N_KEYS, BINS_PER_KEY).permute(0, 1, 4, 2, 3)
        x = self.project(x.reshape(batch, -1, frames, N_KEYS))
        x = x + torch.relu(self.harmonic_norm(self.harmonic(x)))
        x = x + torch.relu(self.neighbours_norm(self.neighbours(x)))
        return self.temporal(x)

    def forward_logits(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        if not (self.training or torch.is_grad_enabled() or torch.jit.is_tracing()
                or torch.onnx.is_in_onnx_export()):
            return self._inference_logits(features)
        x = self.trunk(features)
        logits = self.heads(x)
        logits["pedal"] = self.pedal(x)
        return logits

    def _inference_logits(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """The same logits, computed the fast way for inference (:class:`InferenceTrunk`)."""
        key = tuple((id(t), t._version) for t in (*self.parameters(), *self.buffers()))
        cached = getattr(self, "_inference_cache", None)
        if cached is None or cached[0] != key:
            cached = (key, InferenceTrunk(self))
            object.__setattr__(self, "_inference_cache", cached)  # not a submodule: never saved
        x = cached[1](features)
        logits = self.heads(x)
        logits["pedal"] = self.pedal(x)
        return logits


    def exportable(self) -> nn.Module:
        """The inference path (:class:`InferenceTrunk`: batch norms folded, the harmonic taps
        as one depthwise convolution) as a module to trace: onnxruntime runs it 2.3x faster
        than the training graph, whose harmonic convolution exports as 11 slices, products and sums."""
        return InferenceNet(self)


class InferenceNet(nn.Module):
    """:meth:`PianoNet.forward` computed through :meth:`PianoNet._inference_logits`, on a
    frozen copy of the network (no parameter needs a gradient, so the folded weights trace
    as constants)."""

    def __init__(self, net: PianoNet):
        super().__init__()
        import copy

        self.net = copy.deepcopy(net).eval().requires_grad_(False)
        self.outputs = net.outputs
        with torch.no_grad():
            self.net._inference_logits(torch.zeros(1, 1, N_BINS))  # builds the trunk now, not while tracing

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return {key: torch.sigmoid(value) for key, value in self.net._inference_logits(features).items()}


def fold_batch_norm(weight: torch.Tensor, bias: torch.Tensor | None, norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weight, bias)`` of a convolution followed by ``norm`` (eval mode) as one convolution."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    folded = weight * scale.reshape(-1, *([1] * (weight.dim() - 1)))
    start = bias if bias is not None else torch.zeros_like(norm.running_mean)
    return folded, (start - norm.running_mean) * scale + norm.bias


class InferenceTrunk:
    """:meth:`PianoNet.trunk` for inference, equal to it up to float rounding and 1.4-1.6x
    faster on a CPU (``benchmarks/results/memory.md``, "The piano model's inference path"):
    batch norms folded into the convolutions before them, ReLUs and residual sums in place,
    the harmonic convolution's taps as one depthwise convolution along keys, and the maps
    after the front in ``channels_last`` layout (oneDNN's fast path for these shapes, about 4x
    for the dilated temporal convolutions). Built from the network's current weights; the
    network rebuilds it when they change."""

    def __init__(self, net: PianoNet):
        cl = torch.channels_last
        with torch.no_grad():
            self.front = net.front
            project, project_norm = net.project[0], net.project[1]
            w, self.project_bias = fold_batch_norm(project.weight, project.bias, project_norm)
            self.project_weight = w.contiguous(memory_format=cl)
            harmonic, norm = net.harmonic, net.harmonic_norm
            scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
            taps = harmonic.taps.reshape(len(harmonic.offsets), -1) * scale  # [J, C]
            self.left, right = -min(0, *harmonic.offsets), max(0, *harmonic.offsets)
            kernel = torch.zeros(taps.shape[1], 1, 1, self.left + right + 1)
            for j, offset in enumerate(harmonic.offsets):
                kernel[:, 0, 0, offset + self.left] += taps[j]
            self.right = right
            self.harmonic_kernel = kernel.contiguous(memory_format=cl)
            self.harmonic_bias = (harmonic.bias.reshape(-1) - norm.running_mean) * scale + norm.bias
            self.mix_weight = harmonic.mix.weight.contiguous(memory_format=cl)
            w, self.neighbours_bias = fold_batch_norm(net.neighbours.weight, net.neighbours.bias, net.neighbours_norm)
            self.neighbours_weight = w.contiguous(memory_format=cl)
            self.temporal = []
            for block in net.temporal:
                w, b = fold_batch_norm(block.conv.weight, block.conv.bias, block.norm)
                self.temporal.append((w.contiguous(memory_format=cl), b, block.conv.padding, block.conv.dilation))

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        batch, frames, _ = features.shape
        x = torch.relu_(self.front(features.unsqueeze(1)))
        x = x.reshape(batch, -1, frames, N_KEYS, BINS_PER_KEY).permute(0, 1, 4, 2, 3)
        x = x.reshape(batch, -1, frames, N_KEYS).contiguous(memory_format=torch.channels_last)
        x = torch.relu_(F.conv2d(x, self.project_weight, self.project_bias))
        z = F.pad(F.conv2d(x, self.mix_weight), (self.left, self.right))
        x = x.add_(torch.relu_(F.conv2d(z, self.harmonic_kernel, self.harmonic_bias, groups=z.shape[1])))
        x = x.add_(torch.relu_(F.conv2d(x, self.neighbours_weight, self.neighbours_bias, padding=(0, 1))))
        for weight, bias, padding, dilation in self.temporal:
            x = x.add_(torch.relu_(F.conv2d(x, weight, bias, padding=padding, dilation=dilation)))
        return x.contiguous()


def build(channels: int = 32, front_channels: int = 8, dilations: Sequence[int] = DEFAULT_DILATIONS) -> PianoNet:
    """A freshly initialised :class:`PianoNet` (the ``network`` of the ``piano`` spec)."""
    return PianoNet(channels=channels, front_channels=front_channels, dilations=dilations)
