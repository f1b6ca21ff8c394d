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

install: $(UV)
	$(UV) sync --locked

demo: install
	$(UV) run papers demo

test: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run pytest
