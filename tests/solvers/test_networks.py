"""Network options: random weight factorization (RWF) of the linear layers."""

import numpy as np
import pytest
import torch

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
