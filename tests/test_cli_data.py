"""``pdekit data generate`` / ``info`` / ``list``: files written and described; bad input is one
line ``pdekit: error: ...`` with exit status 2."""

import h5py
import numpy as np
import pytest

from pdekit.cli import main
from pdekit.problems import Dataset, families


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A private cache, and one torch thread (the spectral solver's FFTs on a shared 2-core
    machine; see tests/problems/conftest.py)."""
    import torch

    monkeypatch.setenv("PDEKIT_CACHE_DIR", str(tmp_path / "cache"))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def generate(argv, capsys):
    assert main(["data", "generate", *argv, "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    return lines[0].split(" (")[0], lines


def test_generate_and_info(tmp_path, capsys):
    out = tmp_path / "data"
    argv = ["navier_stokes/kolmogorov", "--set", "nu=1e-3", "--set", "t_end=1"]
    argv += ["--split", "valid", "--size", "2", "--grid", "8", "--steps", "2", "--out", str(out)]
    path, lines = generate(argv, capsys)
    assert path.startswith(str(out)) and "MB; generated in" in lines[0]
    ds = Dataset.load(path)
    assert ds.family == "kolmogorov_nu1e-3[t_end=1]" and ds.split == "valid" and len(ds) == 2
    assert ds.times.tolist() == [0.0, 0.5, 1.0] and ds.grid.n == (8, 8)
    seeds = families.get("kolmogorov_nu1e-3").split_seeds("valid", 2).tolist()
    assert [m.seed for m in ds.members] == seeds  # the t_end override keeps the family's seeds
    assert "up to date" in generate(argv, capsys)[1][0]

    assert main(["data", "info", path, "--grid", "8", "--split", "valid"]) == 0
    text = capsys.readouterr().out
    for part in [
        "problem: navier_stokes/kolmogorov",
        "params: nu=0.001, t_end=1; varied: seed in",
        "family: kolmogorov_nu1e-3[t_end=1]    split: valid",
        f"members: 2 (seeds {seeds[0]}, {seeds[1]})",
        "grid: 8x8 cells on [0, 1] x [0, 1] (x, y), periodic in x, y; values at the nodes",
        "times: 3 from 0 to 1, every 0.5",
        "fields: w (float32)",
        "sealed: SHA-256 header matches the file",
    ]:
        assert part in text, part


def test_generate_options(tmp_path, capsys):
    path, _ = generate(
        ["probconserv_heat", "--split", "test", "--seeds", "7,8", "--grid", "16"]
        + ["--times", "0,0.5", "--dtype", "float64", "--out", str(tmp_path)],
        capsys,
    )
    ds = Dataset.load(path)
    assert [m.seed for m in ds.members] == [7, 8] and ds.trajectories.dtype == np.float64
    assert ds.times.tolist() == [0.0, 0.5] and ds.problem == "porous_medium/heat"
    k = ds.members[0].params["k"]
    x = ds.grid.axis(0, "node")
    np.testing.assert_allclose(ds.trajectories[0, 1, :, 0], np.exp(-0.5 * k) * np.sin(x))
    # default directory: the user cache
    path, _ = generate(["probconserv_heat", "--size", "1", "--grid", "4", "--t-end", "0.1"], capsys)
    assert "/cache/datasets/probconserv_heat_train_1_4_" in path


def test_info_of_a_pdebench_file(tmp_path, capsys):
    path = tmp_path / "1D_diff-sorp_NA_NA.h5"
    with h5py.File(path, "w") as f:
        for i in range(2):
            f.create_dataset(f"{i:04d}/data", data=np.zeros((3, 4, 1)), dtype="float32")
            f.create_dataset(f"{i:04d}/grid/x", data=(np.arange(4) + 0.5) / 4, dtype="float32")
            f.create_dataset(f"{i:04d}/grid/t", data=[0.0, 5.0, 10.0], dtype="float32")
    assert main(["data", "info", str(path), "--problem", "porous_medium/diffusion_sorption"]) == 0
    text = capsys.readouterr().out
    assert "PDEBench layout, unsealed" in text and "members: 2 (seeds 0, 1)" in text
    assert "grid: 4 cells on [0, 1] (x)" in text and "fields: u (float32)" in text


def test_list(capsys):
    assert main(["data", "list"]) == 0
    text = capsys.readouterr().out
    assert "kolmogorov_nu1e-5" in text and "varies u_star ~ U[0.55, 0.7]" in text


def _damaged(tmp_path, capsys):
    path, _ = generate(["probconserv_heat", "--size", "1", "--grid", "4"], capsys)
    raw = bytearray(open(path, "rb").read())
    raw[len(raw) // 2] ^= 1
    open(path, "wb").write(bytes(raw))
    return path


def _random(tmp_path, capsys):
    path = tmp_path / "random.h5"
    path.write_bytes(np.random.default_rng(0).bytes(1000))
    return str(path)


def _kolmogorov_file(tmp_path, capsys):
    argv = ["kolmogorov_nu1e-3", "--set", "t_end=1", "--size", "1", "--grid", "8"]
    return generate([*argv, "--steps", "1", "--out", str(tmp_path)], capsys)[0]


TRAIN_SEED = families.get("probconserv_heat").split_seeds("train", 1)[0]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["generate", "navier_stokes/kolmogorov_x"], "unknown family or problem with families"),
        (["generate", "nope"], "valid: decaying_turbulence, diffusion_sorption, kolmogorov_nu1e-3"),
        (["generate", "navier_stokes/kolmogorov"], "several families: name one"),
        (["generate", "navier_stokes/kolmogorov", "--set", "nu=0.5"], "no family of navier"),
        (["generate", "probconserv_heat", "--size", "0"], "needs a size >= 1 (an empty split"),
        (["generate", "probconserv_heat", "--split", "tests"], "unknown split 'tests'; valid:"),
        (
            ["generate", "probconserv_heat", "--split", "test", "--seeds", f"3,{TRAIN_SEED}"],
            f"splits 'train' and 'test' of family probconserv_heat overlap in seeds [{TRAIN_SEED}]",
        ),
        (["generate", "probconserv_heat", "--seeds", "1,1"], "seeds of split 'train' repeat"),
        (["generate", "probconserv_heat", "--seeds", "a"], "--seeds expects comma-separated"),
        (["generate", "probconserv_heat", "--set", "k=2"], "['k'] vary across family"),
        (["generate", "probconserv_heat", "--grid", "8y"], "--grid expects cells per axis"),
        (["generate", "probconserv_heat", "--t-end", "2"], "to at most t_end = 1"),
        (["generate", "probconserv_heat", "--times", "0.5,1"], "from t0 = 0"),
        (["generate", "probconserv_heat", "--dtype", "int8"], "unknown dataset dtype 'int8'"),
        (["generate", "probconserv_heat", "--out", "/proc/nope"], "cannot create output"),
        (["info", "/nonexistent.h5"], "cannot read dataset /nonexistent.h5"),
        (["info", _random], "is neither a pdekit dataset"),
        (["info", _damaged], "does not match the SHA-256 in its header"),
        (["info", _kolmogorov_file, "--grid", "16"], "expected 16x16 cells"),
        (["info", _kolmogorov_file, "--problem", "porous_medium/heat"], "expected porous_medium"),
        (["info", _kolmogorov_file, "--family", "kolmogorov_nu1e-4"], "expected kolmogorov_nu"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, message, tmp_path, capsys):
    argv = [a(tmp_path, capsys) if callable(a) else a for a in argv]
    capsys.readouterr()
    assert main(["data", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pdekit: error: ") and err.count("\n") == 1, err
    assert message in err and "Traceback" not in err, err
