"""Benchmark: one PINN training step through each residual engine, against DeepXDE, same run.

A training step is: network forward, the PDE residual (the problem's ``residual(f)``, written
once against the fields accessor), the mean-square loss, and the backward pass to the network
parameters. It is timed for

* ``deepxde``: DeepXDE's own network (``dde.nn.FNN``, PyTorch backend) holding a copy of our
  weights, derivatives from ``dde.grad.jacobian`` / ``dde.grad.hessian`` (cleared after each
  step, as DeepXDE's ``Model`` does);
* ``autograd``: :class:`pdekit.core.AutogradFields` (cached nested ``torch.autograd.grad``);
* ``taylor``: :class:`pdekit.core.TaylorFields` (forward Taylor propagation);
* ``taylor_compiled``: the same step with the loss function under ``torch.compile`` (the
  backward is then compiled by AOTAutograd). A failure is recorded, not raised.

Cases (tanh MLP of ``--depth`` x ``--width`` = 5 x 100, ``--points`` = 8192 random points of the
domain, float32):

* ``navier_stokes_2d``: the registered ``navier_stokes/taylor_green`` residual: unsteady
  incompressible Navier-Stokes, (u, v, p) of (x, y, t), first derivatives and the Laplacians
  u_xx + u_yy, v_xx + v_yy (declared as ``"laplacian"``: DeepXDE and autograd take the two
  Hessian entries and add them, the Taylor engine carries the sum in one slot);
* ``allen_cahn_1d``: the registered ``convection_diffusion/allen_cahn`` residual (u_t, u_xx);
* ``heat_3d``: u_t - k (u_xx + u_yy + u_zz) on (x, y, z, t), written here (the registered
  heat problem is 1D).

Beside them, ``gemm_floor`` times the Taylor step's matrix products alone (the same affine
layers on ``slots x points`` rows, forward and backward, nothing else; see
:func:`make_gemm_floor`): the JSON reports how far the best engine is from it and the speed-up
over DeepXDE a step costing only those products would reach on this machine.

Each engine's first step (compilation, for the compiled one) and ``--warmup`` steps are not
timed; then ``--repeats`` rounds each time one step of every engine in turn (interleaved, so
load from other users of a shared machine falls on all engines alike), and medians are reported.
Every engine gets the same points and the same weights; the residuals are compared with
DeepXDE's (max |difference| / max |DeepXDE residual|, per component, float32), and on 256 of
the points in float64. Peak memory: on CPU, the largest running total of bytes held by
torch's CPU allocator during one step above what was held before it (``torch.profiler`` with
``profile_memory=True``: the running sum of its ``[memory]`` events' bytes); on CUDA,
``torch.cuda.max_memory_allocated`` above the allocation before the step.

The numba grid-residual kernels of :mod:`pdekit.core.kernels` (2D heat and 2D Navier-Stokes,
order 2, periodic, float64) are timed on a ``--grid`` x ``--grid`` grid beside a plain array
copy of one grid array, in the same run; each bandwidth counts the bytes the
operation must move at least (inputs read once, outputs written once). The kernels return
new arrays, so each call also pays first-touch page faults on its output; the copy is timed both
into a preallocated array (``numpy.copyto``: the machine's copy bandwidth, the headline ratio)
and allocating its result (``ndarray.copy``, the same allocation cost as the kernels).

    OMP_NUM_THREADS=1 python benchmarks/residual_engines.py --threads 1
    python benchmarks/residual_engines.py --points 1024 --repeats 3 --no-compile  # quick check
    python benchmarks/residual_engines.py --device cuda   # writes residual_engines_cuda.json

Writes ``benchmarks/results/residual_engines.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("DDE_BACKEND", "pytorch")

RESULTS = Path(__file__).resolve().parent / "results"
ENGINES = ("deepxde", "autograd", "taylor", "taylor_compiled")
OURS = ("autograd", "taylor", "taylor_compiled")
#: the pseudo-engine timed beside them: the Taylor step's matrix products alone
FLOOR = "gemm_floor"


class Heat3D:
    """The heat equation u_t = k (u_xx + u_yy + u_zz) on the unit cube x [0, 1] (benchmark only).

    Duck-types the parts of :class:`pdekit.problems.Problem` the benchmark uses.
    """

    name = "heat_3d (benchmark)"
    k = 0.1
    coordinates = ("x", "y", "z", "t")
    fields = ("u",)
    derivatives = {"u": ("t", "laplacian")}

    @staticmethod
    def bounds():
        import numpy as np

        return np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])

    def residual(self, f):
        return {"heat": f.d("u", "t") - self.k * f.laplacian("u")}


@dataclass
class Case:
    name: str
    problem: object
    bounds: object  # (2, d) array of the sampling box


def cases() -> list[Case]:
    from pdekit.problems import get

    out = []
    for name, pname in (
        ("navier_stokes_2d", "navier_stokes/taylor_green"),
        ("allen_cahn_1d", "convection_diffusion/allen_cahn"),
    ):
        p = get(pname)
        out.append(Case(name, p, p.domain().bounds))
    h = Heat3D()
    out.append(Case("heat_3d", h, h.bounds()))
    return out


# -- networks -------------------------------------------------------------------------------------
def build_networks(case: Case, width: int, depth: int, dtype, device, seed: int):
    """Our MLP (affine embedding of the box to [-1, 1], no periodic features) and a DeepXDE FNN
    with the same weights and the same affine input transform."""
    import deepxde as dde
    import torch

    from pdekit.solvers.networks import MLP, CoordinateEmbedding

    d = len(case.problem.coordinates)
    torch.manual_seed(seed)
    emb = CoordinateEmbedding(case.bounds, [False] * d, harmonics=0)
    ours = MLP(emb, len(case.problem.fields), width, depth, "tanh").to(device, dtype)
    net = dde.nn.FNN([d] + [width] * depth + [len(case.problem.fields)], "tanh", "Glorot normal")
    net = net.to(device, dtype)
    with torch.no_grad():
        for a, b in zip(ours.layers, net.linears, strict=True):
            b.weight.copy_(a.weight)
            b.bias.copy_(a.bias)
    scale, shift = emb.scale.to(device, dtype), emb.shift.to(device, dtype)
    net.apply_feature_transform(lambda x: x * scale + shift)  # = CoordinateEmbedding.forward
    return ours, net


def sample_points(case: Case, n: int, dtype, device, seed: int):
    import torch

    # drawn on the CPU (explicitly: DeepXDE's PyTorch backend makes CUDA the default device
    # when one is present), so every device sees the same points
    g = torch.Generator(device="cpu").manual_seed(seed)
    lo, hi = (torch.as_tensor(b, dtype=torch.float64, device="cpu") for b in case.bounds)
    u = torch.rand(n, len(lo), generator=g, dtype=torch.float64, device="cpu")
    x = lo + (hi - lo) * u
    return x.to(device, dtype)


# -- one training step per engine -----------------------------------------------------------------
def residual_fn(case: Case, engine: str, ours, net) -> Callable:
    """points -> residual dict, through ``engine``."""
    from pdekit.core import AutogradFields, TaylorFields
    from pdekit.solvers.deepxde_baseline import DeepXDEFields

    pr = case.problem
    coords, fields, decl = pr.coordinates, pr.fields, pr.derivatives

    if engine == "deepxde":

        def run(x):
            y = net(x)
            return pr.residual(DeepXDEFields(x, y, coords, fields, decl))

    elif engine == "autograd":

        def run(x):
            y = ours(x)
            values = {f: y[:, i] for i, f in enumerate(fields)}
            return pr.residual(AutogradFields(x, values, coords, decl))

    else:

        def run(x):
            return pr.residual(TaylorFields(ours, x, coords, fields, decl))

    run.needs_grad = engine in ("deepxde", "autograd")
    return run


def mse(res: dict):
    return sum((r * r).mean() for r in res.values())


def make_step(case: Case, engine: str, ours, net, x):
    """A no-argument training step (forward, residual, loss, backward) and its parameters."""
    import deepxde as dde
    import torch

    run = residual_fn(case, engine, ours, net)
    params = list((net if engine == "deepxde" else ours).parameters())
    xin = x.detach().clone().requires_grad_(run.needs_grad)

    def loss_of(points):
        return mse(run(points))

    if engine == "taylor_compiled":
        loss_of = torch.compile(loss_of)

    def step():
        loss = loss_of(xin)
        loss.backward()
        if engine == "deepxde":
            dde.grad.clear()
        for p in params:
            p.grad = None
        return loss

    return step


def taylor_slots(case: Case, ours, x) -> int:
    """Jet slots the Taylor engine carries for the case's declaration (value, first
    derivatives, mixed second-order pairs, and the Laplacian slot when declared)."""
    from pdekit.core import TaylorFields

    pr = case.problem
    f = TaylorFields(ours, x, pr.coordinates, pr.fields, pr.derivatives)
    return 1 + len(f.directions) + len(f.pairs) + (1 if f.lap else 0)


def make_gemm_floor(ours, slots: int, n: int, dtype, device):
    """A step made of the Taylor step's matrix products and nothing else.

    The same affine layers as ``ours`` (no activation, no residual) applied to ``slots * n``
    rows, a mean-square loss and the backward pass: every affine layer of a Taylor step is one
    such product over all stacked slots, and its backward two more (input and weight
    gradients). The time of this step bounds any engine that propagates these slots through
    these layers on this machine, whatever it fuses around the products.
    """
    import torch

    layers = [torch.nn.Linear(a.in_features, a.out_features).to(device, dtype) for a in ours.layers]
    net = torch.nn.Sequential(*layers)
    g = torch.Generator(device="cpu").manual_seed(0)
    rows = torch.randn(slots * n, layers[0].in_features, generator=g, device="cpu")
    rows = rows.to(device, dtype)
    params = list(net.parameters())

    def step():
        loss = net(rows).square().mean()
        loss.backward()
        for q in params:
            q.grad = None
        return loss

    return step


# -- measurements ---------------------------------------------------------------------------------
def timer(device):
    import torch

    def now():
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    return now


def peak_memory(step, device) -> int:
    """Peak bytes allocated by torch during one ``step()`` above the allocation before it."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - base)
    act = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=act, profile_memory=True) as prof:
        step()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(path))
        events = json.loads(path.read_text())["traceEvents"]
    mem = sorted(
        (e for e in events if e.get("name") == "[memory]" and e["args"].get("Device Type") == 0),
        key=lambda e: e["ts"],
    )
    running, peak = 0, 0  # bytes allocated (+) and freed (-) within the profiled step
    for e in mem:
        running += int(e["args"]["Bytes"])
        peak = max(peak, running)
    return peak


