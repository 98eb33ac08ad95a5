# `make demo` runs the main job on its built-in default; `make test` runs the tests.
# Both set up .venv first when needed (tools/setup_env.sh; idempotent, seconds when up to date).
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: setup test demo clean-venv

setup:
	@bash tools/setup_env.sh

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

demo: setup
	$(PY) tools/demo.py $(DEMO_ARGS)

clean-venv:
	rm -rf .venv
