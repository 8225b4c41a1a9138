"""The ProbConserv Solution: a conditioned ANP, mean and standard deviation everywhere.

Called on points, it

1. draws nothing new: the S latent draws z_s of q(z | contexts) are fixed at construction, so a
   solution answers the same every time;
2. evaluates mu_s, sigma_s of the ANP (eval mode) at all points;
3. groups the points by time; where the x's of one time span the spatial domain, it applies the
   model's constraint per z draw (ProbConserv and PhysNP: the update of :mod:`.update` with
   trapezoid weights over those x's and b(t) from the problem, after the second-difference rows
   with ``diff_prior``; HardC: the projection of the mean);
4. mixes the S Gaussians: ``u`` = mean_s mu_s, ``u_std^2`` = mean_s var_s + Var_s mu_s;
5. with ``postprocess``, replaces ``u`` on each such slice by its projection onto the
   non-negative and/or monotone fields of the same mass (:mod:`.postprocess`), in the metric of
   the slice's predictive covariance (:meth:`ProbConservSolution.covariance`); ``u_std`` and
   :meth:`~ProbConservSolution.sample` are those of the Gaussian (the paper changes only the
   mean).

So the trapezoid mass of ``u`` over the x's of any spanning time slice equals b(t) to round-off
for ProbConserv and HardC. ``sample(n)`` draws from the mixture of the S conditioned Gaussians
(each draw picks z_s, then N(mu~_s, Sigma~_s)), whose mean and covariance are exactly those
reported; with sigma_G = 0 every ProbConserv draw conserves mass exactly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from pdekit.errors import ParameterError
from pdekit.io.plot import save_figure
from pdekit.metrics import field_errors
from pdekit.solution import Solution
from pdekit.solvers.probconserv.anp import mixture_moments, predict_samples
from pdekit.solvers.probconserv.calibration import calibration_metrics
from pdekit.solvers.probconserv.family import axes, context_set
from pdekit.solvers.probconserv.mass import mass_source
from pdekit.solvers.probconserv.postprocess import project
from pdekit.solvers.probconserv.update import (
    condition,
    condition_rows,
    diff_rows,
    hardc_project,
    sample_conditioned,
    sample_conditioned_rows,
    trapezoid_weights,
)

#: models whose Gaussian is conditioned on the conservation law
CONDITIONED = ("probconserv", "physnp")


def training_kind(model: str) -> str:
    """Which trained network a model uses: its own for softc and physnp, the plain ANP
    otherwise."""
    return model if model in ("softc", "physnp") else "anp"


#: relative tolerance for "the x's reach the end of the domain"
SPAN_RTOL = 1e-9


def observations(problem, config) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """The contexts (points, values) a solution is conditioned on and its latent draws eps
    (z_samples, latent), both from ``config.context_seed``."""
    rng = np.random.default_rng(config.context_seed)
    contexts = context_set(problem, config.family, rng)
    return contexts, rng.standard_normal((config.z_samples, config.anp.latent))


class TimeSlice:
    """The points of one time that span the spatial domain: weights g and mass b over its
    distinct x's.

    ``index`` holds one row per distinct x (sorted by x), the nodes the update conditions on;
    ``rows`` all of the slice's rows and ``inverse`` the node of each, so a point given twice
    is one node and gets one value (see :meth:`spread`).
    """

    def __init__(self, rows: np.ndarray, x: np.ndarray, g_of, b: float, t: float):
        _, first, inverse = np.unique(x, return_index=True, return_inverse=True)
        self.rows, self.index, self.inverse = rows, rows[first], inverse
        self.g, self.b, self.t = g_of(x[first]), b, t

    def spread(self, values: np.ndarray) -> None:
        """Copy each node's value (last axis) to every row of the slice, in place."""
        values[..., self.rows] = values[..., self.index][..., self.inverse]


