"""GridReference: interpolation order measured, exactness on polynomials, periodic wrap."""

import numpy as np
import pytest

from pdekit.geometries import uniform_axis
from pdekit.problems.references import GridReference


def smooth(x, y, t):
    return np.sin(2 * np.pi * x + 0.3) * np.cos(2 * np.pi * y) * np.exp(-t) + 0.1 * t**2


def make(n, order):
    axes = {
        "x": uniform_axis(0.0, 1.0, n, periodic=True),
        "y": uniform_axis(0.0, 1.0, n, periodic=True),
        "t": np.linspace(0.0, 1.0, n),
    }
    X, Y, T = np.meshgrid(*axes.values(), indexing="ij")
    return GridReference(
        axes,
        {"u": smooth(X, Y, T)},
        (True, True, False),
        description="d",
        accuracy="a",
        order=order,
    )


@pytest.mark.parametrize("order, expected", [(3, 4.0), (1, 2.0)])
def test_interpolation_order_measured(order, expected):
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 1, (2000, 3))
    errs = []
    for n in (16, 32, 64):
        ref = make(n, order)
        errs.append(np.abs(ref(pts)["u"] - smooth(*pts.T)).max())
    slopes = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    # asymptotic range reached by n = 16 for this smooth field: slopes within 0.3 of the order
    assert np.all(np.abs(slopes - expected) < 0.3), (errs, slopes)


def test_cubic_exact_on_cubic_polynomial_on_nonuniform_axes():
    rng = np.random.default_rng(1)
    ax = np.sort(rng.uniform(0, 2, 9))
    ay = np.concatenate([[-1.0], np.sort(rng.uniform(-1, 1, 6)), [1.0]])

    def p(x, y):
        return 1 + x - 2 * x**2 + 0.5 * x**3 - y**3 + x * y**2

    X, Y = np.meshgrid(ax, ay, indexing="ij")
    ref = GridReference(
        {"x": ax, "y": ay}, {"u": p(X, Y)}, (False, False), description="d", accuracy="a"
    )
    pts = np.stack([rng.uniform(ax[0], ax[-1], 500), rng.uniform(-1, 1, 500)], axis=1)
    # a cubic in each variable is reproduced by the 4-point stencil up to round-off
    np.testing.assert_allclose(ref(pts)["u"], p(*pts.T), atol=1e-11)
    # and the nodes are reproduced exactly (interpolation, not smoothing)
    np.testing.assert_allclose(
        ref(np.stack([X.ravel(), Y.ravel()], 1))["u"], p(X, Y).ravel(), atol=1e-13
    )


def test_periodic_wrap_and_bounds():
    ref = make(16, 3)
    pts = np.array([[0.37, 0.81, 0.5], [0.37 + 3, 0.81 - 2, 0.5], [0.99, 0.999, 0.0]])
    out = ref(pts)["u"]
    assert out[0] == pytest.approx(out[1], abs=1e-12)
    # between the last node and the period end the stencil wraps to the first nodes
    assert out[2] == pytest.approx(smooth(*pts[2]), abs=2e-3)
    with pytest.raises(ValueError, match="outside the reference grid"):
        ref(np.array([[0.5, 0.5, 1.5]]))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"values": {"u": np.zeros((4, 5))}}, "shape"),
        ({"periodic": (True,)}, "periodic flags"),
        ({"axes": {"x": [0, 0.1, 0.3, 0.6], "y": np.arange(4.0)}}, "uniform"),
        ({"axes": {"x": [0, 2, 1, 3], "y": np.arange(4.0)}}, "increasing"),
        ({"order": 2}, "order"),
    ],
)
def test_bad_input(kwargs, match):
    args = {
        "axes": {"x": np.arange(4.0), "y": np.arange(4.0)},
        "values": {"u": np.zeros((4, 4))},
        "periodic": (True, False),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        GridReference(description="d", accuracy="a", **args)
