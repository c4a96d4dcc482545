#!/usr/bin/env bash
# Install what the demo needs and run it: the service plus a simulated broker, on SQLite.
EXTRAS=demo
source "$(dirname "$0")/_venv.sh"
exec "$VENV/bin/tradeguard" demo "$@"
