# keras_ssl developer and user entry points. Everything runs inside $(VENV).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
WORKDIR ?= runs/demo
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow lint benchmark clean

$(STAMP): setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -qq --disable-pip-version-check -e ".[test]"
	touch $(STAMP)

## demo: pretrain SimCLR on Fashion-MNIST on CPU, evaluate against baselines, export the encoder
demo: $(STAMP)
	$(VENV)/bin/keras-ssl train --config configs/simclr_fashion_mnist.py --workdir $(WORKDIR)
	$(VENV)/bin/keras-ssl eval --workdir $(WORKDIR) --baselines

## test: lint and run the default test suite (slow tests excluded)
test: $(STAMP)
	$(VENV)/bin/ruff check keras_ssl tests configs examples benchmarks
	$(PY) -m pytest -n 2 --durations=15

## test-slow: the tests the default run leaves out (end-to-end scripts, float16, variants)
test-slow: $(STAMP)
	$(PY) -m pytest -n 2 -m slow --durations=15

lint: $(STAMP)
	$(VENV)/bin/ruff check keras_ssl tests configs examples benchmarks

## benchmark: SimCLR on full Fashion-MNIST for a fixed wall-clock budget
benchmark: $(STAMP)
	$(PY) benchmarks/simclr_fashion_mnist.py

clean:
	rm -rf $(VENV) runs .pytest_cache