def relative_difference(a: dict, b: dict) -> dict[str, float]:
    """Per component: max |a - b| / max |b|."""
    out = {}
    for k in b:
        ref = b[k].detach().double()
        out[k] = float((a[k].detach().double() - ref).abs().max() / ref.abs().max())
    return out


def correctness(case: Case, ours, net, x, engine: str) -> dict[str, float]:
    """Residual of ``engine`` against DeepXDE's at the points ``x``."""
    import deepxde as dde

    ref = residual_fn(case, "deepxde", ours, net)
    run = residual_fn(case, engine, ours, net)
    r_ref = ref(x.detach().clone().requires_grad_(True))
    dde.grad.clear()
    r = run(x.detach().clone().requires_grad_(run.needs_grad))
    return relative_difference(r, r_ref)


def float64_check(case: Case, args, device) -> dict[str, float]:
    """Taylor and autograd against DeepXDE on 256 points in float64 (max over components)."""
    import torch

    ours, net = build_networks(case, args.width, args.depth, torch.float64, device, args.seed)
    x = sample_points(case, 256, torch.float64, device, args.seed + 1)
    return {e: max(correctness(case, ours, net, x, e).values()) for e in ("autograd", "taylor")}


def bench_case(case: Case, args, device) -> dict:
    import torch

    dtype = torch.float32
    ours, net = build_networks(case, args.width, args.depth, dtype, device, args.seed)
    x = sample_points(case, args.points, dtype, device, args.seed + 1)
    now = timer(device)
    rows: dict[str, dict] = {}
    steps = {}
    for engine in ENGINES:  # build, first call (compilation where there is any), warm-up
        if engine == "taylor_compiled" and args.no_compile:
            rows[engine] = {"status": "skipped", "reason": "--no-compile"}
            continue
        try:
            step = make_step(case, engine, ours, net, x)
            t0 = now()
            step()
            rows[engine] = {"status": "ok", "first_step_s": now() - t0}
            for _ in range(args.warmup):
                step()
            steps[engine] = step
        except Exception as exc:  # compile failures are a result, not a crash
            if engine != "taylor_compiled":
                raise
            rows[engine] = {
                "status": "failed",
                "reason": f"{type(exc).__name__}: {exc}"[:2000],
                "traceback_tail": traceback.format_exc()[-1500:],
            }
    slots = taylor_slots(case, ours, x)
    floor = make_gemm_floor(ours, slots, args.points, dtype, device)
    floor()
    steps[FLOOR] = floor
    rows[FLOOR] = {"status": "ok", "slots": slots}
    # engines interleaved, one step each per round: load from other users of a shared machine
    # then falls on every engine alike instead of on whichever ran while it lasted
    samples: dict[str, list[float]] = {e: [] for e in steps}
    for _ in range(args.repeats):
        for engine, step in steps.items():
            t0 = now()
            step()
            samples[engine].append(now() - t0)
    for engine, step in steps.items():
        row = rows[engine]
        row.update(median_s=statistics.median(samples[engine]), samples_s=samples[engine])
        if engine == FLOOR:
            continue
        row["peak_memory_bytes"] = peak_memory(step, device)
        if engine != "deepxde":
            row["rel_diff_vs_deepxde"] = correctness(case, ours, net, x, engine)
    for engine, row in rows.items():
        print(f"  {case.name:18s} {engine:16s} {_fmt(row)}", flush=True)
    base = rows["deepxde"]["median_s"]
    for engine in OURS:
        if rows[engine].get("status") == "ok":
            rows[engine]["speedup_vs_deepxde"] = base / rows[engine]["median_s"]
            rows[engine]["memory_ratio_vs_deepxde"] = (
                rows[engine]["peak_memory_bytes"] / rows["deepxde"]["peak_memory_bytes"]
            )
    ok = [e for e in OURS if rows[e].get("status") == "ok"]
    best = min(ok, key=lambda e: rows[e]["median_s"])
    floor_s = rows[FLOOR]["median_s"]
    return {
        "problem": getattr(case.problem, "name", case.name),
        "coordinates": list(case.problem.coordinates),
        "fields": list(case.problem.fields),
        "derivatives": {k: list(v) for k, v in case.problem.derivatives.items()},
        "engines": rows,
        "best_engine": best,
        "speedup_vs_deepxde": base / rows[best]["median_s"],
        # the matrix products alone (see make_gemm_floor): how far the best engine is from
        # them, and the speed-up over DeepXDE that a step costing only them would reach
        "gemm_floor_s": floor_s,
        "best_over_gemm_floor": rows[best]["median_s"] / floor_s,
        "speedup_bound_vs_deepxde": base / floor_s,
        "max_rel_diff_vs_deepxde_float32": max(
            max(rows[e]["rel_diff_vs_deepxde"].values()) for e in ok
        ),
        "max_rel_diff_vs_deepxde_float64": float64_check(case, args, device),
    }


