"""Issue 31, defects 3, 6 and 7: one run per directory, gmsh node tags, CLI inputs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import pdekit
from pdekit import cli
from pdekit.checkpoints import rundir
from pdekit.cli import main
from pdekit.errors import MeshError, OutputError
from pdekit.geometries.mesh import MeshGeometry

torch.set_num_threads(1)

#: a tiny run: a few steps on few points, checkpoints every 2 steps
TINY = ["--steps", "4", "--quiet", "--no-export", "--config", "sampling.n_interior=64"]
EVERY_2 = ["--config", "train.checkpoint_every=2"]


def _solve(*args: str) -> int:
    return main(["solve", *args])


# -- defect 3: one run per directory ---------------------------------------------------------------
def test_second_run_into_used_out_is_refused_and_first_checkpoint_intact(tmp_path, capsys):
    out = str(tmp_path / "o2")
    assert _solve("porous_medium/heat", *TINY, *EVERY_2, "--out", out) == 0
    kept = sorted(p.name for p in (tmp_path / "o2" / "checkpoints").iterdir())
    final = (tmp_path / "o2" / "checkpoint.h5").read_bytes()
    capsys.readouterr()
    assert _solve("convection_diffusion/convection", *TINY, "--out", out) == 2
    err = capsys.readouterr().err
    assert "holds the results of another run (porous_medium/heat, pinn)" in err
    assert "--overwrite" in err
    assert sorted(p.name for p in (tmp_path / "o2" / "checkpoints").iterdir()) == kept
    assert (tmp_path / "o2" / "checkpoint.h5").read_bytes() == final


def test_overwrite_replaces_the_previous_run(tmp_path):
    out = str(tmp_path / "o")
    assert _solve("porous_medium/heat", *TINY, *EVERY_2, "--out", out) == 0
    args = ("convection_diffusion/convection", *TINY, "--out", out, "--overwrite")
    assert _solve(*args) == 0
    left = [p.name for p in rundir.periodic_checkpoints(tmp_path / "o" / "checkpoints")]
    assert left == [rundir.checkpoint_name(4)]  # heat's step 2 is gone; step 4 is convection's
    assert "convection" in (tmp_path / "o" / rundir.RUN_NAME).read_text()


def test_default_out_moves_to_a_fresh_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _solve("porous_medium/heat", *TINY) == 0
    assert _solve("porous_medium/heat", *TINY) == 0
    assert "runs/out holds another run; this run writes to runs/out-2" in capsys.readouterr().err
    assert (tmp_path / "runs/out/checkpoint.h5").is_file()
    assert (tmp_path / "runs/out-2/checkpoint.h5").is_file()


def test_a_run_refused_before_training_leaves_no_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _solve("porous_medium/heat", *TINY, "--solver", "nope") == 2
    assert capsys.readouterr().err.count("\n") == 1  # the error alone
    assert not (tmp_path / "runs").exists()


def test_locked_directory_is_refused_naming_the_holder(tmp_path):
    lock = rundir.claim_run_dir(tmp_path / "run", label="a", warn=print)
    try:
        with pytest.raises(OutputError, match=f"in use by another pdekit run \\(PID {os.getpid()}"):
            fd = os.open(tmp_path / "run" / rundir.LOCK_NAME, os.O_RDWR)
            try:  # another open file description: flock conflicts as with another process
                rundir.lock_run_dir(tmp_path / "run", warn=print)
            finally:
                os.close(fd)
    finally:
        lock.release()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    (tmp_path / rundir.LOCK_NAME).write_text(dead.stdout)
    said = []
    with rundir.claim_run_dir(tmp_path, label="a", warn=said.append):
        pass
    assert any(f"PID {dead.stdout.strip()}" in m and "stale" in m for m in said)


def test_rotate_never_deletes_another_runs_checkpoints(tmp_path):
    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    for step in (10, 20, 30):  # another run's, in this directory
        rundir.rotate(ckpts, 5, step, run_id="other")
        (ckpts / rundir.checkpoint_name(step)).write_bytes(b"x")
    for step in (2, 4, 6):
        (ckpts / rundir.checkpoint_name(step)).write_bytes(b"y")
        rundir.rotate(ckpts, 2, step, run_id="mine")
    names = sorted(p.name for p in rundir.periodic_checkpoints(ckpts))
    others = [rundir.checkpoint_name(s) for s in (10, 20, 30)]
    assert names == sorted([rundir.checkpoint_name(4), rundir.checkpoint_name(6), *others])


# -- defect 6: gmsh node tags --------------------------------------------------------------------
GMSH22 = """$MeshFormat
2.2 0 8
$EndMeshFormat
$Nodes
3
1 0 0 0
2 1 0 0
3 0 1 0
$EndNodes
$Elements
1
7 2 2 1 1 {nodes}
$EndElements
"""
GMSH41 = """$MeshFormat
4.1 0 8
$EndMeshFormat
$Nodes
1 3 1 3
2 1 0 3
1
2
3
0 0 0
1 0 0
0 1 0
$EndNodes
$Elements
1 1 1 1
2 1 2 1
7 {nodes}
$EndElements
"""


@pytest.mark.parametrize("template", [GMSH22, GMSH41], ids=["gmsh2.2", "gmsh4.1"])
@pytest.mark.parametrize("nodes, tag", [("0 1 2", 0), ("1 2 -3", -3), ("1 2 4", 4)])
def test_gmsh_node_tag_not_a_node_is_refused(tmp_path, template, nodes, tag):
    path = tmp_path / "m.msh"
    path.write_text(template.format(nodes=nodes))
    with pytest.raises(MeshError, match=f"element 7 refers to node tag {tag} "):
        MeshGeometry.from_file(path)


@pytest.mark.parametrize("template", [GMSH22, GMSH41], ids=["gmsh2.2", "gmsh4.1"])
def test_gmsh_valid_tags_load(tmp_path, template):
    path = tmp_path / "m.msh"
    path.write_text(template.format(nodes="1 2 3"))
    assert MeshGeometry.from_file(path).dim == 2


# -- defect 7: CLI inputs ------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["train=5", "train=[1,2]"])
def test_config_section_given_a_value(tmp_path, capsys, value):
    assert _solve("porous_medium/heat", "--config", value, *TINY, "--out", str(tmp_path)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pdekit: error: --config train: train is a section")
    assert len(err.splitlines()) == 1


def test_empty_out_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _solve("porous_medium/heat", *TINY, "--out", "") == 2
    assert "--out must name a directory" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_fifo_checkpoint_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "c.h5"
    os.mkfifo(fifo)
    code = "import sys; from pdekit.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": str(Path(pdekit.__file__).parents[1])}  # this pdekit
    for args in (["export", str(fifo)], ["solve", "porous_medium/heat", "--resume", str(fifo)]):
        run = subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=60,  # a reader blocked on the FIFO never returns
            cwd=tmp_path,
            env=env,
        )
        assert run.returncode == 2
        assert "not a regular file" in run.stderr


def test_symlink_loop_is_named(tmp_path, capsys):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    assert main(["export", str(tmp_path / "a"), "--out", str(tmp_path / "e")]) == 2
    assert "symbolic link loop" in capsys.readouterr().err


def test_resume_if_present_starts_fresh_then_resumes(tmp_path, capsys):
    out = str(tmp_path / "r")
    args = ("porous_medium/heat", *TINY, *EVERY_2, "--out", out, "--resume-if-present")
    assert _solve(*args, "--resume", out) == 0
    assert "nothing to resume" in capsys.readouterr().err
    assert _solve(*args, "--resume", out, "--steps", "6") == 0
    assert "nothing to resume" not in capsys.readouterr().err
    assert (Path(out) / "checkpoints" / rundir.checkpoint_name(6)).is_file()


def test_a_dead_ddp_peer_is_reported_as_such(monkeypatch, capsys):
    def peer_died(args):
        raise RuntimeError("[gloo/transport/tcp/pair.cc:598] Connection reset by peer\nmore")

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setitem(cli.COMMANDS, "list", peer_died)
    assert main(["list"]) == 1
    err = capsys.readouterr().err
    assert "lost contact with another training process" in err
    assert "internal error" not in err and "report it" not in err


# -- defect 10: a saturated network stops instead of exiting 0 ------------------------------------
#: the default PINN, 120 steps; lr = 1 saturates its tanh network (after two explosion rollbacks
#: the loss plateaus at about its starting value: rel_l2 1.0) while lr = 1e-2 learns
SATURATE = (
    "--steps", "120", "--quiet", "--no-export",
    "--config", "train.stall_steps=100",
    "--config", "train.log_every=20",
)  # fmt: skip


def test_a_saturated_run_stops_with_a_clear_message(tmp_path, capsys):
    args = ("porous_medium/heat", *SATURATE, "--out", str(tmp_path / "s"))
    assert _solve(*args, "--config", "train.lr=1") == 3
    err = capsys.readouterr().err
    assert "training failed: after 100 steps the loss never fell below 0.5 x" in err
    assert "try a smaller train.lr" in err


def test_a_learning_run_is_not_stopped_by_the_stall_rule(tmp_path):
    args = ("porous_medium/heat", *SATURATE, "--out", str(tmp_path / "s"))
    assert _solve(*args, "--config", "train.lr=1e-2") == 0


def test_config_section_given_a_value_through_the_api():
    """The API's overrides meet the same rule as --config (before: TypeError from setdefault)."""
    from pdekit.errors import ParameterError

    with pytest.raises(ParameterError, match="train is a section"):
        pdekit.solve("porous_medium/heat", solver="pinn", steps=3, overrides={"train": 5})


def test_seal_command_vouches_for_a_plain_file(tmp_path, capsys):
    """`pdekit seal FILE` adds the digest header to a trusted header-less file, whose bytes
    follow unchanged; the sealed file then loads, the plain one is refused naming the command."""
    import h5py

    from pdekit.checkpoints import load_checkpoint
    from pdekit.errors import CheckpointError

    sol = pdekit.solve("porous_medium/heat", solver="pinn", steps=2, verbose=False)
    sol.save(tmp_path / "c.h5")
    sealed = (tmp_path / "c.h5").read_bytes()
    plain = tmp_path / "plain.h5"
    plain.write_bytes(sealed[512:])  # the HDF5 image without the user-block header
    with h5py.File(plain, "r") as f:  # a valid HDF5 file: only the header is missing
        assert "model" in f or len(f.keys())
    with pytest.raises(CheckpointError, match="pdekit seal"):
        load_checkpoint(plain)
    assert main(["seal", str(plain)]) == 0
    said = capsys.readouterr()
    assert "sealed" in said.err + said.out
    assert plain.read_bytes()[512:] == sealed[512:]  # the HDF5 bytes are untouched
    assert load_checkpoint(plain).step == load_checkpoint(tmp_path / "c.h5").step
