"""Checkpoints: save -> load -> identical predictions; the tree format; damaged files refused."""

import hashlib

import h5py
import numpy as np
import pytest
import torch

import pdekit
from pdekit.checkpoints.hdf5 import seal
from pdekit.checkpoints.tree import read_tree, write_tree
from pdekit.errors import CheckpointError


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    sol = pdekit.solve("porous_medium/heat", solver="pinn", steps=30, verbose=False, k=2.0)
    path = sol.save(tmp_path_factory.mktemp("ckpt") / "heat.h5")
    return sol, path


def test_save_load_gives_identical_predictions(trained):
    sol, path = trained
    again = pdekit.load(path)
    assert again.problem == sol.problem and again.solver == "pinn" and again.step == 30
    pts = sol.problem.evaluation_grid().points()
    assert np.array_equal(again(pts)["u"], sol(pts)["u"])
    assert again.history["loss"] == sol.history["loss"]
    assert again.config == sol.config


def test_checkpoint_is_self_describing_hdf5(trained):
    _, path = trained
    with h5py.File(path, "r") as f:  # an independent reader sees the documented layout
        assert f.attrs["format"] == "pdekit-checkpoint"
        assert f.attrs["problem"] == "porous_medium/heat"
        assert '"k": 2.0' in f.attrs["problem_params"]
        assert {"model", "trainer", "extras"} <= set(f)


def test_tree_roundtrip(tmp_path):
    state = {
        "w": torch.randn(3, 2, dtype=torch.float64),
        "n": torch.tensor(5),
        0: {"step": 3, "exp": [1.5, None, "s"]},
        "tuple": (1, 2),
        "big": 2**100 + 1,
        "arr": np.arange(4),
    }
    with h5py.File(tmp_path / "t.h5", "w") as f:
        write_tree(f, "s", state)
    with h5py.File(tmp_path / "t.h5", "r") as f:
        back = read_tree(f["s"])
    assert torch.equal(back["w"], state["w"]) and back["w"].dtype == torch.float64
    assert back[0] == state[0] and back["tuple"] == (1, 2) and back["big"] == 2**100 + 1
    assert np.array_equal(back["arr"], state["arr"])


def test_no_pickle_for_objects(tmp_path):
    with h5py.File(tmp_path / "t.h5", "w") as f, pytest.raises(TypeError, match="no pickle"):
        write_tree(f, "s", {"obj": object()})


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "missing"])
def test_damaged_checkpoints_are_refused(trained, tmp_path, damage):
    _, path = trained
    bad = tmp_path / "bad.h5"
    data = path.read_bytes()
    if damage == "truncate":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "flip":  # flip bytes inside the model weights' data region
        with h5py.File(path, "r") as f:
            name = next(iter(f["model"]))
            offset = f["model"][name].id.get_offset()
        arr = bytearray(data)
        for i in range(offset, offset + 16):
            arr[i] ^= 0xFF
        bad.write_bytes(bytes(arr))
    elif damage == "garbage":
        bad.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError, match=str(bad.name)):
        pdekit.load(bad)


def test_wrong_format_version_is_refused(trained, tmp_path):
    _, path = trained
    bad = tmp_path / "v99.h5"
    bad.write_bytes(path.read_bytes())
    with h5py.File(bad, "a") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(CheckpointError, match="checksum mismatch"):  # edited: header stale
        pdekit.load(bad)
    seal(bad)  # as a newer pdekit would write it
    with pytest.raises(CheckpointError, match="format version 99"):
        pdekit.load(bad)


def test_resume_refuses_other_problem(trained):
    _, path = trained
    with pytest.raises(CheckpointError, match="parameters"):
        pdekit.solve(
            "porous_medium/heat", solver="pinn", steps=40, resume=path, k=1.0, verbose=False
        )


def test_header_holds_the_digest_of_the_rest(trained):
    from pdekit.checkpoints.hdf5 import HEADER_MAGIC, HEADER_SIZE

    _, path = trained
    data = path.read_bytes()
    assert data.startswith(HEADER_MAGIC)
    stored = data[len(HEADER_MAGIC) : len(HEADER_MAGIC) + 64].decode()
    assert stored == hashlib.sha256(data[HEADER_SIZE:]).hexdigest()
    with h5py.File(path, "r") as f:  # an HDF5 reader skips the header (the user block)
        assert f.userblock_size == HEADER_SIZE and f.attrs["format"] == "pdekit-checkpoint"


def _damaged_copies(data: bytes, header_size: int):
    rng = np.random.default_rng(0)
    for offset in rng.integers(header_size, len(data), 20):
        buf = bytearray(data)
        buf[offset] ^= 1 << int(rng.integers(8))
        yield f"bit flip at {offset}", bytes(buf)
    yield "truncated", data[: len(data) - 100]
    yield "appended", data + b"\0"
    digest_at = len(b"pdekit-checkpoint sha256=")
    buf = bytearray(data)
    buf[digest_at] = ord("0") if buf[digest_at] != ord("0") else ord("1")
    yield "header digest edited", bytes(buf)


def test_damaged_bytes_are_refused_before_hdf5_parses_them(trained, tmp_path, monkeypatch):
    """libhdf5 can crash the process on damaged bytes (a segmentation fault was seen in the
    fuzz test), so the header's digest is checked first: h5py must never see these files."""
    from pdekit.checkpoints import hdf5
    from pdekit.checkpoints.hdf5 import HEADER_SIZE, load_checkpoint_bytes

    _, path = trained
    data = path.read_bytes()

    def no_parsing(*args, **kwargs):
        raise AssertionError("h5py.File was called on damaged bytes")

    monkeypatch.setattr(hdf5.h5py, "File", no_parsing)
    for what, bad in _damaged_copies(data, HEADER_SIZE):
        copy = tmp_path / "bad.h5"
        copy.write_bytes(bad)
        with pytest.raises(CheckpointError, match="checksum mismatch"):
            pdekit.load(copy)
        with pytest.raises(CheckpointError, match="checksum mismatch"):
            load_checkpoint_bytes(bad, what)


def test_a_file_without_the_header_is_refused_until_sealed(trained, tmp_path):
    """A header-less checkpoint (HDF5 signature at offset 0, as older versions wrote) is not
    parsed: nothing vouches for its bytes. Refused with the command that seals it; once sealed
    (the user vouches for it) it loads as before."""
    from pdekit.checkpoints.hdf5 import HEADER_SIZE
    from pdekit.checkpoints.sealed import seal_file

    sol, path = trained
    legacy = tmp_path / "legacy.h5"
    legacy.write_bytes(path.read_bytes()[HEADER_SIZE:])  # HDF5 addresses are base-relative
    with pytest.raises(CheckpointError, match=f"no pdekit header.*pdekit seal {legacy}"):
        pdekit.load(legacy)
    seal_file(legacy)
    again = pdekit.load(legacy)
    pts = sol.problem.evaluation_grid().points()
    assert np.array_equal(again(pts)["u"], sol(pts)["u"])
