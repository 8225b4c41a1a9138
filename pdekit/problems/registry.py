"""The problem registry: ``@register("family/name")`` and lookup by name."""

from __future__ import annotations

import dataclasses
from typing import Any

from pdekit.errors import UnknownNameError
from pdekit.problems.base import Problem

_REGISTRY: dict[str, type[Problem]] = {}


def register(name: str):
    """Class decorator: register a Problem subclass under ``"family/name"``.

    Registering the same definition again (same module and qualified name: a re-run notebook
    cell, a reloaded module) replaces the earlier class; a different class under a name that is
    taken raises ValueError.
    """
    if name.count("/") != 1:
        raise ValueError(f"problem names are 'family/name'; got {name!r}")

    def deco(cls: type[Problem]) -> type[Problem]:
        old = _REGISTRY.get(name)
        # the same definition run again (a notebook cell, a reloaded module) replaces itself;
        # another class under a taken name is refused
        if old is not None and _where(old) != _where(cls):
            raise ValueError(f"problem {name!r} is already registered to {old}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _where(cls: type) -> tuple[str, str]:
    """Where a class is defined: its module and qualified name."""
    return cls.__module__, cls.__qualname__


def unregister(name: str) -> None:
    """Remove a registered problem (e.g. one defined interactively); unknown names raise."""
    get_class(name)
    del _REGISTRY[name]


def names() -> list[str]:
    """All registered problem names, sorted."""
    return sorted(_REGISTRY)


def get_class(name: str) -> type[Problem]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownNameError("problem", name, names()) from None


def get(name: str, **params: Any) -> Problem:
    """The problem ``name`` with its parameters (the literature's defaults where not given).

    Raises
    ------
    UnknownNameError: an unknown problem or parameter name (lists the valid ones).
    ParameterError: a parameter of the wrong type or out of range (names the range).
    """
    cls = get_class(name)
    valid = [f.name for f in dataclasses.fields(cls)]
    for key in params:
        if key not in valid:
            raise UnknownNameError(f"parameter of {name}", key, valid)
    return cls(**params)
