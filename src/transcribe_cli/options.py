"""``--option key=value`` parsing.

A value is converted to the type of the option's default (bool, int, float or str), so
plugins declare types simply by giving typed defaults. A key may be prefixed with
``model.`` or ``decoder.``; unprefixed keys go to the decoder if it has that option,
else to the model.

:func:`effective_options` is the one place that says what a model/decoder pair runs with:
the decoder's defaults, overridden by the model's tuned ``decoder_options`` (when the decoder
is the model's own), overridden by the user's ``key=value`` pairs — validated against the
decoder's option table (types and ranges) before any weights or audio are read. Error hints
and ``transcribe models info`` show these effective values, not the bare decoder defaults.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from transcribe_cli.errors import OptionError

_TRUE = {"1", "true", "yes", "on", "y"}
_FALSE = {"0", "false", "no", "off", "n"}


def split_pair(text: str) -> tuple[str, str]:
    """``"key=value"`` → ``("key", "value")``; the value may contain ``=``."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise OptionError(f"bad option {text!r}", "write options as key=value, e.g. onset_threshold=0.6")
    return key, value.strip()


def coerce(key: str, value: str, default: Any) -> Any:
    """Convert ``value`` to the type of ``default``."""
    try:
        if isinstance(default, bool):
            low = value.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        kind = type(default).__name__
        raise OptionError(
            f"option {key}={value!r} is not a valid {kind}", f"default is {default!r}"
        ) from None
    return value


def parse_options(
    pairs: Iterable[str],
    model_options: Mapping[str, Any],
    decoder_options: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split and convert ``key=value`` strings into (model options, decoder options)."""
    model: dict[str, Any] = {}
    decoder: dict[str, Any] = {}
    for text in pairs:
        key, value = split_pair(text)
        scope, dot, bare = key.partition(".")
        if dot and scope in ("model", "decoder"):
            table, target = (model_options, model) if scope == "model" else (decoder_options, decoder)
            if bare not in table:
                raise _unknown(key, model_options, decoder_options)
            target[bare] = coerce(key, value, table[bare])
        elif key in decoder_options:
            decoder[key] = coerce(key, value, decoder_options[key])
        elif key in model_options:
            model[key] = coerce(key, value, model_options[key])
        else:
            raise _unknown(key, model_options, decoder_options)
    return model, decoder


def _unknown(key: str, model_options: Mapping[str, Any], decoder_options: Mapping[str, Any]) -> OptionError:
    accepted = [f"decoder.{k}" for k in sorted(decoder_options)] + [
        f"model.{k}" for k in sorted(model_options)
    ]
    return OptionError(f"unknown option {key!r}", f"accepted: {', '.join(accepted) or 'none'}")


def effective_options(
    model_spec: Any, decoder_spec: Any, pairs: Iterable[str] = ()
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model options, decoder options) a pipeline of ``model_spec`` and ``decoder_spec`` runs
    with, given the user's ``key=value`` ``pairs`` (see the module docstring)."""
    tuned = dict(model_spec.decoder_options) if decoder_spec.name == model_spec.decoder else {}
    decoder_defaults = {**decoder_spec.options, **{k: v for k, v in tuned.items() if k in decoder_spec.options}}
    model_given, decoder_given = parse_options(pairs, model_spec.options, decoder_defaults)
    decoder_options = {**decoder_spec.options, **tuned, **decoder_given}
    if decoder_spec.option_table:
        import dataclasses

        from transcribe_cli.decoders.common import resolve_options

        table = decoder_spec.option_table
        tuned = resolve_options(decoder_spec.name, table, tuned)  # a checkpoint's values are checked too
        table = {name: dataclasses.replace(option, default=tuned[name]) for name, option in table.items()}
        decoder_options = resolve_options(decoder_spec.name, table, decoder_given)
    return {**model_spec.options, **model_given}, decoder_options
