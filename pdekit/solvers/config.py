"""Typed solver configs: nested dataclasses, validated, built from dicts or ``key=value`` strings.

Every solver's ``Config`` is a dataclass whose fields are either plain values or nested config
dataclasses (``network``, ``train``, ...). This module turns user input (a dict from JSON, a
checkpoint, or CLI ``--config train.lr=1e-3``) into such a config, naming the offending key and
the valid ones on error, and turns a config back into a JSON-able dict.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import re
import sys
import textwrap
import typing
from collections.abc import Mapping
from typing import Any

from pdekit.errors import ParameterError, UnknownNameError


def check(obj: Any, name: str, value: Any, *, low=None, high=None, kind=float, choices=None):
    """Validate one config field; raise ParameterError naming the field and its allowed range."""
    label = f"{type(obj).__name__}.{name}"
    if choices is not None:
        if value not in choices:
            raise ParameterError(f"{label} must be one of {list(choices)}; got {value!r}")
        return
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParameterError(f"{label} must be an integer; got {value!r}")
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParameterError(f"{label} must be a number; got {value!r}")
        if value != value or value in (float("inf"), float("-inf")):
            raise ParameterError(f"{label} must be finite; got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ParameterError(f"{label} must be in [{lo}, {hi}]; got {value!r}")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _is_config(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def from_dict(cls: type, data: Mapping[str, Any] | None, path: str = "") -> Any:
    """Build config ``cls`` from a (nested) dict; unknown keys raise UnknownNameError."""
    data = dict(data or {})
    types = _field_types(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in types:
            where = path.rstrip(".") or cls.__name__
            raise UnknownNameError(f"config key in {where}", key, types)
        tp = types[key]
        if _is_config(tp):
            if isinstance(value, tp):
                kwargs[key] = value
            elif isinstance(value, Mapping):
                kwargs[key] = from_dict(tp, value, f"{path}{key}.")
            else:
                raise ParameterError(f"config {path}{key} must be a mapping; got {value!r}")
        else:
            kwargs[key] = _convert(value, tp, f"{path}{key}")
    return cls(**kwargs)


def _convert(value: Any, tp: Any, label: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is bool and not isinstance(value, bool):
        raise ParameterError(f"config {label} must be true or false; got {value!r}")
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if origin is tuple and isinstance(value, list | tuple):
        return tuple(value)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        if len(args) == 1:
            return _convert(value, args[0], label)
    return value


def to_dict(config: Any) -> dict[str, Any]:
    """A config as a plain JSON-able dict."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def parse_value(text: str) -> Any:
    """Parse a CLI value: JSON when it parses (numbers, true/false, lists), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        low = text.strip().lower()
        if low in ("true", "false"):
            return low == "true"
        return text


def apply_overrides(cls: type, base: Any | None, overrides: Mapping[str, Any]) -> Any:
    """Config ``cls`` from ``base`` (instance, dict or None) with dotted overrides applied.

    ``{"train.lr": 1e-3, "network.width": 128}`` sets nested fields; each key is checked.
    """
    if base is None:
        data: dict[str, Any] = {}
    elif isinstance(base, Mapping):
        data = json.loads(json.dumps(base))
    elif dataclasses.is_dataclass(base):
        data = to_dict(base)
    else:
        raise ParameterError(f"config must be a {cls.__name__}, a dict or None; got {type(base)}")
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node, tp = data, cls
        for i, part in enumerate(parts):
            types = _field_types(tp)
            if part not in types:
                raise UnknownNameError(
                    f"config key in {'.'.join(parts[:i]) or cls.__name__}", part, types
                )
            if i == len(parts) - 1:
                node[part] = value
            else:
                if not _is_config(types[part]):
                    raise ParameterError(f"config key {'.'.join(parts[: i + 1])} has no sub-keys")
                if part in node and not isinstance(node[part], dict):
                    raise ParameterError(
                        f"config key {'.'.join(parts[: i + 1])} is a section; set its keys "
                        f"({'.'.join(parts[: i + 1])}.KEY=VALUE), not a value "
                        f"({node[part]!r})"
                    )
                node = node.setdefault(part, {})
                tp = types[part]
    return from_dict(cls, data)


def describe(cls: type, prefix: str = "") -> list[tuple[str, Any, str]]:
    """Rows (dotted key, default, doc) for every leaf field of config ``cls``; the doc is the
    field's ``#:`` comment in the source (empty where it has none)."""
    return [(row["key"], row["default"], row["doc"]) for row in config_help(cls, prefix)]


