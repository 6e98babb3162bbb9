"""Dataclass configs <-> argparse, so every CLI option is a documented config field.

A config field documents itself with ``field(metadata={"help": "..."})``. Supported field types:
bool, int, float, str, Path, their ``| None`` forms, ``list[int|float|str]`` and ``Literal[...]``.

A numeric field states its valid range in the same metadata: ``"min"``/``"max"`` (inclusive), ``"gt"``/``"lt"``
(exclusive), ``"multiple_of"``; an output folder says ``"out_dir": True`` (an existing file is refused). :func:`check_fields` (called by each config's ``__post_init__``) enforces them,
so a bad value fails at once with one line naming the option, whether it came from the CLI or the Python API.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from see3d.errors import OptionError
from see3d.io.atomic import write_json_atomic


def _unwrap_optional(tp):
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


_BOUNDS = (("min", lambda v, b: v >= b, ">="), ("gt", lambda v, b: v > b, ">"), ("max", lambda v, b: v <= b, "<="),
           ("lt", lambda v, b: v < b, "<"), ("multiple_of", lambda v, b: v % b == 0, "a multiple of"))  # fmt: skip


def check_fields(cfg) -> None:
    """Raise :class:`OptionError` for the first field of dataclass ``cfg`` outside the range its metadata
    declares (``min``, ``gt``, ``max``, ``lt``, ``multiple_of``); ``None`` values and list items are checked too."""
    for f in dataclasses.fields(cfg):
        if f.metadata.get("out_dir") and getattr(cfg, f.name) is not None:
            out = Path(getattr(cfg, f.name))
            if out.exists() and not out.is_dir():
                raise OptionError(f.name, f"{out} is an existing file, not a folder")
        rules = [(key, test, word) for key, test, word in _BOUNDS if key in f.metadata]
        if not rules:
            continue
        value = getattr(cfg, f.name)
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if v is None or isinstance(v, bool):
                continue
            if not isinstance(v, (int, float)):
                raise OptionError(f.name, f"must be a number (got {v!r})")
            if v != v:
                raise OptionError(f.name, "must be a number (got nan)")
            for key, test, word in rules:
                if not test(v, f.metadata[key]):
                    raise OptionError(f.name, f"must be {word} {f.metadata[key]} (got {v})")


def add_dataclass_args(parser: argparse.ArgumentParser, cls: type, prefix: str = "", skip: tuple[str, ...] = ()) -> None:
    """Add one ``--option`` per field of dataclass ``cls`` (underscores become dashes)."""
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        tp, optional = _unwrap_optional(hints[f.name])
        name = "--" + (prefix + f.name).replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else (f.default_factory() if f.default_factory is not dataclasses.MISSING else None)  # type: ignore[misc]
        help_text = f.metadata.get("help", "")
        kw: dict[str, Any] = {"dest": prefix + f.name, "default": default}
        origin = get_origin(tp)
        if tp is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif origin is Literal:
            choices = list(get_args(tp))
            kw.update(choices=choices, type=type(choices[0]))
        elif origin in (list, tuple):
            inner = get_args(tp)[0] if get_args(tp) else str
            kw.update(nargs="+", type=inner)
        elif tp in (int, float, str, Path):
            kw["type"] = tp
        else:
            continue  # nested or exotic fields are set through the Python API only
        if default is None and not optional and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            kw["required"] = True
        text = f"{help_text} (default: {default})" if help_text else f"(default: {default})"
        kw["help"] = text.replace("%", "%%")  # argparse %-formats help strings; a literal % must not be read as one
        parser.add_argument(name, **kw)


def dataclass_from_args(cls: type, args: argparse.Namespace, prefix: str = "", **overrides):
    """Build ``cls`` from parsed args written by :func:`add_dataclass_args`."""
    kwargs = {}
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        if hasattr(args, key) and f.init:
            kwargs[f.name] = getattr(args, key)
    kwargs.update(overrides)
    try:
        return cls(**kwargs)
    except OptionError as e:
        raise (e.as_option(prefix) if not e.name.startswith("--") else e) from None


def config_to_dict(cfg) -> dict:
    """JSON-friendly dict of a dataclass config (paths become strings)."""

    def conv(v):
        if isinstance(v, Path):
            return str(v)
        if dataclasses.is_dataclass(v):
            return config_to_dict(v)
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        return v

    return {f.name: conv(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def save_config(cfg, path: str | Path) -> None:
    """Write a config next to an output (atomically) so every result says how it was made."""
    write_json_atomic(path, config_to_dict(cfg))


def load_config(cls: type, path: str | Path):
    """Read a config written by :func:`save_config`."""
    data = json.loads(Path(path).read_text())
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})
