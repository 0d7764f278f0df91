"""Writing the results: every sample as JSON, the tables and the method as Markdown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TARGETS = {
    "warm_start_s": 0.5,
    "isolation_ms_per_test": 1.0,
    "capture_overhead_ratio": 1.05,
    "explain_ms": 2.0,
    "memory_growth_mb": 50.0,
    "statement_cost_us": 5.0,
}

# Our variants in the comparison with other plugins: (label, what is turned on).
OUR_VARIANTS = {
    "n_plus_one": (
        "N+1 detection, EXPLAIN off",
        "records every statement of every call phase (fingerprint, call site, ORM load "
        "origin); N+1 detection (`sqlaperf_n_plus_one=warn`); EXPLAIN off",
    ),
    "default": (
        "default checks",
        "records every statement of every call phase (fingerprint, call site, ORM load "
        "origin); EXPLAIN of each new statement shape (`sqlaperf_explain=warn`); N+1 "
        "detection (`sqlaperf_n_plus_one=warn`)",
    ),
    "capture_only": (
        "checks off",
        "records every statement of every call phase; EXPLAIN and N+1 detection off",
    ),
}


# Labels of our variants in the instruction counts of the workload: those above, and one that
# exists there only.
WORKLOAD_LABELS = {
    **{variant: label for variant, (label, _) in OUR_VARIANTS.items()},
    "n_plus_one_python": "N+1 detection, EXPLAIN off, the Python listener",
}


def measured(section: dict[str, Any] | None) -> bool:
    """Whether a section of the results holds figures (not ``{"skipped": why}``)."""
    return section is not None and "skipped" not in section


def unmeasured(results: dict[str, Any]) -> list[str]:
    """The targets (and benchmarks) this run did not measure, each with the reason."""
    lines = []
    if not measured(results.get("competitors")):
        lines.append(
            "Our capture overhead (with N+1 detection) lower than each plugin's: not measured "
            f"in this run: {results['competitors']['skipped']}"
        )
    if not measured(results.get("pytest_postgresql_startup")):
        lines.append(
            "Warm and cold start faster than pytest-postgresql: not measured in this run: "
            f"{results['pytest_postgresql_startup']['skipped']}"
        )
    if not measured(results.get("workload_instructions")):
        lines.append(
            "Instructions per workload test (the capture-overhead verdicts fall back to timed "
            f"ratios): not measured in this run: {results['workload_instructions']['skipped']}"
        )
    if not measured(results.get("instructions")):
        lines.append(
            "Instructions per statement: not measured in this run: "
            f"{results['instructions']['skipped']}"
        )
    return lines


def verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its measured median and whether it was met.

    A row compares ``median`` with ``limit``: at most it, or, with ``strict``, below it.
    """
    warm = results["startup"]["summary"]["warm"]["first_query"]["median"]
    rows = [
        {
            "measure": "Warm start, session start to first query",
            "target": f"<= {TARGETS['warm_start_s']} s",
            "median": warm,
            "unit": "s",
            "limit": TARGETS["warm_start_s"],
        }
    ]
    theirs = results.get("pytest_postgresql_startup")
    if measured(theirs):
        assert theirs is not None
        their_median = theirs["summary"]["cold_and_warm"]["first_query"]["median"]
        for kind in ("warm", "cold"):
            rows.append(
                {
                    "measure": f"{kind.capitalize()} start faster than pytest-postgresql "
                    "(session start to first query)",
                    "target": f"< pytest-postgresql's {their_median:.3f} s",
                    "median": results["startup"]["summary"][kind]["first_query"]["median"],
                    "unit": "s",
                    "limit": their_median,
                    "strict": True,
                }
            )
    comparisons = results["isolation"]["summary"]["comparisons"]
    for name, label in (
        ("sync", "sync"),
        ("async", "async"),
        ("async_session_loop", "async, on the session's event loop"),
    ):
        comparison = comparisons[name]
        rows.append(
            {
                "measure": f"Per-test isolation cost, {label}",
                "target": f"<= {TARGETS['isolation_ms_per_test']} ms",
                "median": comparison["added_ms_per_test"]["median"],
                "unit": "ms",
                "limit": TARGETS["isolation_ms_per_test"],
            }
        )
    # the targets are on recording and on recording with N+1 detection; EXPLAIN's share is
    # reported beside them (the "default" variant), with a target of its own per EXPLAIN.
    # They are judged on the instruction counts when callgrind ran: on this shared machine,
    # identical timed runs spread by more than the 5 % the target is about (see the notes).
    labels = {"capture_only": "checks off", "n_plus_one": "with N+1 detection"}
    counted = results.get("workload_instructions")
    if measured(counted):
        assert counted is not None
        rows += _instruction_verdicts(counted, labels)
    else:
        rows += _timed_verdicts(results, labels)
    explain = results["explain_cost"]["summary"]["sync"]
    rows.append(
        {
            "measure": "EXPLAIN cost per new fingerprint (sync workload, median per EXPLAIN)",
            "target": f"<= {TARGETS['explain_ms']} ms",
            "median": explain["ms"]["median"],
            "unit": "ms",
            "limit": TARGETS["explain_ms"],
        }
    )
    loops = results["statement_cost"]["summary"]["loops"]
    for loop, label in (("core", "a Core `SELECT 1`"), ("orm", "an ORM select by primary key")):
        rows.append(
            {
                "measure": f"Added cost per statement, {label} (CPU time, default checks, "
                "median of paired loops)",
                "target": f"<= {TARGETS['statement_cost_us']:.0f} µs",
                "median": loops[loop]["added_us_cpu"]["median"],
                "unit": "µs",
                "limit": TARGETS["statement_cost_us"],
            }
        )
    memory = results["memory"]
    rows.append(
        {
            "measure": f"Memory growth over {memory['tests']:,} tests (the plugin's share of "
            "the peak)",
            "target": f"<= {TARGETS['memory_growth_mb']:.0f} MB",
            "median": memory["summary"]["plugin_growth_mb"],
            "unit": "MB",
            "limit": TARGETS["memory_growth_mb"],
        }
    )
    for row in rows:
        row["met"] = (
            row["median"] < row["limit"] if row.get("strict") else row["median"] <= row["limit"]
        )
    return rows


