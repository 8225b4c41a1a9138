"""The model store: sealed files only, user cache before shipped, damaged files refused in one
line, the shipped index derived from the files, and ProbConserv's moved checkpoints unchanged."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import h5py
import pytest
import torch

import pdekit
import pdekit.checkpoints
from pdekit import store
from pdekit.checkpoints import Checkpoint, load_checkpoint, save_checkpoint
from pdekit.checkpoints.hdf5 import HEADER_MAGIC
from pdekit.checkpoints.sealed import HEADER_SIZE
from pdekit.errors import CheckpointError
from pdekit.solvers.probconserv import solver as pc_solver

#: the ``sha256`` attribute (pdekit.checkpoints.tree.digest: every name, attribute and array)
#: of each ProbConserv checkpoint as it was shipped in pdekit/checkpoints/ before the move
PROBCONSERV_TREE_DIGESTS = {
    "probconserv_heat_anp.h5": "a32d936c91ae2aaf3abcec56c8dbc45efb180f91e7c5f39c92aadeb9b446cc10",
    "probconserv_heat_softc.h5": "00e0f190062bf0c71cc178a4cf2b7ebb3a018d9d4a27f6d9157112f1df42373b",
    "probconserv_pme_anp.h5": "1d6dd8e1543a1b4df56b72a6cc948b0e5a860b46b4eb434eeec07d5421858461",
    "probconserv_pme_softc.h5": "87f325c43fbcbecd8006fba49df1cda93a5d606736a784fcb24ea14ab2b959ec",
    "probconserv_stefan_anp.h5": "5e005ad8c8a28535f78b08f5a841ff163b2ac5a334d3eee29a2a22c6ee9351fe",
    "probconserv_stefan_softc.h5": (
        "29c95a4c4465a6a131027430eff5218bb27251e3498bb1916b8e7ad2755bd879"
    ),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def places(tmp_path, monkeypatch):
    """An empty user cache and an empty shipped folder."""
    monkeypatch.setenv("PDEKIT_CACHE_DIR", str(tmp_path / "cache"))
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    monkeypatch.setattr(store, "SHIPPED_DIR", shipped)
    return store.user_dir(), shipped


def _ckpt(family: str, grid: int = 16, weight: float = 1.0) -> Checkpoint:
    return Checkpoint(
        problem="navier_stokes/kolmogorov",
        problem_params={"nu": 1e-3, "seed": 0, "t_end": 1.0},
        solver="fno",
        solver_config={"dataset": {"family": family, "grid": grid, "in_steps": 2, "start": 0}},
        step=3,
        model={"w": torch.full((4,), weight)},
        extras={"training_command": f"pdekit train {family} --solver fno"},
    )


def test_find_prefers_the_user_cache_and_says_where(places):
    user, shipped = places
    save_checkpoint(shipped / "fno_a.h5", _ckpt("fam_a", weight=1.0))
    save_checkpoint(shipped / "fno_b.h5", _ckpt("fam_b"))
    found = store.find("fno", "fam_a")
    assert found.place == "shipped" and found.path == shipped / "fno_a.h5"
    entry = store.save(_ckpt("fam_a", weight=2.0))
    assert entry.place == "user" and entry.path.parent == user
    assert entry.path.name == "fno_fam_a_16.h5"
    found = store.find("fno", "fam_a", grid=16)
    assert found.place == "user" and found.path == entry.path
    assert torch.equal(store.load(found).model["w"], torch.full((4,), 2.0))
    # what the entry lists is what the file holds, digest and size included
    body = entry.path.read_bytes()
    assert entry.sha256 == hashlib.sha256(body[HEADER_SIZE:]).hexdigest()
    assert entry.size == len(body)
    assert (entry.solver, entry.family, entry.grid) == ("fno", "fam_a", (16,))
    assert entry.command == "pdekit train fam_a --solver fno"
    assert [m.place for m in store.list("fno", "fam_a")] == ["user", "shipped"]
    # another family, grid or solver is not compatible
    assert store.find("fno", "fam_c") is None
    assert store.find("fno", "fam_a", grid=32) is None
    assert store.find("probconserv", "fam_a") is None
    assert store.find("fno", "fam_b", grid=[16, 16]).place == "shipped"


def test_save_records_the_command_and_replaces_atomically(places):
    first = store.save(_ckpt("fam_a"), "mine", command="pdekit train fam_a --config x=1")
    again = store.save(_ckpt("fam_a", weight=3.0), "mine")
    assert first.path == again.path
    assert again.command == "pdekit train fam_a --solver fno"  # the checkpoint's own
    assert [p.name for p in again.path.parent.iterdir()] == ["mine.h5"]  # no temporaries
    with pytest.raises(pdekit.errors.ParameterError, match="plain file stem"):
        store.save(_ckpt("fam_a"), "../evil")


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b[:2000] + bytes([b[2000] ^ 0xFF]) + b[2001:], id="flipped-byte"),
        pytest.param(lambda b: b"\0" * 8 + b[8:], id="header-gone"),
        pytest.param(lambda b: b[HEADER_SIZE:], id="unsealed"),
    ],
)
def test_damaged_or_unsealed_files_are_refused_in_one_line(places, damage):
    _, shipped = places
    good = save_checkpoint(shipped / "good.h5", _ckpt("fam_a"))
    bad = shipped / "bad.h5"
    bad.write_bytes(damage(good.read_bytes()))
    with pytest.raises(CheckpointError) as err:
        store.describe(bad)
    message = str(err.value)
    assert "\n" not in message and str(bad) in message
    assert any(w in message for w in ("corrupt", "not sealed", "not a readable")), message
    with pytest.raises(CheckpointError):
        store.load(bad)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        listed = store.list()
    assert [m.path.name for m in listed] == ["good.h5"]
    assert len(caught) == 1 and issubclass(caught[0].category, store.StoreWarning)
    assert str(bad) in str(caught[0].message)


def test_index_is_derived_and_checked(places):
    _, shipped = places
    save_checkpoint(shipped / "fno_a.h5", _ckpt("fam_a"))
    store.write_index(shipped)
    store.check_index(shipped)
    index = json.loads((shipped / store.INDEX_NAME).read_text())
    assert [m["file"] for m in index["models"]] == ["fno_a.h5"]
    save_checkpoint(shipped / "fno_a.h5", _ckpt("fam_a", weight=5.0))  # new bytes, new digest
    with pytest.raises(CheckpointError, match="fno_a.h5 differs in .*sha256"):
        store.check_index(shipped)
    save_checkpoint(shipped / "fno_b.h5", _ckpt("fam_b"))
    with pytest.raises(CheckpointError, match="fno_a.h5 differs"):
        store.check_index(shipped)
    store.write_index(shipped)
    (shipped / "fno_b.h5").unlink()
    with pytest.raises(CheckpointError, match="fno_b.h5 not in the folder"):
        store.check_index(shipped)


# -- the shipped models ---------------------------------------------------------------------
SHIPPED = sorted(store.SHIPPED_DIR.glob("*.h5"))


def test_shipped_index_matches_the_files_and_each_is_small():
    store.check_index()  # every listed field re-derived from the files; sizes <= 20 MB
    assert {p.name for p in SHIPPED} >= set(PROBCONSERV_TREE_DIGESTS)
    assert all(p.stat().st_size <= store.MAX_SHIPPED_BYTES for p in SHIPPED)


@pytest.mark.parametrize("name", sorted(PROBCONSERV_TREE_DIGESTS))
def test_probconserv_checkpoints_moved_sealed_with_contents_unchanged(name):
    path = store.SHIPPED_DIR / name
    raw = path.read_bytes()
    # sealed: the header holds the SHA-256 of the bytes after it (checked independently here)
    assert raw.startswith(HEADER_MAGIC)
    assert (
        raw[len(HEADER_MAGIC) : len(HEADER_MAGIC) + 64].decode()
        == hashlib.sha256(raw[HEADER_SIZE:]).hexdigest()
    )
    ckpt = load_checkpoint(path)  # recomputes the tree digest over every array and attribute
    with h5py.File(path, "r") as f:
        tree = f.attrs["sha256"]
    # the recomputed digest equals the stored one, which equals the one shipped before the move:
    # every name, attribute and array is bit-identical to the old file's
    assert tree == PROBCONSERV_TREE_DIGESTS[name]
    assert ckpt.solver == "probconserv"
    entry = store.describe(path, "shipped")
    assert entry.problem == ckpt.problem and entry.command.startswith("python benchmarks/")


def test_probconserv_finds_its_checkpoints_through_the_store():
    assert pc_solver.PRETRAINED_DIR == store.SHIPPED_DIR
    assert not sorted(Path(pdekit.checkpoints.__file__).parent.glob("*.h5"))  # moved
    heat = pdekit.problems.get("porous_medium/heat")
    found = pc_solver.find_checkpoint(heat, "anp")
    assert found == store.SHIPPED_DIR / "probconserv_heat_anp.h5"
    listed = store.list("probconserv", problem="porous_medium/heat")
    assert {m.path.name for m in listed} == {"probconserv_heat_anp.h5", "probconserv_heat_softc.h5"}