def config_help(cls: type, prefix: str = "") -> list[dict[str, Any]]:
    """For every leaf field of config ``cls``: ``key`` (dotted), ``type``, ``default``,
    ``range`` (what ``check`` in ``__post_init__`` allows, read from the source; "" where the
    field is checked otherwise) and ``doc`` (its ``#:`` comment). Read from the code, so it
    cannot drift from what the config accepts."""
    rows = []
    instance = cls()
    types = _field_types(cls)
    for f in dataclasses.fields(cls):
        tp = types[f.name]
        if _is_config(tp):
            rows += config_help(tp, f"{prefix}{f.name}.")
            continue
        rows.append(
            {
                "key": f"{prefix}{f.name}",
                "type": getattr(tp, "__name__", str(tp)),
                "default": getattr(instance, f.name),
                "range": _source_facts(cls)["ranges"].get(f.name, ""),
                "doc": _source_facts(cls)["docs"].get(f.name, ""),
            }
        )
    return rows


_FACTS: dict[type, dict[str, dict[str, str]]] = {}


def _source_facts(cls: type) -> dict[str, dict[str, str]]:
    """``#:`` docs and ``check(...)`` ranges of the fields of ``cls`` and its bases."""
    if cls in _FACTS:
        return _FACTS[cls]
    docs: dict[str, str] = {}
    ranges: dict[str, str] = {}
    for klass in reversed(cls.__mro__[:-1]):  # bases first, the class's own last (it wins)
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        module = sys.modules.get(klass.__module__)
        comment: list[str] = []
        for line in source.splitlines():
            text = line.strip()
            if text.startswith("#:"):
                comment.append(text[2:].strip())
                continue
            field = re.match(r"^(\w+)\s*:", text)
            if field and comment:
                docs[field.group(1)] = " ".join(comment)
            comment = []
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.FunctionDef) and node.name == "__post_init__"):
                continue
            for call in ast.walk(node):
                found = _check_call(call, module)
                if found:
                    ranges[found[0]] = found[1]
    _FACTS[cls] = {"docs": docs, "ranges": ranges}
    return _FACTS[cls]


def _check_call(node: ast.AST, module) -> tuple[str, str] | None:
    """(field, allowed) of a ``check(self, "field", value, low=..., high=..., choices=...)``."""
    if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check"):
        return None
    if len(node.args) < 2 or not isinstance(node.args[1], ast.Constant):
        return None
    kw = {k.arg: _value_text(k.value, module) for k in node.keywords if k.arg}
    if "choices" in kw:
        return node.args[1].value, f"one of {kw['choices']}"
    kind = "integer" if kw.get("kind") == "int" else "number"
    if "low" not in kw and "high" not in kw:
        return node.args[1].value, f"any {kind}" if kind == "integer" else "any finite number"
    lo, hi = kw.get("low", "-inf"), kw.get("high", "inf")
    return node.args[1].value, f"{kind} in [{lo}, {hi}]"


def _value_text(node: ast.AST, module) -> str:
    """A keyword argument's value as text: a literal, a module constant's value, else its
    source."""
    try:
        return repr(ast.literal_eval(node))
    except ValueError:
        pass
    if isinstance(node, ast.Name) and module is not None and hasattr(module, node.id):
        value = getattr(module, node.id)
        if isinstance(value, type):
            return value.__name__
        if isinstance(value, tuple | list | set | frozenset | int | float | str):
            return repr(sorted(value) if isinstance(value, set | frozenset) else value)
    return ast.unparse(node)
