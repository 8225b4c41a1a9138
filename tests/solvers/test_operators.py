"""Operator networks: the spectral convolution against a dense DFT, the band-limited analytic
result and neuraloperator; FNO and U-Net shapes, gradients, dtypes, fits of exact operators."""

import math

import h5py
import numpy as np
import pytest
import torch

from pdekit.core.spectral import inverse_laplacian, wavenumbers
from pdekit.errors import ParameterError
from pdekit.solvers.config import from_dict, to_dict
from pdekit.solvers.operators import FNO, FNOConfig, SpectralConv, UNet2d, UNet2dConfig


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny FFTs and convolutions: on the shared 2-core machine two intra-op threads made the
    fits 10-25x slower (measured: 6.5 s -> 94 s for the three fits), so one thread here."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# (modes, grid): 1D/2D/3D, odd and even sizes, down to the fewest points, 2 m - 1
CASES = [
    ((5,), (16,)),
    ((5,), (9,)),
    ((4, 3), (9, 8)),
    ((4, 3), (7, 5)),
    ((3, 4), (10, 11)),
    ((3, 3, 2), (6, 7, 5)),
    ((2, 3, 3), (4, 5, 6)),
]


def frequencies(modes):
    """Kept integer frequencies per axis, in the layer's weight order."""
    return [np.arange(-(m - 1), m) for m in modes[:-1]] + [np.arange(modes[-1])]


def along(t, axis, matrix):
    """Apply ``matrix`` (new x old) along ``axis`` of ``t``."""
    return np.moveaxis(np.tensordot(t, matrix, axes=([axis], [1])), -1, axis)


def synthesize(coef, modes, grid):
    """Re sum_k c_k coef_k exp(2 pi i k.j/n) on the grid; c_k = 1 on k_last = 0, else 2."""
    freqs = frequencies(modes)
    coef = coef * np.where(freqs[-1] == 0, 1.0, 2.0)
    for a, (k, n) in enumerate(zip(freqs, grid)):
        coef = along(coef, 2 + a, np.exp(2j * np.pi * np.outer(np.arange(n), k) / n))
    return coef.real


def dense_spectral_conv(x, weight, modes):
    """The layer with explicit DFT matrices: truncated DFT, per-mode matrix, inverse DFT."""
    grid = x.shape[2:]
    xf = x.astype(complex)
    for a, (k, n) in enumerate(zip(frequencies(modes), grid)):
        xf = along(xf, 2 + a, np.exp(-2j * np.pi * np.outer(k, np.arange(n)) / n) / n)
    return synthesize(np.einsum("bi...,io...->bo...", xf, weight), modes, grid)


def complex_weight(conv):
    return torch.view_as_complex(conv.weight.detach()).numpy()


@pytest.mark.parametrize("modes, grid", CASES)
def test_spectral_conv_equals_dense_dft(modes, grid):
    """Round-off in float64 (measured max |diff| <= 2.0e-15 on O(1) outputs)."""
    torch.manual_seed(0)
    conv = SpectralConv(3, 2, modes).double()
    x = torch.randn(2, 3, *grid, dtype=torch.float64)
    expected = dense_spectral_conv(x.numpy(), complex_weight(conv), modes)
    np.testing.assert_allclose(conv(x).detach().numpy(), expected, rtol=0, atol=1e-13)


@pytest.mark.parametrize("modes, grid", [((4,), (7,)), ((4, 3), (9, 6)), ((3, 2, 3), (5, 6, 8))])
def test_resolution_invariance_on_band_limited_input(modes, grid):
    """u = Re sum_{k in K} c_k b_k e^{2 pi i k.x} (only kept modes) sampled at n and 2n: the layer
    gives the analytic band-limited output at both (so 2n subsampled = n) to round-off."""
    gen = np.random.default_rng(1)
    torch.manual_seed(1)
    conv = SpectralConv(2, 3, modes).double()
    shape = (1, 2, *(len(k) for k in frequencies(modes)))
    b = gen.normal(size=shape) + 1j * gen.normal(size=shape)
    # DFT/N coefficients of u on the kept half-set: b, and on k_last = 0 (where k and -k are
    # both kept) the Hermitian part (b_k + conj b_{-k}) / 2
    u_hat = b.copy()
    flip = tuple(range(2, 1 + len(modes)))
    u_hat[..., 0] = (b[..., 0] + np.conj(np.flip(b[..., 0], axis=flip))) / 2
    y_hat = np.einsum("bi...,io...->bo...", u_hat, complex_weight(conv))
    outs = []
    for scale in (1, 2):
        fine = tuple(scale * n for n in grid)
        out = conv(torch.from_numpy(synthesize(b, modes, fine))).detach().numpy()
        np.testing.assert_allclose(out, synthesize(y_hat, modes, fine), rtol=0, atol=1e-12)
        outs.append(out)
    coarse = outs[1][(slice(None), slice(None), *(slice(None, None, 2),) * len(grid))]
    np.testing.assert_allclose(coarse, outs[0], rtol=0, atol=1e-12)


