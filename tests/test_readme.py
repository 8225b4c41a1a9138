"""Every command the README and the documentation show works as written on a fresh clone.

Each shell line of their code blocks that runs ``pdekit`` (directly, through ``torchrun -m
pdekit`` or ``python -m pdekit``) is parsed by the command's own parser, and what it names is
checked the way the command checks it before it does any work: the problem and its ``--set``
parameters (ranges, mesh files), the (problem, solver) pair, ``--preset`` and ``--config`` keys,
families. Lines that need files a run writes first (``runs/...``, the user cache) are parsed
only; ``pdekit list``, ``info`` and ``data list`` run for real. ``make`` targets and variables,
``python benchmarks/...`` scripts and ``python -m`` modules are checked to exist.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

import pdekit
from pdekit import api
from pdekit.cli import _pairs, _solver_settings, build_parser, main
from pdekit.problems.family import families

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PAGES = [p for p in PAGES if "_build" not in p.parts]
SHELL_FENCES = {"", "bash", "sh", "shell", "console"}


def shell_lines(text: str) -> list[list[str]]:
    """The tokens of each shell line in the page's shell code blocks (continuations joined,
    comments dropped)."""
    out, fence, pending = [], None, ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            fence = stripped[3:].strip() if fence is None else None
            continue
        if fence is None or fence not in SHELL_FENCES:
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        tokens = shlex.split(pending, comments=True)
        pending = ""
        if tokens:
            out.append(tokens)
    return out


def pdekit_argv(tokens: list[str]) -> list[str] | None:
    """The arguments of a ``pdekit`` call in the line, or None."""
    if tokens[0] == "pdekit":
        return tokens[1:]
    for i in range(len(tokens) - 1):
        if tokens[i] == "-m" and tokens[i + 1] == "pdekit":
            return tokens[i + 2 :]
    return None


COMMANDS = [
    pytest.param(page, argv, id=f"{page.name}: pdekit {' '.join(argv)}"[:120])
    for page in PAGES
    for tokens in shell_lines(page.read_text())
    if (argv := pdekit_argv(tokens)) is not None and "..." not in argv
]
OTHER = [
    pytest.param(page, tokens, id=f"{page.name}: {' '.join(tokens)}"[:120])
    for page in PAGES
    for tokens in shell_lines(page.read_text())
    if pdekit_argv(tokens) is None and tokens[0] in ("make", "python")
]


def test_the_pages_show_commands():
    """The collection above finds what it checks (a README without shell blocks would pass
    every parametrised test vacuously)."""
    readme = [argv for page, argv in (c.values for c in COMMANDS) if page.name == "README.md"]
    assert len(readme) >= 15, readme
    assert {argv[0] for argv in readme} >= {"list", "info", "solve", "compare", "export", "data",
                                             "train", "evaluate"}  # fmt: skip


def _check_solve(args) -> None:
    if args.name is None:  # the problem comes from --config-file
        assert args.config_file
        return
    inst = pdekit.problems.get(args.name, **_pairs(args.set, "--set"))
    solver = args.solver or "pinn"
    api.check_pair(inst, solver)
    config = _pairs(args.config, "--config")
    if args.preset:
        config = {**api.preset_overrides(solver, args.preset, inst.name), **config}
    api.make_config(solver, None, config)


def _check_compare(args) -> None:
    inst = pdekit.problems.get(args.name, **_pairs(args.set, "--set"))
    names = args.solvers.split(",")
    for solver in names:
        api.check_pair(inst, solver)
    for solver, preset in _pairs(args.preset, "--preset").items():
        assert solver in names
        api.preset_overrides(solver, str(preset), inst.name)
    for solver, settings in _solver_settings(args.config).items():
        assert solver in names
        api.make_config(solver, None, settings)


@pytest.mark.parametrize(("page", "argv"), COMMANDS)
def test_command_works_as_written(page, argv, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)  # the pages' relative paths are from the repository's root
    args = build_parser().parse_args(argv)  # an unknown flag exits here (status 2)
    if args.command == "solve":
        _check_solve(args)
    elif args.command == "compare":
        _check_compare(args)
    elif args.command == "train":
        family = families.resolve(args.family, _pairs(args.set, "--set"))
        assert family.name in families.names()
        api.make_config(args.solver, None, _pairs(args.config, "--config"))
    elif args.command == "data" and args.data_command == "generate":
        families.resolve(args.name, _pairs(args.set, "--set"))
    if args.command in ("list", "info") or (args.command, getattr(args, "data_command", None)) == (
        "data",
        "list",
    ):
        assert main(argv) == 0, capsys.readouterr().err


@pytest.mark.parametrize(("page", "tokens"), OTHER)
def test_other_commands_name_what_exists(page, tokens):
    if tokens[0] == "make":
        makefile = (ROOT / "Makefile").read_text()
        targets = set(re.findall(r"^([a-z]+):", makefile, flags=re.M))
        for token in tokens[1:]:
            key, sep, value = token.partition("=")
            if not sep:
                assert token in targets, f"make {token}: no such target"
            else:
                assert re.search(rf"^{key} \?=", makefile, flags=re.M), f"{key} is not a variable"
                if key == "DEFAULT_PROBLEM":
                    pdekit.problems.get(value)
    elif tokens[:2] == ["python", "-m"]:
        assert importlib.util.find_spec(tokens[2]) is not None, tokens[2]
    else:
        assert (ROOT / tokens[1]).is_file(), tokens[1]
