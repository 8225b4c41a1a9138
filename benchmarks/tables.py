"""Markdown tables from the benchmark results in ``benchmarks/results/``.

One small function per results file, ``<name>_table(json_path) -> str``, registered in
``TABLES`` under the file's name; :func:`main` prints the table of every results file present.

    python benchmarks/tables.py
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def _mib(nbytes: float) -> str:
    return f"{nbytes / 2**20:.1f}"


#: kernel rows: copies, then each kernel allocating its output and writing into ``out=``
KERNEL_ROWS = (
    "copy",
    "copy_allocating",
    "heat_residual_2d",
    "heat_residual_2d_out",
    "navier_stokes_residual_2d",
    "navier_stokes_residual_2d_out",
)


def residual_engines_table(json_path: str | Path) -> str:
    """One row per (case, engine) of ``residual_engines*.json``: median step time, speed-up and
    peak memory against DeepXDE, residual difference against DeepXDE; then the kernels."""
    data = json.loads(Path(json_path).read_text())
    s = data["settings"]
    lines = [
        f"Training step (residual + MSE + parameter backward), {s['network']}, {s['points']} "
        f"points, {s['dtype']}; median of {s['repeats']} steps. Device: {data['device']}.",
        "",
        "| case | engine | median step (ms) | speed-up vs DeepXDE | peak memory (MiB) "
        "| memory / DeepXDE | max rel. diff vs DeepXDE |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for case, c in data["cases"].items():
        for engine, r in c["engines"].items():
            name = f"**{engine}**" if engine == c["best_engine"] else engine
            if r.get("status") != "ok":
                reason = r.get("reason", "").splitlines()[0][:80] if r.get("reason") else ""
                lines.append(f"| {case} | {name} | {r.get('status')}: {reason} | | | | |")
                continue
            if engine == "gemm_floor":  # the products alone: no residual, no memory figure
                bound = c["speedup_bound_vs_deepxde"]
                lines.append(
                    f"| {case} | matrix products only ({r['slots']} slots) | {_ms(r['median_s'])} "
                    f"| {bound:.2f}x (bound) | | | |"
                )
                continue
            speed = f"{r['speedup_vs_deepxde']:.2f}x" if "speedup_vs_deepxde" in r else "1"
            mem = f"{r['memory_ratio_vs_deepxde']:.2f}" if "memory_ratio_vs_deepxde" in r else "1"
            diff = r.get("rel_diff_vs_deepxde")
            diff_s = f"{max(diff.values()):.1e}" if diff else "(reference)"
            lines.append(
                f"| {case} | {name} | {_ms(r['median_s'])} | {speed} "
                f"| {_mib(r['peak_memory_bytes'])} | {mem} | {diff_s} |"
            )
    k = data.get("kernels")
    if k:
        n = "x".join(str(v) for v in k["grid"])
        lines += [
            "",
            f"numba grid-residual kernels, {n} {k['dtype']} grid, {k['numba_threads']} thread(s); "
            "bandwidth = minimal bytes moved / median time.",
            "",
            "| operation | median (ms) | bandwidth (GB/s) | ratio to copy "
            "| ratio to allocating copy |",
            "|---|---:|---:|---:|---:|",
        ]
        for op in KERNEL_ROWS:
            if op not in k:
                continue
            r = k[op]
            ratios = [
                f"{r[key]:.2f}" if key in r else ""
                for key in ("bandwidth_ratio_to_copy", "bandwidth_ratio_to_allocating_copy")
            ]
            cells = [op, _ms(r["median_s"]), f"{r['bandwidth_gb_s']:.2f}", *ratios]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: results file stem -> table function; ``residual_engines_cuda`` shares the CPU layout
def training_table(path: str | Path) -> str:
    """Cases x solvers under one wall-clock budget (causal_pinn.json, lagrangian_pinn.json)."""
    data = json.loads(Path(path).read_text())
    lines = [
        f"Every (case, solver) trained for the same wall-clock budget of {data['budget_s']:g} s "
        f"on {data['device']}; rel_l2 against the problem's reference.",
        "",
    ]
    # the moving-front Burgers cases also carry the error relative to the wave u_ref - c
    wave = any("rel_l2_wave" in r for solvers in data["cases"].values() for r in solvers.values())
    if wave:
        lines[0] += " rel_l2 (wave): ||u - u_ref|| / ||u_ref - c||."
    lines += [
        "| case | solver | rel_l2 | " + ("rel_l2 (wave) | " if wave else "") + "steps | wall (s) |",
        "|---|---|---:|" + ("---:|" if wave else "") + "---:|---:|",
    ]
    for case, solvers in data["cases"].items():
        for solver, r in solvers.items():
            if "rel_l2" not in r:
                blank = "| | |" + (" |" if wave else "")
                lines.append(f"| {case} | {solver} | {r.get('error', 'failed')} {blank}")
                continue
            w = (f"{r['rel_l2_wave']:.3g} | " if "rel_l2_wave" in r else "| ") if wave else ""
            lines.append(
                f"| {case} | {solver} | {r['rel_l2']:.3g} | {w}{r['steps']} | {r['wall_s']:.0f} |"
            )
    limits = data.get("inviscid_limit", {})
    for case, solvers in data["cases"].items():
        if case in limits:  # the inviscid entropy solution, scored like a solver
            lines.append(
                f"| {case} | inviscid limit (no training) | {limits[case]['rel_l2']:.3g} | | |"
            )
            solvers = {**solvers, "inviscid limit": limits[case]}
        lines += _front_map(case, solvers)
    return "\n".join(lines)


def _front_map(case: str, solvers: dict) -> list[str]:
    """The error map near a steep front, where the results carry one (Burgers): rel_l2 per
    time in the band around the front and away from it, one column pair per solver."""
    with_map = {s: r for s, r in solvers.items() if "rel_l2_by_time" in r}
    if not with_map:
        return []
    first = next(iter(with_map.values()))
    half = first.get("front_halfwidth", 0.0)
    names = list(with_map)
    lines = [
        "",
        f'{case}: rel_l2 by time within |x| < {half:g} of the front ("front") and outside it '
        f"(whole run: "
        + "; ".join(
            f"{s} {r['rel_l2_front']:.3g} / {r['rel_l2_outside_front']:.3g}"
            for s, r in with_map.items()
        )
        + ").",
        "",
        "| t | " + " | ".join(f"{s} front | {s} outside" for s in names) + " |",
        "|---:|" + "---:|---:|" * len(names),
    ]
    for t in first["rel_l2_by_time"]:
        cells = []
        for s in names:
            row = with_map[s]["rel_l2_by_time"].get(t, {})
            cells += [
                f"{row.get('front', float('nan')):.3g}",
                f"{row.get('outside', float('nan')):.3g}",
            ]
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    return lines


def geometry_table(path: str | Path) -> str:
    d = json.loads(Path(path).read_text())
    sec, ratio = d["seconds"], d["speedup_baseline_over_pdekit"]
    return "\n".join(
        [
            f"{d['dim']}D Delaunay mesh of {d['cells']} cells; {d['samples']:.0e} samples, "
            f"{d['points']:.0e} points located; best of {d['repeat_best_of']}, "
            f"{d['machine']['numba_threads']} numba thread(s).",
            "",
            "| operation | seconds | baseline / pdekit |",
            "|---|---:|---:|",
            f"| sample interior (pdekit, uniform) | {sec['sample_pdekit_uniform']:.2f} | |",
            f"| sample interior (numpy choice + Dirichlet) | "
            f"{sec['sample_numpy_choice_dirichlet']:.2f} | "
            f"{ratio['sample_numpy_over_pdekit_uniform']:.2f} |",
            f"| sample interior (rejection + scipy find_simplex) | "
            f"{sec['sample_scipy_rejection_find_simplex']:.2f} | "
            f"{ratio['sample_rejection_over_pdekit_uniform']:.1f} |",
            f"| locate points (pdekit numba) | {sec['locate_pdekit_numba']:.2f} | |",
            f"| locate points (scipy find_simplex) | {sec['locate_scipy_find_simplex']:.2f} | "
            f"{ratio['locate_scipy_over_pdekit']:.1f} |",
            f"| locate points (pyvista find_containing_cell) | "
            f"{sec['locate_pyvista_find_containing_cell']:.2f} | "
            f"{ratio['locate_pyvista_over_pdekit']:.1f} |",
        ]
    )


def references_table(path: str | Path) -> str:
    d = json.loads(Path(path).read_text())
    lines = []
    if "pseudo_spectral" in d:
        ps = d["pseudo_spectral"]
        lines += [
            f"Pseudo-spectral ETDRK4 step of the 2D vorticity solver ({ps['threads']} thread):",
            "",
            "| grid | step (ms) | its FFTs (ms) | step / FFTs |",
            "|---|---:|---:|---:|",
        ]
        for n, r in ps["sizes"].items():
            lines.append(
                f"| {n} | {_ms(r['step_s'])} | {_ms(r['fft_s'])} | {r['ratio_step_to_fft']:.2f} |"
            )
    if "batched_ns" in d:
        b = d["batched_ns"]
        lines += [
            "",
            f"Batched pseudo-spectral Navier-Stokes, {b['grid']} ({b['threads']} thread, "
            f"{b['cpu_count']} cores; fastest samples; targets: {b['targets']}):",
            "",
            "| trajectories B | chunk | time per trajectory-step (us) | step / its FFTs | "
            "throughput vs looping B = 1 |",
            "|---:|---:|---:|---:|---:|",
        ]
        for name, r in b["batches"].items():
            m = r["min"]
            lines.append(
                f"| {name.removeprefix('B=')} | {r['chunk']} | "
                f"{m['per_trajectory_step_s'] * 1e6:.0f} | {m['ratio_step_to_fft']:.2f} | "
                f"{m['throughput_vs_looping_b1']:.2f}x |"
            )
    if "finite_volume" in d:
        fv = d["finite_volume"]
        lines += [
            "",
            f"Finite volumes ({fv['numba_threads']} numba thread):",
            "",
            "| grid | flux divergence (Mcell/s) | vs its torch twin | RKC2 PME solve "
            "(Mcell-updates/s) |",
            "|---|---:|---:|---:|",
        ]
        for n, r in fv["sizes"].items():
            lines.append(
                f"| {n} | {r['kernel_cells_per_s'] / 1e6:.1f} | "
                f"{r['kernel_speedup_vs_torch_twin']:.1f}x | "
                f"{r['solve_cell_updates_per_s'] / 1e6:.1f} |"
            )
    return "\n".join(lines)


def probconserv_table(path: str | Path) -> str:
    d = json.loads(Path(path).read_text())
    lines = [
        "| case | model | MSE | CE | LL | shock MAE |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for case, models in d["cases"].items():
        for model, r in models.items():
            cells = [
                f"{r[k]:.3g}" if isinstance(r.get(k), float) else "-"
                for k in ("mse", "ce", "ll", "shock_mae")
            ]
            lines.append(f"| {case} | {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def operators_table(path: str | Path) -> str:
    """The fno baseline on the FNO benchmark (operators.json): error, times, trainer ratio."""
    d = json.loads(Path(path).read_text())
    lines = [
        "| family | n_train | test rel. L2 (mean ± std) | training | inference / trajectory "
        "| spectral solver / trajectory | speed-up |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for case, r in d["cases"].items():
        f, s = r["fno"], r["spectral_solver"]
        lines.append(
            f"| {case} | {f['n_train']} | {100 * f['rel_l2']:.2f}% ± {100 * f['rel_l2_std']:.2f}% "
            f"({f['test_members']} members) | {f['train_s'] / 60:.0f} min, {f['steps_done']} steps "
            f"| {_ms(f['infer_s'])} ms | {_ms(s['s_per_trajectory'])} ms "
            f"| {s['s_per_trajectory'] / f['infer_s']:.0f}x |"
        )
    t = d["trainer"]
    lines.append("")
    lines.append(
        f"pdekit's trainer / neuraloperator's Trainer: {d['trainer_vs_neuralop']:.3f} "
        f"({t['samples_per_s']['pdekit']:.1f} vs {t['samples_per_s']['neuralop']:.1f} samples/s; "
        f"{t['setting']}). Device: {d['device']}."
    )
    return "\n".join(lines)


def spectral_fno_table(path: str | Path) -> str:
    """The spectral-refined FNO beside the fno baseline (spectral_fno.json)."""
    d = json.loads(Path(path).read_text())

    def pct(stat: dict) -> str:
        return f"{100 * stat['mean']:.2f}% ± {100 * stat['std']:.2f}% ({stat['n']})"

    lines = [
        "| case | spectral_fno | spectral_fno on the refined subset: before → after "
        "| refinement / trajectory | fno (same members) |",
        "|---|---:|---:|---:|---:|",
    ]
    for case, r in d["cases"].items():
        s, f = r["spectral_fno"], r["fno"]
        before = s.get("rel_l2_subset", s["rel_l2"])
        lines.append(
            f"| {case} | {pct(s['rel_l2'])} | {pct(before)} → {pct(s['rel_l2_refined'])} "
            f"| {s['refine_s']['mean']:.1f} s | {pct(f['rel_l2'])} |"
        )
    for case, r in d["cases"].items():
        for opt, v in r["spectral_fno"].get("refinements", {}).items():
            ratio = v["refined_over_unrefined"]
            lines.append(
                f"\n{case}, refinement by {opt}: {pct(v['rel_l2_refined'])}, refined / unrefined "
                f"{ratio['mean']:.3f} ± {ratio['std']:.3f}, "
                f"{v['refine_s']['mean']:.1f} s per trajectory"
            )
    t, solver = d["train"], d["spectral_solver"]
    lines.append("")
    lines.append(
        f"Training: {t.get('train_s', float('nan')) / 60:.0f} min, {t['steps_done']} steps "
        f"({t['training_command']}); the pseudo-spectral solver for the same 40 snapshots: "
        + ", ".join(
            f"{n}^2 {1e3 * v['s_per_trajectory']:.0f} ms (rel. L2 {100 * v['rel_l2_vs_data']:.2g}%)"
            for n, v in solver.items()
        )
        + f". Device: {d['device']}."
    )
    return "\n".join(lines)


def moe_hard_table(path: str | Path) -> str:
    """PI-SC, PI-HC and PI-HC-MoE on diffusion-sorption, and the scaling rows (moe_hard.json)."""
    d = json.loads(Path(path).read_text())

    def _mean(stat: dict | None) -> str:
        return f"{stat['mean']:.1f}" if stat else "-"

    names = {"fno_soft": "fno_soft (PI-SC)", "pi_hc": "moe_hard, 1 expert (PI-HC)",
             "moe": "moe_hard, 4 experts (PI-HC-MoE)",
             "moe_pde_from_2": "moe_hard, 4 experts, PDE from t = 10 s",
             "pi_hc_pde_from_2": "moe_hard, 1 expert, PDE from t = 10 s",
             "fno_soft_pde_from_2": "fno_soft, PDE from t = 10 s"}  # fmt: skip
    lines = [
        "| case | solver | test rel. L2 | from t = 10 s | at t = 5 s | paper | training "
        "| inference / trajectory | LM iterations | unconverged |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case, rows in d["cases"].items():
        for key, r in rows.items():
            e, p = r["rel_l2"], r["paper_rel_l2"]
            it = r.get("lm_iterations")
            late = r.get("rel_l2_from_t10")
            late = f"{100 * late['mean']:.1f}% ± {100 * late['std']:.1f}%" if late else "-"
            first = r.get("rel_l2_by_time", {}).get("5")
            first = f"{100 * first:.0f}%" if first is not None else "-"
            lines.append(
                f"| {case} | {names.get(key, key)} | {100 * e['mean']:.1f}% ± "
                f"{100 * e['std']:.1f}% ({r['members']}) | {late} | {first} "
                f"| {100 * p[0]:.2f}% ± {100 * p[1]:.2f}% "
                f"| {r['steps']} steps, {r['train_s'] / 60:.0f} min | {_ms(r['infer_s'])} ms "
                f"| {_mean(it)} "
                f"| {r.get('unconverged_members', '-')} |"
            )
    if d.get("scaling"):
        lines += [
            "",
            "| sampled points | PI-HC step | MoE step | speed-up | PI-HC inference "
            "| MoE inference | speed-up |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in d["scaling"]:
            lines.append(
                f"| {r['points']} | {_ms(r['pi_hc_step_s'])} ms | {_ms(r['moe_step_s'])} ms "
                f"| {r['step_speedup']:.2f}x | {_ms(r['pi_hc_infer_s'])} ms "
                f"| {_ms(r['moe_infer_s'])} ms | {r['infer_speedup']:.2f}x |"
            )
    lines.append("")
    lines.append(f"{d['setting']}. Device: {d['device']}.")
    return "\n".join(lines)


def neural_stagger_table(path: str | Path) -> str:
    """NeuralStagger configurations beside the base solver and the projection solver
    (neural_stagger.json): the cavity's rows, then the cylinder's (shedding quantities)."""
    d = json.loads(Path(path).read_text())
    runs = d.get("runs", {})

    def num(x, fmt: str = ".3f") -> str:
        return "-" if x is None or x != x else format(x, fmt)

    def steps(case: str) -> str:
        r = runs.get(case, {})
        return f"{r.get('steps', d['steps'])} Adam steps per configuration"

    lines = [
        "| case | configuration (s_x, s_y[, s_z], s_t) | velocity rel. L2 | error vs base "
        "| centrelines vs Ghia (u, v) | boundary rms | rollout | vs base | vs projection "
        "| training |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    cylinders = [c for c in d["cases"] if c.startswith("cylinder")]
    for case, rows in d["cases"].items():
        if case in cylinders:
            continue
        proj = rows.get("projection")
        for key, r in rows.items():
            if key == "projection":
                continue
            pieces = ", ".join(str(k) for k in r["spatial"])
            ghia = (
                f"{r['ghia_u_max_dev']:.3f}, {r['ghia_v_max_dev']:.3f}"
                if "ghia_u_max_dev" in r
                else "-"
            )
            lines.append(
                f"| {case} | {key} ({pieces}, {r['temporal']}) | {r['rel_l2']:.3f} "
                f"| {num(r.get('error_ratio_vs_base'), '.2f')}x | {ghia} "
                f"| {r['boundary_rms']:.3f} | {num(r.get('rollout_s'), '.2f')} s "
                f"({r['steps']} steps) "
                f"| {r.get('speedup_vs_base', float('nan')):.2f}x "
                f"| {r.get('speedup_vs_projection', float('nan')):.2f}x "
                f"| {num(r['train_s'] / 60 if r.get('train_s') else None, '.0f')} min |"
            )
        if proj:
            lines.append(
                f"| {case} | projection solver | reference | - | - | - | {proj['rollout_s']:.2f} s "
                f"({proj['steps']} steps) | - | 1x | - |"
            )
        lines.append("")
        lines.append(f"{case}: {steps(case)}.")
    for case in cylinders:
        rows = d["cases"][case]
        proj = rows.get("projection", {})
        lines += [
            "",
            f"{case}: DFG 2D-2 from rest, the rollout's forces on the cylinder (control volume) "
            "over the second half of the horizon; St, c_D max, c_L max over its last 5 lift "
            "periods, '-' where the lift does not shed periodically (the JSON gives the reason); "
            "flux: the rollout's flux through mid-channel at t = 1 over the inflow's.",
            "",
            "| configuration (s_x, s_y, s_t) | St | mean c_D | c_D max | c_L max "
            "| velocity rel. L2 | mean-flow rel. L2 | boundary rms | flux | rollout | vs base "
            "| vs projection | training |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for key, r in rows.items():
            if key == "projection":
                continue
            sx, sy = r["spatial"]
            depth = r.get("overrides", {}).get("network.depth")
            label = f"{key} ({sx}, {sy}, {r['temporal']})" + (f", depth {depth}" if depth else "")
            lines.append(
                f"| {label} | {num(r.get('strouhal'))} | {num(r.get('c_d_mean'), '.3g')} "
                f"| {num(r.get('c_d_max'), '.3g')} | {num(r.get('c_l_max'), '.3g')} "
                f"| {num(r['rel_l2'], '.3g')} | {num(r.get('rel_l2_mean_flow'), '.3g')} "
                f"| {num(r['boundary_rms'], '.3g')} "
                f"| {num(r.get('start_up', {}).get('flux_mid_channel_over_inflow'), '.2g')} "
                f"| {r['rollout_s']:.1f} s ({r['steps']} steps) "
                f"| {num(r.get('speedup_vs_base'), '.2f')}x "
                f"| {num(r.get('speedup_vs_projection'), '.2f')}x | {r['train_s'] / 60:.0f} min |"
            )
        if proj:
            lines.append(
                f"| projection solver (the reference) | {num(proj.get('strouhal'))} "
                f"| {num(proj.get('c_d_mean'))} | {num(proj.get('c_d_max'))} "
                f"| {num(proj.get('c_l_max'))} | reference | reference | - | - "
                f"| {proj['rollout_s']:.1f} s "
                f"({proj['steps']} steps) | - | 1x | - |"
            )
        lines.append(
            "| Schafer & Turek (1996) | 0.295-0.305 | - | 3.22-3.24 | 0.99-1.01 | | | | | | | | |"
        )
        lines.append("")
        lines.append(f"{case}: {steps(case)}.")
    lines.append(f"Device: {d['device']}.")
    return "\n".join(lines)


def cylinder_table(path: str | Path) -> str:
    """The DFG cylinder: the finite-element reference under refinement, PINNs at one budget, the
    periodic case and Beltrami on a mesh (cylinder.json)."""
    d = json.loads(Path(path).read_text())
    cases = d["cases"]
    lines = []
    if "dfg_2d1" in cases:
        c = cases["dfg_2d1"]
        pub = c["published"]
        lines += [
            "DFG 2D-1 (Re = 20): the Taylor-Hood reference by refinement, and the solvers "
            f"({d['budget_s']:.0f} s each). Relative errors against John & Matthies in brackets.",
            "",
            "| run | unknowns / steps | c_D | c_L | dp | field rel. L2 | seconds |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in c.get("levels", []):
            lines.append(
                f"| Taylor-Hood, mesh refined {r['level']}x | {r['unknowns']} | {r['cd']:.6f} "
                f"({r['cd_rel_error']:.1e}) | {r['cl']:.6f} ({r['cl_rel_error']:.1e}) | "
                f"{r['dp']:.6f} ({r['dp_rel_error']:.1e}) | - | {r['seconds']:.1f} |"
            )
        for solver in ("pinn", "deepxde"):
            r = c.get(solver)
            if r is None:
                continue
            lines.append(
                f"| `{solver}` | {r['steps']} steps | {r['cd']:.4f} ({r['cd_rel_error']:.1e}) | "
                f"{r['cl']:.4f} ({r['cl_rel_error']:.1e}) | {r['dp']:.4f} "
                f"({r['dp_rel_error']:.1e}) | {r['rel_l2']:.3f} | {r['wall_s']:.0f} |"
            )
        lines.append(f"| John & Matthies (2001) | | {pub['cd']} | {pub['cl']} | {pub['dp']} | | |")
        lines.append("")
    if "dfg_2d2" in cases:
        r = cases["dfg_2d2"]["reference"]
        pub = r["published"]
        lines += [
            "DFG 2D-2 (Re = 100, periodic): the Taylor-Hood flow by BDF2 from rest.",
            "",
            "| run | unknowns | dt | c_D max | c_L max | St | seconds |",
            "|---|---:|---:|---:|---:|---:|---:|",
            f"| Taylor-Hood, mesh refined {r['level']}x | {r['unknowns']} | {r['dt']} | "
            f"{r['cd_max']:.4f} | {r['cl_max']:.4f} | {r['st']:.4f} | {r['seconds']:.0f} |",
            f"| Schafer & Turek (1996) | | | {pub['cd_max'][0]}-{pub['cd_max'][1]} | "
            f"{pub['cl_max'][0]}-{pub['cl_max'][1]} | {pub['st'][0]}-{pub['st'][1]} | |",
            "",
        ]
    if "beltrami_mesh" in cases:
        r = cases["beltrami_mesh"]["pinn"]
        lines.append(
            f"Beltrami on the shipped tetrahedral mesh with a hole: `pinn` rel. L2 "
            f"{r['rel_l2']:.3e} after {r['steps']} steps ({r['wall_s']:.0f} s)."
        )
        lines.append("")
    lines.append(f"Device: {d['device']}; {d.get('load', '')}.")
    return "\n".join(lines)


def soak_table(path: str | Path) -> str:
    d = json.loads(Path(path).read_text())
    g, c = d["rss_growth"], d["checkpoint_write_stats_s"]
    return (
        f"{d['wall_s'] / 60:.0f}-minute run of {d['meta']['problem']} / {d['meta']['solver']} "
        f"({d['steps']} steps, checkpoints every minute): resident memory "
        f"{g['baseline_mib']:.0f} MiB after a {g['warmup_s']:.0f} s warm-up, "
        f"{g['growth_pct']:+.2f}% at the end (max {g['max_growth_pct']:+.2f}%); "
        f"{c['n']} checkpoint writes, median {_ms(c['median'])} ms (max {_ms(c['max'])} ms)"
        + (
            f"; open file descriptors {d['open_fds_after_warmup']['first']} after warm-up, "
            f"{d['open_fds_after_warmup']['last']} at the end "
            f"(max {d['open_fds_after_warmup']['max']})."
            if "open_fds_after_warmup" in d
            else "."
        )
    )


def burgers_label_plane_table(path: str | Path) -> str:
    """The exact Burgers flow map in the label plane (burgers_label_plane.json)."""
    d = json.loads(Path(path).read_text())
    rows = [
        "| t | labels a > 0 within 1e-6 of the shock | labels ending in (1e-6, 2/255] | front "
        "(w/u0 0.1 to 0.9) | front width | front speed |",
        "|---|---|---|---|---:|---:|",
    ]
    for r in d["times"]:
        collapsed = f"a < {r['collapsed_below']:.3f}" if r["collapsed_below"] > 0 else "none"
        first = r["first_column_labels"]
        first = f"{first[0]:.3f}-{first[1]:.3f}" if first else "-"
        rows.append(
            f"| {r['t']:.1f} | {collapsed} | {first} | {r['front'][0]:.3f}-{r['front'][1]:.3f} "
            f"| {r['front_width']:.3f} | {r['front_speed']:.2f} |"
        )
    return "\n".join(rows)


TABLES: dict[str, Callable[[str | Path], str]] = {
    "residual_engines": residual_engines_table,
    "residual_engines_cuda": residual_engines_table,
    "causal_pinn": training_table,
    "lagrangian_pinn": training_table,
    "lagrangian_pinn_moving": training_table,
    "burgers_label_plane": burgers_label_plane_table,
    "probconserv": probconserv_table,
    "geometry": geometry_table,
    "references": references_table,
    "soak": soak_table,
    "soak_fno": soak_table,
    "operators": operators_table,
    "spectral_fno": spectral_fno_table,
    "moe_hard": moe_hard_table,
    "neural_stagger": neural_stagger_table,
    "neural_stagger_3d": neural_stagger_table,
    "neural_stagger_3d_300steps": neural_stagger_table,
    "neural_stagger_3d_life": neural_stagger_table,
    "neural_stagger_cavity_life": neural_stagger_table,
    "cylinder": cylinder_table,
}


def main(results: Path = RESULTS) -> None:
    """Print the table of every results file present that has a table function."""
    for stem, fn in TABLES.items():
        path = results / f"{stem}.json"
        if path.exists():
            print(f"### {stem}\n\n{fn(path)}\n")


if __name__ == "__main__":
    main()
