# Two commands for a fresh machine (Python 3.11+ and make):
#   make demo   install everything, ingest the landing folder (synthetic samples if empty), show it
#   make test   install everything, lint, run the whole test suite (slow tests included)
# uv is used from PATH, or installed into .tools/ on first use.

UV := $(or $(shell command -v uv 2>/dev/null),.tools/bin/uv)
UV_VERSION := 0.13.8

.PHONY: demo test install

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

# Bytecode is compiled once at install: where PYTHONDONTWRITEBYTECODE is set, every process
# would otherwise compile Dagster, SQLAlchemy and the rest from source (3-4 s per command).
install: $(UV)
	$(UV) sync --locked --compile-bytecode

demo: install
	$(UV) run papers demo

test: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run pytest