def _timed_verdicts(results: dict[str, Any], labels: dict[str, str]) -> list[dict[str, Any]]:
    """The capture-overhead rows from the timed runs (when callgrind did not run)."""
    rows = []
    for driver in ("sync", "async"):
        figures = results["capture_overhead"]["summary"][driver]
        for variant, variant_label in labels.items():
            for clock, label in (("session", "wall clock"), ("session_cpu", "CPU time")):
                rows.append(
                    {
                        "measure": f"Capture overhead, {driver}, {variant_label} ({label})",
                        "target": f"<= {_percent(TARGETS['capture_overhead_ratio'])}",
                        "median": figures[variant][f"{clock}_ratio"]["median"],
                        "unit": "ratio",
                        "limit": TARGETS["capture_overhead_ratio"],
                    }
                )
    others = results.get("competitors")
    if measured(others):
        assert others is not None
        for tool, drivers in others["summary"].items():
            for driver, figures in drivers.items():
                tool_ratio = figures["with"]["window_cpu_ratio"]["median"]
                ours = results["capture_overhead"]["summary"][driver]["n_plus_one"]
                rows.append(
                    {
                        "measure": "Our capture overhead (with N+1 detection) lower than "
                        f"{tool}'s, {driver} (window CPU time)",
                        "target": f"< {tool}'s {_percent(tool_ratio)}",
                        "median": ours["window_cpu_ratio"]["median"],
                        "unit": "ratio",
                        "limit": tool_ratio,
                        "strict": True,
                    }
                )
    return rows


