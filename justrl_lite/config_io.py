"""A ``JustRLConfig`` in files and on the command line: JSON/YAML save and load, and ``field=value`` overrides.

The dataclass and its presets are ``config.py``; this module only moves a config in and out of text:
  1. ``save_config`` / ``load_config``: a ``.json`` or ``.yaml``/``.yml`` file holding ``field -> value``
     (unknown keys are an error, missing keys take the paper's value);
  2. ``config_from_dict``: a mapping -> a validated config, with values coerced to the field's type
     (a YAML list -> a tuple, ``1`` -> ``1.0`` for a float field, PyYAML's string ``"1e-6"`` -> a float);
  3. ``apply_overrides``: command-line ``field=value`` items (``lr=2e-6 total_steps=100``), each read as the
     field's annotated type; a bad item raises one ``ConfigError`` that says what to write instead.
``JustRLConfig.save/load/from_dict/with_overrides`` call these, passing the dataclass (``cls``), so this module
sits below ``config.py`` and never imports it.
"""

from __future__ import annotations

import json
import typing
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from justrl_lite.config_checks import ConfigError

if TYPE_CHECKING:  # type-only: config.py imports this module, never the other way round
    from justrl_lite.config import JustRLConfig

# ---- files --------------------------------------------------------------------------------------

def save_config(cfg: JustRLConfig, path: str | Path) -> None:
    """Write ``cfg`` as JSON (``.json``) or YAML (``.yaml``/``.yml``), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".yaml", ".yml"):
        import yaml

        path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    else:
        path.write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")


def load_config(path: str | Path, cls: type[JustRLConfig]) -> JustRLConfig:
    """Read a config written by ``save_config`` (unknown keys are an error, missing keys take the paper's value)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from e
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as e:  # malformed file: one clear message
        raise ConfigError(f"config file {path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of field -> value")
    return config_from_dict(data, source=str(path), cls=cls)


def config_from_dict(data: dict[str, Any], cls: type[JustRLConfig], source: str = "dict") -> JustRLConfig:
    """``cls(**data)`` after checking every key is a field and coercing each value to its field's type."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown config field(s) {unknown}; known fields: {sorted(known)}")
    return cls(**{k: coerce_value(cls, k, v) for k, v in data.items()})


# ---- command-line overrides ---------------------------------------------------------------------

def apply_overrides(cfg: JustRLConfig, overrides: list[str]) -> JustRLConfig:
    """``cfg`` with command-line ``field=value`` items applied, e.g. ``["lr=2e-6", "total_steps=100"]``."""
    changes: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like field=value, e.g. lr=2e-6")
        key, value = item.split("=", 1)
        key = key.strip().lstrip("-").replace("-", "_")
        changes[key] = parse_value(type(cfg), key, value.strip())
    d = cfg.to_dict()
    d.update(changes)
    return config_from_dict(d, source="overrides", cls=type(cfg))


def field_type(cls: type[JustRLConfig], name: str) -> Any:
    """The annotated type of field ``name`` (``ConfigError`` listing the known fields if there is none)."""
    hints = typing.get_type_hints(cls)
    if name not in hints:
        known = sorted(f.name for f in fields(cls))
        raise ConfigError(f"unknown config field {name!r}; known fields: {known}")
    return hints[name]


def parse_value(cls: type[JustRLConfig], name: str, text: str) -> Any:
    """The command-line text of field ``name`` as its type: bool (true/false/yes/no/on/off/1/0), int, float,
    a tuple of floats (``0.9,0.999``), else the string itself."""
    t = field_type(cls, name)
    try:
        if t is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true/false")
        if t is int:
            f = float(text)
            if f != int(f):
                raise ValueError("expected an integer")
            return int(f)
        if t is float:
            return float(text)
        if typing.get_origin(t) is tuple:
            parts = [p for p in text.strip("()[] ").split(",") if p.strip()]
            return tuple(float(p) for p in parts)
    except (ValueError, OverflowError) as e:  # OverflowError: int(float("inf"))
        raise ConfigError(f"config field `{name}`: cannot read {text!r} as {getattr(t, '__name__', t)} ({e})") from e
    return text


def coerce_value(cls: type[JustRLConfig], name: str, value: Any) -> Any:
    """A value read from a file, as field ``name``'s type where the file format loses it (validation does the rest)."""
    t = field_type(cls, name)
    if typing.get_origin(t) is tuple and isinstance(value, (list, tuple)):
        return tuple(value)
    if t is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if t is float and isinstance(value, str):  # PyYAML reads `lr: 1e-6` (no dot) as a string
        try:
            return float(value)
        except ValueError:
            return value  # validation then names the field
    return value
