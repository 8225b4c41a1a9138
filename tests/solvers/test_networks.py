"""Network options: random weight factorization (RWF) of the linear layers; the modified MLP
against the paper's equations."""

import math

import numpy as np
import pytest
import torch

from pdekit.core.taylor import Jet
from pdekit.errors import ParameterError, UnknownNameError
from pdekit.solvers.networks import FactorizedLinear, NetworkConfig, build_mlp

BOUNDS = np.array([[0.0, -1.0], [1.0, 1.0]])  # (t, x)
PERIODIC = (False, True)


def net(seed=0, **overrides):
    """Built in float64 throughout, so the factorization V = W / exp(s) is exact to round-off."""
    torch.manual_seed(seed)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return build_mlp(NetworkConfig(width=16, depth=3, **overrides), BOUNDS, PERIODIC, 1)
    finally:
        torch.set_default_dtype(old)


@pytest.mark.parametrize("kind", ["mlp", "modified_mlp"])
def test_factorization_starts_from_the_same_function(kind):
    """W = diag(exp(s)) V with V = W0 / exp(s): at initialisation the factorized network is the
    plain one drawn from the same seed (s is drawn after the Glorot weights)."""
    pts = torch.rand(64, 2, dtype=torch.float64) * 2 - torch.tensor([0.0, 1.0], dtype=torch.float64)
    plain = net(kind=kind)
    fact = net(kind=kind, factorization=True, factorization_mean=1.0, factorization_std=0.1)
    torch.testing.assert_close(fact(pts), plain(pts), rtol=1e-13, atol=1e-13)
    layers = [m for m in fact.modules() if isinstance(m, FactorizedLinear)]
    assert len(layers) == (6 if kind == "modified_mlp" else 4)  # encoders U, V too
    s = torch.cat([lin.log_scale.detach() for lin in layers])  # drawn from N(1, 0.1^2)
    assert abs(s.mean().item() - 1.0) < 0.05 and 0.05 < s.std().item() < 0.2


def test_factorized_layer_trains_scale_and_direction():
    torch.manual_seed(1)
    base = torch.nn.Linear(3, 4).double()
    lin = FactorizedLinear(base, mean=0.5, std=0.1)
    names = {n for n, _ in lin.named_parameters()}
    assert names == {"log_scale", "direction", "bias"}  # W is not a parameter of its own
    x = torch.rand(5, 3, dtype=torch.float64)
    lin(x).pow(2).sum().backward()
    # chain rule through W = exp(s) V: dL/ds_k = sum_j dL/dW_kj W_kj, dL/dV = exp(s) dL/dW
    w = base.weight.detach().clone().requires_grad_()
    torch.nn.functional.linear(x, w, base.bias.detach()).pow(2).sum().backward()
    gw = w.grad
    torch.testing.assert_close(lin.log_scale.grad, (gw * lin.weight.detach()).sum(1))
    scale = torch.exp(lin.log_scale.detach())[:, None]
    torch.testing.assert_close(lin.direction.grad, scale * gw)


@pytest.mark.parametrize("value", [["tanh"], {"tanh": 1}, None, "relu"])
def test_an_activation_that_is_not_a_known_name_is_refused(value):
    """Not a string (an unhashable list included) or not a known name: the valid ones listed."""
    with pytest.raises(UnknownNameError, match="unknown activation.*valid: gelu, sin, softplus"):
        NetworkConfig(activation=value)


@pytest.mark.parametrize("field,value", [("factorization_std", -0.1), ("factorization_mean", 11.0)])
def test_bad_factorization_parameters_are_named(field, value):
    with pytest.raises(ParameterError, match=field):
        NetworkConfig(factorization=True, **{field: value})