def _instruction_verdicts(counted: dict[str, Any], labels: dict[str, str]) -> list[dict[str, Any]]:
    """The capture-overhead rows from the workload's instruction counts."""
    rows = []
    overhead = counted["summary"]["overhead_percent"]
    limit = (TARGETS["capture_overhead_ratio"] - 1) * 100
    seeds = counted["seeds"]
    how = (
        f"instructions per workload test, mean over {len(seeds)} hash seeds"
        if len(seeds) > 1
        else "instructions per workload test"
    )
    for driver, variants in overhead["ours"].items():
        for variant, variant_label in labels.items():
            if variant in variants:
                rows.append(
                    {
                        "measure": f"Capture overhead, {driver}, {variant_label} ({how})",
                        "target": f"<= {limit:+.1f} %",
                        "median": variants[variant],
                        "unit": "percent",
                        "limit": limit,
                    }
                )
    for tool, drivers in overhead.items():
        if tool == "ours":
            continue
        for driver, figures in drivers.items():
            ours = overhead["ours"].get(driver, {}).get("n_plus_one")
            if ours is None:
                continue
            rows.append(
                {
                    "measure": "Our capture overhead (with N+1 detection) lower than "
                    f"{tool}'s, {driver} (instructions per workload test)",
                    "target": f"< {tool}'s {figures['with']:+.1f} %",
                    "median": ours,
                    "unit": "percent",
                    "limit": figures["with"],
                    "strict": True,
                }
            )
    return rows


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")


def _percent(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f} %"


def _s(value: float) -> str:
    return f"{value:.3f}"


def collections(figures: dict[str, Any]) -> str | None:
    """The median collections per generation of a variant's runs, as ``a, b, c`` (None when
    the runs did not count them)."""
    if not all(f"gc{generation}" in figures for generation in range(3)):
        return None
    return ", ".join(f"{figures[f'gc{generation}']['median']:g}" for generation in range(3))


def _ratio_spread(figures: dict[str, float]) -> str:
    return (
        f"{_percent(figures['median'])} ({_percent(figures['min'])} .. {_percent(figures['max'])})"
    )


def _spread(figures: dict[str, float]) -> str:
    return f"{figures['median']:.1f} ({figures['min']:.1f} .. {figures['max']:.1f})"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def format_value(row: dict[str, Any]) -> str:
    if row["unit"] == "ratio":
        return _percent(row["median"])
    if row["unit"] == "MB":
        return f"{row['median']:.1f} MB"
    if row["unit"] == "µs":
        return f"{row['median']:.1f} µs"
    if row["unit"] == "percent":
        return f"{row['median']:+.1f} %"
    return f"{row['median']:.3f} {row['unit']}"


_SECTION_TITLES = {
    "startup": "our start-up (cold and warm)",
    "pytest_postgresql_startup": "pytest-postgresql's start-up",
    "statement_cost": "the cost per statement (timed)",
    "capture_profile": "the profile of the capture path",
    "instructions": "the cost per statement in client instructions",
}
RERUNNABLE = ("startup", "statement_cost", "capture_profile", "instructions")
"""Sections ``python -m bench --rerun`` measures again (each with its comparisons)."""


