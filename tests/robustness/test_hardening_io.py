"""Hardening of pdekit's file I/O against hostile files and failing disks (issue 31).

- a header-less HDF5 file is never parsed (refused with the command that seals it);
- a full disk (a real 400 KiB tmpfs) during a checkpoint, fields or VTK write is one error
  naming ENOSPC, with no partial or empty file left and earlier checkpoints intact;
- a small file declaring a huge dataset is refused before any data is read;
- an optimiser state that does not fit the parameters is refused in one line;
- temporary files of killed writers are removed by the next write, never a live process's.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import pdekit
from pdekit.checkpoints import Checkpoint, hdf5, load_checkpoint, load_checkpoint_bytes
from pdekit.checkpoints import save_checkpoint as save
from pdekit.checkpoints.sealed import HEADER_SIZE, header, seal_file
from pdekit.checkpoints.tree import check_optimizer_state, write_tree
from pdekit.errors import CheckpointError, OutputError

torch.set_num_threads(1)

ENOSPC = r"no space left on device \(ENOSPC\)"


def _checkpoint(width: int = 8, step: int = 1) -> Checkpoint:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, width), torch.nn.Tanh(), torch.nn.Linear(width, 1))
    return Checkpoint("porous_medium/heat", {}, "pinn", {}, step, model=net.state_dict())


def _dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- defect 1: header-less files ------------------------------------------------------------------
def test_a_damaged_headerless_checkpoint_is_refused_unparsed(tmp_path, monkeypatch):
    path = save(tmp_path / "c.h5", _checkpoint())
    plain = bytearray(path.read_bytes()[HEADER_SIZE:])  # a header-less copy (older versions)
    plain[849] ^= 0xBE  # as in the issue: one byte changed (0x01 -> 0xbf there)
    bad = tmp_path / "bad.h5"
    bad.write_bytes(bytes(plain))

    def spy(*args, **kwargs):
        raise AssertionError("h5py.File was called on an unverified file")

    monkeypatch.setattr(hdf5.h5py, "File", spy)
    for load in (lambda: load_checkpoint(bad), lambda: load_checkpoint_bytes(bytes(plain), "b")):
        with pytest.raises(CheckpointError, match="no pdekit header.*pdekit seal") as info:
            load()
        assert "\n" not in str(info.value)


def test_seal_file_vouches_for_a_plain_file_without_parsing_it(tmp_path, monkeypatch):
    ckpt = _checkpoint()
    path = save(tmp_path / "c.h5", ckpt)
    plain = tmp_path / "plain.h5"
    plain.write_bytes(path.read_bytes()[HEADER_SIZE:])
    with monkeypatch.context() as m:
        m.setattr(h5py, "File", lambda *a, **k: pytest.fail("seal_file parsed the file"))
        seal_file(plain)
        seal_file(plain)  # already sealed: unchanged
    again = load_checkpoint(plain)
    for k, v in ckpt.model.items():
        assert torch.equal(again.model[k], v)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5" * 100)
    with pytest.raises(CheckpointError, match="only a plain HDF5 file can be sealed"):
        seal_file(junk)


# -- defect 2: a full disk -------------------------------------------------------------------------
@pytest.fixture
def disk(tmp_path):
    """A real 400 KiB tmpfs (root only; skipped where mounting is not permitted)."""
    where = tmp_path / "disk"
    where.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {res.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def _fill(where: Path, leave: int) -> Path:
    """Fill the disk at ``where`` up to ``leave`` free bytes with a file; returns it."""
    st = os.statvfs(where)
    filler = where / "filler"
    with open(filler, "wb") as fh:
        fh.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))
    return filler


def _leftovers(where: Path) -> list[str]:
    """Temporary or empty files under ``where``."""
    return [
        str(p)
        for p in where.rglob("*")
        if p.is_file() and (".tmp" in p.name or p.stat().st_size == 0)
    ]


def test_a_checkpoint_on_a_full_disk_is_one_error_naming_enospc(disk):
    good = save(disk / "checkpoint_00000010.h5", _checkpoint(step=10))
    filler = _fill(disk, leave=8192)
    with pytest.raises(CheckpointError, match=f"{ENOSPC}.*last good one is {good}") as info:
        save(disk / "checkpoint_00000020.h5", _checkpoint(width=2048, step=20))
    assert "\n" not in str(info.value)
    assert not (disk / "checkpoint_00000020.h5").exists()
    assert _leftovers(disk) == []
    assert load_checkpoint(good).step == 10  # intact
    filler.unlink()  # space again: writing works (no broken libhdf5 state, no "slist")
    assert load_checkpoint(save(disk / "checkpoint_00000030.h5", _checkpoint(step=30))).step == 30


@pytest.fixture(scope="module")
def solution():
    cfg = {"network": {"width": 8, "depth": 1}, "sampling": {"n_interior": 16}}
    return pdekit.solve("porous_medium/heat", steps=2, config=cfg, device="cpu", verbose=False)


def test_fields_on_a_full_disk_are_one_error_naming_enospc(disk, solution):
    _fill(disk, leave=8192)
    with pytest.raises(OutputError, match=f"fields file {disk / 'fields.h5'}: {ENOSPC}"):
        solution.to_hdf5(disk / "fields.h5")
    assert not (disk / "fields.h5").exists()
    assert _leftovers(disk) == []


def test_vtk_export_on_a_full_disk_is_one_error_and_leaves_no_empty_file(disk, solution, capfd):
    _fill(disk, leave=32768)
    with pytest.raises(OutputError, match=ENOSPC):
        solution.to_vtk(disk / "solution.pvd")
    assert not (disk / "solution.pvd").exists()
    assert _leftovers(disk) == []
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # frames written were removed
    out, err = capfd.readouterr()
    assert "ERROR" not in out + err  # VTK's error lines are not printed


# -- defect 4: declared sizes beyond the file ---------------------------------------------------
def test_a_small_file_declaring_a_huge_dataset_is_refused_before_reading(tmp_path):
    buf = io.BytesIO()
    with h5py.File(buf, "w", userblock_size=HEADER_SIZE) as f:
        for key, value in {
            "format": hdf5.FORMAT,
            "format_version": hdf5.FORMAT_VERSION,
            "pdekit_version": pdekit.__version__,
            "problem": "porous_medium/heat",
            "problem_params": "{}",
            "solver": "pinn",
            "solver_config": "{}",
            "step": 1,
            "sha256": "0" * 64,
        }.items():
            f.attrs[key] = value
        write_tree(f, "model", {})
        huge = f.create_dataset("model/0", shape=(2**28,), dtype="f8")  # no data: fill value
        huge.attrs["kind"] = "tensor"
        huge.attrs["dtype"] = "float64"
    body = buf.getvalue()[HEADER_SIZE:]
    path = tmp_path / "huge.h5"
    path.write_bytes(header(hdf5.HEADER_MAGIC, hashlib.sha256(body).hexdigest()) + body)
    assert path.stat().st_size < 20_000  # a few KiB declaring 2 GiB
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(CheckpointError, match=r"declares shape \(268435456,\) float64"):
            load_checkpoint(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, f"peak {peak} bytes"  # no 2 GiB allocation
    assert time.perf_counter() - t0 < 5.0


# -- defect 5: optimiser state that does not fit -------------------------------------------------
def test_an_optimiser_state_of_the_wrong_shape_is_refused_naming_the_parameter():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.randn(3, 2)).sum().backward()
    opt.step()
    state = opt.state_dict()
    check_optimizer_state(opt, state, net)  # its own state fits
    state["state"][0]["exp_avg"] = torch.zeros(2)
    fresh = torch.optim.Adam(net.parameters(), lr=1e-3)
    with pytest.raises(CheckpointError, match=r"exp_avg.*'0.weight'.*\(2,\).*\(4, 2\)") as info:
        check_optimizer_state(fresh, state, net, source="c.h5")
    assert "\n" not in str(info.value) and "c.h5" in str(info.value)
    # why the check is needed: torch accepts it and fails only at the first step
    fresh.load_state_dict(state)
    net(torch.randn(3, 2)).sum().backward()
    with pytest.raises(RuntimeError, match="match"):
        fresh.step()


# -- defect 8: temporary files of killed writers -------------------------------------------------
def test_stale_temporaries_of_dead_writers_are_removed_live_ones_kept(tmp_path, solution):
    dead, live = _dead_pid(), os.getppid()
    for name in ("checkpoint.h5", "fields.h5"):
        (tmp_path / f".{name}.tmp-{dead}").write_bytes(b"x")
        (tmp_path / f".{name}.tmp-{live}").write_bytes(b"x")
    save(tmp_path / "checkpoint.h5", _checkpoint())
    assert not (tmp_path / f".checkpoint.h5.tmp-{dead}").exists()
    assert not (tmp_path / f".fields.h5.tmp-{dead}").exists()
    assert (tmp_path / f".checkpoint.h5.tmp-{live}").exists()
    (tmp_path / f".fields.h5.tmp-{dead}").write_bytes(b"x")
    solution.to_hdf5(tmp_path / "fields.h5")
    assert not (tmp_path / f".fields.h5.tmp-{dead}").exists()
    assert (tmp_path / f".fields.h5.tmp-{live}").exists()


def test_stale_reference_cache_temporaries_are_removed(tmp_path, monkeypatch):
    from pdekit.problems.references import cache

    monkeypatch.setenv("PDEKIT_CACHE_DIR", str(tmp_path))
    entry = "heat-0123456789abcdef.h5"
    dead = tmp_path / f"{entry}.{_dead_pid()}-abc123.tmp"
    live = tmp_path / f"{entry}.{os.getpid()}-def456.tmp"
    old = tmp_path / f"{entry}.k2j4h5_x.tmp"  # an older version's name (no PID), 2 h old
    new = tmp_path / f"{entry}.q9w8e7r6.tmp"  # no PID, just written: maybe a live writer's
    for p in (dead, live, old, new):
        p.write_bytes(b"x")
    with contextlib.suppress(OSError):
        os.utime(old, (time.time() - 7200, time.time() - 7200))
    arrays = cache.load_or_compute("a/b", {"k": 1}, {"n": 1}, lambda: {"x": np.arange(3.0)})
    assert np.array_equal(arrays["x"], np.arange(3.0))
    assert not dead.exists() and not old.exists()
    assert live.exists() and new.exists()


def test_a_resume_with_an_optimiser_state_of_the_wrong_shape_is_refused(tmp_path):
    """Wired into the trainer: a checkpoint whose Adam moments do not fit the network is refused
    when the run resumes, one line naming the moment and the shapes (before: accepted, then
    'internal error (RuntimeError): The size of tensor a ... must match' at the first step)."""
    import pdekit
    from pdekit.checkpoints import load_checkpoint, save_checkpoint
    from pdekit.errors import PdekitError

    cfg = {"network": {"width": 8, "depth": 2}, "sampling": {"n_interior": 64}}
    pdekit.solve("porous_medium/heat", solver="pinn", steps=4, config=cfg, verbose=False).save(
        tmp_path / "c.h5"
    )
    ckpt = load_checkpoint(tmp_path / "c.h5")
    moments = ckpt.trainer["optimizer"]["state"]
    first = sorted(moments)[0]
    moments[first]["exp_avg"] = torch.zeros(3, dtype=moments[first]["exp_avg"].dtype)
    save_checkpoint(tmp_path / "bad.h5", ckpt)
    with pytest.raises(PdekitError, match=r"exp_avg.*\(3,\)") as info:
        pdekit.solve(
            "porous_medium/heat",
            solver="pinn",
            steps=8,
            config=cfg,
            resume=tmp_path / "bad.h5",
            verbose=False,
        )
    assert "\n" not in str(info.value)


# -- a damaged checkpoint too large for memory ----------------------------------------------------
def test_resume_passes_over_a_damaged_checkpoint_too_large_to_read(tmp_path, monkeypatch):
    """A newest checkpoint that is a large sparse file under a checkpoint header (a disk fault;
    an 8 GiB one raised MemoryError on resume) is rejected by streaming its digest, never read
    into memory, and the resume falls back to the older good checkpoint."""
    from pdekit.checkpoints import rundir

    good = tmp_path / rundir.checkpoint_name(10)
    save(good, _checkpoint(step=10))
    big = tmp_path / rundir.checkpoint_name(20)
    with open(big, "wb") as fh:
        fh.write(header(hdf5.HEADER_MAGIC, "0" * 64))
        fh.truncate(256 * 2**20)  # sparse: 256 MiB of zeros after the header
    limit = 64 * 2**20

    def no_large_reads(self, *args, **kwargs):
        if self.stat().st_size > limit:  # a machine without the memory for it
            raise MemoryError
        return real_read_bytes(self, *args, **kwargs)

    real_read_bytes = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", no_large_reads)
    warnings: list[str] = []
    tracemalloc.start()
    try:
        path, _, ckpt = rundir.find_resumable(tmp_path, warnings.append)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert path == good and ckpt.step == 10
    assert peak < limit, f"peak {peak} bytes"
    assert any("checksum mismatch" in w and big.name in w for w in warnings), warnings
