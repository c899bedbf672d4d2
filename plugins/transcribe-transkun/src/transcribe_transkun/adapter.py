"""Transkun's model and decoding, run through transcribe-cli's pipeline.

The peer's code comes from its own wheel (:mod:`transcribe_cli.peers`) and is used the way
its CLI (``transkun.transcribe.main``) uses it: the model class and config from the wheel's
``2.0.conf`` via ``moduleconf``, the ``2.0.pt`` state dict, then ``model.transcribe(x)`` on
the whole recording with the peer's segmenting and semi-CRF decoding. So a recording gives
the peer's own notes and pedals.

torchaudio: Transkun's mel spectrogram calls ``torchaudio.functional.melscale_fbanks`` once,
to initialise a buffer (``framewiseFeatureExtractor.freq2mels``) that the checkpoint then
overwrites. When torchaudio does not import (not installed, or a build for another torch
whose extension fails to load), the model is built with a stand-in module that gives that
buffer its shape, only while it is built; :class:`TranskunModel` then checks the checkpoint
did supply the filterbank.
"""

from __future__ import annotations

import sys
import types
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from transcribe_cli.errors import TranscribeError
from transcribe_cli.notes import Note, Pedal

from . import CONF_MEMBER, PEER, WEIGHTS

MEL_BUFFER = "framewiseFeatureExtractor.freq2mels"
SUSTAIN = -64  # Transkun's pitch for sustain-pedal events (the negated controller number)


def peer_root() -> Path:
    from transcribe_cli.peers import activate, fetch

    root = fetch(PEER, WEIGHTS.sha256)
    activate(root)
    return root


def _torchaudio_imports() -> bool:
    try:
        import torchaudio.functional  # noqa: F401
    except Exception:  # ImportError, or OSError from an extension built for another torch
        sys.modules.pop("torchaudio", None)
        sys.modules.pop("torchaudio.functional", None)
        return False
    return True


@contextmanager
def mel_filterbank_standin() -> Iterator[None]:
    """While Transkun builds its model: a ``torchaudio`` whose ``melscale_fbanks`` returns a
    zero filterbank of the right shape, if the real torchaudio does not import."""
    if _torchaudio_imports():
        yield
        return
    import torch

    def melscale_fbanks(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int,
                        norm: str | None = None, mel_scale: str = "htk") -> Any:
        return torch.zeros(n_freqs, n_mels)  # overwritten by the checkpoint's filterbank

    module = types.ModuleType("torchaudio")
    module.functional = types.SimpleNamespace(melscale_fbanks=melscale_fbanks)  # type: ignore[attr-defined]
    saved = sys.modules.get("torchaudio")
    sys.modules["torchaudio"] = module
    try:
        yield
    finally:
        if saved is None:
            sys.modules.pop("torchaudio", None)
        else:
            sys.modules["torchaudio"] = saved


def load_peer_model(weights_path: Path | None = None, device: Any = "cpu") -> Any:
    """Transkun 2.0 built and loaded exactly as ``transkun.transcribe.main`` does."""
    import moduleconf
    import torch

    root = peer_root()
    weights_path = Path(weights_path) if weights_path is not None else root / WEIGHTS.filename
    conf_manager = moduleconf.parseFromFile(str(root / CONF_MEMBER))
    transkun_class = conf_manager["Model"].module.TransKun
    conf = conf_manager["Model"].config
    checkpoint = torch.load(weights_path, map_location=device, weights_only=False)
    state = checkpoint["best_state_dict"] if "best_state_dict" in checkpoint else checkpoint["state_dict"]
    if MEL_BUFFER not in state:
        raise TranscribeError(f"the Transkun checkpoint {weights_path} has no {MEL_BUFFER}",
                              "use the 2.0 weights of the transkun wheel")
    with mel_filterbank_standin():
        model = transkun_class(conf=conf).to(device)
    model.load_state_dict(state, strict=False)
    return model.eval()


class TranskunModel:
    """Transkun over a whole recording (``ModelSpec.windowing == "model"``)."""

    def __init__(self, weights_path: Path | None = None, *, segment_size: float, segment_hop: float):
        if not 0 < segment_hop <= segment_size:
            raise TranscribeError(f"model transkun: need 0 < segment_hop <= segment_size, got {segment_hop} and "
                                  f"{segment_size}", "the defaults are segment_size=16 segment_hop=8")
        self.segment_size, self.segment_hop = float(segment_size), float(segment_hop)
        self.net = load_peer_model(weights_path)
        self.device: Any = "cpu"

    def to(self, device: Any) -> TranskunModel:
        self.net = self.net.to(device)
        self.device = device
        return self

    def eval(self) -> TranskunModel:
        self.net.eval()
        return self

    def transcribe(self, audio: np.ndarray) -> list[Any]:
        """The peer's note and pedal events (``transkun.Data.Note``) for mono ``audio`` at 44.1 kHz."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[:, None].to(self.device)
        with torch.no_grad(), warnings.catch_warnings():
            # the peer's layers call torch.utils.checkpoint, which warns at inference time
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.(utils\.checkpoint|_dynamo)")
            return self.net.transcribe(x, stepInSecond=self.segment_hop, segmentSizeInSecond=self.segment_size,
                                       discardSecondHalf=False)

    def activations(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        from transcribe_cli.labels import pedal_roll

        from . import HOP, SAMPLE_RATE

        events = self.transcribe(audio)
        rows = [(e.start, e.end, e.pitch, e.velocity) for e in events if e.pitch > 0]
        pedals = [Pedal(e.start, e.end) for e in events if e.pitch == SUSTAIN and e.end > e.start]
        n_frames = audio.shape[0] // HOP + 1
        return {
            "notes": np.asarray(rows, dtype=np.float64).reshape(-1, 4),
            "pedal": pedal_roll(pedals, SAMPLE_RATE / HOP, n_frames),
        }


def decode(activations: dict[str, np.ndarray], frame_rate: float) -> list[Note]:
    """Transkun's decoded notes (rows onset, offset, pitch, velocity) as :class:`Note`."""
    rows = np.asarray(activations["notes"], dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != 4:
        raise TranscribeError(f"decoder transkun takes Transkun's note rows [N, 4], not an array of shape {rows.shape}",
                              "use it with --model transkun")
    return [Note(float(s), float(e), int(p), int(min(127, max(1, round(v))))) for s, e, p, v in rows if e > s]