def render_markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    startup = results["startup"]
    isolation = results["isolation"]
    capture = results["capture_overhead"]
    cost = results["statement_cost"]
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `python -m bench`{' --quick' if results['quick'] else ''} on "
        f"{machine['date']}; every sample is in [`benchmarks.json`](benchmarks.json). Figures "
        "compared with each other were measured side by side in this one run. Speed targets live "
        "here, never as timed assertions in the tests.",
        "",
    ]
    for again in results.get("reruns", []):
        lines += [
            f"**Rerun on {again['date']}** (`python -m bench "
            + " ".join(f"--rerun {name}" for name in again["sections"] if name in RERUNNABLE)
            + "`): "
            + ", ".join(_SECTION_TITLES.get(name, name) for name in again["sections"])
            + ". Those figures replace the full run's and were measured side by side in the "
            "rerun; every other figure is from the full run above.",
            "",
        ]
    if results["quick"]:
        lines += [
            "**Quick run** (tiny sizes, few repetitions): these figures only show that the "
            "harness works; they say nothing about the targets.",
            "",
        ]
    rows = verdicts(results)
    lines += ["## Targets", ""]
    lines += _table(
        ["Measure", "Target", "Median", "Verdict"],
        [
            [
                row["measure"],
                row["target"],
                format_value(row),
                "met" if row["met"] else "**MISSED**",
            ]
            for row in rows
        ],
    )
    missed = sum(1 for row in rows if not row["met"])
    if missed:
        lines += ["", f"{missed} of {len(rows)} targets missed; see the notes at the end."]
    not_measured = unmeasured(results)
    if not_measured:
        lines += [""] + [f"- {line}" for line in not_measured]
    lines += ["", "## Machine", ""]
    load = results["load_average"]
    lines += _table(
        ["", ""],
        [
            ["CPU", f"{machine['cpu']}, {machine['cores']} cores"],
            ["Memory", f"{machine['memory_gib']} GiB"],
            ["OS", machine["os"]],
            ["Python", machine["python"]],
            ["pytest / pytest-asyncio", f"{machine['pytest']} / {machine['pytest_asyncio']}"],
            ["SQLAlchemy", machine["sqlalchemy"]],
            ["psycopg / asyncpg", f"{machine['psycopg']} / {machine['asyncpg']}"],
            [
                "PostgreSQL",
                f"{machine['postgresql']}, embedded, unix socket"
                + (", data directory on tmpfs" if machine["postgresql_on_tmpfs"] else ""),
            ],
            ["pytest-sqlaperf", f"{machine['pytest_sqlaperf']} ({machine['source_revision']})"],
            [
                "Load average (1, 5, 15 min) at start / end",
                f"{', '.join(map(str, load['start']))} / {', '.join(map(str, load['end']))}",
            ],
            ["Duration of the whole run", f"{results['duration_s']:.0f} s"],
        ],
    )

    lines += ["", "## Start-up: session start to first query", "", startup["method"], ""]
    theirs = results.get("pytest_postgresql_startup")
    startup_rows = []
    kinds = [("pytest-sqlaperf", kind, kind, startup) for kind in ("cold", "warm")]
    if measured(theirs):
        assert theirs is not None
        kinds.append(
            (
                f"pytest-postgresql {theirs['version']}",
                "cold_and_warm",
                "none (initdb every run)",
                theirs,
            )
        )
    for plugin, kind, cache, section in kinds:
        first, wall = (section["summary"][kind][key] for key in ("first_query", "wall"))
        startup_rows.append(
            [
                plugin,
                cache,
                str(len(section["samples"][kind])),
                _s(first["median"]),
                f"{_s(first['min'])} .. {_s(first['max'])}",
                _s(wall["median"]),
                f"{_s(wall['min'])} .. {_s(wall['max'])}",
            ]
        )
    lines += _table(
        [
            "Plugin",
            "Cluster cache",
            "Runs",
            "First query (s), median",
            "min .. max",
            "Subprocess wall (s), median",
            "min .. max",
        ],
        startup_rows,
    )
    lines += [""]
    if measured(theirs):
        assert theirs is not None
        lines += [f"How pytest-postgresql's row was measured. {theirs['method']}", ""]
    else:
        assert theirs is not None
        lines += [f"pytest-postgresql: not measured in this run: {theirs['skipped']}.", ""]
    containers = results["testcontainers_startup"]
    lines += [
        "testcontainers (a PostgreSQL container per session, as with "
        f"`--sqlaperf-backend=docker`): not measured: {containers['reason']}."
    ]

    tests = isolation["tests"]
    lines += [
        "",
        "## Per-test isolation cost",
        "",
        isolation["method"],
        "",
        f"N = {tests} tests, {isolation['rounds']} rounds.",
        "",
    ]
    lines += _table(
        ["Variant", "Fixture", "ms per test, median", "min .. max"],
        [
            [
                variant,
                f"`{isolation['variants'][variant]['fixture']}`",
                f"{figures['median']:.3f}",
                f"{figures['min']:.3f} .. {figures['max']:.3f}",
            ]
            for variant, figures in isolation["summary"]["per_test_ms"].items()
        ],
    )
    lines += [""]
    lines += _table(
        ["Added cost", "ms per test, median of paired differences", "min .. max"],
        [
            [
                comparison["label"],
                f"{comparison['added_ms_per_test']['median']:.3f}",
                f"{comparison['added_ms_per_test']['min']:.3f} .. "
                f"{comparison['added_ms_per_test']['max']:.3f}",
            ]
            for comparison in isolation["summary"]["comparisons"].values()
        ],
    )

    lines += [
        "",
        "## Capture overhead",
        "",
        capture["method"],
        "",
        f"N = {capture['tests']} tests (plus a warm-up and a sentinel test), "
        f"{capture['rounds']} rounds per driver. Variants: "
        + "; ".join(f"{name}: {label}" for name, label in capture["variants"].items())
        + ".",
        "",
    ]
    capture_rows = []
    for driver, figures in capture["summary"].items():
        without = figures["without"]
        for variant in ("capture_only", "n_plus_one", "default"):
            variant_figures = figures[variant]
            capture_rows.append(
                [
                    driver,
                    variant,
                    str(figures["statements"]),
                    f"{_s(without['session']['median'])} / "
                    f"{_s(variant_figures['session']['median'])}",
                    _ratio_spread(variant_figures["session_ratio"]),
                    f"{_s(without['session_cpu']['median'])} / "
                    f"{_s(variant_figures['session_cpu']['median'])}",
                    _ratio_spread(variant_figures["session_cpu_ratio"]),
                    f"{_s(without['wall']['median'])} / {_s(variant_figures['wall']['median'])}",
                    f"{collections(without) or '-'} / {collections(variant_figures) or '-'}",
                ]
            )
    lines += _table(
        [
            "Driver",
            "Variant",
            "Statements per run",
            "Session wall without / with (s)",
            "Wall overhead, median of ratios (min .. max)",
            "Session CPU without / with (s)",
            "CPU overhead, median of ratios (min .. max)",
            "Subprocess wall without / with (s)",
            "Garbage collections in the window, generation 0, 1, 2 (median): without / with",
        ],
        capture_rows,
    )

    lines += _competitors_section(results)
    lines += _explain_section(results["explain_cost"])
    lines += [
        "",
        "## Cost per statement",
        "",
        cost["method"],
        "",
        f"M = {cost['statements']} statements per loop, {cost['pairs']} pairs.",
        "",
    ]
    labels = {
        "raw": "raw DBAPI `SELECT 1` (control)",
        "core": "`Connection.execute(text('SELECT 1'))`",
        "orm": "ORM select by primary key",
    }
    loops = cost["summary"]["loops"]
    lines += _table(
        [
            "Loop",
            "µs without / with",
            "µs added, median (min .. max)",
            "CPU µs without / with",
            "CPU µs added, median (min .. max)",
        ],
        [
            [
                labels[loop],
                f"{figures['without_us']['median']:.1f} / {figures['with_us']['median']:.1f}",
                _spread(figures["added_us"]),
                f"{figures['without_us_cpu']['median']:.1f} / "
                f"{figures['with_us_cpu']['median']:.1f}",
                _spread(figures["added_us_cpu"]),
            ]
            for loop, figures in loops.items()
        ],
    )
    idle_labels = {
        "core_idle_before_cursor_execute": "a no-op `before_cursor_execute` listener, Core loop",
        "orm_idle_do_orm_execute": "a no-op `do_orm_execute` listener, ORM loop",
    }
    lines += ["", "Without the plugin, what an idle listener alone adds per statement:", ""]
    lines += _table(
        ["Listener", "µs added, median (min .. max)", "CPU µs added, median (min .. max)"],
        [
            [idle_labels[name], _spread(figures["added_us"]), _spread(figures["added_us_cpu"])]
            for name, figures in cost["summary"]["idle_listeners"].items()
        ],
    )
    in_process = cost["summary"].get("in_process")
    if in_process and all("median" in figures for figures in in_process.values()):
        lines += [
            "",
            "In the runs with the plugin, the recorder installed against uninstalled, in "
            "alternating blocks of one process:",
            "",
        ]
        lines += _table(
            ["Loop", "Blocks", "CPU µs added, median", "quartiles"],
            [
                [
                    labels[loop],
                    str(figures["count"]),
                    f"{figures['median']:.1f}",
                    f"{figures['q1']:.1f} .. {figures['q3']:.1f}",
                ]
                for loop, figures in in_process.items()
            ],
        )
    lines += _instructions_section(results["instructions"])
    if "workload_instructions" in results:
        lines += _workload_instructions_section(results["workload_instructions"])
    lines += _memory_section(results["memory"])
    capture_profile = results["capture_profile"]
    lines += [
        "",
        "## Where the plugin's time goes",
        "",
        capture_profile["method"],
        "",
        f"Whole profiled run: {capture_profile['profiled_total_s']:.2f} s.",
        "",
    ]
    lines += _table(
        ["Function (in `pytest_sqlaperf/`)", "Calls", "Own (s)", "Cumulative (s)", "µs per call"],
        [
            [
                f"`{entry['function']}`",
                str(entry["calls"]),
                f"{entry['own_s']:.3f}",
                f"{entry['cumulative_s']:.3f}",
                f"{entry['cumulative_s'] / entry['calls'] * 1e6:.1f}",
            ]
            for entry in capture_profile["samples"]["functions"]
        ],
    )
    lines += ["", "## Notes", ""]
    lines += [f"- {note}" for note in results["notes"]]
    return "\n".join(lines) + "\n"


