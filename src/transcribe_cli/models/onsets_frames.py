"""Onsets and Frames (Hawthorne et al., ISMIR 2018), in the larger form of "Enabling
factorized piano music modeling and generation with the MAESTRO dataset" (Hawthorne et
al., ICLR 2019), laid out as in the PyTorch port github.com/jongwook/onsets-and-frames.

Input: ``logmel`` features ``[B, T, 229]``. Output logits ``[B, T, 88]`` for onset,
frame, offset and velocity. With ``c`` = ``model_complexity`` (the paper's setting is 48)
and ``d = 16 c``:

* onset and offset: acoustic model (:class:`~.layers.MelConvStack`, ``c`` conv channels,
  ``d`` features) -> BiLSTM (``d / 2`` units per direction) -> linear to 88;
* frame: acoustic model -> linear to 88 -> sigmoid (the "activation"); then the onset and
  offset *probabilities*, detached so that the frame loss does not train the onset and
  offset stacks (as in the paper), are concatenated with it ([B, T, 3 x 88]) and run
  through a BiLSTM (``d / 2`` units) -> linear to 88;
* velocity: acoustic model -> linear to 88 (no LSTM, as in the paper).

Presets: ``full`` (c = 48, ~26.5 M parameters, the MAESTRO paper's size) and ``small``
(c = 16, ~3.2 M, trainable on a CPU); ``model_complexity`` > 0 overrides the preset.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import BiLSTM, MelConvStack, choice, positive
from ..specs import NOTE_ACTIVATIONS
from .neural import N_KEYS, TranscriptionNet

NAME = "onsets-frames"
N_BINS = 229
PRESETS = {"full": 48, "small": 16}


class OnsetsAndFrames(TranscriptionNet):
    """Onsets and Frames; see the module docstring. ``forward_logits(features[B, T, 229])``."""

    outputs = NOTE_ACTIVATIONS

    def __init__(self, preset: str = "full", model_complexity: int = 0):
        super().__init__()
        choice(NAME, "preset", preset, tuple(PRESETS))
        complexity = model_complexity or PRESETS[preset]
        positive(NAME, model_complexity=complexity)
        size = 16 * complexity
        hidden = size // 2

        def acoustic() -> MelConvStack:
            return MelConvStack(N_BINS, size, complexity)

        def with_lstm() -> nn.Sequential:
            return nn.Sequential(acoustic(), BiLSTM(size, hidden), nn.Linear(2 * hidden, N_KEYS))

        self.onset_stack = with_lstm()
        self.offset_stack = with_lstm()
        self.frame_stack = nn.Sequential(acoustic(), nn.Linear(size, N_KEYS))
        self.combined_stack = nn.Sequential(BiLSTM(3 * N_KEYS, hidden), nn.Linear(2 * hidden, N_KEYS))
        self.velocity_stack = nn.Sequential(acoustic(), nn.Linear(size, N_KEYS))

    def forward_logits(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        onset = self.onset_stack(features)
        offset = self.offset_stack(features)
        activation = torch.sigmoid(self.frame_stack(features))
        combined = torch.cat([torch.sigmoid(onset).detach(), torch.sigmoid(offset).detach(), activation], dim=-1)
        return {
            "onset": onset,
            "frame": self.combined_stack(combined),
            "offset": offset,
            "velocity": self.velocity_stack(features),
        }


def build(preset: str = "full", model_complexity: int = 0) -> OnsetsAndFrames:
    """A freshly initialised :class:`OnsetsAndFrames` (the ``network`` of its spec)."""
    return OnsetsAndFrames(preset=preset, model_complexity=model_complexity)
