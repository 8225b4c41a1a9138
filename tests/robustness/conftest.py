"""Fixtures of the robustness tests; the shared helpers live in robustness_support.py."""

import pytest
from robustness_support import TINY


@pytest.fixture
def tiny_args():
    return list(TINY)
