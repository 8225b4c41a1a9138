DEFAULT_PROBLEM ?= porous_medium/heat
DEFAULT_SOLVER ?= pinn
# The two commands of the README: `make run` and `make test`. Everything installs into .venv.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
OUT ?= runs/default

.PHONY: install run test lint format bench docs clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/pdekit solve $(DEFAULT_PROBLEM) --solver $(DEFAULT_SOLVER) --out $(OUT) --overwrite

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# one worker per core (pytest-xdist), each test file on one worker (module fixtures run once),
# one thread each (torch, BLAS, numba): more threads than cores makes their pools spin-wait
TEST_THREADS := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMBA_NUM_THREADS=1
test: lint
	$(TEST_THREADS) $(PY) -m pytest -n auto --dist loadfile

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache docs/_build docs/_autosummary
