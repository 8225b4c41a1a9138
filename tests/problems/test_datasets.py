"""Datasets: equal to direct ``simulate`` runs, cached sealed files that are regenerated when
damaged or stale, PDEBench's per-member layout read and malformed files refused."""

import hashlib
import json
import pickle
import shutil

import h5py
import numpy as np
import pytest
import torch

from pdekit.checkpoints import sealed
from pdekit.errors import ParameterError, UnknownNameError
from pdekit.problems import Dataset, Family, Uniform, datasets
from pdekit.problems.navier_stokes.kolmogorov import Kolmogorov
from pdekit.problems.porous_medium.diffusion_sorption import DiffusionSorption
from pdekit.problems.references.cache import CacheWarning

#: float32 storage rounds each value to nearest: relative error <= 2^-24 (with a margin for
#: values computed in another batch; measured <= 5.9e-8 here)
F32_RTOL = 2.0**-23
#: a batch of 3 vs one run at a time: measured 1.1e-16 absolute (spectral, |w| <= 0.73);
#: identical for the finite-volume and closed-form solvers, which run members one by one
ROUND_OFF = 1e-13


def kolmogorov_family(**kw):
    """Kolmogorov on a 16^2 grid for one time unit: the GRF family, tiny."""
    base = dict(
        name="test_kolmogorov",
        problem="navier_stokes/kolmogorov",
        fixed={"nu": 1e-3, "t_end": 1.0},
        seed_param="seed",
        sizes={"train": 3, "valid": 2, "test": 2},
        grid=16,
        times=(0.0, 0.5, 1.0),
    )
    return Family(**{**base, **kw})


def heat_family():
    """The heat equation with k ~ U[1, 5]: members differ in a parameter, not an initial state."""
    return Family(
        name="test_heat",
        problem="porous_medium/heat",
        vary={"k": Uniform(1.0, 5.0)},
        sizes={"train": 3, "valid": 1, "test": 1},
        grid=12,
        times=(0.0, 0.25, 0.5),
    )


def sorption_family():
    return Family(
        name="test_sorption",
        problem="porous_medium/diffusion_sorption",
        seed_param="seed",
        sizes={"train": 3, "valid": 1, "test": 1},
        seed_space=10_000,
        grid=24,
        times=(0.0, 5.0, 10.0),
    )


class Spy:
    """Counts calls of a Problem class's simulate (and the trajectories asked for)."""

    def __init__(self, monkeypatch, cls):
        self.calls, self.batches = 0, []
        original = cls.simulate

        def counted(problem, states, grid, times, **kw):
            self.calls += 1
            self.batches.append(next(iter(states.values())).shape[0])
            return original(problem, states, grid, times, **kw)

        monkeypatch.setattr(cls, "simulate", counted)


def direct(members, grid, times):
    """Each member simulated on its own, from its own problem's initial state."""
    out = []
    for m in members:
        p = m.problem()
        traj = p.simulate({k: v[None] for k, v in p.initial_state(grid).items()}, grid, times)
        out.append(np.stack([traj[k][0] for k in p.state], axis=-1))
    return np.stack(out)


@pytest.mark.parametrize("make", [kolmogorov_family, heat_family, sorption_family])
def test_dataset_equals_direct_simulation(make, tmp_path):
    fam = make()
    ds64 = Dataset.generate(fam, "train", dtype="float64", directory=tmp_path, progress=False)
    want = direct(fam.members("train"), fam.make_grid(), np.asarray(fam.times))
    assert ds64.trajectories.dtype == np.float64 and ds64.trajectories.shape == want.shape
    np.testing.assert_allclose(ds64.trajectories, want, rtol=0, atol=ROUND_OFF)
    ds32 = Dataset.generate(fam, "train", directory=tmp_path, progress=False)
    assert ds32.trajectories.dtype == np.float32 and ds32.path != ds64.path  # float32 default
    np.testing.assert_allclose(ds32.trajectories, want, rtol=F32_RTOL, atol=1e-30)
    assert np.array_equal(ds32.times, fam.times) and ds32.fields == fam.template().state


