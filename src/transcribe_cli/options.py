"""``--option key=value`` parsing.

Every stage (frontend, model, decoder, dataset) declares its options the same way: typed
defaults in its spec's ``options``, optionally with a :class:`transcribe_cli.specs.Option`
each (help text, bounds) in ``option_table``. :func:`coerce` turns a ``key=value`` text into
the default's type (bool, int, float or str); :func:`resolve_options` checks values against
the declared options (the one validation, with one error format). A key may be prefixed
with ``decoder.``, ``model.`` or ``frontend.``; unprefixed keys go to the decoder if it has
that option, else to the model, else to the frontend.

:func:`effective_options` is the one place that says what a model/decoder pair runs with:
the decoder's defaults, overridden by the model's tuned ``decoder_options`` (when the decoder
is the model's own), overridden by the user's ``key=value`` pairs — validated against the
decoder's option table (types and ranges) before any weights or audio are read. Error hints
and ``transcribe models info`` show these effective values, not the bare decoder defaults.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Mapping, NamedTuple

from transcribe_cli.errors import OptionError
from transcribe_cli.specs import Option

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


def resolve_options(
    name: str, declared: Mapping[str, Option], given: Mapping[str, Any], kind: str = "decoder"
) -> dict[str, Any]:
    """Merge ``given`` into the defaults of ``declared`` and validate every value.

    Values are coerced to the type of the default: an int where a float is expected
    becomes a float, an integral float where an int is expected becomes an int; bools
    are never accepted as numbers. Raises :class:`OptionError` naming the offending
    option (and, for unknown names, every accepted one).
    """
    unknown = sorted(set(given) - set(declared))
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        plural = "s" if len(unknown) > 1 else ""
        raise OptionError(
            f"{kind} {name!r} has no option{plural} {names}",
            hint=f"accepted options: {', '.join(declared)}",
        )
    resolved = {key: option.default for key, option in declared.items()}
    for key, value in given.items():
        resolved[key] = check_option(f"{kind} {name!r}", key, declared[key], value)
    return resolved


def check_option(owner: str, name: str, option: Option, value: Any) -> Any:
    """``value`` coerced to the type of ``option.default``, or :class:`OptionError` naming
    ``owner`` (``"decoder 'onset-peaks'"``)."""
    import numpy as np

    default = option.default

    def fail(requirement: str) -> OptionError:
        return OptionError(
            f"{owner}: option {name}={value!r} is invalid, it must be {requirement}",
            hint=f"default: {name}={default!r}",
        )

    if isinstance(default, bool):
        if not isinstance(value, (bool, np.bool_)):
            raise fail("true or false")
        return bool(value)
    if isinstance(default, str):
        if not isinstance(value, str) or (option.choices and value not in option.choices):
            raise fail(f"one of {', '.join(option.choices)}" if option.choices else "a string")
        return value
    if not isinstance(default, (int, float)):  # a plain default of another type: taken as given
        return value

    wants_int = isinstance(default, int)
    requirement = _with_bounds(
        ("an odd integer" if option.odd else "an integer") if wants_int else "a number", option
    )
    real = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if not real or not math.isfinite(value):
        raise fail(requirement)
    if wants_int:
        if not float(value).is_integer():
            raise fail(requirement)
        number: int | float = int(value)
        if option.odd and number % 2 == 0:
            raise fail(requirement)
    else:
        number = float(value)
    if option.positive and not number > 0:
        raise fail(requirement)
    if (option.low is not None and number < option.low) or (
        option.high is not None and number > option.high
    ):
        raise fail(requirement)
    return number


def _with_bounds(kind: str, option: Option) -> str:
    def fmt(x: float) -> str:
        return f"{x:g}"

    if option.positive:
        kind = kind.replace("a number", "a positive number").replace("an integer", "a positive integer")
    if option.low is not None and option.high is not None:
        return f"{kind} between {fmt(option.low)} and {fmt(option.high)}"
    if option.low is not None:
        return f"{kind} >= {fmt(option.low)}"
    if option.high is not None:
        return f"{kind} <= {fmt(option.high)}"
    return kind


SCOPES = ("decoder", "model", "frontend")


class ResolvedOptions(NamedTuple):
    """The options one pipeline runs with, complete and checked."""

    model: dict[str, Any]
    decoder: dict[str, Any]
    frontend: dict[str, Any]


def parse_options(
    pairs: Iterable[str],
    model_options: Mapping[str, Any],
    decoder_options: Mapping[str, Any],
    frontend_options: Mapping[str, Any] | None = None,
) -> ResolvedOptions:
    """Split and convert ``key=value`` strings into (model, decoder, frontend) options: a
    ``decoder.``, ``model.`` or ``frontend.`` prefix names the stage, an unprefixed key goes
    to the first of them that has it."""
    tables = {"decoder": decoder_options, "model": model_options, "frontend": frontend_options or {}}
    given: dict[str, dict[str, Any]] = {scope: {} for scope in SCOPES}
    for text in pairs:
        key, value = split_pair(text)
        scope, dot, bare = key.partition(".")
        if not (dot and scope in SCOPES):
            scope = next((name for name in SCOPES if key in tables[name]), "")
            bare = key
        if not scope or bare not in tables[scope]:
            raise _unknown(key, tables)
        given[scope][bare] = coerce(key, value, tables[scope][bare])
    return ResolvedOptions(given["model"], given["decoder"], given["frontend"])


def _unknown(key: str, tables: Mapping[str, Mapping[str, Any]]) -> OptionError:
    accepted = [f"{scope}.{k}" for scope in SCOPES for k in sorted(tables[scope])]
    return OptionError(f"unknown option {key!r}", f"accepted: {', '.join(accepted) or 'none'}")


def effective_options(
    model_spec: Any, decoder_spec: Any, pairs: Iterable[str] = (), frontend_spec: Any = None
) -> ResolvedOptions:
    """The (model, decoder, frontend) options a pipeline of ``model_spec``, ``decoder_spec``
    and ``frontend_spec`` runs with, given the user's ``key=value`` ``pairs`` (see the module
    docstring); every value is checked against its stage's declared :class:`Option` s."""
    from transcribe_cli.specs import declared_options

    frontend_defaults = dict(frontend_spec.options) if frontend_spec is not None else {}
    tuned = dict(model_spec.decoder_options) if decoder_spec.name == model_spec.decoder else {}
    decoder_defaults = {**decoder_spec.options, **{k: v for k, v in tuned.items() if k in decoder_spec.options}}
    model_given, decoder_given, frontend_given = parse_options(
        pairs, model_spec.options, decoder_defaults, frontend_defaults)
    decoder_options = {**decoder_spec.options, **tuned, **decoder_given}
    if decoder_spec.option_table:
        import dataclasses

        table = decoder_spec.option_table
        tuned = resolve_options(decoder_spec.name, table, tuned)  # a checkpoint's values are checked too
        table = {name: dataclasses.replace(option, default=tuned[name]) for name, option in table.items()}
        decoder_options = resolve_options(decoder_spec.name, table, decoder_given)
    model_options = resolve_options(model_spec.name, declared_options(model_spec), model_given, kind="model")
    frontend_options = (
        resolve_options(frontend_spec.name, declared_options(frontend_spec), frontend_given, kind="frontend")
        if frontend_spec is not None else {}
    )
    return ResolvedOptions(model_options, decoder_options, frontend_options)
