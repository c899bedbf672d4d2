"""Building blocks shared by the neural models (torch only; no registry imports).

Shape conventions: a *sequence* is ``[N, T, C]`` (batch, time, channels); an *image* is
``[B, C, T, F]`` (batch, channels, time, frequency), as ``torch.nn.Conv2d`` expects.
Everything here exports to ONNX (``torch.onnx.export(..., dynamo=False, opset_version=17)``)
with dynamic batch and time axes: no Python control flow on tensor shapes.
"""

from __future__ import annotations

import torch
from torch import nn

from transcribe_cli.errors import OptionError


class BiLSTM(nn.Module):
    """Bidirectional LSTM over time: ``[N, T, input_size] -> [N, T, 2 * hidden]``."""

    def __init__(self, input_size: int, hidden: int, layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.output_size = 2 * hidden
        self.rnn = nn.LSTM(
            input_size, hidden, num_layers=layers, batch_first=True, bidirectional=True,
            dropout=dropout if layers > 1 else 0.0,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


class PitchwiseLSTM(nn.Module):
    """HPPNet's FG-LSTM head: one BiLSTM along time *per key*, weights shared by all keys,
    then a linear layer to one logit: ``[B, C, T, K] -> [B, T, K]``.

    The keys are folded into the batch (``[B * K, T, C]``), so the LSTM never mixes keys:
    the head is pitch-invariant by construction. Without gradients the keys run
    ``key_chunk`` at a time: the LSTM's input copy, gate projections and outputs (~130 MB
    for 88 keys x 1,344 frames at C = 64) exist for a chunk of keys only; each key's result
    is the same (the key count is fixed, so this also holds in an exported graph).
    """

    def __init__(self, channels: int, hidden: int, key_chunk: int = 22):
        super().__init__()
        self.lstm = BiLSTM(channels, hidden)
        self.linear = nn.Linear(self.lstm.output_size, 1)
        self.key_chunk = key_chunk

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keys = x.shape[-1]
        if torch.is_grad_enabled() or keys <= self.key_chunk:
            return self.keys_logits(x)
        return torch.cat([self.keys_logits(x[..., start : start + self.key_chunk])
                          for start in range(0, keys, self.key_chunk)], dim=-1)

    def keys_logits(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, T, K] -> [B, T, K]``, all ``K`` keys in one LSTM batch."""
        batch, channels, frames, keys = x.shape
        x = x.permute(0, 3, 2, 1).reshape(batch * keys, frames, channels)
        x = self.linear(self.lstm(x))  # [B * K, T, 1]
        return x.reshape(batch, keys, frames).transpose(1, 2)


class MelConvStack(nn.Module):
    """The acoustic model of Onsets and Frames (Kelz et al. 2016 as used by Hawthorne et al.):
    ``[B, T, F] -> [B, T, output_size]``.

    Three 3x3 convolutions (``channels``, ``channels``, ``2 * channels``; batch norm + ReLU),
    max-pooling by 2 along frequency after the second and third, dropout 0.25, then a
    fully connected layer on the flattened (channels x frequency) map + dropout 0.5.
    The paper's ``model_complexity`` c is ``channels = c`` and ``output_size = 16 c``.
    """

    def __init__(self, n_bins: int, output_size: int, channels: int):
        super().__init__()
        wide = 2 * channels

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.cnn = nn.Sequential(
            *block(1, channels),
            *block(channels, channels),
            nn.MaxPool2d((1, 2)),
            nn.Dropout(0.25),
            *block(channels, wide),
            nn.MaxPool2d((1, 2)),
            nn.Dropout(0.25),
        )
        self.fc = nn.Sequential(nn.Linear(wide * (n_bins // 4), output_size), nn.Dropout(0.5))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.cnn(features.unsqueeze(1))  # [B, C, T, F / 4]
        batch, channels, frames, bins = x.shape
        x = x.transpose(1, 2).reshape(batch, frames, channels * bins)
        return self.fc(x)


def positive(model: str, **values: int) -> None:
    """Raise a one-line :class:`OptionError` unless every architecture value is a positive int."""
    for key, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise OptionError(f"model {model!r}: architecture option {key} must be a positive integer, got {value!r}")


def choice(model: str, key: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise a one-line :class:`OptionError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise OptionError(f"model {model!r}: unknown {key} {value!r}", f"choose one of: {', '.join(choices)}")
