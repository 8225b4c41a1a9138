"""The CUDA path computes what the CPU path computes (skipped where no CUDA GPU is present).

Oracles, in float64: the CPU result of the same network, weights and points. Derivative engines
agree with the CPU to round-off; a short training run follows the CPU run's trajectory (the
collocation points come from the same numpy generator, the network is initialised on the CPU
and moved); a checkpoint written on the GPU resumes on the CPU.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import pdekit
from pdekit.core import AutogradFields, SpectralFields, TaylorFields
from pdekit.solvers.networks import NetworkConfig, build_mlp

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")

COORDS = ("x", "y", "t")
FIELDS = ("u", "v", "p")
BOUNDS = np.array([[-1.0, 0.0, 0.0], [2.0, 2 * math.pi, 1.5]])
DECLARED = {"u": ("x", "y", "t", "xx", "yy", "laplacian"), "v": ("x", "xy"), "p": ("x", "y")}


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().cpu(), b.detach().cpu()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def engines_on(device: str, kind: str):
    torch.manual_seed(0)
    cfg = NetworkConfig(width=32, depth=3, kind=kind, fourier_features=4)
    model = build_mlp(cfg, BOUNDS, (False, True, False), len(FIELDS)).double().to(device)
    rng = np.random.default_rng(1)
    pts = torch.tensor(BOUNDS[0] + (BOUNDS[1] - BOUNDS[0]) * rng.random((256, 3)), device=device)
    taylor = TaylorFields(model, pts, COORDS, FIELDS, DECLARED)
    p = pts.clone().requires_grad_(True)
    out = model(p)
    auto = AutogradFields(p, {f: out[:, i] for i, f in enumerate(FIELDS)}, COORDS, DECLARED)
    return taylor, auto


@pytest.mark.parametrize("kind", ["mlp", "modified_mlp"])
def test_taylor_and_autograd_on_cuda_equal_cpu(kind):
    t_gpu, a_gpu = engines_on("cuda", kind)
    t_cpu, _ = engines_on("cpu", kind)
    for f, specs in DECLARED.items():
        assert t_gpu[f].is_cuda
        assert rel(t_gpu[f], t_cpu[f]) <= 1e-12, f
        for s in specs:
            assert rel(t_gpu.d(f, s), t_cpu.d(f, s)) <= 1e-11, (f, s)
            assert rel(t_gpu.d(f, s), a_gpu.d(f, s)) <= 1e-11, (f, s)


def test_spectral_engine_on_cuda():
    n, two_pi = 32, 2 * math.pi
    x = torch.arange(n, dtype=torch.float64, device="cuda") * (two_pi / n)
    X, Y = torch.meshgrid(x, x, indexing="ij")
    u = torch.sin(3 * X) * torch.cos(2 * Y)
    f = SpectralFields({"u": u}, ("x", "y"), [two_pi / n] * 2)
    assert rel(f.d("u", "xx"), -9 * u) <= 1e-12
    assert rel(f.d("u", "xy"), -6 * torch.cos(3 * X) * torch.sin(2 * Y)) <= 1e-12


F64 = {"train": {"dtype": "float64"}}


@pytest.mark.parametrize(
    "solver, extra",
    [
        ("pinn", {}),
        ("causal_pinn", {"causal": {"chunks": 8}, "sampling": {"n_interior": 512}}),
        ("lagrangian_pinn", {}),
    ],
)
def test_training_on_cuda_follows_cpu(solver, extra):
    cfg = {**F64, **extra}
    runs = {
        dev: pdekit.solve(
            "convection_diffusion/convection",
            solver=solver,
            steps=30,
            config=cfg,
            device=dev,
            verbose=False,
            beta=5.0,
        )
        for dev in ("cpu", "cuda")
    }
    assert next(runs["cuda"].model.parameters()).is_cuda
    pts = runs["cpu"].problem.evaluation_grid().points()[::7]
    a, b = runs["cuda"](pts)["u"], runs["cpu"](pts)["u"]
    # 30 Adam steps in float64 from the same start on the same points: only the order of
    # floating-point sums differs between the devices
    assert np.abs(a - b).max() <= 1e-8 * np.abs(b).max()
    ea, eb = runs["cuda"].errors()["rel_l2"], runs["cpu"].errors()["rel_l2"]
    assert abs(ea - eb) <= 1e-8 * eb


def test_cuda_checkpoint_resumes_on_cpu(tmp_path):
    kw = dict(config=F64, verbose=False, k=2.0)
    full = pdekit.solve("porous_medium/heat", steps=40, device="cuda", **kw)
    pdekit.solve("porous_medium/heat", steps=20, device="cuda", checkpoint_dir=tmp_path, **kw)
    resumed = pdekit.solve(
        "porous_medium/heat", steps=40, device="cpu", resume=tmp_path, verbose=False
    )
    assert resumed.step == 40 and not next(resumed.model.parameters()).is_cuda
    pts = full.problem.evaluation_grid().points()[::5]
    a, b = resumed(pts)["u"], full(pts)["u"]
    assert np.abs(a - b).max() <= 1e-8 * np.abs(b).max()


def test_probconserv_checkpoint_on_cuda_equals_cpu():
    sols = {
        dev: pdekit.solve("porous_medium/heat", solver="probconserv", device=dev, k=2.0)
        for dev in ("cpu", "cuda")
    }
    pts = sols["cpu"].problem.evaluation_grid().points()
    a, b = sols["cuda"](pts), sols["cpu"](pts)
    for f in ("u", "u_std"):
        # float32 network on different hardware, then the float64 conservation update
        assert np.abs(a[f] - b[f]).max() <= 1e-4 * np.abs(b[f]).max(), f


def test_deepxde_baseline_trains_on_cuda_and_leaves_the_default_device():
    # DeepXDE's backend makes CUDA the process's default device when imported; the baseline
    # trains there only when asked and restores the default afterwards
    sol = pdekit.solve("porous_medium/heat", solver="deepxde", steps=30, device="cuda", k=2.0)
    assert next(sol.model.parameters()).is_cuda
    assert torch.get_default_device().type == "cpu"
    assert np.isfinite(sol.errors()["rel_l2"])
    cpu = pdekit.solve("porous_medium/heat", solver="deepxde", steps=30, device="cpu", k=2.0)
    assert not next(cpu.model.parameters()).is_cuda
