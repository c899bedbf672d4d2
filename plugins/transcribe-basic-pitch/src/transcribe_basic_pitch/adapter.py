"""basic-pitch's model and note creation, run through transcribe-cli's pipeline.

The peer's code comes from its own wheel (:mod:`transcribe_cli.peers`): the model is the
peer's :class:`basic_pitch.inference.Model` on the ONNX file, windowed with the peer's own
``window_audio_file`` / ``unwrap_output`` exactly as ``run_inference`` does (2 s windows,
30 frames of overlap, half of it discarded on each side), and notes come from the peer's
``model_output_to_notes`` — so a recording gives the peer's own notes.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from transcribe_cli.errors import TranscribeError
from transcribe_cli.notes import Note

from . import PEER, WEIGHTS

#: run_inference's overlap between consecutive windows, in output frames
N_OVERLAPPING_FRAMES = 30


@contextmanager
def _quiet_imports() -> Iterator[None]:
    """basic-pitch logs a warning for each backend it does not find (TensorFlow, CoreML,
    TFLite) when imported; we only use ONNX, so those are noise."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def peer() -> Any:
    """The peer's ``basic_pitch`` package with ``inference``, ``note_creation`` and ``constants`` imported."""
    from transcribe_cli.peers import activate, fetch

    activate(fetch(PEER, WEIGHTS.sha256))
    with _quiet_imports():
        import basic_pitch
        import basic_pitch.constants
        import basic_pitch.inference
        import basic_pitch.note_creation
    if not basic_pitch.ONNX_PRESENT:
        raise TranscribeError("basic-pitch needs onnxruntime, which does not import here",
                              "pip install onnxruntime")
    return basic_pitch


def passthrough() -> Any:
    """The ``basic-pitch-audio`` frontend: basic-pitch takes audio, its CQT is in the model."""
    import torch

    return torch.nn.Identity()


class BasicPitchModel:
    """basic-pitch's ONNX model over a whole recording (``ModelSpec.windowing == "model"``)."""

    def __init__(self, weights_path: Path | None = None, **options: Any):
        if options:
            raise TranscribeError(f"model basic-pitch takes no options (got {', '.join(sorted(options))})")
        self.bp = peer()
        if weights_path is None:
            from transcribe_cli.peers import weights_file

            weights_path = weights_file(WEIGHTS, name="basic-pitch")
        self.weights_path = Path(weights_path)
        with _quiet_imports():
            self.model = self.bp.inference.Model(self.weights_path)

    # the pipeline moves and switches models; onnxruntime runs on the CPU provider the peer picks
    def to(self, device: Any) -> BasicPitchModel:
        return self

    def eval(self) -> BasicPitchModel:
        return self

    def activations(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        """``run_inference`` on audio already loaded at 22 050 Hz: frame, onset ``[T, 88]``, contour ``[T, 264]``."""
        inference, constants = self.bp.inference, self.bp.constants
        overlap_len = N_OVERLAPPING_FRAMES * constants.FFT_HOP
        hop_size = constants.AUDIO_N_SAMPLES - overlap_len
        audio = np.asarray(audio, dtype=np.float32)
        padded = np.concatenate([np.zeros(overlap_len // 2, dtype=np.float32), audio])
        output: dict[str, list[np.ndarray]] = {"note": [], "onset": [], "contour": []}
        for window, _ in inference.window_audio_file(padded, hop_size):
            for key, value in self.model.predict(np.expand_dims(window, axis=0)).items():
                output[key].append(value)
        unwrapped = {key: inference.unwrap_output(np.concatenate(values), audio.shape[0], N_OVERLAPPING_FRAMES)
                     for key, values in output.items()}
        return {"frame": unwrapped["note"], "onset": unwrapped["onset"], "contour": unwrapped["contour"]}


def decode(
    activations: dict[str, np.ndarray],
    frame_rate: float,
    *,
    onset_threshold: float,
    frame_threshold: float,
    minimum_note_length: float,
    minimum_frequency: float,
    maximum_frequency: float,
    melodia_trick: bool,
) -> list[Note]:
    """basic-pitch's ``model_output_to_notes`` (the peer maps frames to seconds itself, so
    ``frame_rate`` is not used); velocities are the peer's MIDI ones, ``round(127 * amplitude)``."""
    for name, value in (("onset_threshold", onset_threshold), ("frame_threshold", frame_threshold)):
        if not 0.0 <= value <= 1.0:
            raise TranscribeError(f"decoder basic-pitch: {name} must be in [0, 1], not {value}")
    if minimum_note_length < 0 or minimum_frequency < 0 or maximum_frequency < 0:
        raise TranscribeError("decoder basic-pitch: minimum_note_length and the frequencies must not be negative")
    bp = peer()
    constants = bp.constants
    frames = np.asarray(activations["frame"], dtype=np.float32)
    onsets = np.asarray(activations["onset"], dtype=np.float32)
    if frames.shape[0] == 0:
        return []
    contour = activations.get("contour")
    if contour is None:  # another model's activations: no pitch contour, none needed without pitch bends
        contour = np.zeros((frames.shape[0], 3 * frames.shape[1]), dtype=np.float32)
    min_note_len = int(np.round(minimum_note_length / 1000 * (constants.AUDIO_SAMPLE_RATE / constants.FFT_HOP)))
    _, events = bp.note_creation.model_output_to_notes(
        {"note": frames, "onset": onsets, "contour": np.asarray(contour, dtype=np.float32)},
        onset_thresh=onset_threshold,
        frame_thresh=frame_threshold,
        min_note_len=min_note_len,
        min_freq=minimum_frequency or None,
        max_freq=maximum_frequency or None,
        include_pitch_bends=False,  # a Note has no pitch bends; they do not change the notes
        melodia_trick=melodia_trick,
    )
    notes = []
    for start, end, pitch, amplitude, _bends in events:
        if end > start:
            notes.append(Note(float(start), float(end), int(pitch), max(1, min(127, int(np.round(127 * amplitude))))))
    return notes
