"""The solver registry: ``@register_solver("name")`` and lookup by name."""

from __future__ import annotations

from pdekit.errors import UnknownNameError
from pdekit.solvers.base import Solver

_REGISTRY: dict[str, type[Solver]] = {}


def register_solver(name: str):
    """Class decorator: register a Solver subclass under ``name``."""

    def deco(cls: type[Solver]) -> type[Solver]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"solver {name!r} is already registered to {_REGISTRY[name]}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def names() -> list[str]:
    """All registered solver names, sorted."""
    return sorted(_REGISTRY)


def get(name: str) -> Solver:
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise UnknownNameError("solver", name, names()) from None