def _rounds(count: int) -> str:
    return f"{count} round" if count == 1 else f"{count} rounds"


def _turned_on(description: str) -> str:
    """The features a tool's description says the benchmark turns on."""
    _, found, after = description.partition("Turned on: ")
    return after.rstrip(".") if found else description


def _competitors_section(results: dict[str, Any]) -> list[str]:
    others = results["competitors"]
    lines = ["", "## Other plugins on the same workload", ""]
    if not measured(others):
        return [*lines, f"Not measured in this run: {others['skipped']}."]
    capture = results["capture_overhead"]
    machine = results["machine"]
    lines += [
        others["method"],
        "",
        "Ours and the tools run in separate loops: our rows are the capture-overhead runs "
        f"above ({_rounds(capture['rounds'])} of {capture['tests']} tests, each run with the "
        "plugin alternating with its own run without it, in our virtualenv); each tool "
        "alternates with its own run without the tool, in its virtualenv "
        f"({_rounds(others['rounds'])} of {others['tests']} tests). The ratios are compared, "
        "not the times: the "
        "virtualenvs share package versions, not interpreters' state or the moment they ran. "
        "Versions shared with the tools: " + ", ".join(others["shared_requirements"]) + ".",
        "",
    ]
    header = [
        "Tool",
        "Version",
        "Licence",
        "Turned on",
        "Statements counted by it / run",
        "Window CPU overhead, median of paired ratios (min .. max)",
        "Window wall overhead, median (min .. max)",
    ]
    ours_version = f"{machine['pytest_sqlaperf']} (this tree)"
    for driver in ("sync", "async"):
        figures = capture["summary"][driver]
        rows = []
        for variant, (label, features) in OUR_VARIANTS.items():
            counted = figures.get("plugin_statements", {}).get(variant)
            rows.append(
                [
                    f"pytest-sqlaperf, {label}",
                    ours_version,
                    machine.get("pytest_sqlaperf_licence", "unknown"),
                    features,
                    f"{counted if counted is not None else '?'} / {figures['statements']}",
                    _ratio_spread(figures[variant]["window_cpu_ratio"]),
                    _ratio_spread(figures[variant]["window_ratio"]),
                ]
            )
        for tool, spec in others["tools"].items():
            tool_figures = others["summary"].get(tool, {}).get(driver)
            if tool_figures is None:
                continue
            rows.append(
                [
                    tool,
                    spec["requirement"].partition("==")[2] or spec["requirement"],
                    spec["licence"],
                    _turned_on(spec["description"]),
                    f"{tool_figures['tool_statements']} / {tool_figures['statements']}",
                    _ratio_spread(tool_figures["with"]["window_cpu_ratio"]),
                    _ratio_spread(tool_figures["with"]["window_ratio"]),
                ]
            )
        lines += [f"### {driver}", "", *_table(header, rows), ""]
    lines += [
        "Statements counted by it: the tool's own count (ours: the statements in the plugin's "
        "test records), call phases of the warm-up and the measured tests; run: every statement "
        "the suite's listener saw, fixtures and sentinel included. What each tool does:",
        "",
    ]
    lines += [f"- {tool}: {spec['description']}" for tool, spec in others["tools"].items()]
    return lines


