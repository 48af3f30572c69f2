"""Settings dataclasses from plain values: the one ``from_dict`` behind every config class.

vidfake's settings are frozen dataclasses (``ModelConfig``, ``AggregationConfig``,
``ExtractConfig``, the training sections in :mod:`vidfake.train.config`) that travel as
plain values: JSON inside checkpoints and extraction records, YAML in training configs.
They all come back through :func:`from_dict`, so a misspelt or unknown key is always an
error that names it and the keys that would be valid, never silently dropped.

Imports nothing from vidfake (nor torch): ``extract``, ``temporal`` and ``train`` all use it.
"""
from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def from_dict(cls: type[T], data: Mapping[str, Any], what: str = "config") -> T:
    """Build the dataclass ``cls`` from a mapping of its field names to plain values.

    A field whose type is itself a dataclass is built from its own mapping (recursively;
    errors then name the field, e.g. ``unknown crop keys``), and a ``tuple[...]`` field
    from a list, so ``to_dict`` output that went through JSON or YAML rebuilds an equal
    object. Missing keys take the field defaults.

    Args:
        cls: a dataclass type.
        data: its fields by name (e.g. a checkpoint's ``model`` section).
        what: what ``data`` is, for error messages (``"model config"``, ``"data"``).

    Returns:
        ``cls(**values)``; its ``__post_init__`` checks still run.

    Raises:
        ValueError: ``data`` is not a mapping, or names keys that are not fields of
            ``cls`` (the message lists them and the valid ones).
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"{what} must be a mapping of keys to values, got {type(data).__name__}")
    known = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(data) - set(known), key=str)
    if unknown:
        raise ValueError(f"unknown {what} keys {unknown}; valid keys: {', '.join(known)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in data.items():
        kind = hints.get(key)
        if dataclasses.is_dataclass(kind) and not isinstance(value, kind):
            value = from_dict(kind, value, key)
        elif typing.get_origin(kind) is tuple and isinstance(value, list):
            value = tuple(value)
        values[key] = value
    return cls(**values)
