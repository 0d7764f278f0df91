"""``python -m bench.bytecodes``: where the plugin's work per workload test goes, by function.

Runs the capture-overhead workload (sync or async) under an opcode-counting tracer
(``sys.settrace`` with ``f_trace_opcodes``) with N1 and then N2 tests, without the plugin and in
one of its variants, and prints the bytecodes per test that each function adds: the difference
between the two sizes, over N2 - N1, so start-up and collection cancel out. Deterministic and
quick (about half a minute), it is the tool for speed work on the plugin; it counts Python
bytecodes only, not the C work behind them (callgrind does: ``bench/instructions.py``);
the statement listener in C (``_speedups.c``) shows only through the Python it calls.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench import overhead
from bench.harness import BenchError, child_environment, run_pytest, write_project
from bench.projects import workload_project
from bench.server import bench_server

# Run by the tracer's interpreter: counts opcodes per "file:first line:function" and writes them
# as JSON to $BENCH_BYTECODES_FILE at exit; its arguments are pytest's.
TRACER = """\
import collections, json, os, sys, threading

import pytest

counts = collections.Counter()


def tracer(frame, event, arg):
    frame.f_trace_opcodes = True
    frame.f_trace_lines = False
    code = frame.f_code
    key = f"{code.co_filename}:{code.co_firstlineno}:{code.co_name}"

    def local(frame, event, arg):
        if event == "opcode":
            counts[key] += 1
        return local

    return local


sys.settrace(tracer)
threading.settrace(tracer)
try:
    status = pytest.main(sys.argv[1:])
finally:
    sys.settrace(None)
    with open(os.environ["BENCH_BYTECODES_FILE"], "w") as file:
        json.dump(counts, file)
sys.exit(status)
"""


def _short(key: str) -> str:
    """A function's key with the environment's paths left out."""
    key = re.sub(r"^.*/site-packages/", "", key)
    key = re.sub(r"^.*/src/(pytest_sqlaperf/)", r"\1", key)
    return re.sub(r"^.*/(n1|n2)/", "", key)


def _count(
    project: Path, script: Path, args: list[str], environment: dict[str, str]
) -> Counter[str]:
    with tempfile.TemporaryDirectory(prefix="bytecodes-") as temporary:
        output = Path(temporary) / "counts.json"
        run_pytest(
            project,
            args,
            environment={**environment, "BENCH_BYTECODES_FILE": str(output)},
            runner=(str(script),),
        )
        counts: dict[str, int] = json.loads(output.read_text())
    return Counter({_short(key): value for key, value in counts.items()})


def measure(variant: str, driver: str, n1: int, n2: int) -> dict[str, dict[str, float]]:
    """Bytecodes per test of each function, without the plugin and in ``variant``."""
    _, plugin, variant_args = overhead.VARIANTS[variant]
    module = f"test_{driver}_workload.py"
    per_test: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="sqlaperf-bytecodes-") as temporary:
        workdir = Path(temporary)
        script = workdir / "tracer.py"
        script.write_text(TRACER)
        projects = {
            n: write_project(workdir / f"n{i}", workload_project(n, 1))
            for i, n in ((1, n1), (2, n2))
        }
        with bench_server(workdir / "cache") as server:
            environment = child_environment(
                {
                    "BENCH_DATABASE_URL": server.url,
                    "BENCH_ASYNC_DATABASE_URL": server.async_url,
                    "PYTHONHASHSEED": "0",
                }
            )
            for name, args in (
                ("without", ["-p", "no:sqlaperf", module]),
                (variant, [module, *variant_args] if plugin else ["-p", "no:sqlaperf", module]),
            ):
                small, large = (_count(projects[n], script, args, environment) for n in (n1, n2))
                per_test[name] = {
                    key: (large[key] - small[key]) / (n2 - n1)
                    for key in small.keys() | large.keys()
                }
    return per_test


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bytecodes", description=__doc__)
    parser.add_argument("--variant", default="n_plus_one", choices=sorted(overhead.VARIANTS))
    parser.add_argument("--driver", default="sync", choices=("sync", "async"))
    parser.add_argument("--n1", type=int, default=10, help="tests in the smaller run")
    parser.add_argument("--n2", type=int, default=40, help="tests in the larger run")
    parser.add_argument("--top", type=int, default=40, help="functions to list")
    options = parser.parse_args(argv)
    if not 0 < options.n1 < options.n2:
        parser.error(f"--n1 must be above 0 and below --n2, not {options.n1} and {options.n2}")
    try:
        per_test = measure(options.variant, options.driver, options.n1, options.n2)
    except BenchError as error:
        print(f"bench.bytecodes: {error}", file=sys.stderr)
        return 1
    without, with_plugin = per_test["without"], per_test[options.variant]
    base, total = sum(without.values()), sum(with_plugin.values())
    print(
        f"{options.driver} workload, {options.variant}: {total:,.0f} bytecodes per test, "
        f"{base:,.0f} without the plugin ({(total / base - 1) * 100:+.2f} %)"
    )
    added = sorted(
        (
            (with_plugin.get(key, 0.0) - without.get(key, 0.0), key)
            for key in with_plugin.keys() | without.keys()
        ),
        key=lambda row: -abs(row[0]),
    )
    for difference, key in added[: options.top]:
        if abs(difference) >= 1:
            print(f"{difference:+10,.1f}  {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
