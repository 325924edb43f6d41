# make demo | test | bench | graphviz | clean. Everything runs in .venv, created on first use.
PYTHON ?= python3
VENV ?= .venv
DEMO_MODEL ?= resnet50

.PHONY: demo test bench graphviz clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip

demo: $(VENV)/bin/python graphviz
	$(VENV)/bin/pip install '.[render]'
	$(VENV)/bin/cnngraph report $(DEMO_MODEL) --depth 2
	$(VENV)/bin/cnngraph render $(DEMO_MODEL) -o $(DEMO_MODEL).svg --color-by flops --highlight-peak
	@echo "diagram: $(DEMO_MODEL).svg"

test: $(VENV)/bin/python
	$(VENV)/bin/pip install -e '.[test,render,plot]'
	$(VENV)/bin/python -m pytest -q

bench: $(VENV)/bin/python
	$(VENV)/bin/pip install -e '.[test,plot]'
	$(VENV)/bin/python benchmarks/bench_analysis.py

# graphviz's `dot` binary (render's svg/png/pdf), which pip cannot provide: Debian's package.
graphviz:
	@command -v dot >/dev/null 2>&1 || { \
		sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq graphviz >/dev/null; }

# Build products only; the venv stays (rm -rf .venv to drop it too).
clean:
	rm -rf build dist *.egg-info .pytest_cache .hypothesis .ruff_cache
	rm -f cnngraph/_native/*.so cnngraph/_native/*.pyd cnngraph/_native/*.c benchmarks/results/*.tmp
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
