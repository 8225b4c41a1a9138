"""A tiny family registered for one test module (shared by the operator tests)."""

from __future__ import annotations

import pytest
import torch


def registered_tiny_family(tmp_path_factory, family):
    """Register ``family`` with its own empty cache and one torch thread for a test module
    (a generator for a module-scoped fixture: ``yield from registered_tiny_family(...)``)."""
    from pdekit.problems.family import families

    mp = pytest.MonkeyPatch()
    mp.setenv("PDEKIT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    families.register(family)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
    families.unregister(family.name)
    mp.undo()
