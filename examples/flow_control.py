"""Optimal control through a trained neural time stepper, checked against the projection solver.

NeuralStagger's last experiment (after Wandel et al., ICLR 2021): gradients through a rollout
of the trained network tune an input of the flow. Here the input ``theta`` is the lid speed of
the lid-driven cavity (``navier_stokes/cavity_transient``, started from rest), and the goal is
a value of the horizontal velocity ``u`` at a probe below the lid on the vertical centreline
(the return flow, about (0.5, 0.7)) at time ``t_end``. The target is what the classical
projection solver (:mod:`pdekit.problems.references.projection`, same MAC grid) gives at
``theta = 1.3``, so the right answer is known:

1. train ``neural_stagger`` on the cavity (physics loss only, no solution data; training
   scenes have lid speeds 0.5-1.5); the model is saved into the user store
   (``$PDEKIT_CACHE_DIR/models``, default ``~/.cache/pdekit/models``);
2. ``optimise_control``: Adam on ``theta`` from 1.0, minimising ``(u_probe - target)^2`` of the
   network's rollout, the gradient through every step of the rollout;
3. run the projection solver at the ``theta`` found: the probe value the real flow (to the
   projection solver's accuracy) has at the network's control;
4. ``projection_control``: the control the projection solver finds by itself (Brent's method,
   no gradients): 1.3, up to its tolerance.

The report (``control.json`` in the output directory, also returned): both controls, the probe
by the network and by the projection solver at the network's control, the target, and their
relative differences. A network trained for a few minutes on a CPU is inaccurate, and the
report says by how much: the control is only as good as the network's forward map.

Run:  python examples/flow_control.py [OUT_DIR] [--steps 3000] [--t-end 1] [--probe 0.5 0.7]
      [--pretrained MODEL]   (default out/flow_control; 3000 training steps: ~3-4 min on one
      core; ``--pretrained`` takes the ``"model"`` of an earlier report and skips the training)
"""

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

import pdekit
from pdekit.errors import ParameterError
from pdekit.problems import mac
from pdekit.problems.references.projection import (
    control_objective,
    projection_control,
    stable_dt,
)
from pdekit.solvers import neural_stagger as ns

PROBLEM = "navier_stokes/cavity_transient"


def probe_sample(scene: mac.MacScene, point=(0.5, 0.7)) -> tuple[int, int]:
    """Index (i, j) of the u sample (an x-face) nearest ``point`` on the scene's MAC layout."""
    grid = scene.grid
    i = int(np.argmin(np.abs(grid.axis(0, "face_x") - point[0])))
    j = int(np.argmin(np.abs(grid.axis(1, "center") - point[1])))
    return i, j