def _explain_section(explain: dict[str, Any]) -> list[str]:
    lines = ["", "## EXPLAIN cost per new fingerprint", "", explain["method"], ""]
    rows = []
    for driver, figures in explain["summary"].items():
        rest = figures["after_first_ms"]
        rows.append(
            [
                driver,
                f"{figures['explains_per_run']['median']:.0f}",
                f"{figures['shapes_per_run']['median']:.0f}",
                f"{figures['ms']['median']:.3f} ({figures['ms']['min']:.3f} .. "
                f"{figures['ms']['max']:.3f})",
                f"{figures['first_ms']['median']:.3f}",
                "-" if rest is None else f"{rest['median']:.3f} (max {rest['max']:.3f})",
            ]
        )
    return lines + _table(
        [
            "Driver",
            "EXPLAINs per run",
            "Statement shapes per run",
            "ms per EXPLAIN, median (min .. max)",
            "First EXPLAIN of a run, ms, median",
            "The others, ms, median (max)",
        ],
        rows,
    )


def _instructions_section(counted: dict[str, Any]) -> list[str]:
    lines = ["", "## Cost per statement in client instructions", ""]
    if not measured(counted):
        return [*lines, f"Not measured in this run: {counted['skipped']}."]
    lines += [
        counted["method"],
        "",
        f"N1 = {counted['n1']}, N2 = {counted['n2']} statements. Variants: "
        + "; ".join(f"{name}: {label}" for name, label in counted["variants"].items())
        + ".",
        "",
    ]
    seeds = counted.get("seeds", ["0"])
    rows = []
    for loop, variants in counted["summary"]["per_statement"].items():
        for variant, figures in variants.items():
            per_seed = figures.get("per_seed", [figures["instructions"]])
            low, high = figures.get("added_range", [figures["added"]] * 2)
            rows.append(
                [
                    counted["loops"][loop],
                    variant,
                    f"{figures['instructions']:,.0f}"
                    + (f" ({', '.join(f'{n:,.0f}' for n in per_seed)})" if len(seeds) > 1 else ""),
                    "-"
                    if variant == "none"
                    else f"{figures['added']:+,.0f}"
                    + (f" ({low:+,.0f} .. {high:+,.0f})" if len(seeds) > 1 else ""),
                    "-" if variant == "none" else f"{figures['added_percent']:+.1f} %",
                ]
            )
    several = len(seeds) > 1
    lines += _table(
        [
            "Loop",
            "Variant",
            "Instructions per statement" + (" (mean; per seed)" if several else ""),
            "Added over none" + (" (mean; range over seeds)" if several else ""),
            "Added, %",
        ],
        rows,
    )
    repeat = counted["summary"]["repeat_difference"]
    if repeat is not None:
        lines += [
            "",
            "Repeatability: a second run without the plugin counted "
            + ", ".join(
                f"{difference:+,.0f} instructions per statement in the {loop} loop"
                for loop, difference in repeat.items()
            )
            + " against the first.",
        ]
    return lines


