# memtrace: developer and CI entry points. Assumes only python3 (and, for the
# real-kernel half of `make bench`, a C compiler); everything else goes into .venv.
#
#   make / make venv   create .venv and install memtrace editable with [dev]
#   make test          lint (ruff), then run the whole test suite, slow tests included;
#                      the quick loop while editing skips the few tests marked slow
#                      (@pytest.mark.slow: they take most of the suite's time):
#                      .venv/bin/python -m pytest -m "not slow"
#                      (or make test PYTEST_ARGS='-m "not slow"')
#                      golden files of command output: pytest --update-goldens
#                      rewrites them (tests/memtrace/golden/; review with git diff)
#   make lint          ruff on every Python file
#   make typecheck     mypy --strict on the installed package (scripts/typecheck.py)
#   make demo          record oom-leak, show the kill, replay it with strict overcommit,
#                      and end with its OOM report (text; HTML beside the trace)
#   make bench         benchmarks vs. the real kernel (BENCH_ARGS="--json --runs 3")
#   make sample-traces re-record sample_traces/NAME.mtrace for every built-in scenario
#   make clean         remove .venv, caches and build output

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MEMTRACE := $(VENV)/bin/memtrace
# The venv is (re)installed only when this stamp is older than pyproject.toml.
INSTALLED := $(VENV)/.installed

PYTEST_ARGS ?=
BENCH_ARGS ?=
# Set to 1 to let `make test` pass when pytest collects no tests (its exit code 5).
ALLOW_NO_TESTS ?=

.PHONY: venv test lint typecheck demo bench sample-traces clean

venv: $(INSTALLED)

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -e '.[dev]'
	touch $@

lint: $(INSTALLED)
	$(VENV)/bin/ruff check --no-cache memtrace tracer kernel replay analysis tests bench scripts

typecheck: $(INSTALLED)
	$(PY) scripts/typecheck.py

test: lint typecheck
	@echo "$(PY) -m pytest -q $(PYTEST_ARGS)"
	@status=0; $(PY) -m pytest -q $(PYTEST_ARGS) || status=$$?; \
	if [ "$$status" -eq 5 ] && [ "$(ALLOW_NO_TESTS)" = 1 ]; then \
		echo "make test: pytest collected no tests (allowed by ALLOW_NO_TESTS=1)"; \
		status=0; \
	fi; \
	exit $$status

DEMO_DIR ?= /tmp/memtrace-demo

# The story: a leak on a 4 GiB machine ends in an OOM kill; the same workload
# replayed with strict overcommit gets ENOMEM instead; the report explains the kill.
demo: $(INSTALLED)
	@mkdir -p $(DEMO_DIR)
	@echo "== 1. record oom-leak: a database, 1 GiB of page cache and a leaker on 4 GiB, no swap"
	$(MEMTRACE) record oom-leak -o $(DEMO_DIR)/oom-leak.mtrace
	@echo "== 2. the kill, as the kernel logs it (memtrace dmesg)"
	$(MEMTRACE) dmesg $(DEMO_DIR)/oom-leak.mtrace | grep -E "invoked oom-killer|oom-kill:|Killed process"
	@echo "== 3. replay with vm.overcommit_memory=2: what changes"
	$(MEMTRACE) replay $(DEMO_DIR)/oom-leak.mtrace --sysctl vm.overcommit_memory=2 -o $(DEMO_DIR)/oom-leak.strict.mtrace
	@echo "== 4. the report: who grew, what reclaim could not free, why this victim, what if (replays)"
	$(MEMTRACE) report $(DEMO_DIR)/oom-leak.mtrace --format html -o $(DEMO_DIR)/oom-leak.report.html
	$(MEMTRACE) report $(DEMO_DIR)/oom-leak.mtrace

bench: $(INSTALLED)
	$(PY) bench/run.py $(BENCH_ARGS)

sample-traces: $(INSTALLED)
	@names="$$($(MEMTRACE) scenarios --names)" || { \
		echo "make: '$(MEMTRACE) scenarios --names' failed" >&2; exit 1; }; \
	if [ -z "$$names" ]; then \
		echo "make: '$(MEMTRACE) scenarios --names' printed no scenario" >&2; \
		exit 1; \
	fi; \
	for name in $$names; do \
		echo "$(MEMTRACE) record $$name -o sample_traces/$$name.mtrace"; \
		$(MEMTRACE) record "$$name" -o "sample_traces/$$name.mtrace" || exit 1; \
	done

clean:
	rm -rf $(VENV) bench/.build build dist .pytest_cache .hypothesis *.egg-info
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
