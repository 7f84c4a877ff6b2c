"""Typed parsing of config tables into frozen dataclasses, and ``--set`` overrides.

Every value is checked against the dataclass field's type hint; a mismatch or an unknown key
raises :class:`~pixelseg.errors.ConfigError` naming the dotted key (``train.batch_size``).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from pixelseg.errors import ConfigError

T = TypeVar("T")


def plain(value: Any) -> Any:
    """``value`` with tuples as lists, recursively (the JSON / TOML form of a config)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def coerce(value: Any, hint: Any, key: str) -> Any:
    """Check ``value`` against a type hint, converting lists to tuples; raise naming ``key``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{key}: expected {len(args)} items, got {len(value)}")
        return tuple(coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table, got {type(value).__name__}")
        return dict(value)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table, got {type(value).__name__}")
        return build_dataclass(hint, value, key)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {type(value).__name__} {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {type(value).__name__} {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {type(value).__name__} {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {hint}")  # pragma: no cover


def build_dataclass(cls: type[T], raw: dict[str, Any], prefix: str) -> T:
    """An instance of dataclass ``cls`` from ``raw``, refusing unknown keys and wrong types.

    Errors name the key with ``prefix`` (``"data."``, ``"train."``...).
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        full = f"{prefix}.{key}" if prefix else key
        if key not in names:
            known = ", ".join(sorted(names - {"source"}))
            raise ConfigError(f"unknown key '{full}' (known keys here: {known})")
        kwargs[key] = coerce(value, hints[key], full)
    return cls(**kwargs)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``--set key.sub=value``; the value is read as TOML when it parses, else a string."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value")
    key, _, value_text = text.partition("=")
    try:
        value = tomllib.loads(f"v = {value_text}")["v"]
    except tomllib.TOMLDecodeError:
        value = value_text
    return key.strip().split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each ``key=value`` override applied (nested by dots)."""
    result = copy.deepcopy(raw)
    for text in overrides:
        path, value = parse_override(text)
        node = result
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {text!r}: {part} is not a table")
        node[path[-1]] = value
    return result


def read_raw_config(path: str | Path) -> dict[str, Any]:
    """Read a TOML or YAML file into a dict, with clear errors for missing or malformed files."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            raw = yaml.safe_load(text) or {}
        else:
            raw = tomllib.loads(text)
    except Exception as exc:  # tomllib / yaml errors carry line numbers
        raise ConfigError(f"{path}: cannot parse config: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a table at the top level")
    return raw


#: The shipped configs' layout: ``root = "../../shared/data/<dataset>"``.
SHIPPED_DATA_FOLDER = ("shared", "data")


def resolve_data_root(root: str, config_dir: Path) -> Path:
    """Resolve ``data.root`` relative to the config file, honouring ``PIXELSEG_DATA``.

    ``PIXELSEG_DATA`` replaces only the folder of a relative root in the shipped layout
    (``.../shared/data/<dataset>`` becomes ``$PIXELSEG_DATA/<dataset>``); an absolute root, a
    root of ``"."`` (data beside the config) or any other relative root is never redirected.
    """
    path = Path(root)
    override = os.environ.get("PIXELSEG_DATA")
    shipped = len(path.parts) > 2 and path.parts[-3:-1] == SHIPPED_DATA_FOLDER
    if override and not path.is_absolute() and shipped:
        return Path(override) / path.name
    return path if path.is_absolute() else (config_dir / path).resolve()