# neuraloperator 2.0.0 un-shifts with fftshift instead of ifftshift before its inverse FFT, which
# is wrong on odd-sized non-last axes (fixed upstream after 2.0.0: neuraloperator PR #688); the
# comparison therefore uses even sizes there (the last axis may be odd).
@pytest.mark.parametrize("modes, grid", [((5,), (13,)), ((4, 3), (8, 9)), ((3, 3, 2), (6, 8, 5))])
def test_spectral_conv_equals_neuraloperator(modes, grid):
    """neuraloperator SpectralConv(n_modes = 2m - 1 per axis, bias=False), weight.tensor =
    view_as_complex(our weight): the same layout. float32 (neuraloperator computes in complex64):
    measured max |diff| <= 3.6e-7 on O(1) outputs."""
    from neuralop.layers.spectral_convolution import SpectralConv as NeuralopSpectralConv

    torch.manual_seed(2)
    ours = SpectralConv(3, 4, modes)
    theirs = NeuralopSpectralConv(3, 4, n_modes=tuple(2 * m - 1 for m in modes), bias=False)
    assert theirs.weight.tensor.shape == ours.weight.shape[:-1]
    with torch.no_grad():
        theirs.weight.tensor.copy_(torch.view_as_complex(ours.weight))
    x = torch.randn(2, 3, *grid)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=2e-6)


def test_spectral_weights_real_hdf5_roundtrip_and_init_scale(tmp_path):
    """Weights are real float tensors: h5py stores and reads them; the layer reads back the same.
    Init: E|R|^2 = 2 / (in + out) (neuraloperator's default): measured 0.5% off, tolerance 3%."""
    torch.manual_seed(3)
    conv = SpectralConv(32, 16, (8, 6))
    w = torch.view_as_complex(conv.weight.detach())
    assert abs(w.abs().square().mean().item() / (2 / 48) - 1) < 0.03
    assert abs(w.real.std().item() / w.imag.std().item() - 1) < 0.03
    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as f:
        for key, value in conv.state_dict().items():
            assert value.dtype == torch.float32
            f[key] = value.numpy()
    other = SpectralConv(32, 16, (8, 6))
    with h5py.File(path, "r") as f:
        other.load_state_dict({k: torch.from_numpy(f[k][()]) for k in f})
    x = torch.randn(1, 32, 15, 12)
    torch.testing.assert_close(other(x), conv(x), rtol=0, atol=0)


def tiny_fno(dim, **kw):
    base = dict(dim=dim, in_channels=2, out_channels=3, width=6, modes=(3,), layers=2)
    base["projection_channels"] = 8
    return FNO(FNOConfig(**{**base, **kw}))


@pytest.mark.parametrize(
    "dim, grids, kw",
    [
        (2, [(5, 5), (16, 12), (33, 20)], {}),
        (3, [(5, 6, 5), (8, 8, 12)], {"padding": (0, 0, 4)}),
        (3, [(6, 5, 2)], {"padding": (0, 0, 3), "lifting_channels": 8}),
        (1, [(5,), (40,)], {"positional_embedding": False}),
    ],
)
def test_fno_output_shape_at_several_resolutions(dim, grids, kw):
    torch.manual_seed(0)
    model = tiny_fno(dim, **kw)
    for grid in grids:
        assert model(torch.randn(2, 2, *grid)).shape == (2, 3, *grid)


