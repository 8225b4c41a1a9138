"""Registering a problem twice: the same definition re-run replaces itself (a notebook cell run
again, a reloaded module); a different class under a taken name is refused."""

from dataclasses import dataclass

import pytest

from pdekit.problems import Problem, get_class, register
from pdekit.problems.registry import unregister

NAME = "test_registry/redefined"


def _define(body_value: float):
    """The same class statement each call: what re-running a cell does."""

    @register(NAME)
    @dataclass(frozen=True)
    class Redefined(Problem):
        coordinates = ("x",)
        fields = ("u",)
        value = body_value

    return Redefined


def test_the_same_definition_run_again_replaces_itself():
    try:
        first = _define(1.0)
        second = _define(2.0)
        assert first is not second
        assert get_class(NAME) is second and get_class(NAME).value == 2.0
    finally:
        unregister(NAME)


def test_another_class_under_a_taken_name_is_refused():
    try:
        _define(1.0)
        with pytest.raises(ValueError, match="already registered"):

            @register(NAME)
            @dataclass(frozen=True)
            class Other(Problem):
                coordinates = ("x",)
                fields = ("u",)

    finally:
        unregister(NAME)
