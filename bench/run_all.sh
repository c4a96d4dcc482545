#!/usr/bin/env bash
# Every benchmark of docs/benchmarks.md ("Now" → Commands), in that order, then clean up.
# Needs PostgreSQL on 127.0.0.1:5432 (trust), Redis on 127.0.0.1:6379 (db 14 is emptied), and
#   apt-get install -y wrk ; .venv/bin/pip install -e '.[bench]'
# The baseline (bench/results/*-baseline.json) was produced by the same scripts at commit 46e0f47;
# its list is in the "Baseline" part of docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
trap '$PY -m bench seed --drop' EXIT

$PY -m bench seed --recreate --users 5000 --accounts-per-user 2      # 10,000 accounts, 5,000 users
$PY -m bench reads_vs_bare --duration 15 --profile                    # -> bench/results/reads.json
$PY -m bench reads_vs_bare --duration 15 --env TRADEGUARD_CACHE_TTL_SECONDS=300 \
    --output bench/results/reads-ttl300.json                          # nothing expires during the run
$PY -m bench reads_sweep --duration 8                                 # -> reads-sweep.json, docs/img/*.svg
$PY -m bench ingest --duration 15 --concurrency 32 --profile          # -> bench/results/ingest.json
$PY -m bench breach --pool 500 --rate 50                              # -> bench/results/breach.json
$PY -m bench breach --pool 500 --rate 50 --output bench/results/breach-run2.json
$PY -m bench breach --pool 500 --rate 50 --background-rate 60 --output bench/results/breach-under-load.json
$PY -m bench standard_profile --run-time 90s                          # -> bench/results/locust.json
$PY -m bench standard_profile --run-time 90s --bridge-cadence 0 \
    --output bench/results/locust-task-share.json                     # ingests as 1 task in 11 instead
$PY -m bench profile_inprocess --requests 300                         # -> bench/results/profiles/inprocess-*.txt
# trap: drop tradeguard_bench, flush Redis db 14
