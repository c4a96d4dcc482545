"""Benchmarks: seeding, load generation, servers under test, and the short `tradeguard bench` run.

The full benchmarks are the scripts under bench/ in the repository; they use this package.
"""

from tradeguard.bench.quick import run_quick_bench

__all__ = ["run_quick_bench"]
