"""The validation report (JSON and a self-contained HTML page) and the ``fail`` policy gate."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from xfm_pipeline.data.validation.outcome import DataValidationError, UnitOutcome


def build_report(outcomes: Iterable[UnitOutcome], max_listed: int = 20) -> dict[str, Any]:
    """Per unit: source, policy, counts, per-expectation results and the first bad records.

    ``quarantined`` counts records written to the quarantine file, which happens under the
    ``quarantine`` policy only; ``failed`` counts bad records under either policy.
    """
    units: dict[str, Any] = {}
    for o in outcomes:
        failed = len(o.reasons)
        units[o.unit] = {
            "dataset": o.dataset,
            "catalog_entry": o.catalog_entry,
            "source": o.source,
            "suite": o.suite,
            "policy": o.policy,
            "records": o.n_records,
            "valid": o.n_records - failed,
            "failed": failed,
            "quarantined": failed if o.policy == "quarantine" else 0,
            "quarantine_file": f"{o.dataset}_quarantine" if o.policy == "quarantine" else None,
            "success": failed == 0 and not o.dataset_errors,
            "blocking": o.blocking,
            "dataset_errors": list(o.dataset_errors),
            "expectations": [dict(e) for e in o.expectations],
            "failures": o.listing(max_listed),
            "failures_not_listed": max(0, failed - max_listed),
            "seconds": round(o.seconds, 3),
        }
    blocking = [name for name, u in units.items() if u["blocking"]]
    summary = {
        "units": len(units),
        "records": sum(u["records"] for u in units.values()),
        "valid": sum(u["valid"] for u in units.values()),
        "failed": sum(u["failed"] for u in units.values()),
        "quarantined": sum(u["quarantined"] for u in units.values()),
        "blocking": blocking,
        "passed": not blocking,
        "seconds": round(sum(u["seconds"] for u in units.values()), 3),
    }
    return {"summary": summary, "units": units}


def failure_message(report: dict[str, Any]) -> str | None:
    """One message for every blocking unit (None when nothing blocks).

    Names, per unit, the catalog entry and file, then each listed bad record's index, location and
    failed expectations; says how many records are not listed and how to switch policies.
    """
    blocking = [(name, report["units"][name]) for name in report["summary"]["blocking"]]
    if not blocking:
        return None
    parts = [f"data validation failed for {len(blocking)} dataset unit(s); nothing was published."]
    for name, u in blocking:
        parts.append(
            f"\n{u['catalog_entry']} ({u['source']}) [unit {name}, suite {u['suite']}, policy {u['policy']}]: {u['failed']} of {u['records']} records failed"
        )
        for error in u["dataset_errors"]:
            parts.append(f"  dataset: {error}")
        if u["policy"] == "fail":
            for f in u["failures"]:
                where = "" if f["location"] == f"[{f['index']}]" else f" ({f['location']})"
                parts.append(f"  record {f['index']}{where}:")
                parts.extend(f"    - {reason}" for reason in f["reasons"])
            if u["failures_not_listed"]:
                parts.append(
                    f"  ... and {u['failures_not_listed']} more bad record(s); raise data_validation.max_listed_records "
                    "to list more, or quarantine to get every one with its reasons"
                )
    fail_datasets = sorted({u["dataset"] for _, u in blocking if u["policy"] == "fail" and u["failed"]})
    if fail_datasets:
        parts.append(
            "\nFix the data, or quarantine bad records instead of failing: " + ", ".join(f"data_validation.policies.{d}: quarantine" for d in fail_datasets)
        )
    return "\n".join(parts)


def enforce_policies(report: dict[str, Any]) -> dict[str, Any]:
    """Raise :class:`DataValidationError` with :func:`failure_message` when a unit blocks.

    Returns:
        The report's summary (the gate token downstream publishing waits for).
    """
    message = failure_message(report)
    if message:
        raise DataValidationError(message)
    return dict(report["summary"])


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;font-size:.9em;vertical-align:top}
th{background:#f3f3f3}.ok{color:#176f2c}.bad{color:#b00020;font-weight:bold}.warn{color:#a15c00}
code{font-size:.85em}details{margin:.4em 0}
"""


def render_html(report: dict[str, Any]) -> str:
    """A self-contained HTML page: summary table, then expectations and bad records per unit."""
    e = html.escape
    s = report["summary"]
    verdict = "passed" if s["passed"] else f"BLOCKED by {', '.join(s['blocking'])}"
    rows = []
    for name, u in report["units"].items():
        status = "blocking" if u["blocking"] else "ok" if u["success"] else "quarantined"
        cls = {"blocking": "bad", "ok": "ok", "quarantined": "warn"}[status]
        rows.append(
            f"<tr><td><a href='#{e(name)}'>{e(name)}</a></td>"
            f"<td><code>{e(u['catalog_entry'])}</code><br>{e(u['source'])}</td>"
            f"<td>{e(u['suite'])}</td><td>{e(u['policy'])}</td><td>{u['records']}</td><td>{u['valid']}</td>"
            f"<td>{u['failed']}</td><td>{u['quarantined']}</td><td class='{cls}'>{status}</td>"
            f"<td>{u['seconds']:.2f}</td></tr>"
        )
    body = [
        "<h1>Data validation report</h1>",
        f"<p>{s['units']} units, {s['records']} records: {s['valid']} valid, {s['failed']} failed, "
        f"{s['quarantined']} quarantined. "
        f"Verdict: <span class='{'ok' if s['passed'] else 'bad'}'>{e(verdict)}</span>.</p>",
        "<table><tr><th>unit</th><th>catalog entry / source</th><th>suite</th><th>policy</th><th>records</th>"
        "<th>valid</th><th>failed</th><th>quarantined</th><th>status</th><th>seconds</th></tr>",
        *rows,
        "</table>",
    ]
    for name, u in report["units"].items():
        body.append(f"<h2 id='{e(name)}'>{e(name)}</h2>")
        for error in u["dataset_errors"]:
            body.append(f"<p class='bad'>{e(error)}</p>")
        body.append("<table><tr><th>expectation</th><th>column</th><th>rule</th><th>success</th><th>unexpected</th></tr>")
        for x in u["expectations"]:
            cls = "ok" if x["success"] else "bad"
            body.append(
                f"<tr><td><code>{e(x['expectation'])}</code></td><td><code>{e(str(x['column'] or ''))}</code></td>"
                f"<td>{e(x['description'])}</td><td class='{cls}'>{x['success']}</td>"
                f"<td>{x['unexpected_count']}</td></tr>"
            )
        body.append("</table>")
        if u["failures"]:
            items = "".join(
                f"<li>record {f['index']} ({e(f['location'])})<ul>{''.join(f'<li>{e(r)}</li>' for r in f['reasons'])}</ul></li>" for f in u["failures"]
            )
            more = f"<p>... and {u['failures_not_listed']} more.</p>" if u["failures_not_listed"] else ""
            body.append(f"<details open><summary>{u['failed']} bad record(s)</summary><ul>{items}</ul>{more}</details>")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Data validation report</title>"
        f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )
