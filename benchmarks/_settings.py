"""`--set FIELD=VALUE` for the benchmarks: overrides of an app's Config, typed by its defaults."""

from __future__ import annotations

import dataclasses
import types
import typing


def settings(config_class: type, pairs: list[str]) -> dict:
    """Parses `FIELD=VALUE` pairs into Config overrides, each of its field's type.

    Args:
        config_class: The app's Config dataclass.
        pairs: The `--set` arguments, e.g. `["width=16", "skip_connections=false"]`.

    Returns:
        Field name -> value, ready for `dataclasses.replace` or the Config's constructor.

    Raises:
        SystemExit: When a field is unknown or a value does not parse as its field's type.
    """
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    hints = typing.get_type_hints(config_class)
    values = {}
    for pair in pairs:
        key, _, text = pair.partition("=")
        if key not in fields:
            raise SystemExit(f"--set {pair}: unknown setting {key!r}; choose from {sorted(fields)}")
        kind = _kind(hints[key])
        if kind is bool:
            values[key] = text.lower() in ("1", "true", "yes")
            continue
        try:
            values[key] = kind(text)
        except ValueError:
            raise SystemExit(f"--set {pair}: {key} must be of type {kind.__name__}") from None
    return values


def _kind(hint) -> type:
    """The type a field's value is parsed as: `float | None` -> float."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint
