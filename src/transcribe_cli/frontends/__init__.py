"""Built-in spectrogram frontends: ``cqt``, ``vqt`` and ``logmel``.

This module only *describes* them (no torch import here); each spec's factory imports
:mod:`.constant_q` or :mod:`.logmel` and builds the ``torch.nn.Module`` when called. ``cqt``
and ``vqt`` also have a ``numpy_factory`` (:mod:`.constant_q_numpy`, no torch) for inference
under ``--runtime numpy``.
Conventions shared by all of them (framing, the ``log1p`` compression and its inverse
``frontend.linear``) are documented in :mod:`.base`.

Settings:

* ``cqt`` — 16 kHz, hop 320 (20 ms, 50 frames/s), fmin 27.5 Hz (A0), 48 bins/octave,
  352 bins (A0 … ~4.35 kHz): the HPPNet setting. 440 Hz is bin 192.
* ``vqt`` — 22,050 Hz, hop 512 (23.2 ms, ~43 frames/s; a power of two, so every octave can
  be decimated without changing the frame grid), fmin 55 Hz (A1), 36 bins/octave, 7 octaves
  = 252 bins, ``gamma`` 53 Hz: the PitchVis setting. 440 Hz is bin 108.
* ``logmel`` — 16 kHz, n_fft 2048, hop 512 (32 ms), 229 Slaney mel bands from 30 Hz to 8 kHz:
  the Onsets & Frames setting (mel-filtered STFT *magnitude*, ``power=1``).

``log_gain`` (the only option) defaults to :data:`DEFAULT_LOG_GAIN` = 1000: on peak-normalised
(0.9) music the median magnitude of non-silent frames is about 0.01–0.2 for all three
frontends and the loudest bins about 3–30, so ``log_gain * magnitude`` spans ~10 … 3·10^4 —
the logarithmic regime of ``log1p`` — while bins more than ~70 dB below the peaks fall in its
linear part and shrink towards 0. Features reach about 10–11 for full-scale tones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from ..hookspecs import hookimpl
from ..specs import FrontendSpec, Option, option_defaults

#: gain inside ``log1p(log_gain * magnitude)``, shared by the built-in frontends (see above)
DEFAULT_LOG_GAIN = 1000.0

CQT_SETTINGS: Mapping[str, Any] = MappingProxyType(
    {"sample_rate": 16_000, "hop_length": 320, "fmin": 27.5, "n_bins": 352, "bins_per_octave": 48, "gamma": 0.0}
)
VQT_SETTINGS: Mapping[str, Any] = MappingProxyType(
    {"sample_rate": 22_050, "hop_length": 512, "fmin": 55.0, "n_bins": 252, "bins_per_octave": 36, "gamma": 53.0}
)
LOGMEL_SETTINGS: Mapping[str, Any] = MappingProxyType(
    {"sample_rate": 16_000, "n_fft": 2048, "hop_length": 512, "n_mels": 229, "fmin": 30.0, "fmax": 8000.0}
)

#: the options every built-in frontend accepts
FRONTEND_OPTIONS: Mapping[str, Option] = MappingProxyType({
    "log_gain": Option(DEFAULT_LOG_GAIN, "gain inside log1p(log_gain * magnitude)", positive=True),
})


def _checked_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    from ..options import resolve_options

    return resolve_options(name, FRONTEND_OPTIONS, options, kind="frontend")


def build_cqt(**options: Any) -> Any:
    """The ``cqt`` frontend (a :class:`~.constant_q.ConstantQ` with :data:`CQT_SETTINGS`)."""
    from .constant_q import ConstantQ

    return ConstantQ(**CQT_SETTINGS, **_checked_options("cqt", options))


def build_vqt(**options: Any) -> Any:
    """The ``vqt`` frontend (a :class:`~.constant_q.ConstantQ` with :data:`VQT_SETTINGS`)."""
    from .constant_q import ConstantQ

    return ConstantQ(**VQT_SETTINGS, **_checked_options("vqt", options))


def build_cqt_numpy(**options: Any) -> Any:
    """The ``cqt`` frontend in numpy, without torch (a :class:`~.constant_q_numpy.NumpyConstantQ`)."""
    from .constant_q_numpy import NumpyConstantQ

    return NumpyConstantQ(**CQT_SETTINGS, **_checked_options("cqt", options))


def build_vqt_numpy(**options: Any) -> Any:
    """The ``vqt`` frontend in numpy, without torch (a :class:`~.constant_q_numpy.NumpyConstantQ`)."""
    from .constant_q_numpy import NumpyConstantQ

    return NumpyConstantQ(**VQT_SETTINGS, **_checked_options("vqt", options))


def build_logmel(**options: Any) -> Any:
    """The ``logmel`` frontend (a :class:`~.logmel.LogMel` with :data:`LOGMEL_SETTINGS`)."""
    from .logmel import LogMel

    return LogMel(**LOGMEL_SETTINGS, **_checked_options("logmel", options))


def builtin_frontend_specs() -> list[FrontendSpec]:
    """Specs of the built-in frontends (cheap: nothing is built)."""
    entries: list[tuple[str, Callable[..., Any], Callable[..., Any] | None, Mapping[str, Any], int, str]] = [
        (
            "cqt",
            build_cqt,
            build_cqt_numpy,
            CQT_SETTINGS,
            CQT_SETTINGS["n_bins"],
            "constant-Q, 16 kHz, 20 ms hop, A0 + 352 bins at 48/octave (HPPNet)",
        ),
        (
            "vqt",
            build_vqt,
            build_vqt_numpy,
            VQT_SETTINGS,
            VQT_SETTINGS["n_bins"],
            "variable-Q (gamma 53 Hz), 22.05 kHz, hop 512, A1 + 252 bins at 36/octave (PitchVis)",
        ),
        (
            "logmel",
            build_logmel,
            None,
            LOGMEL_SETTINGS,
            LOGMEL_SETTINGS["n_mels"],
            "log-mel, 16 kHz, n_fft 2048, hop 512, 229 bands 30 Hz-8 kHz (Onsets & Frames)",
        ),
    ]
    return [
        FrontendSpec(
            name=name,
            factory=factory,
            sample_rate=settings["sample_rate"],
            hop_length=settings["hop_length"],
            n_bins=n_bins,
            description=description,
            options=option_defaults(FRONTEND_OPTIONS),
            option_table=FRONTEND_OPTIONS,
            numpy_factory=numpy_factory,
        )
        for name, factory, numpy_factory, settings, n_bins, description in entries
    ]


@hookimpl
def register_frontends(register: Callable[[Any], None]) -> None:
    """Register the built-in ``cqt``, ``vqt`` and ``logmel`` frontends."""
    for spec in builtin_frontend_specs():
        register(spec)
