"""The HDF5 reference cache: round trip, keying, and recomputation of stale or corrupt entries."""

import hashlib
import os

import h5py
import numpy as np
import pytest

from pdekit.checkpoints import sealed
from pdekit.problems.references import cache


@pytest.fixture
def cdir(tmp_path, monkeypatch):
    monkeypatch.setenv("PDEKIT_CACHE_DIR", str(tmp_path / "c"))
    return tmp_path / "c"


class Counter:
    """A compute function that counts its calls and returns distinct arrays per call."""

    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return {"x": np.linspace(0, 1, 5), "u": np.arange(12.0).reshape(3, 4) + self.calls}


def test_cache_dir_env_override_and_default(monkeypatch, tmp_path):
    monkeypatch.setenv("PDEKIT_CACHE_DIR", str(tmp_path))
    assert cache.cache_dir() == tmp_path
    monkeypatch.delenv("PDEKIT_CACHE_DIR")
    assert cache.cache_dir() == cache.Path.home() / ".cache" / "pdekit"


def test_round_trip_computes_once(cdir):
    comp = Counter()
    a = cache.load_or_compute("fam/p", {"nu": 0.1}, {"n": 8}, comp)
    b = cache.load_or_compute("fam/p", {"nu": 0.1}, {"n": 8}, comp)
    assert comp.calls == 1
    assert set(b) == {"x", "u"}
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        assert a[k].dtype == b[k].dtype
    files = os.listdir(cdir)
    assert len(files) == 1 and files[0].startswith("fam__p-") and files[0].endswith(".h5")
    # an independent reader sees the documented layout: the header with the digest of the rest
    data = (cdir / files[0]).read_bytes()
    stored = data[len(cache.HEADER_MAGIC) : len(cache.HEADER_MAGIC) + 64].decode()
    assert data.startswith(cache.HEADER_MAGIC)
    assert stored == hashlib.sha256(data[sealed.HEADER_SIZE :]).hexdigest()
    with h5py.File(cdir / files[0], "r") as f:
        assert f.userblock_size == sealed.HEADER_SIZE
        assert f.attrs["format_version"] == cache.CACHE_FORMAT_VERSION
        assert "nu" in f.attrs["key"]
        np.testing.assert_array_equal(f["u"][()], a["u"])


@pytest.mark.parametrize(
    "params, settings",
    [({"nu": 0.2}, {"n": 8}), ({"nu": 0.1}, {"n": 16}), ({"nu": 0.1, "seed": 1}, {"n": 8})],
)
def test_key_depends_on_params_and_settings(cdir, params, settings):
    comp = Counter()
    cache.load_or_compute("fam/p", {"nu": 0.1}, {"n": 8}, comp)
    cache.load_or_compute("fam/p", params, settings, comp)
    assert comp.calls == 2


def test_key_is_order_independent():
    assert cache.canonical_key("a/b", {"x": 1, "y": 2}, {"n": 3}) == cache.canonical_key(
        "a/b", {"y": 2, "x": 1}, {"n": 3}
    )


def _entry(cdir):
    (name,) = os.listdir(cdir)
    return cdir / name


def _edit(path, edit):
    with h5py.File(path, "r+") as f:
        edit(f)


def _resealed_edit(path, edit):
    """Edit an entry with h5py and re-seal it, so the checks after parsing see the edit."""
    _edit(path, edit)
    sealed.seal(path, cache.HEADER_MAGIC)


def _set(name, value):
    def edit(f):
        f.attrs[name] = value

    return edit


def _flip_value(f):
    f["u"][0, 0] = -1.0


#: damage -> (how, what the warning says)
DAMAGES = {
    # caught after parsing (the header re-sealed over the edit)
    "flip_data": (lambda p: _resealed_edit(p, _flip_value), "fails its checksum"),
    "stale_key": (  # same file name, other key (e.g. hash-prefix collision or edited)
        lambda p: _resealed_edit(p, _set("key", cache.canonical_key("fam/p", {"nu": 0.3}, {}))),
        "is stale",
    ),
    "old_format": (
        lambda p: _resealed_edit(p, _set("format_version", cache.CACHE_FORMAT_VERSION - 1)),
        "is stale",
    ),
    # caught by the header, before parsing
    "edited": (lambda p: _edit(p, _flip_value), "does not match the digest"),
    "truncate": (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "digest"),
    "bit_flip": (
        lambda p: p.write_bytes(_flip_bit(p.read_bytes(), p.stat().st_size - 7)),
        "does not match the digest",
    ),
    "garbage": (lambda p: p.write_bytes(b"not hdf5" * 100), "does not start with a cache"),
    "no_header": (  # an entry as format 1 wrote it: the HDF5 file alone
        lambda p: p.write_bytes(p.read_bytes()[sealed.HEADER_SIZE :]),
        "has no header",
    ),
}


def _flip_bit(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1 :]


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_entry_is_recomputed(cdir, damage, monkeypatch):
    comp = Counter()
    cache.load_or_compute("fam/p", {"nu": 0.1}, {"n": 8}, comp)
    path = _entry(cdir)
    how, says = DAMAGES[damage]
    how(path)
    parsed = []
    if damage not in ("flip_data", "stale_key", "old_format"):
        # refused from the header alone: the HDF5 library never opens the damaged entry
        real = h5py.File

        def spy(name, mode="r", *args, **kwargs):
            opened = getattr(name, "name", name)  # a path or an open file
            if mode == "r" and os.fspath(opened) == os.fspath(path):
                parsed.append(name)
            return real(name, mode, *args, **kwargs)

        monkeypatch.setattr(cache.h5py, "File", spy)
    with pytest.warns(cache.CacheWarning, match=says):
        out = cache.load_or_compute("fam/p", {"nu": 0.1}, {"n": 8}, comp)
    assert comp.calls == 2 and parsed == []
    np.testing.assert_array_equal(out["u"], np.arange(12.0).reshape(3, 4) + 2)
    # the rewritten entry is trusted again
    again = cache.load_or_compute("fam/p", {"nu": 0.1}, {"n": 8}, comp)
    assert comp.calls == 2
    np.testing.assert_array_equal(again["u"], out["u"])
    assert [p for p in os.listdir(cdir) if p.endswith(".tmp")] == []


def test_unwritable_directory_still_returns_result(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    # the cache directory cannot be created below a regular file (even as root)
    monkeypatch.setenv("PDEKIT_CACHE_DIR", str(blocker / "cache"))
    with pytest.warns(cache.CacheWarning, match="could not write"):
        out = cache.load_or_compute("fam/p", {"nu": 0.1}, {}, Counter())
    assert out["u"].shape == (3, 4)


def test_bad_array_name_rejected(cdir):
    with pytest.raises(ValueError, match="without '/'"):
        cache.load_or_compute("fam/p", {}, {}, lambda: {"a/b": np.zeros(2)})