# -- the modified MLP against the paper's equations -----------------------------------------------
def _tanh_oracle(x, net):
    """Wang, Teng & Perdikaris 2021 (SIAM J. Sci. Comput. 43), modified MLP, in numpy::

        U = tanh(X W_U + b_U),  V = tanh(X W_V + b_V)
        Z_k = tanh(H_{k-1} W_k + b_k),  H_k = (1 - Z_k) * U + Z_k * V,  H_0 = X
        f = H_L W + b

    read from the module's weights: U is ``encoder_v`` and V is ``encoder_u`` (the module writes
    the gate as Z * u + (1 - Z) * v), and the first layer is gated too, as in the authors' code
    (GradientPathologiesPINNs, jaxpi); the paper prints an ungated H_1 = tanh(X W_1 + b_1).
    Torch stores a layer's weight as (out, in), hence the transposes."""

    def affine(lin, h):
        return h @ lin.weight.detach().numpy().T + lin.bias.detach().numpy()

    X = x  # embedding of bounds [-1, 1]: 2 (x + 1) / 2 - 1 = x
    U, V = np.tanh(affine(net.encoder_v, X)), np.tanh(affine(net.encoder_u, X))
    H = X
    for lin in net.layers[:-1]:
        Z = np.tanh(affine(lin, H))
        H = (1 - Z) * U + Z * V
    return affine(net.layers[-1], H)


def _modified(width, depth, activation, in_dim=2):
    bounds = np.array([[-1.0] * in_dim, [1.0] * in_dim])
    cfg = NetworkConfig(width=width, depth=depth, activation=activation, kind="modified_mlp")
    return build_mlp(cfg, bounds, (False,) * in_dim, 1).double()


def test_modified_mlp_is_the_papers_network():
    """Two gated layers of width 5, random weights and biases (the biases start at zero, so
    they are drawn here to take part): forward and the Taylor engine's value equal the numpy
    oracle to round-off (measured 1.1e-15 on outputs up to 3.5)."""
    torch.manual_seed(0)
    net = _modified(width=5, depth=2, activation="tanh")
    assert len(net.layers) == 3  # first layer, one hidden-to-hidden layer, output
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p))
    x = np.random.default_rng(0).uniform(-1, 1, (64, 2))
    want = _tanh_oracle(x, net)
    pts = torch.tensor(x)
    got = net(pts).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13)
    jet = net.forward_taylor(Jet.input(pts, [0, 1], [(0, 0)]))
    np.testing.assert_allclose(jet.value.detach().numpy(), want, rtol=0, atol=1e-13)
    assert np.abs(want).max() > 0.5  # not a vanishing output


def test_modified_mlp_on_weights_worked_on_paper():
    """Width 2, two gated layers, sin activation (exact values at multiples of pi/6), x = 1:

    U = sin([pi/2, pi/6]) = [1, 1/2],  V = sin([-pi/6, pi/2]) = [-1/2, 1]
    Z_1 = sin([pi/6, pi/2]) = [1/2, 1],  H_1 = (1 - Z_1) U + Z_1 V = [1/4, 1]
    Z_2 = sin([0 * 1/4 + pi/6 * 1, 2 pi * 1/4 - pi/2 * 1]) = [1/2, 0]
    H_2 = (1 - Z_2) U + Z_2 V = [1/4, 1/2],  f = 4 * 1/4 + 2 * 1/2 + 1 = 3
    """
    net = _modified(width=2, depth=2, activation="sin", in_dim=1)
    pi = math.pi
    values = {  # (weight (out, in), bias); U is encoder_v, V is encoder_u (see the oracle)
        net.encoder_v: ([[pi / 2], [pi / 6]], [0.0, 0.0]),
        net.encoder_u: ([[0.0], [0.0]], [-pi / 6, pi / 2]),
        net.layers[0]: ([[pi / 6], [0.0]], [0.0, pi / 2]),
        net.layers[1]: ([[0.0, pi / 6], [2 * pi, -pi / 2]], [0.0, 0.0]),
        net.layers[2]: ([[4.0, 2.0]], [1.0]),
    }
    with torch.no_grad():
        for lin, (w, b) in values.items():
            lin.weight.copy_(torch.tensor(w, dtype=torch.float64))
            lin.bias.copy_(torch.tensor(b, dtype=torch.float64))
    out = net(torch.tensor([[1.0]], dtype=torch.float64))
    assert out.item() == pytest.approx(3.0, abs=1e-14)
