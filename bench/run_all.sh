#!/usr/bin/env bash
# Every benchmark of docs/benchmarks.md, in the order they were run there, then clean up.
# Needs PostgreSQL on 127.0.0.1:5432 (trust), Redis on 127.0.0.1:6379 (db 14 is emptied), and
#   apt-get install -y wrk ; .venv/bin/pip install locust py-spy pyinstrument
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

$PY bench/seed.py --recreate --users 5000 --accounts-per-user 2      # 10,000 accounts, 5,000 users
$PY bench/reads_vs_bare.py --duration 15 --profile                    # -> bench/results/reads.json
$PY bench/ingest.py --duration 15 --concurrency 32 --profile          # -> bench/results/ingest.json
$PY bench/breach.py --pool 500 --rate 50                              # -> bench/results/breach.json
$PY bench/breach.py --pool 500 --rate 50 --background-rate 60 --output bench/results/breach-under-load.json
$PY bench/standard_profile.py --run-time 60s                          # -> bench/results/locust.json
$PY bench/standard_profile.py --run-time 60s --env TRADEGUARD_CACHE_TTL_SECONDS=300 \
    --output bench/results/locust-ttl300.json
$PY bench/profile_inprocess.py --requests 300                         # -> bench/results/profiles/inprocess-*.txt
$PY bench/seed.py --drop                                              # drop tradeguard_bench, flush Redis db 14
