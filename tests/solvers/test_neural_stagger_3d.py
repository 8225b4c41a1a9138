"""neural_stagger in 3D: pieces in three axes, the physics loss on a 3D MAC grid (against the
projection solver's discrete duct flow), and training on a tiny duct with a sphere."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pdekit
from pdekit.errors import ParameterError
from pdekit.problems import mac, mac3d
from pdekit.problems.references.projection3d import ProjectionSolver3d, stable_dt3d
from pdekit.solvers import neural_stagger as ns
from pdekit.solvers.operators import UNet3d

PROBLEM = "navier_stokes/duct_sphere"


@pytest.fixture(scope="module", autouse=True)
def own_cache(tmp_path_factory):
    """A user store and reference cache of this module's own (models trained here are saved)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PDEKIT_CACHE_DIR", str(tmp_path_factory.mktemp("ns3d-cache")))
        yield


def _pieces(spatial, shared=True):
    stagger = ns.StaggerConfig(spatial=spatial, shared_weights=shared)
    net = ns.StepperNetworkConfig(width=4, depth=1)
    return ns.PieceNetworks(7, 4, stagger, net, dim=3)


def test_shared_pieces_equal_the_coarse_network_run_piece_by_piece():
    """(2, 2, 2): each of the 8 pieces is x[..., i::2, j::2, k::2] with its offset (i/2, j/2,
    k/2) as three constant channels, through the one coarse 3D U-Net; reassembled in place."""
    torch.manual_seed(0)
    net = _pieces((2, 2, 2))
    x = torch.randn(2, 7, 8, 4, 4)
    out = net(x)
    assert out.shape == (2, 4, 8, 4, 4)
    unet = net.nets[0]
    assert isinstance(unet, UNet3d)
    for i in range(2):
        for j in range(2):
            for k in range(2):
                piece = x[..., i::2, j::2, k::2]
                off = torch.tensor([i / 2, j / 2, k / 2]).reshape(1, 3, 1, 1, 1)
                want = unet(torch.cat([piece, off.expand(2, 3, *piece.shape[2:])], 1))
                assert torch.allclose(out[..., i::2, j::2, k::2], want, atol=1e-6)


def test_one_piece_is_the_base_network():
    torch.manual_seed(0)
    net = _pieces((1, 1, 1))
    x = torch.randn(1, 7, 4, 4, 4)
    assert torch.equal(net(x), net.nets[0](x))


def test_two_factors_split_z_like_y_and_three_are_refused_in_2d():
    assert ns.StaggerConfig(spatial=(2, 4)).factors(3) == (2, 4, 4)
    assert ns.StaggerConfig(spatial=(2, 4, 1)).factors(3) == (2, 4, 1)
    with pytest.raises(ParameterError, match="spatial"):
        ns.StaggerConfig(spatial=(2, 2, 2)).factors(2)
    with pytest.raises(ParameterError, match="spatial"):
        ns.StaggerConfig(spatial=(2, 2, 2, 2))


def _duct_flow(cells: int = 8, nu: float = 0.5, force: float = 2.0):
    """The discrete steady Poiseuille flow of a duct (no obstacle) by the projection solver,
    and an edge potential whose curl it is (a_z = h_y cumsum_y u, every sample included)."""
    h = 1.0 / cells
    scene = mac3d.duct_scene(4 * h, 1.0, cells, force)
    solver = ProjectionSolver3d(scene, nu, stable_dt3d(scene, nu, 0.0))
    zero = np.zeros(scene.shape)
    run = solver.run((zero, zero, zero), 2.0)  # diffusion time 1 / (2 pi^2 nu) ~ 0.1
    u = run.u[-1]
    a = np.zeros((3, *scene.shape))
    a[2, :, 1:, :] = h * np.cumsum(u, axis=1)[:, :-1, :]
    return scene, solver, torch.as_tensor(u), torch.as_tensor(a)


def test_the_physics_loss_vanishes_on_the_projection_solvers_duct_flow():
    """The loss's momentum residual is the problem's own residual on the MAC grid (7-point
    Laplacian, the body force): on the projection solver's discrete steady duct flow, whose
    fluid samples satisfy nu lap_h u + f = 0, it vanishes (to what is left of the start-up
    transient), and so do the
    mirrored-wall conditions the solver imposes; a perturbed potential scores far higher."""
    scene, solver, u, a = _duct_flow()
    vel = mac3d.velocity_from_potential(a, scene.grid)
    fluid = scene.roles["u"] == mac.FLUID
    assert torch.allclose(vel[0][fluid], u[fluid], atol=1e-12)  # the curl is the flow
    assert float(u.max()) > 0.05
    problem = pdekit.problems.get(PROBLEM, nu=0.5, force=2.0)
    sb = ns.SceneBatch.of([scene], dtype=torch.float64)
    p = torch.zeros(1, 1, *scene.shape, dtype=torch.float64)

    def terms(pot, mirror):
        return ns.physics_terms(problem, scene.grid, sb, pot[None], pot[None, None], p, 0.01,
                                mirror=mirror)  # fmt: skip

    exact = terms(a, True)
    # mean squared residual: rms 3e-9 against the force 2 (the transient's e^-20 left at t = 2)
    assert float(exact["nav"]) < 1e-14
    assert float(exact["bound"]) < 1e-24
    torch.manual_seed(0)
    noisy = terms(a + 1e-3 * torch.randn_like(a), True)
    assert float(noisy["nav"]) > 1e6 * float(exact["nav"])
    # Wandel's first-order walls (the learner's default) are not the mirrored ghosts: non-zero
    assert float(terms(a, False)["bound"]) > 1e-4