class ProbConservSolution(Solution):
    """A ProbConserv / HardC / SoftC / plain ANP prediction of one problem instance.

    Parameters (beyond :class:`~pdekit.solution.Solution`'s)
    ----------------------------------------------------------
    contexts: (points (n, 2), values (n,)) the model is conditioned on.
    eps: standard normal draws (S, latent) fixing the latent samples z_s.
    """

    def __init__(self, problem, solver, config, model, contexts, eps, **kwargs):
        super().__init__(problem, solver, config, self._fields, model=model, **kwargs)
        self.contexts = (np.asarray(contexts[0], float), np.asarray(contexts[1], float))
        self.eps = np.asarray(eps, float)
        self._mass, self.mass_description = mass_source(problem)
        dom = problem.domain()
        self._ix, self._it = axes(problem)
        self._lo, self._hi = float(dom.bounds[0, self._ix]), float(dom.bounds[1, self._ix])
        self._periodic = bool(dom.periodic[self._ix])

    def variant(self, problem=None, **changes) -> ProbConservSolution:
        """The same trained network with config ``changes`` (model, z_samples, sigma_g,
        context_seed, ...) and/or another family member ``problem``: contexts and latent draws
        are redrawn from ``context_seed`` when the problem, the seed or z_samples change. The model
        may change among those that share the trained network (anp, hardc, probconserv: the
        plain ANP); softc has a network of its own, so switching to or from it is refused."""
        model = changes.get("model", self.config.model)
        if training_kind(model) != training_kind(self.config.model):
            # SoftC trains its own network with the residual penalty; the others share the
            # plain ANP: swapping would report one network's answers under the other's name
            raise ParameterError(
                f"model {model!r} needs a {training_kind(model)!r} network; this solution "
                f"holds a {training_kind(self.config.model)!r} one (trained as "
                f"{self.config.model!r}): train or load a {training_kind(model)!r} network"
            )
        config = dataclasses.replace(self.config, **changes)
        problem = problem or self.problem
        contexts, eps = self.contexts, self.eps
        redraw = ("context_seed", "z_samples")
        if problem != self.problem or any(k in changes for k in redraw):
            contexts, eps = observations(problem, config)
        return type(self)(
            problem,
            self.solver,
            config,
            self.model,
            contexts,
            eps,
            history=self.history,
            extras=dict(self.extras),
            step=self.step,
        )

    # -- the model -----------------------------------------------------------------------------
    def prior_samples(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ANP's mu_s and sigma_s^2 at points, (S, n) float64, before any constraint."""
        param = next(self.model.parameters())

        def t(a):
            return torch.as_tensor(a, dtype=param.dtype, device=param.device)

        cx, cy = self.contexts
        mu, sigma = predict_samples(
            self.model,
            t(cx),
            t(cy),
            t(points),
            t(self.eps),
            mc_dropout=self.config.mc_dropout,
            seed=self.config.context_seed,
        )
        mu = mu.detach().cpu().double().numpy()
        return mu, sigma.detach().cpu().double().numpy() ** 2

    def constraint_noise(self) -> float:
        """sigma_G^2 of the conservation row: ``sigma_g``^2 for probconserv; the learned value
        for physnp (0 with ``physnp_limit``)."""
        if self.config.model == "physnp":
            return 0.0 if self.config.physnp_limit else float(self.model.sigma_g2.detach())
        return self.config.sigma_g**2

    def _rows(self, var: np.ndarray, s: TimeSlice):
        """The rows (H, y, noise variances) of the "w/ diff" update on slice s, or None."""
        if not self.config.diff_prior or s.index.size < 3:
            return None
        return diff_rows(s.g, s.b, var, self.config.diff_alpha, self.constraint_noise())

    def _condition(self, mu: np.ndarray, var: np.ndarray, s: TimeSlice):
        """The conditioned Gaussians of the S draws on slice s (nodes sorted by x)."""
        rows = self._rows(var, s)
        if rows is None:
            return condition(mu, var, s.g, s.b, self.constraint_noise())
        return condition_rows(mu, var, *rows)

    def time_slices(self, points: np.ndarray) -> list[TimeSlice]:
        """The groups of points of equal time whose x's span the spatial domain."""
        t_all, x_all = points[:, self._it], points[:, self._ix]
        length = self._hi - self._lo
        tol = SPAN_RTOL * length
        spans = []
        times, inverse = np.unique(t_all, return_inverse=True)
        for k, tk in enumerate(times):
            idx = np.flatnonzero(inverse == k)
            if idx.size < 2:
                continue
            x = x_all[idx]
            lo, hi = x.min(), x.max()
            if lo < self._lo - tol or hi > self._hi + tol:
                continue
            closed = lo <= self._lo + tol and hi >= self._hi - tol
            if closed:
                g_of = trapezoid_weights
            elif self._periodic:
                gap = np.max(np.diff(np.unique(x)))  # open periodic grid: ends within one gap
                if lo > self._lo + gap + tol or hi < self._hi - gap - tol:
                    continue

                def g_of(nodes, length=length):
                    return trapezoid_weights(nodes, period=length)
            else:
                continue
            spans.append((idx, x, g_of, float(tk)))
        # b(t) only where a slice spans the domain (it may cost a quadrature per time)
        masses = self._mass(np.array([s[3] for s in spans])) if spans else []
        return [TimeSlice(i, x, g, float(b), tk) for (i, x, g, tk), b in zip(spans, masses)]

    def _conditioned(self, points: np.ndarray, every_slice: bool = False):
        """Per-z (mu_s, var_s) after the model's constraint, (S, n); the spanning slices (all of
        them with ``every_slice``, else those the model constrains); per slice the conditioned
        Gaussians (None where only the mean is moved or nothing is done)."""
        mu, var = self.prior_samples(points)
        kind = self.config.model
        constrained = kind in CONDITIONED + ("hardc",)
        slices = self.time_slices(points) if constrained or every_slice else []
        conds = []
        for s in slices:
            i = s.index
            cond = None
            if kind in CONDITIONED:
                cond = self._condition(mu[:, i], var[:, i], s)
                mu[:, i] = cond.mean
                var[:, i] = np.maximum(cond.cov_diag, self.config.min_var)
            elif kind == "hardc":  # orthogonal projection of each mean, variance unchanged
                mu[:, i] = hardc_project(mu[:, i], s.g, s.b)
            conds.append(cond)
            s.spread(mu)
            s.spread(var)
        return mu, var, slices, conds

    def constrained_samples(self, points: np.ndarray):
        """Per-z (mu_s, var_s) after the model's constraint, (S, n), and the spanning slices."""
        mu, var, slices, _ = self._conditioned(points)
        return mu, var, slices

    @staticmethod
    def _mixture_covariance(mu: np.ndarray, var: np.ndarray, cond) -> np.ndarray:
        """mean_s Sigma~_s + Cov_s(mu~_s) of one slice's draws (mu, var (S, N))."""
        cov = cond.covariance() if cond is not None else var[:, :, None] * np.eye(var.shape[1])
        dev = mu - mu.mean(0)
        return cov.mean(0) + np.einsum("si,sj->ij", dev, dev) / len(mu)

    def moments(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predictive mean and variance at points (mixture over the latent draws; the mean
        post-processed with ``postprocess``).

        The last four point sets' moments are kept (keyed by the points' bytes): one output of
        a run evaluates the same grid for the VTK, fields, plot and errors, between them the
        uncertainty figure's two point sets, and each evaluation decodes every point for every
        latent draw (37 s on one core for Stefan's grid)."""
        pts = np.ascontiguousarray(points, dtype=float)
        key = (pts.shape, hashlib.sha256(pts.tobytes()).hexdigest())
        cache = self.__dict__.setdefault("_moments_cache", {})
        if key not in cache:
            mu, var, slices, conds = self._conditioned(pts)
            mean, variance = mixture_moments(mu, var)
            for s, cond in zip(slices, conds) if self.config.postprocess else ():
                i = s.index
                cov = self._mixture_covariance(mu[:, i], var[:, i], cond)
                mean[i] = project(mean[i], cov, s.g, s.b, self.config.postprocess)
                s.spread(mean)
            while len(cache) >= 4:
                cache.pop(next(iter(cache)))
            cache[key] = mean, variance
        mean, var = cache[key]
        return mean.copy(), var.copy()

    def _fields(self, points: np.ndarray) -> dict[str, np.ndarray]:
        mean, var = self.moments(points)
        return {"u": mean, "u_std": np.sqrt(var)}

    # -- covariance and sampling ---------------------------------------------------------------
    def covariance(self, points: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Dense predictive covariance per spanning time slice: [(indices, (N, N)), ...].

        mean_s Sigma~_s + Cov_s(mu~_s), where Sigma~_s is the full updated covariance of draw s
        (ProbConserv, PhysNP: rank-one downdate, or dense with ``diff_prior``) or
        diag(sigma_s^2) (other models); its diagonal is ``u_std^2`` (up to the variance floor).
        """
        pts = np.asarray(points, float)
        mu, var = self.prior_samples(pts)
        out = []
        for s in self.time_slices(pts):
            m, v = mu[:, s.index], var[:, s.index]
            cond = None
            if self.config.model in CONDITIONED:
                cond = self._condition(m, v, s)
                m = cond.mean
            elif self.config.model == "hardc":
                m = hardc_project(m, s.g, s.b)
            cov = self._mixture_covariance(m, v, cond)
            out.append((s.rows, cov[np.ix_(s.inverse, s.inverse)]))
        return out

    def sample(self, n: int, points: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
        """n draws of the predictive distribution at points (default: the evaluation grid).

        Each draw picks one latent sample z_s (uniformly) and draws N(mu~_s, Sigma~_s) on every
        time slice: for ProbConserv and PhysNP by conditioning a draw of
        N(mu_s, diag sigma_s^2) on g^T u = b (+ noise when sigma_G > 0), and with
        ``diff_prior`` also on the noisy second differences (Matheron's rule, exact), so with
        sigma_G = 0 every draw has exactly the conserved mass. Returns an array
        (n, len(points)). ``postprocess`` does not act on draws (it moves the mean only).
        """
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n must be a positive integer; got {n!r}")
        pts = self.problem.evaluation_grid().points() if points is None else points
        pts = np.asarray(pts, float)
        rng = np.random.default_rng(seed)
        mu, var = self.prior_samples(pts)
        kind = self.config.model
        slices = self.time_slices(pts) if kind in CONDITIONED + ("hardc",) else []
        pick = rng.integers(0, len(mu), size=n)
        normals = rng.standard_normal((n, pts.shape[0]))
        if kind == "hardc":
            for s in slices:
                mu[:, s.index] = hardc_project(mu[:, s.index], s.g, s.b)
        out = mu[pick] + np.sqrt(var[pick]) * normals
        if kind in CONDITIONED:
            sg2 = self.constraint_noise()
            for s in slices:
                i = s.index
                rows = self._rows(var[:, i], s)
                if rows is None:
                    noise = rng.standard_normal(n) if sg2 > 0 else None
                    out[:, i] = sample_conditioned(
                        mu[pick][:, i], var[pick][:, i], s.g, s.b, sg2, normals[:, i], noise
                    )
                    continue
                h, y, noise_var = rows
                noise = rng.standard_normal((n, h.shape[0]))
                for k in np.unique(pick):  # one factorisation per latent draw
                    d = pick == k
                    out[np.ix_(d, i)] = sample_conditioned_rows(
                        mu[k, i], var[k, i], h, y[k], noise_var[k], normals[np.ix_(d, i)], noise[d]
                    )
        for s in slices:  # a point given twice is one node: one value per draw
            s.spread(out)
        return out

    # -- slices at one time: metrics and the front --------------------------------------------
    def slice_points(self, t: float, nx: int = 201) -> np.ndarray:
        """``nx`` uniform x's over the closed spatial domain at time t, as points."""
        pts = np.zeros((nx, 2))
        pts[:, self._ix] = np.linspace(self._lo, self._hi, nx)
        pts[:, self._it] = t
        return pts

    def default_time(self) -> float:
        """The middle of the time domain (the paper's times: heat 0.5, PME 0.5, Stefan 0.05)."""
        b = self.problem.domain().bounds
        return float(0.5 * (b[0, self._it] + b[1, self._it]))

    def fronts(self, samples: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Front of each sample: the first x where it is <= 0 (the domain end when none)."""
        below = samples <= 0
        first = np.argmax(below, axis=-1)
        return np.where(below.any(axis=-1), x[first], x[-1])

    def true_front(self, t: float) -> float:
        """``problem.front(t)`` where defined, else the first x where the reference is <= 0."""
        fp = getattr(self.problem, "front", None)
        if callable(fp):
            return float(fp(t))
        pts = self.slice_points(t, 20001)
        ref = self.problem.reference()(pts)[self.problem.fields[0]]
        return float(self.fronts(ref[None], pts[:, self._ix])[0])

    def slice_metrics(
        self, t: float | None = None, nx: int = 201, n_front: int = 500, calibration: bool = False
    ) -> dict:
        """Hansen et al.'s metrics at one time on nx uniform x's (their A5 protocol).

        mse: mean (u - u_true)^2; ll: mean log N(u_true | u, u_std); ce: signed trapezoid mass of
        u minus b(t). Where the reference has a front (it is positive at the left end and
        reaches 0 inside), also front_mean: mean front of ``n_front`` samples; front_true; and
        shock_mae: ``|front_mean - front_true|``. With ``calibration``, also the coverage of the
        central 50/90/95 % intervals of N(u, u_std^2) (cov50, cov90, cov95) and the expected
        calibration error ece over the levels 0.05..0.95 (:mod:`.calibration`).
        """
        t = self.default_time() if t is None else float(t)
        pts = self.slice_points(t, nx)
        x = pts[:, self._ix]
        mean, var = self.moments(pts)
        ref = self.problem.reference()(pts)[self.problem.fields[0]]
        ll = -0.5 * (ref - mean) ** 2 / var - 0.5 * np.log(2 * np.pi * var)
        ce = float(trapezoid_weights(x) @ mean - self._mass(np.array([t]))[0])
        out = {"mse": float(np.mean((mean - ref) ** 2)), "ll": float(np.mean(ll)), "ce": ce}
        if calibration:
            out |= calibration_metrics(ref, mean, np.sqrt(var))
        if n_front and self.has_front(t):
            fr = self.fronts(self.sample(n_front, pts, seed=0), x)
            true = self.true_front(t)
            out |= {
                "front_mean": float(fr.mean()),
                "front_true": true,
                "shock_mae": abs(float(fr.mean()) - true),
            }
        return out

    def has_front(self, t: float) -> bool:
        """Whether the reference at time t is positive at the left end and <= 0 somewhere."""
        pts = self.slice_points(t, 2001)
        ref = self.problem.reference()(pts)[self.problem.fields[0]]
        return bool(ref[0] > 0 and np.any(ref <= 0))

    def errors(self, grid=None) -> dict[str, float]:
        """rel_l2, max_abs, nrmse of ``u``, plus mse, ll (mean log-likelihood of the reference)
        and the conservation error over the grid's time slices: ce (mean signed),
        ce_max_abs."""
        grid = grid or self.problem.evaluation_grid()
        pts = grid.points()
        mean, var = self.moments(pts)
        ref = self.problem.reference()(pts)[self.problem.fields[0]]
        out = field_errors({"u": mean}, {"u": ref})
        out["mse"] = float(np.mean((mean - ref) ** 2))
        out["ll"] = float(np.mean(-0.5 * (ref - mean) ** 2 / var - 0.5 * np.log(2 * np.pi * var)))
        ces = [float(s.g @ mean[s.index] - s.b) for s in self.time_slices(pts)]
        if ces:
            out["ce"] = float(np.mean(ces))
            out["ce_max_abs"] = float(np.max(np.abs(ces)))
        return out

    # -- output --------------------------------------------------------------------------------
    def plot_front(
        self, path: str | os.PathLike, t: float | None = None, n: int = 500, nx: int = 201
    ) -> Path:
        """PNG: histogram of the front position of n samples at time t against the true front."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        t = self.default_time() if t is None else float(t)
        if not self.has_front(t):
            raise ValueError(f"the reference of {self.problem.name} has no front at t = {t:g}")
        pts = self.slice_points(t, nx)
        x = pts[:, self._ix]
        fr = self.fronts(self.sample(n, pts, seed=0), x)
        true = self.true_front(t)
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        dx = x[1] - x[0]
        lo, hi = min(fr.min(), true) - dx, max(fr.max(), true) + 2 * dx
        ax.hist(fr, bins=np.arange(lo, hi, dx), color="C0", alpha=0.8, label=f"{n} samples")
        ax.axvline(true, color="k", ls="--", label=f"true front {true:.4f}")
        ax.axvline(fr.mean(), color="C3", label=f"sample mean {fr.mean():.4f}")
        ax.set_xlabel(self.problem.spatial_coordinates[0])
        ax.set_ylabel("count")
        ax.set_title(f"{self.problem.name}: front at t = {t:g} ({self.config.model})")
        ax.legend(fontsize=8)
        return save_figure(fig, path)

    def conservation_errors(self, nt: int = 21, nx: int = 201) -> tuple[np.ndarray, np.ndarray]:
        """``nt`` times over the time domain and the mean's conservation error at each,
        ``|int u dx - b(t)|`` by the trapezoid rule on ``nx`` closed points (the paper's CE)."""
        b = self.problem.domain().bounds
        times = np.linspace(b[0, self._it], b[1, self._it], nt)
        grid = np.concatenate([self.slice_points(tk, nx) for tk in times])
        mean = self.moments(grid)[0].reshape(nt, nx)
        x = self.slice_points(times[0], nx)[:, self._ix]
        return times, np.abs(mean @ trapezoid_weights(x) - self._mass(times))

    def plot_uncertainty(
        self, path: str | os.PathLike, t: float | None = None, nx: int = 201, nt: int = 21
    ) -> Path:
        """PNG of what ProbConserv is about: the predictive mean +- 2 std against the reference
        at time t (the context points of that time marked), and the conservation error
        ``|int u dx - b(t)|`` of the mean over time on ``nt`` closed slices of ``nx`` points."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        t = self.default_time() if t is None else float(t)
        field = self.problem.fields[0]
        pts = self.slice_points(t, nx)
        x = pts[:, self._ix]
        mean, var = self.moments(pts)
        std = np.sqrt(var)
        ref = np.asarray(self.problem.reference()(pts)[field], dtype=float)
        b = self.problem.domain().bounds
        times, ce = self.conservation_errors(nt, nx)
        fig, (ax, bx) = plt.subplots(1, 2, figsize=(10.5, 3.8))
        ax.fill_between(x, mean - 2 * std, mean + 2 * std, color="C0", alpha=0.3,
                        label="mean ± 2 std")  # fmt: skip
        ax.plot(x, mean, color="C0", label="predictive mean")
        ax.plot(x, ref, "k--", lw=1, label="reference")
        cx, cy = self.contexts
        near = np.abs(cx[:, self._it] - t) <= 0.5 * (b[1, self._it] - b[0, self._it]) / nt
        if near.any():
            ax.plot(cx[near, self._ix], cy[near], "x", color="C3", ms=5, label="context near t")
        ax.set_xlabel(self.problem.spatial_coordinates[0])
        ax.set_ylabel(field)
        ax.set_title(f"{field} at t = {t:g} ({self.config.model})")
        ax.legend(fontsize=7)
        floor = 1e-16 * max(1.0, float(np.max(np.abs(self._mass(times)))))  # round-off level
        bx.semilogy(times, np.maximum(ce, floor), "o-", ms=3)
        bx.set_ylim(bottom=0.5 * floor)
        bx.set_xlabel("t")
        bx.set_ylabel("|∫ mean dx − b(t)|")
        bx.set_title(f"conservation error of the mean (exact zeros at {floor:.0e})")
        fig.suptitle(f"{self.problem.name} — {self.solver} ({self.config.model})")
        return save_figure(fig, path)

    def plot(self, path: str | os.PathLike, grid=None) -> Path:
        """The standard figure at ``path``; the uncertainty and conservation figure at
        ``<stem>_uncertainty.png``; where the reference has a front at the middle time, also
        the front histogram of 500 samples at ``<stem>_front.png``."""
        out = super().plot(path, grid)
        self.plot_uncertainty(out.with_name(out.stem + "_uncertainty.png"))
        if self.has_front(self.default_time()):
            self.plot_front(out.with_name(out.stem + "_front.png"))
        return out

    def to_checkpoint(self):
        ckpt = super().to_checkpoint()
        ckpt.extras["contexts_points"] = self.contexts[0]
        ckpt.extras["contexts_values"] = self.contexts[1]
        ckpt.extras["latent_eps"] = self.eps
        return ckpt
