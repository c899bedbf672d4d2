"""transcribe-cli plugin: Transkun (Yan & Duan, 2021/2024), piano notes and pedals through our pipeline.

Registers, cheaply (nothing is imported or fetched until a model is built):

* frontend ``transkun-audio`` — 44 100 Hz, 1 024-sample hop: a passthrough, Transkun computes
  its own mel spectrogram inside the model;
* model ``transkun`` — the peer's Transformer with its pretrained 2.0 weights (``2.0.pt``
  from the transkun 2.0.1 wheel), run with the peer's own segmenting (``segment_size`` and
  ``segment_hop`` seconds, the model options) and its semi-CRF decoding. Activations: ``notes``
  ``[N, 4]`` (onset s, offset s, pitch, velocity) and the sustain pedal ``pedal`` ``[T, 1]`` in
  {0, 1} at the frame rate (the pipeline's pedal convention);
* decoder ``transkun`` — turns those note rows into notes.

Heavy code lives in :mod:`transcribe_transkun.adapter`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from transcribe_cli.hookspecs import hookimpl
from transcribe_cli.specs import DecoderSpec, FrontendSpec, ModelSpec, WeightsSource

__version__ = "0.1.0"

PEER = "transkun==2.0.1"
#: sha256 of transkun-2.0.1-py3-none-any.whl on PyPI
PEER_SHA256 = "7d7f5bf88b0d21f7da0415b089cff3bcbcbdda04e1a3c9719964947942c859fe"
WEIGHTS_MEMBER = "transkun/pretrained/2.0.pt"
CONF_MEMBER = "transkun/pretrained/2.0.conf"
SAMPLE_RATE = 44100  # the 2.0 conf's fs
HOP = 1024  # the 2.0 conf's hopSize
WEIGHTS = WeightsSource(peer=PEER, filename=WEIGHTS_MEMBER, sha256=PEER_SHA256)

#: the 2.0 conf's segmentSizeInSecond / segmentHopSizeInSecond (what the peer's CLI uses by default)
MODEL_OPTIONS: dict[str, Any] = {"segment_size": 16.0, "segment_hop": 8.0}


def build_frontend() -> Any:
    import torch

    return torch.nn.Identity()


def build_model(weights_path: Path | None = None, **options: Any) -> Any:
    from .adapter import TranskunModel

    return TranskunModel(weights_path, **options)


def build_decoder() -> Callable[..., Any]:
    from .adapter import decode

    return decode


@hookimpl
def register_frontends(register: Callable[[Any], None]) -> None:
    register(FrontendSpec(
        name="transkun-audio", factory=build_frontend, sample_rate=SAMPLE_RATE, hop_length=HOP, n_bins=1,
        description="Transkun's input: 44.1 kHz mono audio (its mel spectrogram is inside the model).",
    ))


@hookimpl
def register_models(register: Callable[[Any], None]) -> None:
    register(ModelSpec(
        name="transkun",
        family="transkun",
        factory=build_model,
        frontend="transkun-audio",
        decoder="transkun",
        description=(
            "Transkun 2.0 (Yan & Duan): a Transformer scoring note intervals, decoded with a neural semi-CRF; "
            "piano notes with velocities and sustain-pedal intervals; weights from the transkun 2.0.1 wheel."
        ),
        weights=WEIGHTS,
        options=MODEL_OPTIONS,
        outputs=("notes", "pedal"),
        context_frames=0,
        windowing="model",
    ))


@hookimpl
def register_decoders(register: Callable[[Any], None]) -> None:
    register(DecoderSpec(
        name="transkun",
        factory=build_decoder,
        requires=("notes",),
        description="Transkun's notes as decoded by its semi-CRF (rows of onset, offset, pitch, velocity).",
    ))
