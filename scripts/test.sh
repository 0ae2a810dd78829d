#!/usr/bin/env bash
# README command 2: set up (if needed), then run the test suite. Extra arguments go to pytest.
# Two worker processes, each running whole test files (files share module fixtures and some tests run
# in order) in the order tests/conftest.py gives (slow files first); ARTSER_TEST_WORKERS=0 runs in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -n "${ARTSER_TEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder "$@"
