# LoRAForge: `make run` serves the embedded shape; `make test` runs lint and the whole suite.
PYTHON ?= python3
VENV := .venv
RUNTIME_VENV := .venv-runtime
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

.PHONY: run test test-sqlite test-postgres lint format migrate worker beat bench e2e-deps fuzz runtime-check clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

migrate: $(VENV)/.runtime
	$(PY) manage.py migrate --noinput -v 0

# The embedded shape: one process serves HTTP + WebSocket and runs the Celery worker and beat (no REDIS_URL).
run: migrate
	exec $(PY) -m uvicorn loraforge.asgi:application --host "$(HOST)" --port "$(PORT)" --lifespan on \
		--no-server-header --timeout-graceful-shutdown 10

# The distributed shape (REDIS_URL set): any number of workers, exactly one beat. Logging follows
# LORAFORGE_LOG_LEVEL / LORAFORGE_LOG_FORMAT like the web process (Celery keeps Django's LOGGING).
worker: $(VENV)/.runtime
	exec $(VENV)/bin/celery -A loraforge worker -Q generation,default

beat: $(VENV)/.runtime
	exec $(VENV)/bin/celery -A loraforge beat

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	LORAFORGE_DATA_DIR=$$(mktemp -d) $(PY) manage.py makemigrations --check --dry-run
	LORAFORGE_DATA_DIR=$$(mktemp -d) $(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

format: $(VENV)/.dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The SQLite pass, the PostgreSQL pass (LORAFORGE_TEST_POSTGRES=1) and the runtime venv's build (LORAFORGE_TEST_REDIS=1)
# run side by side: the suite waits on processes (servers, workers, the browser) more than it computes, so on two
# cores the passes together take about as long as the longer one. With more than one, each target's output is printed
# whole when it ends (a lone SQLite pass streams as usual).
# Nothing is shared between the passes: each has its own database, and every Redis test claims an empty Redis
# database of its own (the `redis_url` fixture).
TEST_PARALLEL := test-sqlite $(if $(filter 1,$(LORAFORGE_TEST_POSTGRES)),test-postgres) \
	$(if $(filter 1,$(LORAFORGE_TEST_REDIS)),$(RUNTIME_VENV)/.runtime)

test: lint e2e-deps
	$(MAKE) --no-print-directory -j3 $(if $(word 2,$(TEST_PARALLEL)),--output-sync=target) $(TEST_PARALLEL)
	if [ "$$LORAFORGE_TEST_REDIS" = "1" ]; then $(MAKE) --no-print-directory runtime-check; fi

test-sqlite: $(VENV)/.dev
	LORAFORGE_TEST_DB=sqlite $(PY) -m pytest

test-postgres: $(VENV)/.dev
	LORAFORGE_TEST_DB=postgres $(PY) -m pytest

# A venv from requirements.txt alone (rebuilt from scratch when it changes) runs the distributed shape: web,
# worker and beat on Redis (PostgreSQL when LORAFORGE_TEST_POSTGRES=1), so no runtime dependency can hide
# behind the dev tools.
$(RUNTIME_VENV)/.runtime: requirements.txt
	rm -rf $(RUNTIME_VENV)
	$(PYTHON) -m venv $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(RUNTIME_VENV)/bin/python -m pip install --quiet -r requirements.txt
	touch $@

runtime-check: $(VENV)/.dev $(RUNTIME_VENV)/.runtime
	LORAFORGE_TEST_SERVER_PYTHON=$(RUNTIME_VENV)/bin/python LORAFORGE_TEST_REDIS=1 \
	LORAFORGE_TEST_DB=$$([ "$$LORAFORGE_TEST_POSTGRES" = "1" ] && echo postgres || echo sqlite) \
	$(PY) -m pytest tests/loraforge/test_distributed_shape.py

# The fuzzer for longer than CI runs it (docs/RELIABILITY.md): FUZZ_EXAMPLES per operation, any FUZZ_SEED.
FUZZ_EXAMPLES ?= 300
FUZZ_SEED ?= $(shell date +%s)
fuzz: $(VENV)/.dev
	LORAFORGE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) LORAFORGE_FUZZ_SEED=$(FUZZ_SEED) LORAFORGE_FUZZ_MAX_SECONDS=3600 \
	LORAFORGE_TEST_DB=sqlite $(PY) -m pytest -s --timeout 3600 tests/loraforge/test_schema_fuzz.py

bench: $(VENV)/.dev
	$(PY) -m bench.adapters_api

# Debian's Chromium for the browser tests in tests/e2e (installed only when missing).
e2e-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
		sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$sudo apt-get update && $$sudo apt-get install -y chromium; \
	fi

clean:
	rm -rf $(VENV) $(RUNTIME_VENV) .mypy_cache .ruff_cache