def test_batching_shares_initial_states_and_splits_by_parameter(monkeypatch, tmp_path):
    spy = Spy(monkeypatch, Kolmogorov)
    Dataset.generate(kolmogorov_family(), "train", directory=tmp_path, batch_size=2)
    assert spy.batches == [2, 1]  # three GRF members: one problem, batches of two
    spy = Spy(monkeypatch, type(heat_family().template()))
    Dataset.generate(heat_family(), "train", directory=tmp_path)
    assert spy.batches == [1, 1, 1]  # k differs: one run per parameter value


def test_finer_solver_grid_is_restricted(tmp_path):
    """min_solver_cells: simulated on 2x the cells, every other node kept."""
    fam = kolmogorov_family(min_solver_cells=32)
    ds = Dataset.generate(fam, "test", dtype="float64", directory=tmp_path, progress=False)
    fine = fam.make_grid(32)
    want = direct(fam.members("test"), fine, np.asarray(fam.times))[:, :, ::2, ::2]
    np.testing.assert_allclose(ds.trajectories, want, rtol=0, atol=ROUND_OFF)
    assert ds.generator["solver_cells"] == [32, 32] and ds.grid.n == (16, 16)


def test_restrict_cell_averages():
    x = (np.arange(8) + 0.5) / 8  # fine centres; a linear field's cell mean is its centre value
    coarse = datasets.restrict((3 * x + 1)[None], 2, "center", 1)
    np.testing.assert_allclose(coarse[0], 3 * (np.arange(4) + 0.5) / 4 + 1, rtol=1e-15)
    field2 = np.arange(16.0).reshape(4, 4)
    assert datasets.restrict(field2, 2, "center", 2).tolist() == [[2.5, 4.5], [10.5, 12.5]]
    assert datasets.restrict(field2, 2, "node", 2).tolist() == [[0.0, 2.0], [8.0, 10.0]]


def test_file_layout_read_by_h5py(tmp_path):
    """PDEBench's per-member layout and our attributes, read independently by h5py; the header
    holds the SHA-256 of the rest of the file."""
    fam = kolmogorov_family()
    ds = Dataset.generate(fam, "valid", directory=tmp_path, progress=False)
    raw = ds.path.read_bytes()
    assert raw.startswith(datasets.HEADER_MAGIC)
    digest = raw[len(datasets.HEADER_MAGIC) : len(datasets.HEADER_MAGIC) + 64].decode()
    assert digest == hashlib.sha256(raw[sealed.HEADER_SIZE :]).hexdigest()
    with h5py.File(ds.path, "r") as f:
        assert sorted(f.keys()) == ["0000", "0001"]
        assert f.attrs["family"] == "test_kolmogorov" and f.attrs["split"] == "valid"
        assert f.attrs["problem"] == "navier_stokes/kolmogorov" and f.attrs["dtype"] == "float32"
        assert '"pdekit"' in f.attrs["generator"]
        for i, m in enumerate(fam.members("valid")):
            g = f[f"{i:04d}"]
            assert g["data"].shape == (3, 16, 16, 1) and g["data"].dtype == np.float32
            assert np.array_equal(g["data"][()], ds.trajectories[i])
            assert np.array_equal(g["grid/x"][()], np.arange(16) / 16)
            assert np.array_equal(g["grid/y"][()], np.arange(16) / 16)
            assert np.array_equal(g["grid/t"][()], [0.0, 0.5, 1.0])
            assert g.attrs["seed"] == m.seed and g.attrs["problem"] == m.problem_name
            assert json.loads(g.attrs["params"]) == {"nu": 1e-3, "seed": m.seed, "t_end": 1.0}
    back = Dataset.load(ds.path)
    assert np.array_equal(back.trajectories, ds.trajectories) and back.members == ds.members
    assert back.sealed and back.grid.n == ds.grid.n and back.grid.periodic == (True, True)


def test_cached_file_is_reused(monkeypatch, tmp_path):
    spy = Spy(monkeypatch, Kolmogorov)
    fam = kolmogorov_family()
    first = Dataset.generate(fam, "train", directory=tmp_path)
    again = Dataset.generate(fam, "train", directory=tmp_path)
    assert spy.calls == 1 and first.generated and not again.generated
    assert np.array_equal(first.trajectories, again.trajectories)
    assert again.path == first.path and again.sealed
    Dataset.generate(fam, "train", directory=tmp_path, force=True)
    assert spy.calls == 2


