"""ProbConserv benchmark: train the family models, then score ANP / SoftC / HardC / ProbConserv.

Protocol of Hansen et al. (ICML 2023), App. / ``experiments/analyze.py``: metrics at one time
(heat t = 0.5, PME t = 0.5, Stefan t = 0.05: the middle of each time domain) on 201 uniform x's,
averaged over ``--functions`` test functions per parameter value (the functions differ in their
context draws, seeds 0..n-1); shock MAE is |mean front of 500 samples - true front| averaged over
the functions; all models in one run. Beside MSE, CE and LL, the calibration of the predictive
Gaussian: coverage of its central 50/90/95 % intervals and the expected calibration error ECE
(mean |coverage - level| over the levels 0.05..0.95). Rows: anp, softc, hardc, probconserv,
physnp and physnp_limit (its sigma_G learned / 0; where a physnp network is found), and the
probconserv variants of ``--variants`` (``diff``: ProbConserv w/ diff; ``nonneg``,
``monotone``, ``monotone_nonneg``: the mean post-processed onto that set at the same mass, on
the PME and Stefan cases).

Two subcommands::

    # train one family network and write it (with this command recorded in the file)
    python benchmarks/probconserv.py train --problem porous_medium/heat --set k=1 \\
        --family k:1:5 --kind anp --steps 2000 --out pdekit/checkpoints/probconserv_heat_anp.h5

    # ProbConserv trained end to end (PhysNP), warm-started from a plain ANP
    python benchmarks/probconserv.py train ... --kind physnp --init heat_anp.h5 --out heat_physnp.h5

    # fine-tune a written network further (its command is recorded before this one)
    python benchmarks/probconserv.py train ... --steps 1000 --init heat_anp.h5 --seed 1 \\
        --out heat_anp_more.h5

    # score every case with the shipped (or --checkpoints DIR) networks
    python benchmarks/probconserv.py evaluate --functions 50 \\
        --out benchmarks/results/probconserv.json

``evaluate`` writes ``{"cases": {case: {model: {"mse", "ce", "ll", "shock_mae", ...}}},
"meta": {...}, "skipped": {...}}`` and a markdown table next to the JSON.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

import pdekit
from pdekit.checkpoints import load_checkpoint, save_checkpoint
from pdekit.solvers.base import RunOptions
from pdekit.solvers.probconserv.solver import PRETRAINED_DIR, find_checkpoint

ROOT = Path(__file__).resolve().parents[1]

#: case -> (problem, parameters); the paper's test parameters
CASES = {
    "stefan_0.6": ("porous_medium/stefan", {"u_star": 0.6}),
    "stefan_0.5": ("porous_medium/stefan", {"u_star": 0.5}),
    "pme_1": ("porous_medium/pme", {"m": 1.0}),
    "pme_3": ("porous_medium/pme", {"m": 3.0}),
    "pme_6": ("porous_medium/pme", {"m": 6.0}),
    "heat_1": ("porous_medium/heat", {"k": 1.0}),
    "heat_5": ("porous_medium/heat", {"k": 5.0}),
}
MODELS = ("anp", "softc", "hardc", "probconserv", "physnp")
#: cases whose reference is non-negative and non-increasing in x: the sets the post-processing
#: variants project onto (heat's sine is neither, and its mass is 0)
MONOTONE_CASES = ("stefan_0.6", "stefan_0.5", "pme_1", "pme_3", "pme_6")
#: network kinds scored where found, without a note when absent
OPTIONAL_KINDS = ("physnp",)
#: probconserv variants scored with --variants: name -> config changes
VARIANTS = {
    "diff": {"diff_prior": True},
    "nonneg": {"postprocess": "nonneg"},
    "monotone": {"postprocess": "monotone"},
    "monotone_nonneg": {"postprocess": "monotone_nonneg"},
}
CALIBRATION = ("cov50", "cov90", "cov95", "ece")
METRICS = ("mse", "ce", "ll", "shock_mae", "front_mean", "front_true") + CALIBRATION


def _pairs(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = json.loads(value) if value else True
    return out


def _grid(text: str) -> tuple[int, int]:
    """'10x40' -> (10, 40)."""
    try:
        nt, nx = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected TIMESxPOSITIONS such as 10x10, got {text!r}"
        ) from None
    return nt, nx


# -- train ---------------------------------------------------------------------------------------
def train(args) -> int:
    torch.set_num_threads(args.threads)
    param, low, high = args.family.split(":")
    anp = _pairs(args.anp)
    config = {
        "model": {"softc": "softc", "physnp": "physnp"}.get(args.kind, "probconserv"),
        "retrain": True,
        "anp": anp,
        "family": {
            "param": param,
            "low": float(low),
            "high": float(high),
            "batch": args.batch,
            "target_t": args.targets[0],
            "target_x": args.targets[1],
        },
        "train": {
            "steps": args.steps,
            "lr": args.lr,
            "lr_decay": args.lr_decay,
            "decay_every": args.decay_every,
            "log_every": args.log_every,
            "checkpoint_every": args.checkpoint_every,
            "keep_checkpoints": 100,
        },
        "z_samples": args.z_samples,
    }
    if args.kind == "physnp":
        config["physnp_precision"] = args.physnp_precision
        config["physnp_train_precision"] = not args.physnp_fixed_precision
    parent = {}
    if args.init:
        config["init"] = args.init
        parent = load_checkpoint(args.init, with_trainer=False).extras
    params = _pairs(args.set)
    t0 = time.perf_counter()
    sol = pdekit.solve(
        args.problem,
        solver="probconserv",
        config=config,
        seed=args.seed,
        checkpoint_dir=args.checkpoint_dir or None,
        **params,
    )
    wall = time.perf_counter() - t0
    command = "python benchmarks/probconserv.py " + shlex.join(args.argv)
    models = {"softc": ("softc",), "physnp": ("physnp",)}.get(
        args.kind, ("anp", "hardc", "probconserv")
    )
    recorded = {}
    for m in models:
        recorded[m] = sol.variant(model=m).slice_metrics(nx=args.nx, n_front=args.front_samples)
    ckpt = sol.to_checkpoint()
    ckpt.trainer = None  # optimiser state is not shipped (size); the history is
    note = (
        f"{args.steps} Adam steps of {args.batch} functions, lr {args.lr} "
        f"(x{args.lr_decay} every {args.decay_every}), "
        f"{torch.get_num_threads()} CPU thread(s), {wall:.0f} s"
    )
    if args.init:  # a fine-tuning: the commands and walls of every stage, first to last
        command = f"{parent.get('training_command', '?')}\n{command}"
        note = f"{parent.get('training_note', '?')}; then fine-tuned from {args.init}: {note}"
        wall += float(parent.get("training_wall_s", 0.0))
    ckpt.extras.update(
        training_command=command,
        training_wall_s=wall,
        training_note=note,
        recorded_metrics=recorded,
        recorded_eval={"nx": args.nx, "n_front": args.front_samples, "t": sol.default_time()},
    )
    path = save_checkpoint(args.out, ckpt)
    size = path.stat().st_size / 2**20
    print(f"wrote {path} ({size:.2f} MiB) after {wall:.0f} s")
    print(json.dumps(recorded, indent=1))
    return 0


# -- evaluate ------------------------------------------------------------------------------------
def _base_solution(name, params, kind, directory, z_samples, mc_dropout=False):
    problem = pdekit.problems.get(name, **params)
    path = find_checkpoint(problem, kind, directory)
    if path is None:
        return None, f"no {kind!r} checkpoint for {name} in {directory}"
    model = kind if kind in ("softc", "physnp") else "probconserv"
    config = {
        "model": model,
        "z_samples": z_samples,
        "pretrained": str(path),
        "mc_dropout": mc_dropout,
    }
    solver = pdekit.solvers.get("probconserv")
    cfg = pdekit.api.make_config("probconserv", config)
    return solver.fit(problem, cfg, RunOptions(verbose=False)), _shown(path)


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it (results name files portably)."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _mean(values):
    """Mean, or None where the metric does not exist (no front in the reference)."""
    return None if any(v is None for v in values) else float(np.mean(values))


def evaluate(args) -> int:
    torch.set_num_threads(args.threads)
    directory = Path(args.checkpoints)
    cases = args.cases.split(",") if args.cases else list(CASES)
    result: dict = {"cases": {}, "skipped": {}, "meta": {}}
    used: dict[str, str] = {}
    t0 = time.perf_counter()
    for case in cases:
        name, params = CASES[case]
        if name not in pdekit.problems.names():
            result["skipped"][case] = f"problem {name} is not registered"
            continue
        bases = {}
        for kind in ("anp", "softc", "physnp"):
            sol, info = _base_solution(
                name, params, kind, directory, args.z_samples, args.mc_dropout
            )
            if sol is None and kind in OPTIONAL_KINDS:
                continue
            if sol is None:
                result["skipped"].setdefault(case, "")
                result["skipped"][case] += info + "; "
            else:
                bases[kind] = sol
                used[info] = sol.extras.get("training_command", "")
        rows = {}
        variants = [v for v in args.variants.split(",") if v]
        runs = [(m, m, {}) for m in MODELS]
        runs.insert(MODELS.index("physnp") + 1, ("physnp_limit", "physnp", {"physnp_limit": True}))
        runs += [
            (f"probconserv_{v}", "probconserv", VARIANTS[v])
            for v in variants
            if v == "diff" or case in MONOTONE_CASES
        ]
        for label, m, changes in runs:
            base = bases.get(m if m in ("softc", "physnp") else "anp")
            if base is None:
                continue
            per = [
                base.variant(model=m, context_seed=i, **changes).slice_metrics(
                    nx=args.nx, n_front=args.front_samples, calibration=True
                )
                for i in range(args.functions)
            ]
            row = {k: _mean([p.get(k) for p in per]) for k in METRICS}
            for k in ("mse", "ll", "ce"):
                row[f"{k}_se"] = float(np.std([p[k] for p in per], ddof=1) / np.sqrt(len(per)))
            rows[label] = row
        result["cases"][case] = rows
        print(
            case,
            json.dumps({m: {k: _fmt(v, ".3e") for k, v in r.items()} for m, r in rows.items()}),
        )
    result["meta"] = {
        "command": "python benchmarks/probconserv.py " + shlex.join(args.argv),
        "functions": args.functions,
        "z_samples": args.z_samples,
        "front_samples": args.front_samples,
        "nx": args.nx,
        "mc_dropout": args.mc_dropout,
        "variants": args.variants,
        "times": "middle of the time domain (heat 0.5, pme 0.5, stefan 0.05)",
        "eval_wall_s": time.perf_counter() - t0,
        "checkpoints": used,
        "torch": torch.__version__,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


def _fmt(v, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def markdown(result: dict) -> str:
    lines = [
        "| case | model | MSE | CE | LL | cov 50/90/95 % | ECE | shock MAE | front mean (true) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for case, rows in result["cases"].items():
        for m, r in rows.items():
            front = f"{_fmt(r['front_mean'], '.4f')} ({_fmt(r['front_true'], '.4f')})"
            cover = "/".join(_fmt(r.get(k), ".2f") for k in ("cov50", "cov90", "cov95"))
            lines.append(
                f"| {case} | {m} | {r['mse']:.3g} | {r['ce']:.2g} | {r['ll']:.3g} | {cover} | "
                f"{_fmt(r.get('ece'), '.3f')} | {_fmt(r['shock_mae'], '.3g')} | {front} |"
            )
    meta = result["meta"]
    lines += ["", f"Command: `{meta['command']}`", ""]
    for path, command in meta["checkpoints"].items():  # a fine-tuning: one command per stage
        stages = "`, then `".join(command.split("\n"))
        lines.append(f"- `{path}`: trained by `{stages}`")
    if result["skipped"]:
        lines += ["", "Skipped:"] + [f"- {c}: {why}" for c, why in result["skipped"].items()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train one family network; write a checkpoint")
    t.add_argument("--problem", required=True)
    t.add_argument("--set", action="append", default=[], help="problem parameter, k=1")
    t.add_argument("--family", required=True, help="PARAM:LOW:HIGH, e.g. k:1:5")
    t.add_argument("--kind", choices=("anp", "softc", "physnp"), default="anp")
    t.add_argument(
        "--physnp-precision",
        type=float,
        default=1e2,
        help="physnp: initial constraint precision 1/sigma_G^2 (paper code 1e2; Stefan 1e5)",
    )
    t.add_argument(
        "--physnp-fixed-precision",
        action="store_true",
        help="physnp: keep the precision fixed (the paper's Stefan run) instead of learning it",
    )
    t.add_argument("--steps", type=int, default=2000)
    t.add_argument("--batch", type=int, default=16, help="functions per step")
    t.add_argument(
        "--targets",
        type=_grid,
        default=(10, 10),
        help="training targets per function, TIMESxPOSITIONS (the paper's 10x10)",
    )
    t.add_argument("--lr", type=float, default=1e-4)
    t.add_argument("--lr-decay", type=float, default=1.0, help="factor every --decay-every")
    t.add_argument("--decay-every", type=int, default=1000)
    t.add_argument("--anp", action="append", default=[], help="ANP size, e.g. hidden=64")
    t.add_argument("--z-samples", type=int, default=30)
    t.add_argument("--nx", type=int, default=201)
    t.add_argument("--front-samples", type=int, default=500)
    t.add_argument("--log-every", type=int, default=50)
    t.add_argument(
        "--init",
        default="",
        help="fine-tune: start from this checkpoint's network (same --anp sizes); the recorded "
        "training command then lists the parent's commands first",
    )
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument(
        "--checkpoint-every",
        type=int,
        default=0,
        help="also write the run's checkpoint every N steps into --checkpoint-dir (0: off)",
    )
    t.add_argument("--checkpoint-dir", default="", help="where --checkpoint-every writes")
    t.add_argument("--out", required=True)
    e = sub.add_parser("evaluate", help="score all cases and models; write JSON and markdown")
    e.add_argument("--cases", default="", help="comma-separated subset of " + ",".join(CASES))
    e.add_argument("--functions", type=int, default=50)
    e.add_argument("--z-samples", type=int, default=30)
    e.add_argument("--front-samples", type=int, default=500)
    e.add_argument("--nx", type=int, default=201)
    e.add_argument("--checkpoints", default=str(PRETRAINED_DIR))
    e.add_argument(
        "--variants",
        default="diff,nonneg,monotone_nonneg",
        help="probconserv variants to score too, comma-separated subset of "
        + ",".join(VARIANTS)
        + " ('' for none)",
    )
    e.add_argument(
        "--mc-dropout",
        action="store_true",
        help="keep dropout on at prediction (the paper's analyze.py protocol)",
    )
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--out", default="benchmarks/results/probconserv.json")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    if args.command == "train" and args.checkpoint_every and not args.checkpoint_dir:
        p.error("--checkpoint-every needs --checkpoint-dir")
    if args.command == "evaluate":
        unknown = [v for v in args.variants.split(",") if v and v not in VARIANTS]
        if unknown:
            p.error(f"unknown --variants {unknown}; choose from {list(VARIANTS)}")
    args.argv = argv  # recorded as the command that made the checkpoint or the results
    return {"train": train, "evaluate": evaluate}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
