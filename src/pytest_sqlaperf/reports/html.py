"""The HTML report: one self-contained file (inline CSS, JS and SVG; nothing from the network).

Every piece of text from the run (SQL, node ids, messages) goes through :func:`html.escape`.
"""

from __future__ import annotations

import json
from html import escape

from ..records import CallSiteRecord, TestRecord
from .jsonreport import Report, delta_of, plural

CHART_TESTS = 40
BAR_HEIGHT = 14

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#1f2328;max-width:1200px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}th.sortable{cursor:pointer;user-select:none}
th.sortable::after{content:" \\2195";color:#8c959f}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
code,pre{font:12px/1.4 ui-monospace,monospace;background:#f6f8fa}
pre{padding:6px;white-space:pre-wrap;word-break:break-word;margin:0}
.regression{color:#cf222e;font-weight:600}.improvement{color:#1a7f37}
.muted{color:#656d76}.finding{border-left:3px solid #bf8700;padding-left:8px;margin:.5em 0}
section.test{margin:1.5em 0;padding-top:.5em;border-top:1px dashed #d0d7de}
svg text{font:11px system-ui,sans-serif;fill:#1f2328}
"""

SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th.sortable").forEach(function (header, column) {
    header.addEventListener("click", function () {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var descending = header.getAttribute("data-order") !== "desc";
      header.setAttribute("data-order", descending ? "desc" : "asc");
      var index = header.cellIndex;
      rows.sort(function (a, b) {
        var x = a.cells[index].getAttribute("data-value");
        var y = b.cells[index].getAttribute("data-value");
        var nx = parseFloat(x), ny = parseFloat(y);
        var order = (isNaN(nx) || isNaN(ny)) ? String(x).localeCompare(String(y)) : nx - ny;
        return descending ? -order : order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _site(site: CallSiteRecord) -> str:
    return f"<code>{_e(site['path'])}:{site['line']}</code> in <code>{_e(site['function'])}</code>"


def _anchor(index: int) -> str:
    return f"t{index}"


def _chart(records: list[TestRecord], before: dict[str, int]) -> str:
    """Horizontal bars: this run's count per test, with the baseline's as a grey bar behind."""
    heaviest = sorted(
        records, key=lambda r: (-max(r["count"], before.get(r["nodeid"], 0)), r["nodeid"])
    )[:CHART_TESTS]
    heaviest = [r for r in heaviest if r["count"] or before.get(r["nodeid"])]
    if not heaviest:
        return "<p class='muted'>No test ran statements.</p>"
    top = max(max(r["count"], before.get(r["nodeid"], 0)) for r in heaviest)
    label_width, bar_width, row = 420, 480, BAR_HEIGHT + 6
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{label_width + bar_width + 60}"'
        f' height="{row * len(heaviest) + 24}" aria-label="statements per test">',
        '<rect x="0" y="0" width="12" height="10" fill="#d0d7de"/>'
        '<text x="16" y="9">baseline</text>'
        '<rect x="90" y="0" width="12" height="10" fill="#0969da"/>'
        '<text x="106" y="9">this run</text>',
    ]
    for position, record in enumerate(heaviest):
        y = 20 + position * row
        was = before.get(record["nodeid"])
        name = record["nodeid"]
        shown = name if len(name) <= 60 else "…" + name[-59:]
        parts.append(
            f'<text x="{label_width - 6}" y="{y + BAR_HEIGHT - 3}" text-anchor="end">'
            f"<title>{_e(name)}</title>{_e(shown)}</text>"
        )
        if was is not None:
            width = bar_width * was / top
            parts.append(
                f'<rect x="{label_width}" y="{y}" width="{width:.1f}" height="{BAR_HEIGHT}"'
                f' fill="#d0d7de"><title>baseline {was}</title></rect>'
            )
        color = "#cf222e" if was is not None and record["count"] > was else "#0969da"
        width = bar_width * record["count"] / top
        parts.append(
            f'<rect x="{label_width}" y="{y + 3}" width="{width:.1f}" height="{BAR_HEIGHT - 6}"'
            f' fill="{color}"><title>this run {record["count"]}</title></rect>'
            f'<text x="{label_width + width + 4:.1f}" y="{y + BAR_HEIGHT - 3}">'
            f"{record['count']}{'' if was is None else f' (was {was})'}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _tests_table(records: list[TestRecord], before: dict[str, int], regressed: set[str]) -> str:
    rows = []
    for index, record in enumerate(records):
        was = before.get(record["nodeid"])
        delta = "" if was is None else record["count"] - was
        css = ""
        if record["nodeid"] in regressed:
            css = " class='regression'"
        elif isinstance(delta, int) and delta < 0:
            css = " class='improvement'"
        rows.append(
            f"<tr{css}><td data-value='{_e(record['nodeid'])}'>"
            f"<a href='#{_anchor(index)}'>{_e(record['nodeid'])}</a></td>"
            f"<td class='num' data-value='{record['count']}'>{record['count']}</td>"
            f"<td class='num' data-value='{'' if was is None else was}'>"
            f"{'' if was is None else was}</td>"
            f"<td class='num' data-value='{delta}'>"
            f"{'' if delta == '' else f'{delta:+d}'}</td>"
            f"<td class='num' data-value='{len(record['findings'])}'>{len(record['findings'])}</td>"
            f"<td data-value='{_e(record['outcome'])}'>{_e(record['outcome'])}</td></tr>"
        )
    return (
        "<table class='sortable' id='tests'><thead><tr>"
        "<th class='sortable'>test</th><th class='sortable num'>statements</th>"
        "<th class='sortable num'>baseline</th><th class='sortable num'>Δ</th>"
        "<th class='sortable num'>findings</th><th class='sortable'>outcome</th>"
        "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _test_section(index: int, record: TestRecord) -> str:
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(record["by_kind"].items()))
    budget = f" · budget <code>{_e(record['budget'])}</code>" if record["budget"] else ""
    parts = [
        f"<section class='test' id='{_anchor(index)}'><h3><code>{_e(record['nodeid'])}</code></h3>",
        f"<p>{plural(record['count'], 'statement')}{f' ({_e(kinds)})' if kinds else ''} · "
        f"{_e(record['outcome'])}{budget}</p>",
    ]
    if record["violation"]:
        parts.append(f"<p class='regression'>{_e(record['violation'])}</p>")
    if record["fingerprints"]:
        parts.append(
            "<table><thead><tr><th class='num'>count</th><th>kind</th><th>SQL</th>"
            "<th>call sites</th></tr></thead><tbody>"
        )
        ordered = sorted(
            record["fingerprints"].items(), key=lambda item: (-item[1]["count"], item[0])
        )
        for fingerprint, entry in ordered:
            sites = "<br>".join(_site(site) for site in entry["call_sites"])
            parts.append(
                f"<tr><td class='num'>{entry['count']}</td><td>{_e(entry['kind'])}</td>"
                f"<td><pre>{_e(entry['display_sql'])}</pre>"
                f"<span class='muted'>{_e(fingerprint)}</span></td><td>{sites}</td></tr>"
            )
        parts.append("</tbody></table>")
    for finding in record["findings"]:
        where = f" at {_site(finding['call_site'])}" if finding["call_site"] else ""
        source = f"<br>rows from {_site(finding['source'])}" if finding["source"] else ""
        fix = f"<br><b>Fix:</b> {_e(finding['fix'])}" if finding["fix"] else ""
        evidence = "".join(f"<pre>{_e(line)}</pre>" for line in finding["evidence"])
        parts.append(
            f"<div class='finding'><b>{_e(finding['kind'])}</b>{where}: "
            f"{_e(finding['message'])}{source}{fix}{evidence}</div>"
        )
    if record["plans"]:
        plans = json.dumps(record["plans"], indent=2, sort_keys=True, ensure_ascii=False)
        parts.append(f"<details><summary>plans</summary><pre>{_e(plans)}</pre></details>")
    parts.append("</section>")
    return "".join(parts)


def render(report: Report) -> str:
    records = report["tests"]
    chosen = delta_of(report)
    before = chosen[1]["before"] if chosen else {}
    regressed = {c["nodeid"] for c in chosen[1]["regressions"]} if chosen else set()
    totals = report["totals"]
    server = report["server"]
    environment = ", ".join(
        f"{key} {value}" for key, value in sorted(report["environment"].items()) if value
    )
    body = [
        f"<h1>sqlaperf: {plural(totals['statements'], 'statement')} in "
        f"{plural(totals['tests'], 'test')}</h1>",
        f"<p class='muted'>{_e(server['description'] if server else 'no server started')}"
        f" · {_e(environment)} · run {_e(report['run']['run_id'])}"
        f" · {_e(report['run']['finished'])}</p>",
    ]
    if chosen:
        label, comparison = chosen
        body.append(
            f"<p>Against <code>{_e(label)}</code>: "
            f"<span class='{'regression' if comparison['regressions'] else 'improvement'}'>"
            f"{plural(len(comparison['regressions']), 'regression')}</span>, "
            f"{plural(len(comparison['improvements']), 'improvement')}, "
            f"{plural(len(comparison['new']), 'new test')}.</p>"
        )
        if comparison["environment"]:
            body.append(
                f"<p class='regression'>Environment differs: "
                f"{_e('; '.join(comparison['environment']))}; differences are not regressions."
                "</p>"
            )
        if comparison["regressions"]:
            body.append("<h2>Regressions</h2><ul>")
            for change in comparison["regressions"]:
                reasons = "".join(f"<li>{_e(reason)}</li>" for reason in change["reasons"])
                grown = "".join(
                    f"<li>+{fp['after'] - fp['before']} ×{fp['after']} <pre>{_e(fp['sql'])}</pre>"
                    + "".join(f"at {_site(site)}<br>" for site in fp["call_sites"])
                    + "</li>"
                    for fp in change["fingerprints"]
                )
                body.append(
                    f"<li><code>{_e(change['nodeid'])}</code>: {change['before']} → "
                    f"{change['after']}<ul>{reasons}{grown}</ul></li>"
                )
            body.append("</ul>")
    body += ["<h2>Statements per test</h2>", _chart(records, before)]
    body += ["<h2>Tests</h2>", _tests_table(records, before, regressed)]
    if report["unused_indexes"]:
        items = "".join(f"<li><code>{_e(index)}</code></li>" for index in report["unused_indexes"])
        body.append(f"<h2>Indexes no statement used</h2><ul>{items}</ul>")
    body.append("<h2>Statements, findings and plans</h2>")
    body += [_test_section(index, record) for index, record in enumerate(records)]
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<link rel='icon' href='data:,'>"
        f"<title>sqlaperf report</title><style>{STYLE}</style></head><body>"
        + "\n".join(body)
        + f"<script>{SCRIPT}</script></body></html>\n"
    )