def _workload_instructions_section(counted: dict[str, Any]) -> list[str]:
    lines = ["", "## Capture overhead in client instructions per workload test", ""]
    if not measured(counted):
        return [*lines, f"Not measured in this run: {counted['skipped']}."]
    lines += [counted["method"], "", f"N = {counted['tests']} tests in the window.", ""]
    rows = []
    summary = counted["summary"]
    for who, drivers in counted["per_test"].items():
        for driver, variants in drivers.items():
            for variant, count in variants.items():
                label = WORKLOAD_LABELS.get(variant, variant) if who == "ours" else variant
                seeds = counted["per_seed"][who][driver][variant]
                if variant == "without":
                    overhead = "-"
                else:
                    overhead = f"{summary['overhead_percent'][who][driver][variant]:+.1f} %"
                    if len(seeds) > 1:
                        low, high = summary["overhead_range_percent"][who][driver][variant]
                        overhead += f" ({low:+.1f} % .. {high:+.1f} %)"
                rows.append(
                    [
                        "pytest-sqlaperf" if who == "ours" else who,
                        driver,
                        label,
                        ", ".join(seeds),
                        f"{count / 1e6:,.2f} M"
                        + (
                            " ("
                            + ", ".join(f"{value / 1e6:,.2f}" for value in seeds.values())
                            + ")"
                            if len(seeds) > 1
                            else ""
                        ),
                        overhead,
                    ]
                )
    lines += _table(
        [
            "Plugin",
            "Suite",
            "Variant",
            "Hash seeds",
            "Instructions per test (mean; per seed)",
            "Overhead (mean; range over seeds)",
        ],
        rows,
    )
    return lines


