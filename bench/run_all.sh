#!/usr/bin/env bash
# Every benchmark of docs/benchmarks.md ("Now" → Commands), in that order, then clean up.
# Needs PostgreSQL on 127.0.0.1:5432 (trust), Redis on 127.0.0.1:6379 (db 14 is emptied), and
#   apt-get install -y wrk ; .venv/bin/pip install locust py-spy pyinstrument
# The baseline (bench/results/*-baseline.json) was produced by the same scripts at commit 46e0f47;
# its list is in the "Baseline" part of docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
trap '$PY bench/seed.py --drop' EXIT

$PY bench/seed.py --recreate --users 5000 --accounts-per-user 2      # 10,000 accounts, 5,000 users
$PY bench/reads_vs_bare.py --duration 15 --profile                    # -> bench/results/reads.json
$PY bench/reads_vs_bare.py --duration 15 --env TRADEGUARD_CACHE_TTL_SECONDS=300 \
    --output bench/results/reads-ttl300.json                          # nothing expires during the run
$PY bench/reads_sweep.py --duration 8                                 # -> reads-sweep.json, docs/img/*.svg
$PY bench/ingest.py --duration 15 --concurrency 32 --profile          # -> bench/results/ingest.json
$PY bench/breach.py --pool 500 --rate 50                              # -> bench/results/breach.json
$PY bench/breach.py --pool 500 --rate 50 --output bench/results/breach-run2.json
$PY bench/breach.py --pool 500 --rate 50 --background-rate 60 --output bench/results/breach-under-load.json
$PY bench/standard_profile.py --run-time 90s                          # -> bench/results/locust.json
$PY bench/standard_profile.py --run-time 90s --bridge-cadence 0 \
    --output bench/results/locust-task-share.json                     # ingests as 1 task in 11 instead
$PY bench/profile_inprocess.py --requests 300                         # -> bench/results/profiles/inprocess-*.txt
# trap: drop tradeguard_bench, flush Redis db 14
