#!/usr/bin/env bash
# Set up the dev environment, lint, type-check, and run the test suite.
#
#   scripts/test.sh                 everything, slow and browser tests included
#   scripts/test.sh [pytest args]   what those arguments select, e.g. tests/test_query.py
#
# Screenshots and other test outputs, and junit.xml, land in test-output/.
# Exits non-zero when setup, lint or any test fails, and when no test ran.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh --dev

lint=(src tests)
[[ -d benchmarks ]] && lint+=(benchmarks)
.venv/bin/ruff check --quiet "${lint[@]}"
.venv/bin/mypy  # strict on src/ (pyproject.toml [tool.mypy])

mkdir -p test-output
export IMAGEFIND_TEST_OUTPUT="$PWD/test-output"
if [[ $# -eq 0 ]]; then
    # An empty marker expression overrides any -m in addopts: the default is the whole suite.
    set -- -m ""
fi
exec .venv/bin/pytest --junitxml=test-output/junit.xml "$@"
