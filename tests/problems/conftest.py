"""Shared fixtures of the problem tests."""

import pytest


@pytest.fixture(scope="session", autouse=True)
def reference_cache(tmp_path_factory):
    """A fresh reference cache per test session: references are computed here, never trusted
    from a user's cache, and each is computed once per session."""
    path = tmp_path_factory.mktemp("pdekit-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PDEKIT_CACHE_DIR", str(path))
        yield path


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The reference solvers are FFT-bound on small grids; on a shared 2-core machine two
    intra-op threads made each FFT 40-100x slower (measured: 0.15 ms -> 6-16 ms at 128^2),
    so problem tests run with one thread (restored after each module)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
