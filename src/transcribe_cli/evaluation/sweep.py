"""``--sweep key=SPEC``: the decoder-option values ``transcribe eval`` tries.

SPEC grammar (values are converted to the type of the option's default, like
``--option``):

- ``start:stop:step`` — an inclusive numeric range (``0.2:0.8:0.05`` is 13 values). Values
  are ``start + i * step`` rounded to 10 decimals, so float steps do not drift; ``stop``
  is included when it lies on the grid (within 1e-9 of a step). For integer options all
  three must be integers.
- ``a,b,c`` — an explicit list (any type, including ``true,false`` and strings).
- ``a`` — a single value.

The key may carry a ``decoder.`` prefix. Only decoder options can be swept: they change
decoding only, so activations are computed once per file and decoded once per value.
Several ``--sweep`` flags give the grid of every combination (:func:`grid`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from transcribe_cli.errors import OptionError
from transcribe_cli.options import coerce, split_pair

#: A sweep larger than this is almost certainly a typo in the step.
MAX_VALUES = 10_000


@dataclass(frozen=True)
class SweepSpec:
    """One ``--sweep`` flag before typing: the option name and its value SPEC."""

    key: str
    spec: str

    @classmethod
    def parse(cls, text: str) -> SweepSpec:
        key, spec = split_pair(text)
        scope, dot, bare = key.partition(".")
        if dot and scope == "model":
            raise OptionError(
                f"cannot sweep model option {bare!r}: only decoder options can be swept",
                f"run eval once per value with --option {key}=VALUE",
            )
        if dot and scope == "decoder":
            key = bare
        if not spec:
            raise OptionError(f"--sweep {text!r} has no values", "write key=start:stop:step or key=a,b,c")
        return cls(key, spec)

    def values(self, default: Any) -> tuple[Any, ...]:
        """The values, typed like ``default`` (the option's default value)."""
        if ":" in self.spec:
            return _range(self.key, self.spec, default)
        parts = [part.strip() for part in self.spec.split(",")]
        if "" in parts:
            raise OptionError(f"--sweep {self.key}={self.spec!r} has an empty value", "write key=a,b,c")
        return tuple(coerce(self.key, part, default) for part in parts)


def _range(key: str, spec: str, default: Any) -> tuple[Any, ...]:
    parts = spec.split(":")
    if len(parts) != 3:
        raise OptionError(f"--sweep {key}={spec!r} is not start:stop:step", "e.g. 0.2:0.8:0.05")
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        raise OptionError(
            f"--sweep {key}: a range needs a numeric option (default {default!r})", "list the values: key=a,b,c"
        )
    try:
        start, stop, step = (float(p) for p in parts)
    except ValueError:
        raise OptionError(f"--sweep {key}={spec!r}: start, stop and step must be numbers") from None
    if not all(math.isfinite(x) for x in (start, stop, step)):
        raise OptionError(f"--sweep {key}={spec!r}: start, stop and step must be finite")
    if step <= 0:
        raise OptionError(f"--sweep {key}={spec!r}: step must be positive")
    if stop < start:
        raise OptionError(f"--sweep {key}={spec!r}: stop is below start")
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count > MAX_VALUES:
        raise OptionError(f"--sweep {key}={spec!r} gives {count} values", f"at most {MAX_VALUES}: use a larger step")
    values = [round(start + i * step, 10) for i in range(count)]
    if isinstance(default, int):
        if not all(float(x).is_integer() for x in (start, stop, step)):
            raise OptionError(f"--sweep {key}={spec!r}: option {key} is an integer", "use integer start:stop:step")
        return tuple(int(v) for v in values)
    return tuple(float(v) for v in values)


def grid(specs: Sequence[SweepSpec], decoder_options: Mapping[str, Any], decoder: str) -> list[dict[str, Any]]:
    """Every combination of the swept values for a decoder with ``decoder_options``
    (its defaults); ``[{}]`` (one point, the configured options) without sweeps."""
    keys = [s.key for s in specs]
    duplicated = sorted({k for k in keys if keys.count(k) > 1})
    if duplicated:
        raise OptionError(f"--sweep {duplicated[0]} is given twice", "list every value in one --sweep")
    axes = []
    for spec in specs:
        if spec.key not in decoder_options:
            accepted = ", ".join(sorted(decoder_options)) or "none"
            raise OptionError(
                f"decoder {decoder!r} has no option {spec.key!r} to sweep", f"accepted: {accepted}"
            )
        axes.append([(spec.key, value) for value in spec.values(decoder_options[spec.key])])
    return [dict(combo) for combo in itertools.product(*axes)]


def describe_point(point: Mapping[str, Any]) -> str:
    """``{"onset_threshold": 0.4}`` → ``"onset_threshold=0.4"`` (``"defaults"`` when empty)."""
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in point.items()) or "defaults"