def main(
    out_dir="out/flow_control",
    steps=3000,
    cells=29,
    re=100.0,
    t_end=1.0,
    theta_target=1.3,
    theta0=1.0,
    bounds=(0.5, 1.5),
    iterations=60,
    lr=0.05,
    width=20,
    depth=3,
    probe=(0.5, 0.7),
    seed=0,
    pretrained=None,
    verbose=True,
):
    """Train, control through the network, check against the projection solver; returns the
    report written to ``out_dir/control.json``.

    ``cells`` fluid cells per side (the layout, ``cells + 3``, must split into 2 x 2 pieces of
    a multiple of ``2**depth`` cells: 13, 29, 61, ...); ``steps`` training steps of a U-Net of
    ``width`` and ``depth``; ``iterations`` Adam steps of ``lr`` on the lid speed, kept in
    ``bounds`` (the lid speeds the network was trained on); ``t_end`` a multiple of the
    network's step (0.05); ``probe`` the point whose u is controlled (the nearest u sample).
    ``pretrained``: a model file of an earlier run (its ``"model"``) to control instead of
    training one (``steps``, ``width``, ``depth`` and ``seed`` are then the file's).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    nu = 1.0 / re  # lid speed 1, side 1

    # 1. the network (retrain: the store would answer with any model of this layout and network,
    # whatever its training budget)
    over = {
        "stagger.spatial": (2, 2),
        "network.width": width,
        "network.depth": depth,
        "scenes.cells": cells,
        "scenes.pool": 32,
        "scenes.batch": 4,
        "train.steps": steps,
        "train.log_every": max(steps // 20, 1),
        "retrain": True,
    }
    t0 = time.perf_counter()
    if pretrained is None:
        sol = pdekit.solve(
            PROBLEM,
            solver="neural_stagger",
            overrides=over,
            seed=seed,
            verbose=verbose,
            re=re,
            t_end=t_end,
        )
    else:
        sol = pdekit.load(pretrained)
        have = (sol.solver, sol.problem.name, sol.problem.params()["re"], sol.cells)
        if have != ("neural_stagger", PROBLEM, re, cells):
            raise ParameterError(
                f"{pretrained} is a {have[0]} model of {have[1]} at re = {have[2]:g} on "
                f"{have[3]} cells; this run needs neural_stagger, {PROBLEM}, re = {re:g}, "
                f"{cells} cells"
            )
    train_s = time.perf_counter() - t0 if pretrained is None else None
    model = sol.model
    blocks = round(t_end / (sol.dt * model.config.stagger.temporal))
    if blocks < 1 or not math.isclose(blocks * sol.dt * model.config.stagger.temporal, t_end):
        raise ParameterError(f"t_end = {t_end} is not a multiple of the network's step {sol.dt}")

    scene = mac.cavity_scene(cells)  # lid speed 1; the control scales it
    i, j = probe_sample(scene, probe)
    scenes_of = ns.scaled_scenes(scene, device=next(model.parameters()).device)

    def cavity(theta):  # the same scenes for the projection solver
        return mac.cavity_scene(cells, lid=theta)

    def probe_u(u, v, p):  # the projection solver's final state (H, W)
        return u[i, j]

    # the target: the projection solver at theta_target, on one step for every run (that of the
    # faster end of the bounds, stable at every lid speed in between)
    dt = stable_dt(cavity(max(bounds)), nu, speed=max(bounds))
    target = control_objective(cavity, theta_target, nu, t_end, probe_u, dt=dt)

    # 2. the control through the network
    def network_probe(theta):
        with torch.no_grad():
            a, _ = ns.differentiable_rollout(model, scenes_of(torch.tensor(theta)), blocks)
            u, _ = mac.velocity_from_potential(a, model.grid)
        return float(u[0, -1, i, j])

    t0 = time.perf_counter()
    res = ns.optimise_control(
        model,
        scenes_of,
        theta0,
        lambda u, v, p: (u[0, -1, i, j] - target) ** 2,
        blocks,
        iterations=iterations,
        lr=lr,
        bounds=tuple(bounds),
    )
    control_s = time.perf_counter() - t0
    theta_net = res.theta
    probe_net = network_probe(theta_net)

    # 3. the projection solver at the network's control; 4. its own control
    probe_proj = control_objective(cavity, theta_net, nu, t_end, probe_u, dt=dt)
    search = projection_control(cavity, *bounds, nu, t_end, lambda u, v, p: u[i, j] - target, dt=dt)

    grid = scene.grid
    report = {
        "problem": PROBLEM,
        "re": re,
        "cells": cells,
        "train_steps": int(sol.step),
        "train_s": train_s,
        "model": str(pretrained) if pretrained else sol.extras.get("store_path"),
        "network": {
            "width": model.config.network.width,
            "depth": model.config.network.depth,
            "dt": float(sol.dt),
            "blocks": blocks,
        },
        "t_end": t_end,
        "probe": {
            "i": i,
            "j": j,
            "x": float(grid.axis(0, "face_x")[i]),
            "y": float(grid.axis(1, "center")[j]),
        },
        "projection_dt": dt,
        "theta_target": theta_target,
        "target": target,
        "theta_network": theta_net,
        "probe_network": probe_net,
        "objective_network": (probe_net - target) ** 2,
        "probe_projection": probe_proj,
        "objective_projection": (probe_proj - target) ** 2,
        "theta_projection": search.theta,
        "projection_runs": len(search.history["theta"]),
        "probe_network_at_theta_target": network_probe(theta_target),
        "theta_rel_diff": abs(theta_net - search.theta) / abs(search.theta),
        "probe_rel_diff": abs(probe_net - probe_proj) / abs(probe_proj),
        "target_miss_rel": abs(probe_proj - target) / abs(target),
        "control_s": control_s,
        "history": res.history,
    }
    (out_dir / "control.json").write_text(json.dumps(report, indent=2))
    at = report["probe"]
    print(
        f"probe u at ({at['x']:.3f}, {at['y']:.3f}), t = {t_end:g}: target {target:+.5f} "
        f"(the projection solver at theta = {theta_target:g})"
    )
    print(
        f"network ({int(sol.step)} steps): theta = {theta_net:.4f}; probe there "
        f"by the network {probe_net:+.5f}, by the projection solver {probe_proj:+.5f}"
    )
    print(f"projection alone: theta = {search.theta:.6f} ({report['projection_runs']} runs)")
    print(
        f"relative differences: theta {report['theta_rel_diff']:.3e}; probe, network against "
        f"projection at the network's theta {report['probe_rel_diff']:.3e}; the target missed "
        f"by {report['target_miss_rel']:.3e}"
    )
    print(f"report: {out_dir / 'control.json'}")
    return report


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    cli.add_argument("out_dir", nargs="?", default="out/flow_control")
    cli.add_argument("--steps", type=int, default=3000, help="training steps")
    cli.add_argument("--t-end", type=float, default=1.0, help="time of the goal")
    cli.add_argument("--probe", type=float, nargs=2, default=(0.5, 0.7), metavar=("X", "Y"))
    cli.add_argument("--pretrained", help="a model file to control instead of training one")
    a = cli.parse_args()
    main(a.out_dir, steps=a.steps, t_end=a.t_end, probe=tuple(a.probe), pretrained=a.pretrained)