OVERRIDES = {
    "stagger.spatial": (2, 2),
    "network.width": 4,
    "network.depth": 1,
    "scenes.pool": 6,
    "scenes.batch": 2,
    "train.log_every": 5,
    "retrain": True,
}


def test_training_on_the_duct_lowers_the_loss_and_answers_the_problem(tmp_path):
    """A short training run on random duct scenes (spheres) lowers the physics loss of
    a 5-step rollout of the problem's own scene; the rollout is divergence-free (a curl: float32
    round-off) and the Solution evaluates u, v, w, p anywhere in the duct (periodic along x)
    and writes VTK; a run resumed from its checkpoint ends where the uninterrupted one does."""
    problem = pdekit.problems.get(PROBLEM, t_end=0.2)

    def run(steps, **kw):
        over = {**OVERRIDES, "train.steps": steps}
        return pdekit.solve(PROBLEM, solver="neural_stagger", overrides=over, verbose=False,
                            t_end=0.2, **kw)  # fmt: skip

    def loss(sol):
        scene = problem.mac_scene(13)
        sb = ns.SceneBatch.of([scene])
        r = ns.rollout(sol.model, scene, 0.04, 0.2)
        a = torch.as_tensor(r.a, dtype=torch.float32)
        p = torch.as_tensor(r.p, dtype=torch.float32)
        out = []
        for k in range(5):
            t = ns.physics_terms(problem, sol.model.grid, sb, a[None, k], a[None, k + 1 : k + 2],
                                 p[None, k + 1 : k + 2], 0.04)  # fmt: skip
            out.append(float(ns.stagger_loss(t, 20.0)))
        return float(np.mean(out))

    untrained, half, full = run(0), run(15), run(30)
    before, after = loss(untrained), loss(full)
    assert after < before - 0.3, (before, after)
    resumed = run(30, resume=half.save(tmp_path / "half.h5"))
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    r = full.rollout()
    assert r.u.shape == r.w.shape == (6, 32, 16, 16) and r.a.shape == (6, 3, 32, 16, 16)
    assert full.extras["rollout"]["max_divergence"] < 1e-3
    length = 32 / 13
    pts = np.array([[0.3, 0.5, 0.5, 0.2], [0.3 + length, 0.5, 0.5, 0.2], [1.0, 0.0, 0.3, 0.1]])
    vals = full(pts)
    assert set(vals) == {"u", "v", "w", "p"}
    assert vals["u"][0] == pytest.approx(vals["u"][1], abs=1e-12)  # periodic along x
    assert abs(vals["u"][2]) < 1e-12  # on the wall y = 0 (no slip)
    written = full.to_vtk(tmp_path / "duct.pvd")
    assert written.exists()
    # the store answers a request naming the same pieces in three axes with the saved model
    # (a 5-step schedule: trained anew, it would stop at step 5)
    over = {**OVERRIDES, "retrain": False, "stagger.spatial": (2, 2, 2), "train.steps": 5}
    again = pdekit.solve(PROBLEM, solver="neural_stagger", verbose=False, t_end=0.2,
                         overrides=over)  # fmt: skip
    assert again.step == full.step == 30
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k]), k


def test_only_the_grid_stepper_is_offered_for_the_immersed_sphere():
    """The sphere exists as solid cells of the MAC scene: pointwise solvers are refused with
    the reason, and neural_stagger is the one offered."""
    problem = pdekit.problems.get(PROBLEM)
    assert pdekit.supported_solvers(problem) == ["neural_stagger"]
    with pytest.raises(pdekit.errors.UnsupportedPairError, match="solid cells.*neural_stagger"):
        pdekit.check_pair(problem, "pinn")


def test_bad_3d_settings_name_their_key():
    problem = pdekit.problems.get(PROBLEM)
    with pytest.raises(ParameterError, match="scenes.cells.*13"):
        problem.mac_scene(20)
    cfg = ns.NeuralStaggerConfig()
    cfg.scenes.start = "inflow"
    model = ns.NeuralStaggerSolver().build_model(problem, cfg)
    with pytest.raises(ParameterError, match="scenes.start"):
        ns.rollout(model, problem.mac_scene(13), 0.04, 0.04)
    with pytest.raises(ParameterError, match="2D models"):
        ns.differentiable_rollout(model, ns.SceneBatch.of([problem.mac_scene(13)]), 1)
    with pytest.raises(pdekit.errors.UnknownNameError, match="valid:.*neural_stagger"):
        pdekit.check_pair(problem, "no_such_solver")  # the unknown name first, with the valid


def test_a_force_along_an_axis_periodic_all_around_is_refused_for_a_curl():
    """A curl of a periodic potential has no net flux along x when y and z are periodic too:
    a body force along x there could not be followed by a curl-based stepper."""
    scene = mac3d.duct_scene(0.5, 1.0, 4, 1.0)
    box = mac3d.MacScene3d(scene.grid, torch.zeros(scene.shape, dtype=torch.bool),
                           scene.wall_velocity, (True, True, True), (1.0, 0.0, 0.0))  # fmt: skip
    with pytest.raises(ParameterError, match="no net flux"):
        box.check_curl_layout()
    scene.check_curl_layout()  # walls across the duct: the flux returns where the curl wraps