@pytest.mark.parametrize(
    "model, shape",
    [
        (lambda: tiny_fno(2), (2, 2, 8, 8)),
        (lambda: tiny_fno(3, padding=(0, 0, 2), lifting_channels=5), (2, 2, 6, 6, 4)),
        (lambda: UNet2d(UNet2dConfig(2, 3, width=4, depth=2, groups=2)), (2, 2, 8, 8)),
        (lambda: UNet2d(UNet2dConfig(2, 3, width=4, depth=1, norm="batch")), (2, 2, 8, 4)),
        (
            lambda: UNet2d(UNet2dConfig(2, 3, width=4, norm="none", padding="circular")),
            (1, 2, 16, 8),
        ),
    ],
)
def test_gradient_reaches_every_parameter(model, shape):
    torch.manual_seed(0)
    net = model()
    out = net(torch.randn(*shape))
    assert out.shape == (shape[0], 3, *shape[2:])
    out.square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "model, shape",
    [
        (lambda: tiny_fno(2), (2, 2, 9, 8)),
        (lambda: UNet2d(UNet2dConfig(2, 3, 4, 1, "group", 2)), (2, 2, 8, 8)),
    ],
)
def test_float32_and_float64(model, shape):
    """The same weights in both precisions agree to float32 round-off (measured <= 3.9e-7 rel.)."""
    torch.manual_seed(0)
    net = model()
    x = torch.randn(*shape, dtype=torch.float64)
    y32 = net(x.float())
    y64 = net.double()(x)
    assert y32.dtype == torch.float32 and y64.dtype == torch.float64
    assert (y32.double() - y64).norm() / y64.norm() < 1e-5


# ---- fits of exact operators on random band-limited fields, period 2 pi -------------------------


