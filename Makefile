# Two entry points (see README): `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export OMP_NUM_THREADS ?= 1
export HF_HUB_OFFLINE ?= 1

.PHONY: setup demo test bench clean

setup: $(VENV)/.installed

# torch is installed as its own step and pinned: 2.13.0 is a local CPU build on these
# machines; an unpinned torch would download a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[finetune,data,test]'
	touch $@

demo: setup
	$(VENV)/bin/lensllm demo

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/bench_fit_speed.py

clean:
	rm -rf $(VENV) reports build *.egg-info
