# `make demo` runs the main job on its built-in default; `make test` runs the tests.
# Both set up .venv first when needed (tools/setup_env.sh; idempotent, seconds when up to date).
PY := .venv/bin/python
PYTEST_ARGS ?=
# pytest-xdist workers for the parallel part of the suite (each gets cores / workers threads)
TEST_WORKERS ?= 2

.PHONY: setup test test-fast demo clean-venv

setup:
	@bash tools/setup_env.sh

# The whole suite: everything but the `serial` tests on TEST_WORKERS workers, then the `serial` tests
# (several processes or timings each) alone. Exit status 5 (nothing selected) counts as a pass.
test: setup
	@$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal -m "not serial" $(PYTEST_ARGS); a=$$?; \
	$(PY) -m pytest -m serial $(PYTEST_ARGS); b=$$?; \
	for s in $$a $$b; do if [ $$s -ne 0 ] && [ $$s -ne 5 ]; then exit $$s; fi; done

# The loop to run while working: unit tests, contracts and numerics, no training beyond a few iterations.
test-fast: setup
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal -m "not slow and not serial" $(PYTEST_ARGS)

demo: setup
	$(PY) tools/demo.py $(DEMO_ARGS)

clean-venv:
	rm -rf .venv
