# Formhooks: `make run` starts everything; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python scripts/run.py

test: $(STAMP)
	bash scripts/ensure_debian_package.sh "$${CHROMIUM_PATH:-/usr/bin/chromium}" chromium "browser tests"
	bash scripts/ensure_debian_package.sh /usr/bin/redis-server redis-server "TLS Redis tests" --no-install-recommends
	bash scripts/ensure_debian_package.sh /usr/sbin/nginx nginx "Debian layout tests" --no-install-recommends
	bash scripts/ensure_debian_package.sh /usr/bin/supervisord supervisor "Debian layout tests" --no-install-recommends
	bash scripts/ensure_debian_package.sh /usr/bin/php php-cli "the PHP receiver test of docs/signatures.md" --no-install-recommends
	# 4 test processes even on 2 cores: most end-to-end tests wait on real
	# processes and sockets (the whole suite: 8 min 49 s with 4, 12 min with 2).
	$(BIN)/python -m pytest -n $${TEST_PROCESSES:-4} $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
