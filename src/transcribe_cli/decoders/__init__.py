"""Built-in decoders: activations → notes.

This is the plugin's registration module: it must stay cheap to import (no numpy, no
torch). Each decoder lives in its own module, imported only when its ``factory`` is
called. The option tables below are the single source of truth for every decoder's
accepted options, defaults (whose types drive ``--option key=value`` parsing), help
text and value constraints; :func:`transcribe_cli.options.resolve_options`
validates against them (:class:`transcribe_cli.specs.Option` is every plugin's option type).

Shared conventions (see :mod:`transcribe_cli.decoders.common`): activations are arrays
``[T, 88]`` in [0, 1]; key index ``k`` is MIDI pitch ``21 + k``; frame ``t`` is time
``t / frame_rate`` seconds; an activation is *active* when it is strictly above its
threshold; a note covering frames ``[s, e)`` has onset ``s / frame_rate`` and offset
``e / frame_rate``.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from transcribe_cli.hookspecs import hookimpl
from transcribe_cli.specs import DecoderSpec, Option, option_defaults


def _threshold(what: str, default: float = 0.5) -> Option:
    return Option(default, f"{what} activation counts as active when strictly above this", 0.0, 1.0)


_VELOCITY = Option(64, "MIDI velocity used when there is no velocity activation", 1, 127)

ONSET_PEAKS_OPTIONS: dict[str, Option] = {
    "onset_threshold": _threshold("onset"),
    "frame_threshold": _threshold("frame"),
    "offset_threshold": _threshold("offset"),
    "peak_window": Option(
        2, "an onset (or offset) peak must be the maximum within ± this many frames", 1, 1000
    ),
    "confirm_frames": Option(
        2,
        "keep an onset only if the frame activation is active at it or within this many "
        "frames after it",
        0,
        1000,
    ),
    "min_note_length": Option(0.0, "drop notes shorter than this many seconds (0 = keep all)", 0.0),
    "harmonic_ratio": Option(
        0.0,
        "drop an onset peak weaker than this times the strongest onset within ± peak_window frames "
        "12, 19, 24 or 28 keys below (whose 2nd-5th partial it is: an overtone ghost); 0 = off",
        0.0,
        1.0,
    ),
    "refine_onsets": Option(
        True, "sub-frame onset times by parabolic interpolation of the onset peak"
    ),
    "velocity": _VELOCITY,
}

ONSETS_FRAMES_OPTIONS: dict[str, Option] = {
    "onset_threshold": _threshold("onset"),
    "frame_threshold": _threshold("frame (and onset, for sustaining a note)"),
    "min_note_length": Option(0.0, "drop notes shorter than this many seconds (0 = keep all)", 0.0),
    "velocity": _VELOCITY,
}

FRAME_THRESHOLD_OPTIONS: dict[str, Option] = {
    "threshold": _threshold("frame"),
    "median_frames": Option(
        3, "median filter length along time, in frames (odd; 1 = off)", 1, 1001, odd=True
    ),
    "gap_frames": Option(0, "bridge gaps of up to this many inactive frames within a note", 0),
    "min_duration": Option(0.05, "drop notes shorter than this many seconds (0 = keep all)", 0.0),
    "velocity_from_activation": Option(
        False, "velocity from the mean frame activation over the note instead of a fixed value"
    ),
    "velocity": _VELOCITY,
}


#: the values training's validation tries for a decoder's main threshold
THRESHOLDS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def _factory(module: str, attribute: str = "decode") -> Callable[[], Callable[..., Any]]:
    def load() -> Callable[..., Any]:
        return getattr(importlib.import_module(f"{__name__}.{module}"), attribute)

    return load


SPECS: tuple[DecoderSpec, ...] = (
    DecoderSpec(
        name="onset-peaks",
        factory=_factory("onset_peaks"),
        stream=_factory("onset_peaks", "OnsetPeaksStream"),
        requires=("onset", "frame"),
        options=option_defaults(ONSET_PEAKS_OPTIONS),
        option_table=ONSET_PEAKS_OPTIONS,
        tunable={"onset_threshold": THRESHOLDS},
        description=(
            "Onset peak picking confirmed by frame activation; notes end at an offset peak, "
            "when the frame activation drops, or at a re-onset (uses offset/velocity if present)."
        ),
    ),
    DecoderSpec(
        name="onsets-frames",
        factory=_factory("onsets_frames"),
        requires=("onset", "frame"),
        options=option_defaults(ONSETS_FRAMES_OPTIONS),
        option_table=ONSETS_FRAMES_OPTIONS,
        tunable={"onset_threshold": THRESHOLDS},
        description=(
            "Onsets and Frames (Hawthorne et al. 2018): a note starts where the onset activation "
            "rises above threshold and lasts while onset or frame stays above threshold."
        ),
    ),
    DecoderSpec(
        name="frame-threshold",
        factory=_factory("frame_threshold"),
        requires=("frame",),
        options=option_defaults(FRAME_THRESHOLD_OPTIONS),
        option_table=FRAME_THRESHOLD_OPTIONS,
        tunable={"threshold": THRESHOLDS},
        description=(
            "For frame-only models: threshold, median-filter along time, and turn runs of "
            "active frames into notes."
        ),
    ),
)


@hookimpl
def register_decoders(register: Callable[[Any], None]) -> None:
    """Register the built-in decoders."""
    for spec in SPECS:
        register(spec)
