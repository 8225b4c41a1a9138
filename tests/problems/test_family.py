"""Families: disjoint reproducible splits, member parameters, the registry and bad input."""

import json

import numpy as np
import pytest

from pdekit.checkpoints.hdf5 import open_checkpoint_file
from pdekit.errors import ParameterError, UnknownNameError
from pdekit.problems import Family, Uniform, families
from pdekit.problems.family import SPLITS
from pdekit.solvers.probconserv.solver import PRETRAINED_DIR

EXPECTED = {
    "kolmogorov_nu1e-3",
    "kolmogorov_nu1e-4",
    "kolmogorov_nu1e-5",
    "diffusion_sorption",
    "probconserv_heat",
    "probconserv_pme",
    "probconserv_stefan",
}


def test_registry_names_and_unknown_name():
    assert EXPECTED <= set(families.names())
    with pytest.raises(UnknownNameError, match="unknown family 'nope'; valid: .*kolmogorov_nu1e-3"):
        families.get("nope")


@pytest.mark.parametrize("name", families.names())
def test_splits_disjoint_reproducible_prefix_stable(name):
    fam = families.get(name)
    seeds = {s: fam.split_seeds(s) for s in SPLITS}
    for s in SPLITS:
        assert len(seeds[s]) == fam.size(s) and len(set(seeds[s].tolist())) == fam.size(s)
        assert np.all((seeds[s] >= 0) & (seeds[s] < fam.seed_space))
    assert not set(seeds["train"].tolist()) & set(seeds["valid"].tolist())
    assert not set(seeds["train"].tolist()) & set(seeds["test"].tolist())
    assert not set(seeds["valid"].tolist()) & set(seeds["test"].tolist())
    # reproducible: an equal definition gives the same members; a smaller split is a prefix
    twin = Family(**{f: getattr(fam, f) for f in fam.__dataclass_fields__})
    assert twin.members("test", 3) == fam.members("test", 3)
    assert np.array_equal(fam.split_seeds("train", 5), seeds["train"][:5])
    # the seeds depend on the family name
    renamed = Family(**{**{f: getattr(fam, f) for f in fam.__dataclass_fields__}, "name": "x"})
    assert not np.array_equal(renamed.split_seeds("train", 5), seeds["train"][:5])


@pytest.mark.parametrize("space", [30, 31, 10_000])
def test_splits_partition_the_seed_space(space):
    """Disjoint by construction: the three splits at capacity are exactly [0, seed_space)."""
    fam = Family(
        name="tiny",
        problem="porous_medium/diffusion_sorption",
        seed_param="seed",
        sizes={"train": 1, "valid": 1, "test": 1},
        seed_space=space,
        times=(0.0, 1.0),
    )
    all_seeds = np.concatenate([fam.split_seeds(s, fam.capacity(s)) for s in SPLITS])
    assert sorted(all_seeds.tolist()) == list(range(space))
    with pytest.raises(ParameterError, match=f"holds at most {fam.capacity('train')} members"):
        fam.split_seeds("train", fam.capacity("train") + 1)


def test_kolmogorov_members_are_seeded_problems():
    fam = families.get("kolmogorov_nu1e-4")
    (m,) = fam.members("valid", 1)
    assert m.params == {"nu": 1e-4, "seed": m.seed, "t_end": 30.0}
    p = m.problem()
    assert p.name == "navier_stokes/kolmogorov" and p.seed == m.seed and p.nu == 1e-4
    assert fam.times == tuple(np.arange(31.0))  # one snapshot per time unit to the FNO's T = 30
    assert fam.make_grid().n == (64, 64) and fam.solver_factor(fam.make_grid()) == 2


def test_diffusion_sorption_members_are_pdebench_samples():
    """Seeds are PDEBench sample indices; u0 is PDEBench's draw (np.random.seed(i), U(0, 0.2))."""
    fam = families.get("diffusion_sorption")
    members = fam.members("train", 20)
    assert all(0 <= m.seed < 10_000 for m in members)
    for m in members:
        want = np.random.RandomState(m.seed).uniform(0.0, 0.2)
        assert m.problem().u0 == want and 0.0 <= want < 0.2


@pytest.mark.parametrize("short", ["heat", "pme", "stefan"])
def test_probconserv_ranges_match_the_shipped_checkpoints(short):
    """The GPME families draw the parameter ProbConserv's pretrained models were trained on,
    from the same range (their stored FamilyConfig)."""
    fam = families.get(f"probconserv_{short}")
    with open_checkpoint_file(PRETRAINED_DIR / f"probconserv_{short}_anp.h5") as f:
        stored = json.loads(f.attrs["solver_config"])["family"]
    assert fam.vary == {stored["param"]: Uniform(stored["low"], stored["high"])}
    values = [m.params[stored["param"]] for m in fam.members("train", 200)]
    assert stored["low"] <= min(values) and max(values) <= stored["high"]
    assert max(values) - min(values) > 0.9 * (stored["high"] - stored["low"])  # spread out