def _memory_section(memory: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Memory over a long suite",
        "",
        memory["method"],
        "",
        f"N = {memory['tests']:,} tests of {memory['statements_per_test']} statements.",
        "",
    ]
    rows = []
    for variant, label in (("without", "`-p no:sqlaperf`"), ("with", "the plugin, default")):
        figures = memory["samples"][variant]
        rows.append(
            [
                label,
                str(figures["statements"]),
                f"{figures['peak_before_reset_mb']:.1f}",
                f"{figures['rss_after_warmup_mb']:.1f}",
                f"{figures['peak_at_sentinel_mb']:.1f}",
                f"{figures['rss_at_sentinel_mb']:.1f}",
                f"{figures['growth_mb']:.1f}",
            ]
        )
    lines += _table(
        [
            "Run",
            "Statements",
            "Peak RSS until the warm-up's end (MB)",
            "RSS after warm-up (MB)",
            "Peak RSS since, at the sentinel (MB)",
            "RSS at the sentinel (MB)",
            "Growth: peak since warm-up - RSS after warm-up (MB)",
        ],
        rows,
    )
    summary = memory["summary"]
    return [
        *lines,
        "",
        f"The plugin's share of the growth: {summary['growth_with_mb']:.1f} - "
        f"{summary['growth_without_mb']:.1f} = {summary['plugin_growth_mb']:.1f} MB.",
    ]


def write_markdown(path: Path, results: dict[str, Any]) -> None:
    path.write_text(render_markdown(results))
