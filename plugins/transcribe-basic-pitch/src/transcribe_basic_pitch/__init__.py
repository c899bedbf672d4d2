"""transcribe-cli plugin: Spotify's basic-pitch (Bittner et al., ICASSP 2022) through our pipeline.

Registers, cheaply (nothing is imported or fetched until a model is built):

* frontend ``basic-pitch-audio`` — 22 050 Hz, 256-sample hop: a passthrough, basic-pitch
  computes its own harmonic CQT inside the model;
* model ``basic-pitch`` — the peer's ONNX model (``nmp.onnx`` from the basic-pitch 0.4.0
  wheel), run over the recording with the peer's own windowing, so its activations equal
  ``basic_pitch.inference.run_inference``'s; activation keys ``frame`` (basic-pitch's
  ``note``), ``onset`` and ``contour``;
* decoder ``basic-pitch`` — the peer's ``model_output_to_notes`` with its options.

Heavy code lives in :mod:`transcribe_basic_pitch.adapter`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from transcribe_cli.hookspecs import hookimpl
from transcribe_cli.specs import DecoderSpec, FrontendSpec, ModelSpec, WeightsSource

__version__ = "0.1.0"

PEER = "basic-pitch==0.4.0"
#: sha256 of basic_pitch-0.4.0-py2.py3-none-any.whl on PyPI
PEER_SHA256 = "738adb503aae7fdfc7d1e1511aa0ce35052315f260a19531ef4c356708425db0"
ONNX_MEMBER = "basic_pitch/saved_models/icassp_2022/nmp.onnx"
SAMPLE_RATE = 22050  # basic_pitch.constants.AUDIO_SAMPLE_RATE
HOP = 256  # basic_pitch.constants.FFT_HOP
WEIGHTS = WeightsSource(peer=PEER, filename=ONNX_MEMBER, sha256=PEER_SHA256)

#: ``basic_pitch.inference.predict``'s defaults; 0 Hz means no frequency limit (the peer's None)
DECODER_OPTIONS: dict[str, Any] = {
    "onset_threshold": 0.5,
    "frame_threshold": 0.3,
    "minimum_note_length": 127.70,  # milliseconds
    "minimum_frequency": 0.0,
    "maximum_frequency": 0.0,
    "melodia_trick": True,
}


def build_frontend() -> Any:
    from .adapter import passthrough

    return passthrough()


def build_model(weights_path: Path | None = None, **options: Any) -> Any:
    from .adapter import BasicPitchModel

    return BasicPitchModel(weights_path, **options)


def build_decoder() -> Callable[..., Any]:
    from .adapter import decode

    return decode


@hookimpl
def register_frontends(register: Callable[[Any], None]) -> None:
    register(FrontendSpec(
        name="basic-pitch-audio", factory=build_frontend, sample_rate=SAMPLE_RATE, hop_length=HOP, n_bins=1,
        description="basic-pitch's input: 22.05 kHz mono audio (its CQT is inside the model).",
    ))


@hookimpl
def register_models(register: Callable[[Any], None]) -> None:
    register(ModelSpec(
        name="basic-pitch",
        family="basic-pitch",
        factory=build_model,
        frontend="basic-pitch-audio",
        decoder="basic-pitch",
        description=(
            "Spotify's basic-pitch (ICASSP 2022): a lightweight polyphonic note and pitch-bend model "
            "for any instrument; ONNX weights from the basic-pitch 0.4.0 wheel, run on onnxruntime (CPU)."
        ),
        weights=WEIGHTS,
        outputs=("onset", "frame", "contour"),
        context_frames=0,
        windowing="model",
    ))


@hookimpl
def register_decoders(register: Callable[[Any], None]) -> None:
    register(DecoderSpec(
        name="basic-pitch",
        factory=build_decoder,
        requires=("onset", "frame"),
        options=DECODER_OPTIONS,
        description=(
            "basic-pitch's own note creation (onset peaks, frame tracking, melodia trick); minimum_note_length "
            "in ms, minimum/maximum_frequency in Hz (0: no limit)."
        ),
    ))
