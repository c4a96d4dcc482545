"""tradeguard's benchmarks, run from a source checkout (`python -m bench <benchmark>`); not installed.

Seeding, load generation, the servers under test (tradeguard's app, the same app wrapped by a
stopwatch, a bare ASGI app), and one module per benchmark with its command line. The numbers
and how they were taken are in docs/benchmarks.md.
"""

from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
"""The source checkout this package belongs to: the servers under test import `bench` from it."""