def _flip_byte(path, offset):
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x10
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: _flip_byte(p, p.stat().st_size // 2), "does not match the SHA-256"),
        (lambda p: _flip_byte(p, sealed.HEADER_SIZE + 3), "does not match the SHA-256"),
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 3]), "does not match"),
        (lambda p: p.write_bytes(p.read_bytes()[:100]), "does not match"),
        (lambda p: _flip_byte(p, 1), "not a pdekit dataset"),
        (lambda p: p.write_bytes(b""), "not a pdekit dataset"),
    ],
)
def test_damaged_file_is_regenerated(damage, message, monkeypatch, tmp_path):
    spy = Spy(monkeypatch, Kolmogorov)
    fam = kolmogorov_family()
    good = Dataset.generate(fam, "test", directory=tmp_path)
    damage(good.path)
    with pytest.raises(ParameterError, match=message):  # never parsed when loaded directly
        Dataset.load(good.path)
    with pytest.warns(CacheWarning, match=message):
        again = Dataset.generate(fam, "test", directory=tmp_path)
    assert spy.calls == 2 and again.generated
    assert np.array_equal(again.trajectories, good.trajectories)
    assert Dataset.load(good.path).members == good.members  # the rewritten file is intact


def test_stale_file_is_regenerated(monkeypatch, tmp_path):
    spy = Spy(monkeypatch, Kolmogorov)
    fam = kolmogorov_family()
    small = Dataset.generate(fam, "train", 2, directory=tmp_path)
    big = Dataset.generate(fam, "train", 3, directory=tmp_path)
    shutil.copyfile(small.path, big.path)  # a file of another key where this one is expected
    with pytest.warns(CacheWarning, match="is stale .*seeds_sha256, size"):
        again = Dataset.generate(fam, "train", 3, directory=tmp_path)
    assert spy.calls == 3 and len(again) == 3
    np.testing.assert_array_equal(again.trajectories, big.trajectories)
    # a file of an older data format, under the same name
    monkeypatch.setattr(datasets, "DATA_FORMAT_VERSION", datasets.DATA_FORMAT_VERSION + 1)
    with pytest.warns(CacheWarning, match="has data format 1; this pdekit reads format 2"):
        Dataset.generate(fam, "train", 3, directory=tmp_path)
    assert spy.calls == 4
    # other times, grid or dtype are other files
    Dataset.generate(fam, "train", 3, directory=tmp_path, times=[0.0, 1.0])
    Dataset.generate(fam, "train", 3, directory=tmp_path, grid=8)
    assert spy.calls == 6 and len(list(tmp_path.glob("*.h5"))) == 4


def test_torch_access_steps_and_pickling(tmp_path):
    ds = Dataset.generate(kolmogorov_family(), "train", directory=tmp_path, progress=False)
    assert len(ds) == 3 and ds.times.tolist() == [0.0, 0.5, 1.0] and ds.grid.n == (16, 16)
    x, y = ds[-1]
    assert x.dtype == torch.float32 and x.shape == (1, 16, 16, 1) and y.shape == (2, 16, 16, 1)
    assert torch.equal(x[0], torch.from_numpy(ds.trajectories[2, 0]))
    x2, y2 = ds.with_steps(2)[0]
    assert x2.shape[0] == 2 and y2.shape[0] == 1
    x3, y3 = ds.with_steps(1, start=1)[0]
    assert torch.equal(x3[0], torch.from_numpy(ds.trajectories[0, 1])) and y3.shape[0] == 1
    with pytest.raises(ParameterError, match="targets are not empty"):
        ds.with_steps(3)
    with pytest.raises(IndexError):
        ds[3]
    clone = pickle.loads(pickle.dumps(ds))  # what a spawned DataLoader worker receives
    assert np.array_equal(clone.trajectories, ds.trajectories) and clone.members == ds.members
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert batch[0].shape == (3, 1, 16, 16, 1) and batch[1].shape == (3, 2, 16, 16, 1)


