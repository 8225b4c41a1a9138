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