def _fmt(row: dict) -> str:
    if row.get("status") != "ok":
        return f"{row.get('status')}: {row.get('reason', '')[:120]}"
    s = f"median {row['median_s'] * 1e3:8.1f} ms"
    if "peak_memory_bytes" in row:
        s += f"  peak {row['peak_memory_bytes'] / 2**20:7.1f} MiB"
    if "first_step_s" in row:
        s += f"  first {row['first_step_s']:.1f} s"
    if "slots" in row:
        s += f"  ({row['slots']} slots)"
    if "rel_diff_vs_deepxde" in row:
        s += f"  rel diff {max(row['rel_diff_vs_deepxde'].values()):.1e}"
    return s


def bench_kernels(args) -> dict:
    """numba grid-residual kernels vs a plain copy, on a grid x grid float64 grid."""
    import numba
    import numpy as np

    from pdekit.core import kernels

    n = args.grid
    rng = np.random.default_rng(args.seed)
    a = [rng.standard_normal((n, n)) for _ in range(5)]
    dst = np.empty_like(a[0])
    vel, vel_t = np.stack(a[:2]), np.stack(a[3:5])  # the (d, n, n) layout the kernel reads
    heat_out, ns_out = np.empty((n, n)), np.empty((3, n, n))
    h = 2 * np.pi / n
    arr = a[0].nbytes
    ops = {
        "copy": (lambda: np.copyto(dst, a[0]), 2 * arr),
        "copy_allocating": (lambda: a[0].copy(), 2 * arr),
        "heat_residual_2d": (lambda: kernels.heat_residual(a[0], a[1], 0.1, h), 3 * arr),
        "navier_stokes_residual_2d": (
            lambda: kernels.navier_stokes_residual(a[:2], a[2], 0.01, h, velocity_t=a[3:5]),
            8 * arr,
        ),
        "heat_residual_2d_out": (
            lambda: kernels.heat_residual(a[0], a[1], 0.1, h, out=heat_out),
            3 * arr,
        ),
        "navier_stokes_residual_2d_out": (
            lambda: kernels.navier_stokes_residual(
                vel, a[2], 0.01, h, velocity_t=vel_t, out=ns_out
            ),
            8 * arr,
        ),
    }
    out = {"grid": [n, n], "dtype": "float64", "numba_threads": numba.get_num_threads()}
    for name, (fn, nbytes) in ops.items():
        fn()  # numba compilation / cache load
        times = [_once(fn) for _ in range(args.kernel_repeats)]
        med = statistics.median(times)
        out[name] = {"median_s": med, "bytes_moved": nbytes, "bandwidth_gb_s": nbytes / med / 1e9}
        print(f"  kernel {name:28s} {med * 1e3:8.2f} ms  {nbytes / med / 1e9:6.2f} GB/s")
    for name in (
        "heat_residual_2d",
        "navier_stokes_residual_2d",
        "heat_residual_2d_out",
        "navier_stokes_residual_2d_out",
    ):
        bw = out[name]["bandwidth_gb_s"]
        out[name]["bandwidth_ratio_to_copy"] = bw / out["copy"]["bandwidth_gb_s"]
        out[name]["bandwidth_ratio_to_allocating_copy"] = (
            bw / out["copy_allocating"]["bandwidth_gb_s"]
        )
    return out


