#!/usr/bin/env bash
# Install what the tests need and run the whole suite.
EXTRAS=test
source "$(dirname "$0")/_venv.sh"
exec "$VENV/bin/python" -m pytest "$@"