def random_fields(gen, count, grid, kmax):
    """Real fields with modes |k_j| <= kmax, amplitudes ~ 1/(1 + |k|^2), unit RMS each."""
    dims = tuple(range(2, 2 + len(grid)))
    shape = (count, 1, *grid[:-1], grid[-1] // 2 + 1)
    coef = torch.complex(*(torch.randn(shape, generator=gen, dtype=torch.float64) for _ in "ri"))
    ks = wavenumbers(grid, [2 * math.pi] * len(grid))
    mask = torch.stack([k.abs().expand(shape[2:]) <= kmax for k in ks]).all(0)
    u = torch.fft.irfftn(coef * mask / (1 + sum(k**2 for k in ks)), s=grid, dim=dims)
    return u / u.square().mean(dim=dims, keepdim=True).sqrt()


def heat(t):
    """The heat semigroup u0 -> u(t) of u_t = u_xx (+ u_yy) on the 2 pi-periodic box."""

    def op(u):
        grid = u.shape[2:]
        dims = tuple(range(2, u.ndim))
        decay = torch.exp(-t * sum(k**2 for k in wavenumbers(grid, [2 * math.pi] * len(grid))))
        return torch.fft.irfftn(decay * torch.fft.rfftn(u, dim=dims), s=grid, dim=dims)

    return op


def minus_inverse_laplacian(f):
    """phi with -laplacian(phi) = f - mean f, zero mean, on the 2 pi-periodic square."""
    return -inverse_laplacian(f, (2 * math.pi, 2 * math.pi))


def fit_and_measure(model, op, grid, kmax, steps, lr, batch=16, n_train=256):
    """Adam (cosine schedule) on n_train fields, then rel. L2 on 64 held-out fields."""
    gen = torch.Generator().manual_seed(0)
    u = random_fields(gen, n_train, grid, kmax)
    y = op(u).float()
    u = u.float()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        i = torch.randint(0, n_train, (batch,), generator=gen)
        loss = (model(u[i]) - y[i]).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
    u_test = random_fields(torch.Generator().manual_seed(99), 64, grid, kmax)
    y_test = op(u_test)
    model.eval()
    with torch.no_grad():
        pred = model(u_test.float()).double()
    return ((pred - y_test).norm() / y_test.norm()).item(), (
        (u_test - y_test).norm() / y_test.norm()
    ).item()


# (name, network, operator, grid, kmax, steps, lr, tolerance: reason)
FITS = [
    (
        "fno_1d_heat",
        lambda: FNO(FNOConfig(dim=1, width=16, modes=(8,), layers=2, projection_channels=32)),
        heat(0.08),
        (32,),
        6,
        300,
        1e-2,
        # float32, 300 Adam steps, 2 GELU layers fitting a linear multiplier: measured 1.2e-2
        # (identity map: 0.21)
        3e-2,
    ),
    (
        "fno_2d_inverse_laplacian",
        lambda: FNO(FNOConfig(dim=2, width=12, modes=(6,), layers=2, projection_channels=32)),
        minus_inverse_laplacian,
        (16, 16),
        4,
        250,
        1e-2,
        # float32, 250 Adam steps; 1/|k|^2 spans 32x over the kept modes: measured 2.0e-2
        4e-2,
    ),
    (
        "unet_2d_heat_smoothing",
        lambda: UNet2d(UNet2dConfig(width=8, depth=2, groups=4, padding="circular")),
        heat(0.16),
        (16, 16),
        6,
        200,
        1e-2,
        # 3x3 GELU convolutions approximating a Gaussian blur (width 1.2 cells), 200 Adam steps:
        # measured 7.4e-2, against 0.60 for the identity map
        0.12,
    ),
]


@pytest.mark.parametrize(
    "network, op, grid, kmax, steps, lr, tol", [f[1:] for f in FITS], ids=[f[0] for f in FITS]
)
def test_tiny_network_fits_exact_operator(network, op, grid, kmax, steps, lr, tol):
    torch.manual_seed(0)
    err, identity_err = fit_and_measure(network(), op, grid, kmax, steps, lr)
    assert err < tol, f"rel. L2 {err:.3g} (identity map: {identity_err:.3g})"
    assert err < identity_err / 5


def test_unet_circular_padding_is_shift_equivariant():
    """Periodic padding: a shift by 2**depth cells commutes with the network (round-off);
    zero padding does not."""
    torch.manual_seed(0)
    x = torch.randn(1, 1, 16, 16, dtype=torch.float64)
    for padding, equivariant in (("circular", True), ("zeros", False)):
        net = UNet2d(UNet2dConfig(width=4, depth=2, groups=2, padding=padding)).double()
        diff = (net(x.roll((4, -8), (2, 3))) - net(x).roll((4, -8), (2, 3))).abs().max().item()
        assert (diff < 1e-12) == equivariant, (padding, diff)


def test_configs_roundtrip_through_dicts():
    """Configs go to JSON (checkpoints) and back; lists become tuples."""
    fno = FNOConfig(dim=3, modes=(8, 8, 6), padding=(0, 0, 6))
    assert from_dict(FNOConfig, to_dict(fno)) == fno
    assert FNOConfig(dim=3).axis_modes == (8, 8, 8) and FNOConfig().axis_modes == (12, 12)
    unet = UNet2dConfig(norm="batch", padding="circular")
    assert from_dict(UNet2dConfig, to_dict(unet)) == unet


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: tiny_fno(2)(torch.randn(1, 3, 8, 8)), "expects 2 input channels"),
        (lambda: tiny_fno(2)(torch.randn(1, 2, 8)), r"dim=2\) expects input"),
        (
            lambda: tiny_fno(2)(torch.randn(1, 2, 8, 4)),
            "axis 1 has 4 points; 3 modes need at least 5",
        ),
        (
            lambda: tiny_fno(3, padding=(0, 0, 2))(torch.randn(1, 2, 8, 8, 2)),
            "axis 2 has 2 points; 3 modes need at least 3",
        ),
        (
            lambda: SpectralConv(1, 1, (4, 6))(torch.randn(1, 1, 9, 10)),
            "axis 1 has 10 points; 6 modes need at least 11",
        ),
        (lambda: SpectralConv(2, 1, (4,))(torch.randn(1, 1, 9)), r"expects \(batch, 2"),
        (lambda: SpectralConv(1, 1, (4, 0)), "modes must be integers >= 1"),
        (lambda: SpectralConv(1, 1, (2, 2, 2, 2)), "1 to 3 axes"),
        (lambda: UNet2d()(torch.randn(1, 2, 16, 16)), "expects 1 input channels"),
        (
            lambda: UNet2d()(torch.randn(1, 1, 16, 12)),
            "axis 1 has 12 points; depth 3 needs a positive multiple of",
        ),
        (lambda: FNOConfig(dim=3, modes=(8, 8)), "modes needs 0, 1 or dim=3 values"),
        (lambda: FNOConfig(dim=2, padding=(4,)), "padding needs 0 or dim=2 values"),
        (lambda: FNOConfig(dim=4), r"FNOConfig.dim must be in \[1, 3\]"),
        (lambda: UNet2dConfig(norm="layer"), "UNet2dConfig.norm must be one of"),
    ],
)
def test_bad_input_names_the_problem(call, message):
    with pytest.raises(ParameterError, match=message):
        call()
