"""The ``pdekit`` command: list, info, solve, export, data, train, evaluate. A thin layer over
:mod:`pdekit.api` (``data``: over :mod:`pdekit.problems.datasets`; ``train``/``evaluate``: over
:mod:`pdekit.solvers.fno` and :mod:`pdekit.store`).

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


def _solver_settings(items: list[str]) -> dict:
    """``SOLVER:KEY=VALUE`` items (``pdekit compare --config``) as ``{solver: {key: value}}``."""
    from pdekit.errors import ParameterError

    out: dict = {}
    for item in items or []:
        solver, sep, setting = item.partition(":")
        if not sep or not solver.strip() or "=" in solver:
            raise ParameterError(
                f"--config expects SOLVER:KEY=VALUE (e.g. pinn:network.width=64); got {item!r}"
            )
        out.setdefault(solver.strip(), {}).update(_pairs([setting], "--config"))
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
    from pdekit.solvers.config import config_help

    name = args.name
    if name in solvers.names():
        s = solvers.get(name)
        print(f"solver {name}: {s.description}")
        if s.paper:
            print(f"paper: {s.paper}")
        print("config (dotted key (type) = default  allowed  doc; set with --config KEY=VALUE):")
        for row in config_help(s.Config):
            allowed = f"  allowed {row['range']}" if row["range"] else ""
            doc = f"  {row['doc']}" if row["doc"] else ""
            print(f"  {row['key']} ({row['type']}) = {row['default']!r}{allowed}{doc}")
        for preset, per_problem in sorted(s.presets.items()):
            print(f"preset {preset} (--preset {preset}):")
            for problem, settings in sorted(per_problem.items()):
                items = ", ".join(f"{k}={v!r}" for k, v in settings.items())
                print(f"  {problem}: {items}")
        return 0
    if name not in problems.names():
        raise UnknownNameError("problem or solver", name, problems.names() + solvers.names())
    cls = problems.get_class(name)
    problem = problems.get(name)
    print(f"problem {name}")
    doc = (cls.__doc__ or "").strip().splitlines()
    if doc:
        print(f"  {doc[0]}")
    # the instance's, not the class's: some problems compute them (a property)
    print(f"equation: {problem.equation}")
    print(f"coordinates: {', '.join(problem.coordinates)}    fields: {', '.join(problem.fields)}")
    if problem.gauge_fields:
        print(
            f"up to a constant: {', '.join(problem.gauge_fields)} (nothing in the problem sets it; "
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


def _run_record(sol, run: dict | None) -> dict:
    """What ran: problem, solver, steps, device, and what the caller measured (wall time)."""
    model = getattr(sol, "model", None)
    try:
        device = str(next(model.parameters()).device) if model is not None else "cpu"
    except (AttributeError, StopIteration, TypeError):
        device = "cpu"
    return {
        "problem": sol.problem.name,
        "solver": sol.solver,
        "steps": int(sol.step),
        "device": device,
        **(run or {}),
    }


def _write_run_config(sol, path: Path, run: dict | None) -> Path:
    """The resolved settings of the run, to repeat it exactly: ``pdekit.solve(c["problem"],
    solver=c["solver"], config=c["config"], seed=c["seed"], params=c["params"])`` (the config
    in full, defaults included, with the steps it ran)."""
    from pdekit.solvers.config import to_dict

    record = {
        "problem": sol.problem.name,
        "params": sol.problem.params(),
        "solver": sol.solver,
        "config": to_dict(sol.config) if sol.config is not None else None,
        "steps": int(sol.step),
        "seed": (run or {}).get("seed"),
    }
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return path


def _write_outputs(sol, out: Path, run: dict | None = None) -> dict:
    from pdekit.io.metrics import write_metrics_csv, write_tensorboard

    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "vtk": sol.to_vtk(out / "solution.pvd"),
        "plot": sol.plot(out / "solution.png"),
        "fields": sol.to_hdf5(out / "fields.h5"),
        "checkpoint": sol.save(out / "checkpoint.h5"),
    }
    paths["config"] = _write_run_config(sol, out / "config.json", run)
    history = getattr(sol, "history", None) or {}
    if (csv := write_metrics_csv(history, out / "metrics.csv")) is not None:
        paths["metrics"] = csv
    if (board := write_tensorboard(history, out / "tensorboard")) is not None:
        paths["tensorboard"] = board
    errors, quantities = None, {}
    try:
        errors = sol.errors()
        record = {**errors, "run": _run_record(sol, run)}  # the metrics, and what ran
        quantities = sol.quantities()
        if quantities:
            record["quantities"] = quantities
        (out / "errors.json").write_text(json.dumps(record, indent=2))
    except NotImplementedError:
        pass
    return {"paths": paths, "errors": errors, "quantities": quantities}


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
    for name, q in (result.get("quantities") or {}).items():
        print(
            f"  {name} = {q['value']:.6g}  (reference {q['reference']:.6g}, relative error "
            f"{q['rel_error']:.2e})"
        )


def _out_dir(args) -> Path:
    """``--out``, else the run directory of ``--resume``, else ``runs/out``."""
    if args.out is not None:
        return _nonempty_out(args.out)
    if args.resume is None:
        return Path("runs/out")
    resume = Path(args.resume)
    if resume.is_dir():
        return resume.parent if resume.name == "checkpoints" else resume
    parent = resume.parent
    return parent.parent if parent.name == "checkpoints" else parent


def _nonempty_out(text: str) -> Path:
    from pdekit.errors import ParameterError

    if not text.strip():
        raise ParameterError("--out must name a directory; got an empty string")
    return Path(text)


def _input_path(text: str, what: str, directory_ok: bool = False) -> Path:
    """``text`` as a checkpoint path, checked with ``os.stat`` before anything opens it: a
    missing file, a symlink loop, or a FIFO/device/socket (which would block a reader) is
    refused with a ParameterError saying which."""
    import errno
    import stat

    from pdekit.errors import ParameterError

    path = Path(text)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ParameterError(f"{what} {path} is a symbolic link loop") from None
        if exc.errno == errno.ENOENT:
            raise ParameterError(f"{what} {path} does not exist") from None
        raise ParameterError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if stat.S_ISREG(mode) or (directory_ok and stat.S_ISDIR(mode)):
        return path
    kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file (a FIFO, device or socket)"
    raise ParameterError(f"{what} {path} is {kind}")


def _check_sections(solver: str, overrides: dict) -> None:
    """A ``--config`` key naming a section (``train``) takes sub-keys, not a value."""
    import typing
    from dataclasses import fields, is_dataclass

    from pdekit import solvers
    from pdekit.errors import ParameterError

    if solver not in solvers.names():
        return  # api.solve names the valid solvers
    for key in overrides:
        tp = solvers.get(solver).Config
        for i, part in enumerate(key.split(".")):
            sub = typing.get_type_hints(tp).get(part)
            if not (isinstance(sub, type) and is_dataclass(sub)):
                break
            if i == len(key.split(".")) - 1:
                raise ParameterError(
                    f"--config {key}: {key} is a section of the {solver} config, not a value; "
                    f"set its keys, e.g. --config {key}.{fields(sub)[0].name}=..."
                )
            tp = sub


def _resume_target(args, out: Path) -> str | None:
    """The path to resume from: ``--resume``; with ``--resume-if-present``, None (start fresh,
    said on stderr) when it does not exist or holds no checkpoint yet."""
    from pdekit.checkpoints.rundir import run_candidates

    resume = args.resume
    if not args.resume_if_present:
        return resume
    target = Path(resume) if resume is not None else out
    exists = os.path.lexists(target)
    if exists and not target.is_dir():
        return str(target)
    if exists and run_candidates(target):
        return str(target)
    print(f"pdekit: nothing to resume in {target}; starting a fresh run", file=sys.stderr)
    return None


#: the keys of a ``--config-file`` (those of the ``config.json`` a run writes)
CONFIG_FILE_KEYS = ("problem", "params", "solver", "config", "steps", "seed")


def read_config_file(path: str) -> dict:
    """The settings in a ``--config-file`` (TOML by its ``.toml`` suffix, else JSON), checked:
    a table with only :data:`CONFIG_FILE_KEYS`, ``params`` and ``config`` tables, integer
    ``steps`` and ``seed``. Raises ParameterError naming the file and what is wrong."""
    from pdekit.errors import ParameterError

    file = _input_path(path, "--config-file")
    toml = file.suffix.lower() == ".toml"
    if toml:
        try:
            import tomllib
        except ImportError:  # Python 3.10
            raise ParameterError(
                f"--config-file {path}: TOML needs Python 3.11 or later (tomllib); write the "
                "settings as JSON"
            ) from None
    try:
        text = file.read_text()
        data = tomllib.loads(text) if toml else json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        kind = "TOML" if toml else "JSON"
        raise ParameterError(f"--config-file {path}: not readable as {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise ParameterError(f"--config-file {path}: expected a table of settings")
    unknown = sorted(set(data) - set(CONFIG_FILE_KEYS))
    if unknown:
        raise ParameterError(
            f"--config-file {path}: unknown keys {unknown}; the keys are "
            f"{', '.join(CONFIG_FILE_KEYS)}"
        )
    for key in ("params", "config"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise ParameterError(f"--config-file {path}: {key} must be a table")
    for key in ("steps", "seed"):
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ParameterError(f"--config-file {path}: {key} must be an integer; got {value!r}")
    for key in ("problem", "solver"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ParameterError(f"--config-file {path}: {key} must be a name")
    return data


def _settings(args) -> None:
    """Fill the solve arguments from ``--config-file`` where no flag set them; the defaults
    (solver pinn, seed 0) where neither did."""
    from pdekit.errors import ParameterError

    file = read_config_file(args.config_file) if args.config_file else {}
    if args.name is None:
        args.name = file.get("problem")
    if args.name is None:
        raise ParameterError("pdekit solve needs a problem name, or a --config-file naming one")
    if file.get("problem") not in (None, args.name):
        raise ParameterError(
            f"the problem {args.name} is not the --config-file's {file['problem']}"
        )
    args.solver = args.solver or file.get("solver") or "pinn"
    if args.seed is None:
        args.seed = file["seed"] if file.get("seed") is not None else 0
    if args.steps is None:
        args.steps = file.get("steps")
    args.file_params = dict(file.get("params") or {})
    args.file_config = None
    if file.get("config") is not None:
        if file.get("solver", args.solver) == args.solver:
            args.file_config = file["config"]
        else:
            print(
                f"pdekit: the --config-file's config is {file['solver']}'s; solving with "
                f"{args.solver} at its defaults (and --config)",
                file=sys.stderr,
            )


def cmd_solve(args) -> int:
    from pdekit import api
    from pdekit.checkpoints.rundir import claim_run_dir
    from pdekit.solvers import distributed

    _settings(args)
    overrides = _pairs(args.config, "--config")
    _check_sections(args.solver, overrides)
    if args.resume is not None and (os.path.lexists(args.resume) or not args.resume_if_present):
        _input_path(args.resume, "--resume", directory_ok=True)
    with distributed.launched(args.device) as dist:
        out = _out_dir(args)
        held = []

        def claim() -> bytes:
            resume = _resume_target(args, out)
            lock = claim_run_dir(
                out,
                label=f"{args.name}, {args.solver}",
                warn=lambda m: print(f"pdekit: warning: {m}", file=sys.stderr, flush=True),
                resume=resume,
                overwrite=args.overwrite,
                fresh_if_taken=args.out is None and args.resume is None,
            )
            held.append(lock)
            return json.dumps({"out": str(lock.directory), "resume": resume}).encode()

        chosen = json.loads(dist.on_writer(claim))
        out = Path(chosen["out"])
        t0 = time.perf_counter()
        try:
            sol = _solve_in(api, args, overrides, chosen["resume"], out)
        except BaseException:
            for lock in held:
                lock.abandon()  # a run that stopped before writing leaves no directory behind
            raise
        try:
            if dist.is_writer:
                for lock in held:
                    if lock.note:
                        print(f"pdekit: {lock.note}", file=sys.stderr)
                if args.no_export:
                    print(f"wrote checkpoint: {sol.save(out / 'checkpoint.h5')}")
                else:
                    run = {"wall_s": round(time.perf_counter() - t0, 3), "seed": args.seed}
                    _report(sol, _write_outputs(sol, out, run))
        finally:
            for lock in held:
                lock.release()
    return 0


def _solve_in(api, args, overrides: dict, resume: str | None, out: Path):
    return api.solve(
        args.name,
        solver=args.solver,
        steps=args.steps,
        config=getattr(args, "file_config", None),
        preset=args.preset,
        overrides=overrides,
        device=args.device,
        seed=args.seed,
        resume=resume,
        checkpoint_dir=out / "checkpoints",
        verbose=not args.quiet,
        params={**getattr(args, "file_params", {}), **_pairs(args.set, "--set")},
    )


def cmd_compare(args) -> int:
    from pdekit.compare import compare, format_table

    presets = {str(k): str(v) for k, v in _pairs(args.preset, "--preset").items()}
    table = compare(
        args.name,
        args.solvers.split(","),
        args.budget,
        params=_pairs(args.set, "--set"),
        seed=args.seed,
        device=args.device,
        out=args.out,
        presets=presets,
        threads=args.threads,
        overrides=_solver_settings(args.config),
    )
    print(format_table(table))
    print(f"wrote table: {Path(args.out) / 'compare.json'}")
    print(f"wrote figure: {table['figure']}")
    return 0


def cmd_seal(args) -> int:
    """Put the digest header in front of a trusted plain HDF5 file (its bytes unchanged)."""
    from pdekit.checkpoints.sealed import seal_file

    _say(f"sealed {seal_file(args.file)}")
    return 0


def cmd_export(args) -> int:
    from pdekit import api
    from pdekit.checkpoints.rundir import ensure_writable_dir

    path = _input_path(args.checkpoint, "checkpoint")
    out = ensure_writable_dir(_nonempty_out(args.out), "--out directory")
    sol = api.load(path)
    _report(sol, _write_outputs(sol, out))
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


#: operator solvers that ``pdekit train`` trains on a family (pdekit.solvers.fno.operator_solvers(),
#: not imported here: the parser is built without torch; a test keeps the two equal)
TRAINABLE = ("fno", "fno_soft", "moe_hard", "spectral_fno")


def cmd_train(args) -> int:
    from pdekit.errors import ParameterError
    from pdekit.problems.family import families
    from pdekit.solvers import distributed
    from pdekit.solvers.fno import train_family

    fam = families.resolve(args.family, _pairs(args.set, "--set"))
    if fam.name not in families.names():
        raise ParameterError(
            f"pdekit train takes a registered family ({', '.join(families.names())}), or a "
            f"problem with --set selecting one; {fam.name} is not registered"
        )
    command = " ".join(["pdekit", "train", *args.argv]) if args.argv else ""
    # under torchrun: one process group, each rank its shard of every batch, rank 0 writes
    with distributed.launched(args.device) as dist:
        sol = train_family(
            fam.name,
            overrides=_pairs(args.config, "--config"),
            seed=args.seed,
            device=args.device,
            verbose=not args.quiet,
            command=command,
            solver=args.solver,
        )
        if dist.is_writer:
            print(f"wrote model: {sol.extras['store_path']}")
    return 0


def cmd_evaluate(args) -> int:
    from pdekit import store
    from pdekit.solvers.fno import evaluate

    model = store.describe(args.model)
    result = evaluate(args.model, args.split, args.size, _cells(args.grid))
    count = result.pop("members")["count"]
    print(f"model: {model.line()}")
    print(f"family: {model.family}    split: {args.split} ({count} members)")
    for name, value in result.items():
        print(f"{name}: {value['mean']:.4e} +- {value['std']:.2e}")
    return 0


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
    solve.add_argument(
        "name", nargs="?", default=None, help="problem name, e.g. porous_medium/heat"
    )
    solve.add_argument("--solver", default=None, help="solver name (default: pinn)")
    solve.add_argument(
        "--config-file",
        default=None,
        metavar="PATH",
        help="a run's settings, TOML or JSON: problem, params, solver, config, steps, seed (a "
        "run directory's config.json repeats that run); flags given beside it win",
    )
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
    solve.add_argument(
        "--preset",
        default=None,
        metavar="NAME",
        help="a solver's named settings for the problem (pdekit info SOLVER lists them), e.g. "
        "causal_pinn's benchmark; --config wins over it",
    )
    solve.add_argument("--steps", type=int, default=None, help="training budget (steps)")
    solve.add_argument("--seed", type=int, default=None, help="random seed (default: 0)")
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
    solve.add_argument(
        "--resume-if-present",
        action="store_true",
        help="with --resume (or alone: the --out directory), start a fresh run when there is "
        "no checkpoint to resume yet, instead of failing (for requeue scripts)",
    )
    solve.add_argument(
        "--overwrite",
        action="store_true",
        help="replace another run's results in --out (by default such a directory is refused)",
    )
    solve.add_argument("--quiet", action="store_true", help="no progress bar")
    solve.add_argument(
        "--no-export",
        action="store_true",
        help="write checkpoints only, no VTK/plot/fields (later: pdekit export CHECKPOINT)",
    )

    compare = sub.add_parser(
        "compare", help="train several solvers for one wall-clock budget each; table and figure"
    )
    compare.add_argument("name", help="problem name, e.g. convection_diffusion/burgers")
    compare.add_argument(
        "--solvers", required=True, help="comma-separated, e.g. pinn,causal_pinn,deepxde"
    )
    compare.add_argument("--budget", required=True, help="per solver: 120, 120s, 2m or 1h")
    compare.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="problem parameter"
    )
    compare.add_argument(
        "--preset",
        action="append",
        default=[],
        metavar="SOLVER=NAME",
        help="a solver's preset (repeatable), e.g. causal_pinn=benchmark",
    )
    compare.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="SOLVER:KEY=VALUE",
        help="one solver's config setting (repeatable), e.g. pinn:network.width=64; "
        "the budget is compare's (train.steps and train.time_budget_s are refused)",
    )
    compare.add_argument("--seed", type=int, default=0)
    compare.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    compare.add_argument("--threads", type=int, default=0, help="torch threads per run")
    compare.add_argument("--out", default="runs/compare", help="output directory")

    export = sub.add_parser("export", help="VTK, plot and fields from a checkpoint")
    export.add_argument("checkpoint")
    export.add_argument("--out", default="runs/export")

    seal = sub.add_parser(
        "seal", help="vouch for a trusted header-less HDF5 checkpoint: add the digest header"
    )
    seal.add_argument("file", help="a plain HDF5 file you trust (pdekit refuses unsealed ones)")

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

    train = sub.add_parser(
        "train", help="train an operator model on a family; save it in the store"
    )
    train.add_argument("family", help="family (kolmogorov_nu1e-3) or problem with --set")
    train.add_argument("--solver", default="fno", choices=TRAINABLE)
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="select the problem's family, e.g. --set nu=1e-3",
    )
    train.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="solver config (repeatable, dotted), e.g. --config dataset.n_train=200",
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="auto", help="auto, cpu or cuda")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    evaluate = sub.add_parser("evaluate", help="a stored model's errors on a split of its family")
    evaluate.add_argument("model", help="model file (pdekit train prints its path)")
    evaluate.add_argument("--split", default="test", help="train, valid or test")
    evaluate.add_argument("--size", type=int, default=None, help="members (default: the split's)")
    evaluate.add_argument("--grid", default=None, metavar="N", help="cells per axis")
    return p


COMMANDS = {
    "list": cmd_list,
    "info": cmd_info,
    "solve": cmd_solve,
    "compare": cmd_compare,
    "export": cmd_export,
    "seal": cmd_seal,
    "data": cmd_data,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
}


def _rank() -> int:
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[2:] if argv is None else argv[1:])
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
        if _peer_lost(exc):
            _say(
                f"pdekit: error: lost contact with another training process ({message}): a "
                "peer process died or was killed (not a pdekit bug); torchrun's failure report "
                "names its rank; continue the run with --resume",
                every_rank=True,
            )
            return 1
        _say(f"pdekit: internal error ({type(exc).__name__}): {message}", every_rank=True)
        _say("pdekit: rerun with --debug for the traceback and report it")
        return 1


#: what gloo and NCCL say on the surviving ranks when a peer process dies
PEER_LOST = ("connection reset by peer", "connection closed by peer", "broken pipe")


def _peer_lost(exc: Exception) -> bool:
    """Whether ``exc`` is a collective failing because another rank's process died."""
    from pdekit.solvers.distributed import launched_by_torchrun

    text = str(exc).lower()
    return (
        isinstance(exc, RuntimeError)
        and launched_by_torchrun()
        and any(p in text for p in PEER_LOST)
    )


def _say(line: str, every_rank: bool = False) -> None:
    """Print on stderr (rank 0 only under torchrun, unless ``every_rank``)."""
    rank = _rank()
    if rank == 0:
        print(line, file=sys.stderr)
    elif every_rank:
        print(f"[rank {rank}] {line}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
