# make demo | test | bench | clean. Everything runs in .venv, created on first use.
PYTHON ?= python3
VENV ?= .venv
DEMO_MODEL ?= resnet50

.PHONY: demo test bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip

demo: $(VENV)/bin/python
	$(VENV)/bin/pip install .
	$(VENV)/bin/cnngraph report $(DEMO_MODEL) --depth 2

test: $(VENV)/bin/python
	$(VENV)/bin/pip install -e '.[test,render,plot]'
	$(VENV)/bin/python -m pytest -q

bench: $(VENV)/bin/python
	$(VENV)/bin/pip install -e '.[test,plot]'
	$(VENV)/bin/python benchmarks/bench_analysis.py

# Build products only; the venv stays (rm -rf .venv to drop it too).
clean:
	rm -rf build dist *.egg-info .pytest_cache .hypothesis .ruff_cache
	rm -f cnngraph/_native/*.so cnngraph/_native/*.pyd cnngraph/_native/*.c benchmarks/results/*.tmp
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