def test_require_names_what_is_held(tmp_path):
    ds = Dataset.generate(kolmogorov_family(), "train", directory=tmp_path, progress=False)
    assert ds.require(problem="navier_stokes/kolmogorov", split="train", grid=16) is ds
    with pytest.raises(ParameterError, match="holds navier_stokes/kolmogorov; expected porous"):
        ds.require(problem="porous_medium/heat")
    with pytest.raises(ParameterError, match="is on a grid of 16x16 cells .*; expected 32x32"):
        ds.require(grid=32)
    with pytest.raises(ParameterError, match="holds family test_kolmogorov; expected other"):
        ds.require(family="other")
    with pytest.raises(ParameterError, match="holds split train; expected test"):
        ds.require(split="test")


def test_bad_generate_arguments(tmp_path):
    fam = kolmogorov_family()
    with pytest.raises(UnknownNameError, match="unknown dataset dtype 'float16'"):
        Dataset.generate(fam, "train", dtype="float16", directory=tmp_path)
    with pytest.raises(ParameterError, match="needs a size >= 1"):
        Dataset.generate(fam, "train", 0, directory=tmp_path)
    with pytest.raises(UnknownNameError, match="unknown family 'nope'"):
        Dataset.generate("nope", "train", directory=tmp_path)
    with pytest.raises(ParameterError, match="at most t_end = 1"):
        Dataset.generate(fam, "train", times=[0.0, 2.0], directory=tmp_path)
    assert not list(tmp_path.iterdir())


# -- PDEBench files ---------------------------------------------------------------------------
def write_pdebench(path, data, axes, names=None):
    """A file in PDEBench's per-seed layout, written as their generators do (float32, no
    header): '<seed:04d>/data', '<seed>/grid/x' [, y], '<seed>/grid/t', attribute 'config'."""
    with h5py.File(path, "w") as f:
        for i, sample in enumerate(data):
            name = names[i] if names else str(i).zfill(4)
            f.create_dataset(f"{name}/data", data=sample, dtype="float32")
            for c, a in axes.items():
                f.create_dataset(f"{name}/grid/{c}", data=a, dtype="float32")
            f[name].attrs["config"] = f"sim:\n  seed: {i}\n"


def centres(n, lo=0.0, hi=1.0):
    dx = (hi - lo) / n
    return np.linspace(lo + dx / 2, hi - dx / 2, n)


def test_from_pdebench_2d(tmp_path, rng):
    data = rng.normal(size=(3, 5, 8, 6, 2))  # (t, x, y, fields) per member
    axes = {"x": centres(8, -1.0, 1.0), "y": centres(6), "t": np.linspace(0.0, 5.0, 5)}
    path = tmp_path / "2D_diff-react_NA_NA.h5"
    write_pdebench(path, data, axes)
    ds = Dataset.from_pdebench(path)
    assert not ds.sealed and len(ds) == 3 and ds.fields == ("v0", "v1")
    assert np.array_equal(ds.trajectories, data.astype(np.float32))
    assert ds.grid.n == (8, 6) and ds.location == "center"
    assert ds.grid.lo.tolist() == [-1.0, 0.0] and ds.grid.hi.tolist() == [1.0, 1.0]
    np.testing.assert_allclose(ds.grid.axis(0), axes["x"], rtol=0, atol=1e-7)  # float32 grid
    np.testing.assert_allclose(ds.grid.axis(1), axes["y"], rtol=0, atol=1e-7)
    assert np.array_equal(ds.axes["x"], axes["x"].astype(np.float32))
    assert np.array_equal(ds.times, axes["t"].astype(np.float32))
    x, y = ds[1]
    assert torch.equal(x[0], torch.from_numpy(data[1, 0].astype(np.float32)))
    assert y.shape == (4, 8, 6, 2)
    assert [m.seed for m in Dataset.from_pdebench(path, members=["0002", 0]).members] == [2, 0]
    assert len(Dataset.from_pdebench(path, members=2)) == 2


