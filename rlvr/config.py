"""One way to read settings: a YAML file into a dataclass, plus ``key=value`` overrides.

Values are converted to the field's type (YAML 1.1 reads ``2e-5`` as a string, so floats are parsed); nested
dataclass fields are sections (``rl: {steps: 9}``, overridden as ``rl.steps=9``); ``dict[str, Spec]`` and
``tuple[Spec, ...]`` fields of a dataclass ``Spec`` hold one section per entry. An unknown key, a missing one or a
value of the wrong type fails by name, with the file (or the override) it came from, before any compute is spent.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Collection, Sequence
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

C = TypeVar("C")


def read_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file's top-level mapping (an empty file: no settings)."""
    loaded = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a mapping of settings, got {type(loaded).__name__}")
    return loaded


def load_config(
    cls: type[C],
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    internal: Collection[str] = (),
    defaults: dict[str, Any] | None = None,
) -> C:
    """``cls`` from a YAML file (optional; none: the defaults) and ``key=value`` overrides (``section.key=value``
    for a nested section), applied in order after the file. Keys in ``internal`` are fields the program sets, not
    the file; ``defaults`` are settings the file and overrides start from."""
    data = {**(defaults or {}), **(read_mapping(path) if path is not None else {})}
    for item in overrides:
        dotted, value = _parse_override(cls, item)
        # The value is checked against its field here, so that an error names the override, not the file.
        _convert(_field_type(cls, dotted, f"override {item!r}", internal), value, f"override {item!r}", dotted)
        _merge(data, dotted.split("."), value)
    return from_mapping(cls, data, str(path) if path is not None else "settings", internal)


def from_mapping(cls: type[C], data: Any, source: str, internal: Collection[str] = (), at: str = "") -> C:
    """``cls(**data)`` with every value converted to its field's type; errors name ``source`` (a file, an
    override) and ``at``, the dotted place of ``data`` in it."""
    where = _where(source, at)
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping of settings, got {type(data).__name__}")
    known = check_known(cls, data, where, internal)
    required = [
        f.name
        for f in fields(cls)  # type: ignore[arg-type]
        if f.default is MISSING and f.default_factory is MISSING and f.name in known and f.name not in data
    ]
    if required:
        raise ValueError(f"{where}: missing setting(s) {required}")
    hints = get_type_hints(cls)
    return cls(**{key: _convert(hints[key], value, source, _join(at, key)) for key, value in data.items()})


def check_known(cls: type, data: dict[str, Any], where: str, internal: Collection[str] = ()) -> set[str]:
    """``cls``'s settings a file may set; any other key in ``data`` fails by name, with ``where`` it was."""
    known = {f.name for f in fields(cls)} - set(internal)  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown setting(s) {unknown}; known: {sorted(known)}")
    return known


def _where(source: str, at: str) -> str:
    return f"{source}: {at}" if at else source


def _join(at: str, key: object) -> str:
    return f"{at}.{key}" if at else str(key)


def _convert(kind: Any, value: Any, source: str, at: str) -> Any:
    """``value`` as a ``kind``: a dataclass section, a dict or tuple or list of them or of values, or a value."""
    origin, args = get_origin(kind), get_args(kind)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _convert(options[0], value, source, at)
        return _scalar(value, str(kind), _where(source, at))
    if is_dataclass(kind):
        return from_mapping(kind, value, source, at=at)  # type: ignore[arg-type]
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{_where(source, at)}: expected a mapping of settings, got {type(value).__name__}")
        item = args[1] if len(args) == 2 else Any
        return {key: _convert(item, v, source, _join(at, key)) for key, v in value.items()}
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ValueError(f"{_where(source, at)}={value!r}: expected a list")
        item = args[0] if args else Any
        return origin(_convert(item, v, source, f"{at}[{i}]") for i, v in enumerate(value))
    if kind is Any:
        return value
    return _scalar(value, getattr(kind, "__name__", str(kind)), _where(source, at))


def _scalar(value: Any, kind: str, where: str) -> Any:
    """A bool, int, float or str setting; ``kind`` names the type (``float | None`` allows null)."""
    if value is None and "None" in kind:
        return None
    if isinstance(value, bool):
        if "bool" in kind:
            return value
    elif "float" in kind:
        with contextlib.suppress(TypeError, ValueError):
            return float(value)
    elif "int" in kind and isinstance(value, int):
        return value
    elif "str" in kind and isinstance(value, str | int | float):
        return str(value)
    raise ValueError(f"{where}={value!r}: expected {kind}")


def _parse_override(cls: type, item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep:
        nested = any(is_dataclass(kind) for kind in get_type_hints(cls).values())
        raise ValueError(f"override {item!r}: expected " + ("section.key=value" if nested else "key=value"))
    return key.strip().replace("-", "_"), yaml.safe_load(raw)


def _field_type(cls: Any, dotted: str, where: str, internal: Collection[str]) -> Any:
    """The type of the field ``dotted`` names, through nested sections."""
    kind: Any = cls
    for depth, key in enumerate(dotted.split(".")):
        if not is_dataclass(kind):
            raise ValueError(f"{where}: {'.'.join(dotted.split('.')[:depth])} is not a section")
        known = {f.name for f in fields(kind)} - (set(internal) if depth == 0 else set())
        if key not in known:
            raise ValueError(f"{where}: unknown setting(s) {[key]}; known: {sorted(known)}")
        kind = get_type_hints(kind)[key]
    return kind


def _merge(data: dict[str, Any], keys: list[str], value: Any) -> None:
    """Set ``data[k1][k2]...`` to ``value``, merging a mapping into the section already there."""
    *sections, last = keys
    for key in sections:
        current = data.get(key)
        data[key] = current = dict(current) if isinstance(current, dict) else {}
        data = current
    if isinstance(value, dict) and isinstance(data.get(last), dict):
        data[last] = {**data[last], **value}
    else:
        data[last] = value
