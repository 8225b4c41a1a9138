"""The ``pdekit`` command: list, info, solve, export, data. A thin layer over :mod:`pdekit.api`
(``data``: over :mod:`pdekit.problems.datasets`).

Exit status: 0 success; 2 bad input (unknown names, out-of-range or mistyped values, unusable
checkpoints, unwritable paths), printed as one line ``pdekit: error: ...``; 3 training diverged
(one line); 128 + signal number when SIGTERM/SIGINT stopped training after writing a
checkpoint; 1 an internal error. ``--debug`` shows the traceback instead.

Under ``torchrun --nproc_per_node=N -m pdekit solve ...`` the process group is initialised from
torchrun's environment (gloo on CPU, nccl on CUDA); rank 0 alone writes files and prints.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
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
    if cls.gauge_fields:
        print(
            f"up to a constant: {', '.join(cls.gauge_fields)} (nothing in the problem sets it; "
            "errors and outputs on grids shift it to the reference's mean at each time)"
        )
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


def _out_dir(args) -> Path:
    """``--out``, else the run directory of ``--resume``, else ``runs/out``."""
    if args.out is not None:
        return Path(args.out)
    if args.resume is None:
        return Path("runs/out")
    resume = Path(args.resume)
    if resume.is_dir():
        return resume.parent if resume.name == "checkpoints" else resume
    parent = resume.parent
    return parent.parent if parent.name == "checkpoints" else parent


def cmd_solve(args) -> int:
    from pdekit import api
    from pdekit.checkpoints import ensure_writable_dir
    from pdekit.solvers import distributed

    with distributed.launched(args.device) as dist:
        out = _out_dir(args)
        dist.on_writer(lambda: ensure_writable_dir(out) and None)
        sol = api.solve(
            args.name,
            solver=args.solver,
            steps=args.steps,
            overrides=_pairs(args.config, "--config"),
            device=args.device,
            seed=args.seed,
            resume=args.resume,
            checkpoint_dir=out / "checkpoints",
            verbose=not args.quiet,
            params=_pairs(args.set, "--set"),
        )
        if dist.is_writer:
            if args.no_export:
                print(f"wrote checkpoint: {sol.save(out / 'checkpoint.h5')}")
            else:
                _report(sol, _write_outputs(sol, out))
    return 0


def cmd_export(args) -> int:
    from pdekit import api

    sol = api.load(args.checkpoint)
    _report(sol, _write_outputs(sol, Path(args.out)))
    return 0


def _numbers(text: str, kind: type, what: str) -> list:
    """Comma-separated numbers of ``kind`` (``"1,2,3"``); ParameterError names the option."""
    from pdekit.errors import ParameterError

    try:
        values = [kind(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        values = []
    if not values:
        raise ParameterError(f"{what} expects comma-separated {kind.__name__}s; got {text!r}")
    return values


def _cells(text: str | None):
    """``--grid``: cells per axis, ``64`` or ``64x32``."""
    from pdekit.errors import ParameterError

    if text is None:
        return None
    try:
        cells = [int(v) for v in text.lower().split("x")]
    except ValueError:
        cells = []
    if not cells or min(cells) < 1:
        raise ParameterError(f"--grid expects cells per axis such as 64 or 64x32; got {text!r}")
    return cells[0] if len(cells) == 1 else cells


def cmd_data_generate(args) -> int:
    from pdekit.checkpoints import ensure_writable_dir
    from pdekit.problems.datasets import Dataset, dataset_dir
    from pdekit.problems.family import families

    family = families.resolve(args.name, _pairs(args.set, "--set"))
    if args.seeds is not None:
        family = family.with_seeds(args.split, _numbers(args.seeds, int, "--seeds"))
    times = None if args.times is None else _numbers(args.times, float, "--times")
    times = family.output_times(t_end=args.t_end, steps=args.steps, times=times)
    out = ensure_writable_dir(args.out if args.out is not None else dataset_dir())
    start = time.perf_counter()
    ds = Dataset.generate(
        family,
        args.split,
        args.size,
        grid=_cells(args.grid),
        times=times,
        dtype=args.dtype,
        directory=out,
        batch_size=args.batch,
        progress=False if args.quiet else None,
        force=args.force,
    )
    what = f"generated in {time.perf_counter() - start:.1f} s" if ds.generated else "up to date"
    size = ds.path.stat().st_size / 1e6 if ds.path is not None else 0.0
    print(f"{ds.path} ({size:.1f} MB; {what})")
    print(f"  {ds!r}")
    return 0


def cmd_data_info(args) -> int:
    from pdekit.checkpoints import sealed
    from pdekit.errors import ParameterError
    from pdekit.problems.datasets import HEADER_MAGIC, Dataset

    path = Path(args.file)
    try:
        with open(path, "rb") as fh:
            head = fh.read(sealed.HEADER_SIZE)
    except OSError as exc:
        raise ParameterError(f"cannot read dataset {path}: {exc.strerror or exc}") from None
    if head.startswith(sealed.HDF5_SIGNATURE):
        ds = Dataset.from_pdebench(path, problem=args.problem)
    elif head.startswith(HEADER_MAGIC):
        ds = Dataset.load(path)
    else:
        raise ParameterError(
            f"{path} is neither a pdekit dataset (sealed HDF5) nor a PDEBench HDF5 file"
        )
    ds.require(problem=args.problem, family=args.family, split=args.split, grid=_cells(args.grid))
    print("\n".join(ds.summary()))
    return 0


def cmd_data_list(args) -> int:
    from pdekit.problems.family import families

    for name in families.names():
        print(f"  {name:24s} {families.get(name).describe()}")
    return 0


DATA_COMMANDS = {"generate": cmd_data_generate, "info": cmd_data_info, "list": cmd_data_list}


def cmd_data(args) -> int:
    return DATA_COMMANDS[args.data_command](args)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``pdekit: error: ...``, status 2)."""

    def error(self, message: str):
        self.exit(2, f"pdekit: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pdekit", description="Solve named PDEs with neural solvers.")
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
    solve.add_argument(
        "--out",
        default=None,
        help="output directory (default: the resumed run's directory, else runs/out)",
    )
    solve.add_argument(
        "--resume",
        default=None,
        metavar="PATH",
        help="continue training from this checkpoint file, or from the newest good checkpoint "
        "of this run directory",
    )
    solve.add_argument("--quiet", action="store_true", help="no progress bar")
    solve.add_argument(
        "--no-export",
        action="store_true",
        help="write checkpoints only, no VTK/plot/fields (later: pdekit export CHECKPOINT)",
    )

    export = sub.add_parser("export", help="VTK, plot and fields from a checkpoint")
    export.add_argument("checkpoint")
    export.add_argument("--out", default="runs/export")

    data = sub.add_parser("data", help="datasets of a family's trajectories: generate, info")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    data_sub.add_parser("list", help="the families, their parameters and split sizes")
    gen = data_sub.add_parser(
        "generate", help="simulate a family's split and write it (sealed HDF5, PDEBench layout)"
    )
    gen.add_argument("name", help="family (kolmogorov_nu1e-3) or problem with --set")
    gen.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="select the problem's family (nu=1e-3) or fix another parameter (repeatable)",
    )
    gen.add_argument("--split", default="train", help="train, valid or test")
    gen.add_argument("--size", type=int, default=None, help="members (default: the split's)")
    gen.add_argument(
        "--seeds", default=None, metavar="S1,S2,...", help="explicit member seeds of the split"
    )
    gen.add_argument("--grid", default=None, metavar="N", help="cells per axis: 64 or 64x32")
    gen.add_argument("--t-end", type=float, default=None, help="last output time")
    gen.add_argument("--steps", type=int, default=None, help="output intervals from t0 to t-end")
    gen.add_argument("--times", default=None, metavar="T0,T1,...", help="explicit output times")
    gen.add_argument("--dtype", default="float32", help="float32 (default) or float64")
    gen.add_argument("--out", default=None, help="directory (default: the user cache)")
    gen.add_argument("--batch", type=int, default=32, help="trajectories per simulate call")
    gen.add_argument("--force", action="store_true", help="regenerate even if up to date")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    info_data = data_sub.add_parser(
        "info", help="what a dataset file holds (pdekit or PDEBench); checks its digest"
    )
    info_data.add_argument("file")
    info_data.add_argument("--problem", default=None, help="require (and, for PDEBench, name) it")
    info_data.add_argument("--family", default=None, help="require this family")
    info_data.add_argument("--split", default=None, help="require this split")
    info_data.add_argument("--grid", default=None, metavar="N", help="require these cells")
    return p


