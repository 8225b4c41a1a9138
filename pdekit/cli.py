"""The ``pdekit`` command: list, info, solve, export. A thin layer over :mod:`pdekit.api`.

Bad input (unknown names, out-of-range parameters, unreadable files) prints one line
``pdekit: error: ...`` and exits with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pdekit._version import __version__


def _pairs(items: list[str], what: str) -> dict:
    from pdekit.errors import ParameterError
    from pdekit.solvers.config import parse_value

    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"{what} expects key=value; got {item!r}")
        out[key.strip()] = parse_value(value.strip())
    return out


def cmd_list(args) -> int:
    from pdekit import api, problems, solvers

    print("problems:")
    for name in problems.names():
        problem = problems.get(name)
        ok = api.supported_solvers(problem)
        print(f"  {name:40s} solvers: {', '.join(ok) or '-'}")
    print("solvers:")
    for name in solvers.names():
        print(f"  {name:16s} {solvers.get(name).description}")
    return 0


def cmd_info(args) -> int:
    from pdekit import api, problems, solvers
    from pdekit.errors import UnknownNameError
    from pdekit.solvers.config import describe

    name = args.name
    if name in solvers.names():
        s = solvers.get(name)
        print(f"solver {name}: {s.description}")
        if s.paper:
            print(f"paper: {s.paper}")
        print("config (dotted key = default):")
        for key, default, _ in describe(s.Config):
            print(f"  {key} = {default!r}")
        return 0
    if name not in problems.names():
        raise UnknownNameError("problem or solver", name, problems.names() + solvers.names())
    cls = problems.get_class(name)
    problem = problems.get(name)
    print(f"problem {name}")
    doc = (cls.__doc__ or "").strip().splitlines()
    if doc:
        print(f"  {doc[0]}")
    print(f"equation: {cls.equation}")
    print(f"coordinates: {', '.join(cls.coordinates)}    fields: {', '.join(cls.fields)}")
    print(f"domain: {problem.domain()!r}")
    print("parameters:")
    for row in cls.param_table():
        print(
            f"  {row['name']} ({row['type']}) = {row['default']!r}  allowed {row['range']}"
            f"  {row['doc']}"
        )
    try:
        ref = problem.reference()
        print(f"reference: {ref.source} — {ref.description}; accuracy: {ref.accuracy}")
    except NotImplementedError:
        print("reference: none")
    print(f"solvers: {', '.join(api.supported_solvers(problem)) or '-'}")
    return 0


def _write_outputs(sol, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "vtk": sol.to_vtk(out / "solution.pvd"),
        "plot": sol.plot(out / "solution.png"),
        "fields": sol.to_hdf5(out / "fields.h5"),
        "checkpoint": sol.save(out / "checkpoint.h5"),
    }
    errors = None
    try:
        errors = sol.errors()
        (out / "errors.json").write_text(json.dumps(errors, indent=2))
    except NotImplementedError:
        pass
    return {"paths": paths, "errors": errors}


def _report(sol, result: dict) -> None:
    for kind, path in result["paths"].items():
        print(f"wrote {kind}: {path}")
    errors = result["errors"]
    if errors is not None:
        per_field = "  ".join(f"{k}={v:.3e}" for k, v in errors.items() if k.startswith("rel_l2/"))
        print(
            f"{sol.problem.name} [{sol.solver}, {sol.step} steps]: "
            f"rel_l2 = {errors['rel_l2']:.4e}  max_abs = {errors['max_abs']:.3e}  {per_field}"
        )


def cmd_solve(args) -> int:
    from pdekit import api

    out = Path(args.out)
    sol = api.solve(
        args.name,
        solver=args.solver,
        steps=args.steps,
        config=api.make_config(args.solver, None, _pairs(args.config, "--config")),
        device=args.device,
        seed=args.seed,
        resume=args.resume,
        checkpoint_dir=out / "checkpoints",
        verbose=not args.quiet,
        **_pairs(args.set, "--set"),
    )
    _report(sol, _write_outputs(sol, out))
    return 0


def cmd_export(args) -> int:
    from pdekit import api

    sol = api.load(args.checkpoint)
    _report(sol, _write_outputs(sol, Path(args.out)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pdekit", description="Solve named PDEs with neural solvers.")
    p.add_argument("--version", action="version", version=f"pdekit {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="problems, solvers and which pairs are supported")

    info = sub.add_parser("info", help="a problem's equation, parameters, reference; or a solver")
    info.add_argument("name")

    solve = sub.add_parser("solve", help="solve a problem; write VTK, plot, HDF5 and checkpoint")
    solve.add_argument("name", help="problem name, e.g. porous_medium/heat")
    solve.add_argument("--solver", default="pinn")
    solve.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="problem parameter (repeatable), e.g. --set beta=30",
    )
    solve.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="solver config (repeatable, dotted), e.g. --config train.lr=1e-3",
    )
    solve.add_argument("--steps", type=int, default=None, help="training budget (steps)")
    solve.add_argument("--seed", type=int, default=0)
    solve.add_argument("--device", default="auto", help="auto, cpu or cuda")
    solve.add_argument("--out", default="runs/out", help="output directory")
    solve.add_argument(
        "--resume",
        default=None,
        metavar="CHECKPOINT",
        help="continue training from this checkpoint",
    )
    solve.add_argument("--quiet", action="store_true", help="no progress bar")

    export = sub.add_parser("export", help="VTK, plot and fields from a checkpoint")
    export.add_argument("checkpoint")
    export.add_argument("--out", default="runs/export")
    return p


COMMANDS = {"list": cmd_list, "info": cmd_info, "solve": cmd_solve, "export": cmd_export}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("pdekit: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from pdekit.errors import PdekitError

        if args.debug:
            raise
        expected = isinstance(exc, PdekitError | ValueError | KeyError | OSError)
        label = "error" if expected else f"internal error ({type(exc).__name__})"
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"pdekit: {label}: {message}", file=sys.stderr)
        if not expected:
            print("pdekit: rerun with --debug for the traceback and report it", file=sys.stderr)
        return 2 if expected else 1


if __name__ == "__main__":
    sys.exit(main())