def _once(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def device_string(device, threads: int) -> str:
    import torch

    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs, {threads} torch/numba thread(s)"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    p.add_argument("--threads", type=int, default=2, help="torch and numba threads (CPU)")
    p.add_argument("--repeats", type=int, default=10, help="timed steps per engine")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps after the first")
    p.add_argument("--points", type=int, default=8192, help="collocation points")
    p.add_argument("--width", type=int, default=100)
    p.add_argument("--depth", type=int, default=5, help="hidden layers")
    p.add_argument("--grid", type=int, default=2048, help="kernel grid size n (n x n)")
    p.add_argument("--kernel-repeats", type=int, default=10)
    p.add_argument("--cases", nargs="+", default=None, help="subset of the cases")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile engine")
    p.add_argument(
        "--release-freed-memory",
        action="store_true",
        help="leave glibc's malloc at its defaults (pdekit's CPU training keeps freed memory, "
        "pdekit.core.allocator; by default this benchmark does too, for every engine)",
    )
    p.add_argument("--note", default="", help="free text stored in the JSON (machine load...)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)

    os.environ.setdefault("NUMBA_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    kept = None
    if device.type == "cpu" and not args.release_freed_memory:
        from pdekit.core.allocator import retain_freed_memory

        kept = retain_freed_memory()  # as pdekit's solvers train: same setting for all engines
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available")
    out_path = args.out or RESULTS / (
        "residual_engines.json" if device.type == "cpu" else f"residual_engines_{device.type}.json"
    )
    import deepxde as dde
    import numba

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    chosen = [c for c in cases() if args.cases is None or c.name in args.cases]
    t_start = time.perf_counter()
    results: dict = {
        "device": device_string(device, args.threads),
        "settings": {
            "points": args.points,
            "network": f"tanh MLP, {args.depth} hidden layers x {args.width}",
            "dtype": "float32",
            "repeats": args.repeats,
            "warmup": args.warmup,
            "threads": args.threads,
            "keep_freed_memory": kept,
        },
        "memory_measure": (
            "torch.cuda.max_memory_allocated above the allocation before one step"
            if device.type == "cuda"
            else "peak of the running total of torch CPU-allocator bytes during one step "
            "(torch.profiler profile_memory [memory] events), above what was held before it"
        ),
        "versions": {
            "torch": torch.__version__,
            "deepxde": dde.__version__,
            "numba": numba.__version__,
            "python": platform.python_version(),
        },
        "note": args.note,
        "load_average_at_start": list(os.getloadavg()),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "cases": {},
    }
    for case in chosen:
        print(f"== {case.name}", flush=True)
        results["cases"][case.name] = bench_case(case, args, device)
    results["speedup_vs_deepxde"] = {
        k: v["speedup_vs_deepxde"] for k, v in results["cases"].items()
    }
    if device.type == "cpu" and args.grid > 0:
        print("== numba kernels", flush=True)
        results["kernels"] = bench_kernels(args)
    results["wall_s"] = time.perf_counter() - t_start
    results["load_average_at_end"] = list(os.getloadavg())
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"speedup vs DeepXDE: {results['speedup_vs_deepxde']}")
    print(f"wrote {out_path} ({results['wall_s']:.0f} s)")
    return results


if __name__ == "__main__":
    main()
