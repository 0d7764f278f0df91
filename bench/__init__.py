"""pytest-sqlaperf's benchmarks: start-up, per-test isolation, capture overhead, statement cost.

Run ``python -m bench`` from the repository root; see ``docs/benchmarks.md`` for the results.
"""
