"""Training recipes: named, shipped config files for ``pfes train --recipe NAME|FILE``.

A recipe is a TOML or JSON file whose top-level keys are :class:`TrainConfig` fields, with the
loss weights and forms in a ``weights`` table (:class:`LossWeights` fields) and GIM's constants
in a ``gim`` table (:class:`GimConfig` fields); ``description`` is free text. Unknown keys and
values of the wrong type are errors. ``pfes`` is the trainer's defaults; ``paper`` follows the
reference code (docs/training.md, "Recipes"). Command-line flags override the recipe.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from pfes.errors import InputError
from training.gim import GimConfig
from training.losses import LossWeights
from training.trainer import TrainConfig

__all__ = ["RECIPES", "load_recipe", "recipe_config"]

RECIPE_DIR = Path(__file__).resolve().parent / "recipes"
RECIPES = ("pfes", "paper")
_TABLES = {"weights": LossWeights, "gim": GimConfig}


def load_recipe(name_or_path: str) -> tuple[str, dict[str, Any]]:
    """(name, raw mapping) of a shipped recipe (``pfes``, ``paper``) or a .toml/.json file."""
    path = RECIPE_DIR / f"{name_or_path}.toml" if name_or_path in RECIPES else Path(name_or_path)
    if name_or_path not in RECIPES and path.suffix not in (".toml", ".json"):
        raise InputError(f"recipe must be one of {', '.join(RECIPES)} or a .toml/.json file, "
                         f"got {name_or_path!r}")
    try:
        text = path.read_text()
    except OSError as e:
        raise InputError(f"cannot read recipe {path}: {e.strerror or e}") from e
    try:
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"recipe {path}: not valid {path.suffix[1:].upper()}: {first}") from e
    if not isinstance(raw, dict):
        raise InputError(f"recipe {path}: expected a table of settings")
    return (name_or_path if name_or_path in RECIPES else str(path)), raw


def _coerce(where: str, key: str, value: Any, default: Any) -> Any:
    """``value`` checked against the type of the field's default (lists become tuples)."""
    bad = InputError(f"{where}: {key} must be like {default!r}, got {value!r}")
    if isinstance(default, bool) or (default is None and isinstance(value, bool)):
        if not isinstance(value, bool):
            raise bad
        return value
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)):
            raise bad
        items = tuple(value)
        if default and len(items) != len(default) and key != "dilations":
            raise bad
        proto = default[0] if default else 0
        return tuple(_coerce(where, key, v, proto) for v in items)
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise bad
        return value
    raise bad


def _fields(cls: type, where: str, raw: dict[str, Any], skip: tuple[str, ...] = ()) -> dict:
    base = cls()
    known = [f.name for f in dataclasses.fields(cls) if f.name not in skip]
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise InputError(f"{where}: unknown key {key!r}")
        out[key] = _coerce(where, key, value, getattr(base, key))
    return out


def recipe_config(recipe: str = "pfes", overrides: dict[str, Any] | None = None,
                  weight_overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The :class:`TrainConfig` of ``recipe`` (a name or a file), with ``overrides`` (TrainConfig
    fields, e.g. from command-line flags) and ``weight_overrides`` (LossWeights fields) on top."""
    name, raw = load_recipe(recipe)
    where = f"recipe {name}"
    raw = dict(raw)
    raw.pop("description", None)
    tables = {k: raw.pop(k) for k in list(raw) if k in _TABLES}
    for k, v in tables.items():
        if not isinstance(v, dict):
            raise InputError(f"{where}: {k} must be a table")
    top = _fields(TrainConfig, where, raw, skip=(*_TABLES, "recipe"))
    w_raw = _fields(LossWeights, f"{where} [weights]", tables.get("weights", {}))
    g_raw = _fields(GimConfig, f"{where} [gim]", tables.get("gim", {}))
    top.update(overrides or {})
    try:
        weights = dataclasses.replace(LossWeights(**w_raw), **(weight_overrides or {}))
        return TrainConfig(**top, weights=weights, gim=GimConfig(**g_raw), recipe=name)
    except (TypeError, ValueError, InputError) as e:
        raise InputError(f"{where}: {e}") from e
