"""Shared test settings: deterministic, small thread count, DeepXDE on PyTorch."""

import os

os.environ.setdefault("DDE_BACKEND", "pytorch")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

if "OMP_NUM_THREADS" not in os.environ:  # respect an explicit setting (shared machines)
    # under pytest-xdist (`make test` runs one worker per core) the workers share the cores
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // workers)))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test (timing-sensitive training on a shared machine), restored
    after it; a module opts in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# CI runs the same hypothesis examples every time (a failure there is reproducible); locally the
# examples vary, so repeated runs keep exploring (failures are kept in .hypothesis/).
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
