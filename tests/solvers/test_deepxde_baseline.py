"""The DeepXDE baseline solves the same problems; its errors come out of the same errors()."""

import pytest

import pdekit
from pdekit.api import make_config
from pdekit.errors import ParameterError


@pytest.mark.parametrize(
    "name, steps, tol, reason",
    [
        (
            "porous_medium/heat",
            1500,
            5e-2,
            "PeriodicBC losses instead of an exact embedding; fixed IC points: ~1e-2 at 1.5k steps",
        ),
        ("convection_diffusion/convection", 1500, 5e-2, "beta=1, same budget as heat"),
    ],
)
def test_deepxde_solves_and_scores(name, steps, tol, reason):
    sol = pdekit.solve(name, solver="deepxde", steps=steps, verbose=False)
    assert sol.solver == "deepxde"
    errors = sol.errors()
    assert errors["rel_l2"] < tol, f"{name}: {errors['rel_l2']:.3e} ({reason})"


def test_deepxde_checkpoint_roundtrip(tmp_path):
    sol = pdekit.solve("porous_medium/heat", solver="deepxde", steps=20, verbose=False)
    path = sol.save(tmp_path / "dde.h5")
    again = pdekit.load(path)
    pts = sol.problem.evaluation_grid().points()[::37]
    assert (again(pts)["u"] == sol(pts)["u"]).all()


def test_deepxde_cannot_resume(tmp_path):
    sol = pdekit.solve("porous_medium/heat", solver="deepxde", steps=5, verbose=False)
    path = sol.save(tmp_path / "dde.h5")
    with pytest.raises(ValueError, match="cannot resume"):
        pdekit.solve("porous_medium/heat", solver="deepxde", steps=10, resume=path, verbose=False)


@pytest.mark.parametrize(
    "key,value",
    [("kind", "modified_mlp"), ("fourier_features", 8), ("factorization", True)],
)
def test_deepxde_refuses_network_options_its_fnn_lacks(key, value):
    """DeepXDE's FNN is a plain MLP: a modified MLP, Fourier features or weight factorization
    asked of the baseline is refused by name, not silently dropped."""
    with pytest.raises(ParameterError, match=f"network.{key}"):
        make_config("deepxde", None, {f"network.{key}": value})
