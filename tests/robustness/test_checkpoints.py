"""Crash safety of checkpoints: damaged files are rejected with their name and reason, resuming
falls back to the newest good checkpoint (said on stderr), and checkpoints of another problem,
solver, config, format version or process count are refused with the reason.

Oracle for the fallback: the resumed run ends bit-identical to the uninterrupted run (same
process, same thread count, CPU float32).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from robustness_support import assert_same_state

import pdekit
from pdekit.checkpoints import Checkpoint, load_checkpoint, save_checkpoint
from pdekit.checkpoints.hdf5 import seal
from pdekit.checkpoints.rundir import FINAL_NAME
from pdekit.checkpoints.tree import digest
from pdekit.errors import CheckpointError

PROBLEM = "porous_medium/heat"
STEPS = 40
CONFIG = {
    "network": {"width": 8, "depth": 2},
    "sampling": {"n_interior": 32, "n_boundary": 8, "n_initial": 8},
    "train": {"checkpoint_every": 10, "log_every": 10, "keep_checkpoints": 3},
}


def _solve(**kw):
    kw.setdefault("config", CONFIG)
    return pdekit.solve(PROBLEM, steps=kw.pop("steps", STEPS), device="cpu", verbose=False, **kw)


def _name(step: int) -> str:
    return f"checkpoint_{step:08d}.h5"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """An uninterrupted run writing checkpoints 10..40 (the last 3 kept)."""
    directory = tmp_path_factory.mktemp("run")
    return directory, _solve(checkpoint_dir=directory)


@pytest.fixture
def copy(run, tmp_path) -> Path:
    directory = tmp_path / "run"
    shutil.copytree(run[0], directory)
    return directory


# -- ways to damage a file: (function, what the message must say) -------------------------------
def _truncate(p: Path):
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _flip_data_byte(p: Path):
    with h5py.File(p, "r") as f:
        offset = f["model/0"].id.get_offset()  # the first weight tensor's bytes
    with open(p, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0x40]))


def _drop_checksum(p: Path):
    with h5py.File(p, "r+") as f:
        del f.attrs["sha256"]
    seal(p)  # a file whose header is right but which lacks the attribute


def _random_bytes(p: Path):
    p.write_bytes(np.random.default_rng(0).bytes(4096))


def _newer_version(p: Path):
    with h5py.File(p, "r+") as f:
        f.attrs["format_version"] = 99
        f.attrs["sha256"] = digest(f)
    seal(p)  # as a newer pdekit would write it


def _empty(p: Path):
    p.write_bytes(b"")


DAMAGE = {
    "truncated": (_truncate, "checksum mismatch"),
    "flipped data byte": (_flip_data_byte, "checksum mismatch"),
    "no checksum": (_drop_checksum, "has no checksum"),
    "random bytes": (_random_bytes, "not a readable HDF5"),
    "newer format version": (_newer_version, "format version 99"),
    "empty file": (_empty, "not a readable HDF5"),
}


def test_periodic_checkpoints_keep_the_last_k(run):
    directory, sol = run
    assert sorted(p.name for p in directory.iterdir()) == [_name(s) for s in (20, 30, 40)]
    final = load_checkpoint(directory / _name(40))
    assert_same_state(final.model, sol.model.state_dict())


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_newest_is_rejected_and_resume_falls_back(damage, run, copy, capsys):
    spoil, reason = DAMAGE[damage]
    bad = copy / _name(40)
    spoil(bad)
    with pytest.raises(CheckpointError, match=reason) as info:
        load_checkpoint(bad)
    assert str(bad) in str(info.value)
    sol = _solve(resume=copy, checkpoint_dir=copy)
    err = capsys.readouterr().err
    assert str(bad) in err and reason in err
    assert f"resuming from {copy / _name(30)} (step 30)" in err
    assert_same_state(sol.model.state_dict(), run[1].model.state_dict())
    assert load_checkpoint(bad).step == 40  # rewritten by the resumed run


def test_damaged_file_given_explicitly_falls_back_to_an_older_sibling(run, copy, capsys):
    _truncate(copy / _name(40))
    sol = _solve(resume=copy / _name(40))
    assert f"resuming from {copy / _name(30)}" in capsys.readouterr().err
    assert_same_state(sol.model.state_dict(), run[1].model.state_dict())


def test_fallback_takes_the_newest_of_a_run_folder_and_its_final_file(run, tmp_path, capsys):
    """The CLI's layout: periodic files in ``checkpoints/``, the final ``checkpoint.h5`` beside
    it. A damaged periodic file of step 40 falls back to the final file of step 40, not to the
    periodic step 30 listed first."""
    directory = tmp_path / "cli_run"
    shutil.copytree(run[0], directory / "checkpoints")
    shutil.copy(run[0] / _name(40), directory / FINAL_NAME)
    bad = directory / "checkpoints" / _name(40)
    _truncate(bad)
    sol = _solve(resume=bad)
    assert f"resuming from {directory / FINAL_NAME} (step 40)" in capsys.readouterr().err
    assert_same_state(sol.model.state_dict(), run[1].model.state_dict())


def test_nothing_usable_names_every_rejected_file(copy):
    for step, damage in zip((20, 30, 40), ("truncated", "no checksum", "random bytes")):
        DAMAGE[damage][0](copy / _name(step))
    with pytest.raises(CheckpointError, match="no usable checkpoint") as info:
        _solve(resume=copy)
    for step in (20, 30, 40):
        assert _name(step) in str(info.value)


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        ({"name": "convection_diffusion/convection"}, "checkpoint of problem 'porous_medium/heat'"),
        ({"solver": "deepxde"}, "checkpoint of solver 'pinn'"),
        ({"k": 0.5}, "written for parameters"),
        ({"overrides": {"network.width": 16}}, r"network\.width \(8 -> 16\)"),
        ({"config": {"train": {"lr": 0.1}}}, r"train\.lr"),
    ],
)
def test_incompatible_resume_is_refused_with_the_reason(run, kwargs, reason):
    directory = run[0]
    name = kwargs.pop("name", PROBLEM)
    solver = kwargs.pop("solver", "pinn")
    with pytest.raises(CheckpointError, match=reason):
        pdekit.solve(name, solver=solver, device="cpu", verbose=False, resume=directory, **kwargs)


def test_resume_may_extend_the_budget(run):
    sol = _solve(resume=run[0] / _name(40), steps=STEPS + 5)
    assert sol.step == STEPS + 5


def test_checkpoint_of_another_process_count_is_refused(run, tmp_path):
    ckpt = load_checkpoint(run[0] / _name(40))
    ckpt.trainer["world_size"] = 2
    ckpt.trainer["task_ranks"] = [ckpt.trainer["task"], ckpt.trainer["task"]]
    path = save_checkpoint(tmp_path / _name(40), ckpt)
    with pytest.raises(CheckpointError, match=r"2 process\(es\) and this run has 1"):
        _solve(resume=path)


def test_weights_that_do_not_fit_the_config_are_refused(run, tmp_path):
    ckpt = load_checkpoint(run[0] / _name(40))
    ckpt.model = {k: v[..., :1] for k, v in ckpt.model.items()}
    path = save_checkpoint(tmp_path / "bad.h5", ckpt)
    with pytest.raises(CheckpointError, match="do not fit the network"):
        pdekit.load(path)
    with pytest.raises(CheckpointError, match="do not fit the network"):
        _solve(resume=path)


def test_missing_and_empty_resume_paths(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        _solve(resume=tmp_path / "nope")
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        _solve(resume=tmp_path)


def test_stale_temporary_files_are_cleaned_and_never_chosen(run, copy):
    dead_pid = 2**22 + 1  # above Linux's largest pid: no such process
    stale = copy / f".{_name(50)}.tmp-{dead_pid}"
    stale.write_bytes(b"half a checkpoint")
    sol = _solve(resume=copy, checkpoint_dir=copy)
    assert sol.step == STEPS and not stale.exists()


def test_a_failed_write_leaves_no_file_behind(run, tmp_path):
    ckpt = load_checkpoint(run[0] / _name(40))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CheckpointError, match="cannot"):
        save_checkpoint(blocker / "sub" / "c.h5", ckpt)
    target = tmp_path / "dir.h5"
    target.mkdir()
    with pytest.raises(CheckpointError, match=str(target)):
        save_checkpoint(target, ckpt)
    assert sorted(os.listdir(tmp_path)) == ["dir.h5", "file"]
    assert os.listdir(target) == []


def test_checkpoint_round_trip_is_exact(run, tmp_path):
    """Independent reader: h5py sees the declared layout; our reader gives back the tensors."""
    ckpt = load_checkpoint(run[0] / _name(40))
    path = save_checkpoint(tmp_path / "again.h5", ckpt)
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "pdekit-checkpoint" and int(f.attrs["step"]) == 40
        assert f["trainer"].attrs["kind"] == "dict"
    again = load_checkpoint(path)
    assert_same_state(again.model, ckpt.model)
    assert_same_state(again.trainer, ckpt.trainer)
    assert isinstance(again, Checkpoint) and torch.is_tensor(again.trainer["torch_rng"])


def test_extending_a_run_keeps_its_engine(tmp_path, monkeypatch, capsys):
    """``engine="auto"`` compiles the Taylor engine for runs of COMPILE_MIN_STEPS steps or more
    (lowered here from 2000 to 45): a 40-step run extended to 50 keeps the uncompiled engine it
    started with, so it ends bit-identical to a 50-step run on that engine (before, it
    switched to the compiled one at the resume: 4e-7 apart at 2000 steps, measured)."""
    from pdekit.solvers import physics

    monkeypatch.setattr(physics, "COMPILE_MIN_STEPS", 45)
    _solve(checkpoint_dir=tmp_path / "short")
    extended = pdekit.solve(PROBLEM, steps=50, resume=tmp_path / "short", device="cpu")
    assert extended.config.engine == "taylor"
    assert "the engine the run started with (taylor)" in capsys.readouterr().err
    straight = _solve(steps=50, config={**CONFIG, "engine": "taylor"})
    assert_same_state(extended.model.state_dict(), straight.model.state_dict())
