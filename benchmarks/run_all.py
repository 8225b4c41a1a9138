"""Run pdekit's benchmarks one after another (``make bench``) and print their tables.

First the tests marked ``slow`` (``pytest -m slow``: the Re = 1000 lid-driven cavity against
Ghia et al. and Botella & Peyret, the DFG cylinder shedding on two grids, the steady cylinder's
second refinement; about 5 minutes on one core), which ``make test`` leaves out, so that they
are run somewhere. Then each benchmark, its own script that writes JSON to
``benchmarks/results/``; this runner only starts them with their default (full) settings, in a
fresh process each, and then prints the markdown tables made from whatever JSON is present
(``benchmarks/tables.py``). Full settings take hours on a 2-core CPU (the training benchmarks
give every (case, solver) 600 s); ``--only`` picks some, ``--skip`` leaves some out, and
``--dry-run`` prints the commands.

    python benchmarks/run_all.py                      # everything but the 20-minute soak
    python benchmarks/run_all.py --only residual_engines,references
    python benchmarks/run_all.py --with-soak          # also the soak run
    python benchmarks/run_all.py --only slow_tests    # the slow tests alone
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: name -> arguments of ``python`` for checks that are test runs rather than scripts here: the
#: tests marked slow (excluded from ``make test`` by pyproject's addopts; -m slow overrides it)
TESTS: dict[str, list[str]] = {
    "slow_tests": ["-m", "pytest", "-m", "slow", "-q", "-p", "no:cacheprovider", "tests"],
}
#: name -> arguments of ``python benchmarks/<name>.py`` (defaults are the issues' settings)
BENCHMARKS: dict[str, list[str]] = {
    "residual_engines": [],
    "references": [],
    "geometry": [],
    "probconserv": ["evaluate"],
    "causal_pinn": [],
    "lagrangian_pinn": [],
    "burgers_label_plane": [],
    "operators": [],
    "spectral_fno": [],  # after operators: it reads the fno baseline's training time there
    "moe_hard": [],
    "neural_stagger": [],
    "cylinder": [],
}
OPTIONAL = {"soak": []}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--only", default="", help="comma-separated subset of " + ",".join([*TESTS, *BENCHMARKS])
    )
    p.add_argument("--skip", default="", help="comma-separated benchmarks to leave out")
    p.add_argument("--with-soak", action="store_true", help="also run the 20-minute soak")
    p.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = p.parse_args(argv)
    known = {**TESTS, **BENCHMARKS, **OPTIONAL}
    chosen = [n for n in args.only.split(",") if n] or [*TESTS, *BENCHMARKS]
    if args.with_soak and "soak" not in chosen:
        chosen.append("soak")
    unknown = [n for n in chosen + args.skip.split(",") if n and n not in known]
    if unknown:
        p.error(f"unknown benchmark(s) {unknown}; valid: {sorted(known)}")
    chosen = [n for n in chosen if n not in args.skip.split(",")]
    failed = []
    for name in chosen:
        script = HERE / f"{name}.py"
        if name in TESTS:
            cmd = [sys.executable, *TESTS[name]]
        else:
            cmd = [sys.executable, str(script), *known[name]]
        print(f"== {name}: {shlex.join(cmd)}", flush=True)
        if args.dry_run:
            continue
        if name not in TESTS and not script.exists():
            print(f"   {script} is missing", flush=True)
            failed.append(name)
            continue
        t0 = time.perf_counter()
        rc = subprocess.call(cmd, cwd=ROOT)
        print(f"   exit {rc} after {time.perf_counter() - t0:.0f} s", flush=True)
        if rc != 0:
            failed.append(name)
    if not args.dry_run and (HERE / "tables.py").exists():
        subprocess.call([sys.executable, str(HERE / "tables.py")], cwd=ROOT)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