def test_resolve_problem_name_and_overrides():
    assert families.resolve("navier_stokes/kolmogorov", {"nu": 1e-5}).name == "kolmogorov_nu1e-5"
    fam = families.resolve("navier_stokes/kolmogorov", {"nu": 1e-3, "t_end": 3.0})
    assert fam.name == "kolmogorov_nu1e-3[t_end=3]" and fam.fixed["t_end"] == 3.0
    assert fam.times == (0.0, 1.0, 2.0, 3.0)  # the family's time step, to the new end
    assert families.resolve("porous_medium/heat").name == "probconserv_heat"
    # an override equal to the fixed value changes nothing
    assert families.resolve("kolmogorov_nu1e-3", {"nu": 1e-3}) is families.get("kolmogorov_nu1e-3")


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("navier_stokes/kolmogorov", {}, "has several families: name one"),
        ("navier_stokes/kolmogorov", {"nu": 1e-2}, "no family of navier_stokes/kolmogorov has nu"),
        ("kolmogorov_nu1e-3", {"nu": 1e-4}, "is named by nu=0.001"),
        ("kolmogorov_nu1e-3", {"seed": 3}, r"\['seed'\] vary across family"),
        ("probconserv_heat", {"k": 2.0}, r"\['k'\] vary across family"),
        ("probconserv_heat", {"kk": 2.0}, "unknown parameter of porous_medium/heat 'kk'"),
        ("kolmogorov_nu1e-3", {"t_end": 99.0}, "must be in"),
        ("convection_diffusion/convection", {}, "unknown family or problem with families"),
    ],
)
def test_resolve_errors_name_what_is_allowed(name, params, message):
    with pytest.raises((ParameterError, UnknownNameError), match=message):
        families.resolve(name, params)


def test_explicit_seeds_checked_for_repeats_and_overlap():
    fam = families.get("probconserv_heat")
    ok = fam.with_seeds("test", [11, 12, 13])
    assert [m.seed for m in ok.members("test")] == [11, 12, 13] and ok.size("test") == 3
    assert np.array_equal(ok.split_seeds("train", 4), fam.split_seeds("train", 4))
    taken = int(fam.split_seeds("train")[7])
    with pytest.raises(ParameterError, match="splits 'train' and 'test' .* overlap in seeds"):
        fam.with_seeds("test", [1, taken])
    with pytest.raises(ParameterError, match="repeat: \\[5\\]"):
        fam.with_seeds("valid", [5, 6, 5])
    with pytest.raises(ParameterError, match="are empty"):
        fam.with_seeds("valid", [])
    with pytest.raises(ParameterError, match="must lie in \\[0, 4294967296\\)"):
        fam.with_seeds("valid", [-1])
    with pytest.raises(ParameterError, match="at most 3 members"):
        ok.members("test", 4)
    # two explicit splits are checked against each other
    with pytest.raises(ParameterError, match="splits 'valid' and 'test' .* overlap in seeds"):
        ok.with_seeds("valid", [13, 14])


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"sizes": {"train": 0, "valid": 1, "test": 1}}, ParameterError, "empty split"),
        ({"sizes": {"train": 1, "valid": 1}}, ParameterError, "needs a size for each split"),
        ({"vary": {"k": Uniform(0.5, 20.0)}}, ParameterError, "must be in"),
        ({"vary": {}}, ParameterError, "varies nothing"),
        ({"fixed": {"k": 2.0}}, ParameterError, "both fixed and varied"),
        ({"fixed": {"q": 2.0}}, UnknownNameError, "unknown parameter of porous_medium/heat"),
        ({"problem": "porous_medium/hot"}, UnknownNameError, "unknown problem"),
        ({"times": (0.0, 2.0)}, ParameterError, "to at most t_end = 1"),
        ({"times": (0.5, 1.0)}, ParameterError, "from t0 = 0"),
        ({"name": "a b"}, ParameterError, "family names use"),
    ],
)
def test_bad_family_definitions(kwargs, error, message):
    base = {
        "name": "heat_test",
        "problem": "porous_medium/heat",
        "vary": {"k": Uniform(1.0, 5.0)},
        "sizes": {"train": 2, "valid": 1, "test": 1},
        "times": (0.0, 0.5, 1.0),
    }
    with pytest.raises(error, match=message):
        Family(**{**base, **kwargs})


def test_bad_split_names_and_sizes():
    fam = families.get("probconserv_stefan")
    with pytest.raises(UnknownNameError, match="unknown split 'tst'; valid: test, train, valid"):
        fam.members("tst")
    for size in (0, -2, 1.5, True):
        with pytest.raises(ParameterError, match="needs a size >= 1"):
            fam.members("train", size)


def test_output_times():
    fam = families.get("kolmogorov_nu1e-3")
    assert np.array_equal(fam.output_times(), np.arange(51.0))
    assert np.array_equal(fam.output_times(t_end=10.0), np.arange(11.0))
    assert np.allclose(fam.output_times(t_end=10.0, steps=20), np.arange(21.0) / 2)
    assert np.array_equal(fam.output_times(times=[0.0, 2.5]), [0.0, 2.5])
    for kwargs, message in [
        ({"t_end": 60.0}, "to at most t_end = 50"),
        ({"times": [1.0, 2.0]}, "from t0 = 0"),
        ({"times": [0.0, 2.0, 1.0]}, "increasing"),
        ({"t_end": 1.0, "times": [0.0, 1.0]}, "not both"),
        ({"steps": 0}, "integer >= 1"),
        ({"t_end": 0.0}, "must exceed"),
    ]:
        with pytest.raises(ParameterError, match=message):
            fam.output_times(**kwargs)
