"""Sphinx directives that write pdekit's registries and examples into the docs at build time.

``.. pdekit-problems::`` and ``.. pdekit-solvers::`` render every registered problem and solver
from the registries themselves (equation, parameters with their allowed ranges, the solvers that
take each problem; each solver's paper, config keys and presets), so the tables cannot drift from
the code. ``.. pdekit-examples::`` renders every script in ``examples/`` with its docstring and
its code. Nothing is computed: no reference solution is evaluated and nothing is trained.
"""

from __future__ import annotations

import ast
from pathlib import Path

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parents[2]


def _cell(text) -> str:
    """One cell of a list-table: a single line, pipes and asterisks kept literal."""
    text = " ".join(str(text).split())
    return f"``{text}``" if text else ""


def _prose(text: str) -> str:
    """Free text for a list-table cell: one line, markup characters escaped."""
    text = " ".join(str(text).split())
    for ch in ("\\", "*", "|", "`", "_"):
        text = text.replace(ch, "\\" + ch)
    return text


def _list_table(header: list[str], rows: list[list[str]], widths: str = "auto") -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", f"   :widths: {widths}", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {c}" for c in row[1:]]
    return lines + [""]


class _Generated(SphinxDirective):
    has_content = False

    def rst(self) -> list[str]:  # pragma: no cover - overridden
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        return self.parse_text_to_nodes("\n".join(self.rst()), allow_section_headings=True)


class ProblemsDirective(_Generated):
    """Every registered problem: equation, coordinates, fields, parameters, solvers."""

    def rst(self) -> list[str]:
        from pdekit import api, problems

        out: list[str] = []
        for name in problems.names():
            cls = problems.get_class(name)
            problem = problems.get(name)
            out += [name, "-" * len(name), ""]
            summary = (cls.__doc__ or "").strip().splitlines()
            if summary:
                out += [_prose(summary[0]), ""]
            out += [
                f"- equation: ``{' '.join(problem.equation.split())}``",
                f"- coordinates: ``{', '.join(problem.coordinates)}``; fields: "
                f"``{', '.join(problem.fields)}``",
                f"- solvers: {', '.join(f'``{s}``' for s in api.supported_solvers(problem))}",
                f"- class: :class:`{cls.__module__}.{cls.__qualname__}`",
                "",
            ]
            rows = [
                [
                    _cell(r["name"]),
                    _cell(r["type"]),
                    _cell(repr(r["default"])),
                    _cell(r["range"]),
                    _prose(r["doc"]),
                ]
                for r in cls.param_table()
            ]
            if rows:
                out += _list_table(["parameter", "type", "default", "allowed", "meaning"], rows)
        return out


class SolversDirective(_Generated):
    """Every registered solver: description, paper, config keys, presets."""

    def rst(self) -> list[str]:
        from pdekit import solvers
        from pdekit.solvers.config import config_help

        out: list[str] = []
        for name in solvers.names():
            s = solvers.get(name)
            out += [name, "-" * len(name), "", _prose(s.description), ""]
            if s.paper:
                out += [f"Paper: {_prose(s.paper)}", ""]
            out += [f"Class: :class:`{type(s).__module__}.{type(s).__qualname__}`", ""]
            rows = [
                [
                    _cell(r["key"]),
                    _cell(r["type"]),
                    _cell(repr(r["default"])),
                    _cell(r["range"]),
                    _prose(r["doc"]),
                ]
                for r in config_help(s.Config)
            ]
            out += _list_table(["config key", "type", "default", "allowed", "meaning"], rows)
            for preset, per_problem in sorted(s.presets.items()):
                out += [f"Preset ``{preset}`` (``--preset {preset}``):", ""]
                for problem, settings in sorted(per_problem.items()):
                    items = ", ".join(f"{k}={v!r}" for k, v in settings.items())
                    out.append(f"- ``{problem}``: ``{items}``")
                out.append("")
        return out


class ExamplesDirective(_Generated):
    """Every script of ``examples/``: its docstring as prose, then its code."""

    def rst(self) -> list[str]:
        out: list[str] = []
        for path in sorted((ROOT / "examples").glob("*.py")):
            self.env.note_dependency(str(path))
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            title = f"``examples/{path.name}``"
            out += [title, "-" * len(title), ""]
            out += [".. code-block:: text", ""] + [f"   {line}" for line in doc.splitlines()]
            out += ["", f".. literalinclude:: ../examples/{path.name}", "   :language: python", ""]
        return out


def setup(app):
    app.add_directive("pdekit-problems", ProblemsDirective)
    app.add_directive("pdekit-solvers", SolversDirective)
    app.add_directive("pdekit-examples", ExamplesDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