COMMANDS = {
    "list": cmd_list,
    "info": cmd_info,
    "solve": cmd_solve,
    "export": cmd_export,
    "data": cmd_data,
}


def _rank() -> int:
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        _say("pdekit: interrupted")
        return 130
    except Exception as exc:
        from pdekit.errors import DivergenceError, PdekitError, TrainingInterrupted

        if args.debug:
            raise
        text = str(exc).strip()
        message = text.splitlines()[0] if text else type(exc).__name__
        if isinstance(exc, TrainingInterrupted):
            _say(f"pdekit: {message}")
            return 128 + int(exc.signum)
        if isinstance(exc, DivergenceError):
            _say(f"pdekit: error: {message}")
            return 3
        if isinstance(exc, PdekitError | ValueError | KeyError | OSError):
            _say(f"pdekit: error: {message}")
            return 2
        _say(f"pdekit: internal error ({type(exc).__name__}): {message}", every_rank=True)
        _say("pdekit: rerun with --debug for the traceback and report it")
        return 1


def _say(line: str, every_rank: bool = False) -> None:
    """Print on stderr (rank 0 only under torchrun, unless ``every_rank``)."""
    rank = _rank()
    if rank == 0:
        print(line, file=sys.stderr)
    elif every_rank:
        print(f"[rank {rank}] {line}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
