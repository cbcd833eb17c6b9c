"""Plain dicts into dataclasses, with one-line errors that name the bad key.

Hydra's composed config, a method's `options` and a stored record all arrive as plain
data. `build` turns such a dict into a dataclass, rejecting unknown keys and wrong types;
the dataclass's own `__post_init__` then checks values. `Literal[...]` hints list the
allowed strings, so a choice is checked where its default is written.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from moebench.errors import ConfigError


def positive(key: str, value: float | int, allow_zero: bool = False) -> None:
    """A ConfigError unless `value` > 0 (or >= 0 with `allow_zero`)."""
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(key, value, "a number >= 0" if allow_zero else "a number > 0")


def one_of(key: str, value: str, choices: tuple[str, ...]) -> None:
    """A ConfigError unless `value` is one of `choices`."""
    if value not in choices:
        raise ConfigError(key, value, "one of " + ", ".join(choices))


def int_in(key: str, value: Any, low: int, high: int | None = None) -> int:
    """`value` as an int in [low, high] (high None = unbounded), else a ConfigError."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        allowed = f"an integer in {low}..{high}" if high is not None else f"an integer >= {low}"
        raise ConfigError(key, value, allowed)
    return value


def _type_ok(value: Any, hint: Any) -> tuple[bool, Any]:
    """Check (and lightly coerce int -> float) a value against a simple type hint."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(hint):
            ok, coerced = _type_ok(value, arm)
            if ok:
                return True, coerced
        return False, value
    if origin is typing.Literal:
        return any(value == c and type(value) is type(c) for c in typing.get_args(hint)), value
    if hint is type(None):
        return value is None, value
    if hint is Any:
        return True, value
    if origin is list:
        (item,) = typing.get_args(hint) or (Any,)
        return isinstance(value, list) and all(_type_ok(v, item)[0] for v in value), value
    if origin is dict:
        return isinstance(value, dict), value
    if hint is float:
        if isinstance(value, bool):
            return False, value
        return isinstance(value, (int, float)), float(value) if isinstance(
            value, (int, float)
        ) else value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    return isinstance(value, hint), value


def type_name(hint: Any) -> str:
    """A hint as a user reads it: `int or null`, `one of 'lru', 'lfu'`, `list of int`."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(hint))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(c) for c in typing.get_args(hint))
    if origin is list:
        (item,) = typing.get_args(hint) or (Any,)
        return f"a list of {type_name(item)}"
    if hint is type(None):
        return "null"
    return getattr(hint, "__name__", str(hint))


def build(cls: type, data: Any, prefix: str) -> Any:
    """Make dataclass `cls` from a plain dict, naming `prefix.key` in every error."""
    if not isinstance(data, dict):
        raise ConfigError(prefix, data, f"a mapping of {cls.__name__} fields")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields), key=str)
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ConfigError(key, data[unknown[0]], "one of the keys " + ", ".join(fields))
    kwargs = {}
    for name, f in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if name not in data:
            no_default = (
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            )
            if no_default:
                raise ConfigError(key, None, "a value (this key is required)")
            continue
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = build(hint, data[name], key)
            continue
        ok, value = _type_ok(data[name], hint)
        if not ok:
            raise ConfigError(key, data[name], type_name(hint))
        kwargs[name] = value
    return cls(**kwargs)