def test_from_pdebench_1d_with_a_problem(tmp_path, rng):
    """The diffusion-sorption file's shape: (t, x, 1) per sample, groups ordered as numbers."""
    data = rng.uniform(size=(3, 4, 16, 1))
    names = ["0009", "0010", "10000"]
    path = tmp_path / "1D_diff-sorp_NA_NA.h5"
    write_pdebench(path, data, {"x": centres(16), "t": np.linspace(0, 500, 4)}, names)
    ds = Dataset.from_pdebench(path, problem="porous_medium/diffusion_sorption")
    assert ds.fields == ("u",) and ds.problem == "porous_medium/diffusion_sorption"
    assert [m.seed for m in ds.members] == [9, 10, 10000]
    assert np.array_equal(ds.trajectories, data.astype(np.float32))
    assert ds.grid.coordinates == ("x",) and ds.grid.lo[0] == 0.0 and ds.grid.hi[0] == 1.0
    ds.require(problem=DiffusionSorption.name, grid=16)
    with pytest.raises(ParameterError, match="holds 1D data with 1 fields; navier_stokes"):
        Dataset.from_pdebench(path, problem="navier_stokes/kolmogorov")


def _malformed(kind, path, rng):
    axes = {"x": centres(8), "t": np.linspace(0, 1, 3)}
    good = rng.normal(size=(2, 3, 8, 1))
    if kind == "random bytes":
        path.write_bytes(rng.bytes(2048))
        return
    if kind == "pickle":
        path.write_bytes(pickle.dumps({"data": good}))
        return
    if kind == "non-uniform x":
        write_pdebench(path, good, {**axes, "x": np.sort(rng.uniform(size=8))})
        return
    write_pdebench(path, good, axes)
    with h5py.File(path, "a") as f:
        if kind == "one array":
            for k in list(f):
                del f[k]
            f.create_dataset("tensor", data=good)
        elif kind == "no grid/t":
            del f["0001/grid/t"]
        elif kind == "no data":
            del f["0000/data"]
        elif kind == "soft link":
            del f["0001/data"]
            f["0001/data"] = h5py.SoftLink("/0000/data")
        elif kind == "wrong shape":
            del f["0001/data"]
            f.create_dataset("0001/data", data=good[0, :, :5])
        elif kind == "other grid":
            del f["0001/grid/x"]
            f.create_dataset("0001/grid/x", data=centres(8) * 2)
        elif kind == "strings":
            del f["0000/data"]
            f.create_dataset("0000/data", data=np.array([b"cos", b"sin"], dtype=object))


@pytest.mark.parametrize(
    "kind, message",
    [
        ("random bytes", "is not an HDF5 file"),
        ("pickle", "is not an HDF5 file"),
        ("one array", r"lacks PDEBench's per-member layout .*top level: \['tensor'\]"),
        ("no grid/t", "group '0001' lacks grid/t"),
        ("no data", "group '0000' lacks data"),
        ("soft link", "group '0001' lacks data"),
        ("wrong shape", r"0001/data is \(3, 5, 1\), not \(3, 8, 1\)"),
        ("other grid", "group '0001' has other grids than '0000'"),
        ("non-uniform x", "grid/x is not uniform"),
        ("strings", "not floating point"),
    ],
)
def test_malformed_pdebench_files_are_refused(kind, message, tmp_path, rng):
    path = tmp_path / "bad.h5"
    _malformed(kind, path, rng)
    with pytest.raises(ParameterError, match=message):
        Dataset.from_pdebench(path)


def test_pdebench_and_pdekit_files_are_not_confused(tmp_path, rng):
    plain = tmp_path / "plain.h5"
    write_pdebench(plain, rng.normal(size=(1, 2, 4, 1)), {"x": centres(4), "t": [0.0, 1.0]})
    with pytest.raises(ParameterError, match="plain HDF5 file .*Dataset.from_pdebench"):
        Dataset.load(plain)
    ds = Dataset.generate(heat_family(), "test", directory=tmp_path, progress=False)
    with pytest.raises(ParameterError, match="is a pdekit dataset; read it with Dataset.load"):
        Dataset.from_pdebench(ds.path)
