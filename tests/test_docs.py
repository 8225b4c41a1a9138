"""The documentation builds as ``make docs`` builds it, warnings as errors, and says what is true.

One Sphinx build (HTML, ``-W``) into a temporary folder; the pages written from the registries
must then name every registered problem and solver and every example script, so a new one can
never be missing from the documentation.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("sphinx")
pytest.importorskip("myst_parser")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs")
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    cmd += ["-d", str(out / "doctrees"), str(ROOT / "docs"), str(out / "html")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    return out / "html"


def test_docs_build_with_warnings_as_errors(built):
    for page in ("index", "design", "problems", "solvers", "examples", "api"):
        assert (built / f"{page}.html").is_file(), page


def test_registry_pages_name_every_problem_and_solver(built):
    from pdekit import problems, solvers

    text = (built / "problems.html").read_text()
    missing = [n for n in problems.names() if n not in text]
    assert not missing, f"problems missing from the docs: {missing}"
    text = (built / "solvers.html").read_text()
    missing = [n for n in solvers.names() if f"{n}</h2>" not in text and f">{n}<" not in text]
    assert not missing, f"solvers missing from the docs: {missing}"


def test_examples_page_shows_every_example(built):
    text = (built / "examples.html").read_text()
    scripts = sorted(p.name for p in (ROOT / "examples").glob("*.py"))
    assert scripts, "no examples"
    missing = [s for s in scripts if s not in text]
    assert not missing, f"examples missing from the docs: {missing}"
