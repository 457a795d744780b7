"""The pipeline page: one config's figures, gathered without Spark, drawn as one self-contained HTML page.

``page_data`` reads Iceberg metadata through PyIceberg (partition statistics from the manifests; only the small
rejects table is scanned) and the JSON run reports every stage task leaves in ``settings.reports_dir()``.
``render_page`` is a pure function of that data: inline CSS and SVG, no JavaScript, nothing fetched, so the
page works inside the Airflow UI's sandboxed iframe and tests check figures and pictures separately.
A missing table or reports folder gives an empty section; any other failure becomes a note on the page.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from spark_jobs.catalogs import warehouse_location
from spark_jobs.config import SummaryConfig
from spark_jobs.names import (
    CASE_I,
    CASE_II,
    CASE_III,
    CASE_STAGES,
    CASES,
    CHECK,
    CLASSIFY,
    FORWARD,
    INGEST,
    INITIAL,
    MAINTENANCE,
    REBUILD_LATEST,
    RUN_ID,
)
from summary_airflow import settings
from summary_airflow.access import config_dag_ids
from summary_airflow.metadata import load_table

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.table import Table

RECENT_BACKFILLS = 10  # classifications shown in the accounts-per-case chart
RECENT_STAGE_RUNS = 40  # stage runs shown in the time chart
RECENT_REJECT_RUNS = 20  # runs shown in the rejects table
REPORTS_READ = 500  # newest report files read per config: the folder grows with every task try
REJECTS_READ = 200_000  # rejected records read per page load (three short columns)
REPORT_MAX_BYTES = 1 << 20  # a stage's report is a few KiB; anything larger in the folder is not one

SUMMARY_COLOUR = "#4c78a8"
SOURCE_COLOUR = "#f58518"
FLAG_COLOUR = "#fbd3d0"  # the band behind a month with source records but no summary rows
FLAG_TEXT = "#b3261e"
CASE_COLOURS = {"I": "#54a24b", "II": "#eeca3b", "III": "#b279a2"}
STAGE_COLOURS = {
    INGEST: "#79706e",
    INITIAL: "#72b7b2",
    FORWARD: "#72b7b2",
    CLASSIFY: "#e45756",
    CASE_I: CASE_COLOURS["I"],
    CASE_II: CASE_COLOURS["II"],
    CASE_III: CASE_COLOURS["III"],
    MAINTENANCE: "#9d755d",
    CHECK: "#ff9da6",
    REBUILD_LATEST: "#bab0ac",
}
OTHER_COLOUR = "#888888"


# ---------------------------------------------------------------------------------------
# Gathering
# ---------------------------------------------------------------------------------------


def page_data(cfg: SummaryConfig, warehouse: str | None = None, reports_dir: Path | None = None) -> dict[str, Any]:
    """Everything the page shows for ``cfg``, as plain JSON-ready values (also served by /page-data/NAME)."""
    notes: list[str] = []
    warehouse = warehouse_location(cfg, warehouse)
    table = lambda identifier: load_table(cfg, warehouse, identifier)
    source_month = cfg.source_column(cfg.month_column)
    left_out: list[str] = []  # report files that are not a stage's report
    reports = _guarded(
        notes, "run reports", lambda: read_reports(reports_dir or settings.reports_dir(), cfg, left_out=left_out), []
    )
    summary = _guarded(notes, cfg.summary_table, lambda: month_counts(table(cfg.summary_table), cfg.month_column), None)
    source = _guarded(notes, cfg.source_table, lambda: month_counts(table(cfg.source_table), source_month), None)
    rejects = _guarded(notes, cfg.rejects_table, lambda: rejects_by_run(table(cfg.rejects_table), notes=notes), [])
    for identifier, counts, column in ((cfg.summary_table, summary, cfg.month_column), (cfg.source_table, source, source_month)):
        if counts is not None and counts.unpartitioned:
            notes.append(f"{identifier} is not partitioned by {column}: its rows per month cannot be read from metadata")
    return {
        **empty_page(cfg),
        "months": merge_months(summary, source),
        "backfills": _guarded(notes, "backfill reports", lambda: backfill_runs(reports, left_out=left_out), []),
        "rejects": rejects,
        "quality_gate": _guarded(notes, "quality gate report", lambda: quality_gate(reports, left_out), None),
        "stage_runs": _guarded(notes, "stage reports", lambda: stage_runs(reports, left_out=left_out), []),
        "notes": notes + _left_out_note(left_out),
    }


def _left_out_note(left_out: Sequence[str]) -> list[str]:
    names = sorted(set(left_out))
    if not names:
        return []
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return [f"{len(names)} report file(s) left out (larger than 1 MiB, not complete JSON, or not a stage's report): {shown}"]


def empty_page(cfg: SummaryConfig, note: str | None = None) -> dict[str, Any]:
    """A section with nothing read yet: what a config shows when its reads fail or take too long."""
    return {
        "name": cfg.name,
        "config": str(cfg.path),
        "summary_table": cfg.summary_table,
        "source_table": cfg.source_table,
        "rejects_table": cfg.rejects_table,
        "month_column": cfg.month_column,
        "generated_at": _iso(dt.datetime.now(dt.timezone.utc)),
        "months": [],
        "backfills": [],
        "rejects": [],
        "quality_gate": None,
        "stage_runs": [],
        "notes": [note] if note else [],
    }


def _guarded(notes: list[str], what: str, read: Callable[[], Any], empty: Any) -> Any:
    """One section's reading; a failure (an unreachable catalog, say) is noted on the page, not fatal to the rest."""
    try:
        return read()
    except Exception as exc:  # shown to the reader instead of failing the whole page
        notes.append(f"{what}: could not be read: {type(exc).__name__}: {exc}")
        return empty


# --- months: partition statistics ------------------------------------------------------


@dataclass(frozen=True)
class MonthCounts:
    """Rows per month of one table: data records minus position-deleted ones, from partition statistics."""

    rows: dict[str, int]
    data_records: dict[str, int]
    deleted_records: dict[str, int]
    unpartitioned: bool = False


def month_counts(table: Table | None, column: str) -> MonthCounts | None:
    """Rows per value of ``column``'s identity partition, from the manifests (no data file is read); None: no table."""
    if table is None:
        return None
    if table.current_snapshot() is None:
        return MonthCounts({}, {}, {})
    found = partition_field(table, column)
    if found is None:
        return MonthCounts({}, {}, {}, unpartitioned=True)
    field, spec_ids = found
    return counts_per_partition(table.inspect.partitions(), field, spec_ids)


def partition_field(table: Table, column: str) -> tuple[str, set[int]] | None:
    """The identity partition field on ``column`` and the ids of the specs that have it, or None when none has."""
    from pyiceberg.transforms import IdentityTransform

    try:
        source_id = table.schema().find_field(column, case_sensitive=False).field_id
    except ValueError:
        return None
    found = {
        spec_id: field.name
        for spec_id, spec in table.specs().items()
        for field in spec.fields
        if field.source_id == source_id and isinstance(field.transform, IdentityTransform)
    }
    return (next(iter(found.values())), set(found)) if found else None


NOT_BY_MONTH = "(not by month)"  # files written under a partition spec without the month field


def counts_per_partition(partitions: pa.Table, field: str, spec_ids: set[int]) -> MonthCounts:
    """Sum ``inspect.partitions()`` rows per value of ``field``; files of specs without it count as NOT_BY_MONTH.

    Merge-on-read tables (summary) hold deleted rows in their data files until maintenance compacts them: a
    month's rows are its data records minus its position deletes.
    """
    data: dict[str, int] = {}
    deleted: dict[str, int] = {}
    for row in partitions.to_pylist():
        value = (row["partition"] or {}).get(field)
        month = NOT_BY_MONTH if row["spec_id"] not in spec_ids else "(null)" if value is None else str(value)
        data[month] = data.get(month, 0) + row["record_count"]
        deleted[month] = deleted.get(month, 0) + row["position_delete_record_count"]
    rows = {m: max(data[m] - deleted[m], 0) for m in data}
    return MonthCounts(rows, data, deleted)


def merge_months(summary: MonthCounts | None, source: MonthCounts | None) -> list[dict[str, Any]]:
    """One entry per month of either table, flagging months with source records but no summary rows."""
    in_summary = summary.rows if summary else {}
    in_source = source.rows if source else {}
    months = []
    for month in sorted(set(in_summary) | set(in_source)):
        rows, records = in_summary.get(month, 0), in_source.get(month, 0)
        months.append(
            {
                "month": month,
                "summary_rows": rows,
                "source_records": records,
                "summary_deleted_records": summary.deleted_records.get(month, 0) if summary else 0,
                "missing_in_summary": records > 0 and rows == 0,
            }
        )
    return months


# --- rejects: a scan of the (small) rejects table --------------------------------------


def rejects_by_run(
    table: Table | None, runs: int = RECENT_REJECT_RUNS, limit: int = REJECTS_READ, notes: list[str] | None = None
) -> list[dict[str, Any]]:
    """Rejected records per run and reason for the ``runs`` newest runs, newest first, from at most ``limit`` rows
    (the rejects table is never expired: a page load must not read all of it; ``notes`` hears when it stopped)."""
    if table is None or table.current_snapshot() is None:
        return []
    rows = table.scan(selected_fields=(RUN_ID, "reason", "rejected_at"), limit=limit).to_arrow()
    if rows.num_rows >= limit and notes is not None:
        notes.append(f"rejects: only {limit} rejected records were read; query the table for the full count")
    grouped = rows.group_by([RUN_ID, "reason"]).aggregate([([], "count_all"), ("rejected_at", "min"), ("rejected_at", "max")])
    found = [
        {
            "run_id": g[RUN_ID],
            "reason": g["reason"],
            "records": g["count_all"],
            "first_rejected_at": _iso(g["rejected_at_min"]) if g["rejected_at_min"] else None,
            "last_rejected_at": _iso(g["rejected_at_max"]) if g["rejected_at_max"] else None,
        }
        for g in grouped.to_pylist()
    ]
    newest: dict[str, str] = {}  # run id -> its newest rejection: runs are ordered by it
    for g in found:
        newest[g["run_id"]] = max(newest.get(g["run_id"], ""), g["last_rejected_at"] or "")
    kept = sorted(newest, key=lambda r: (newest[r], r or ""), reverse=True)[:runs]
    order = {run: i for i, run in enumerate(kept)}
    return sorted(
        (g for g in found if g["run_id"] in order), key=lambda g: (order[g["run_id"]], -g["records"], g["reason"] or "")
    )


# --- run reports ----------------------------------------------------------------------


@dataclass(frozen=True)
class StoredReport:
    """One report file: which task try wrote it, when it last changed, and its content."""

    dag_id: str
    task_id: str
    try_number: int
    finished_at: str
    report: dict[str, Any]
    file_name: str = ""

    @property
    def mode(self) -> str:
        return str(self.report.get("mode", ""))


def read_reports(
    folder: Path, cfg: SummaryConfig, limit: int = REPORTS_READ, left_out: list[str] | None = None
) -> list[StoredReport]:
    """The newest ``limit`` reports of ``cfg``'s DAGs, oldest first; unreadable, oversized or malformed files are
    skipped and named in ``left_out`` (the folder is shared: any task may leave anything in it).

    A file is named by ``settings.report_file_name``: its DAG id must be one of the config's (one config's
    name may prefix another's, so a prefix is not enough), and its report must name the config file.
    """
    if not folder.is_dir():
        return []
    dag_ids = set(config_dag_ids(cfg))
    candidates = []
    for path in folder.glob(f"{cfg.name}_*.json"):
        parsed = settings.parse_report_file_name(path.name)
        if parsed is None or parsed[0] not in dag_ids:
            continue
        try:
            info = path.stat()
        except OSError:
            continue  # removed meanwhile
        if info.st_size <= REPORT_MAX_BYTES:
            candidates.append((info.st_mtime, path))
        elif left_out is not None:
            left_out.append(path.name)
    found = []
    for mtime, path in sorted(candidates, reverse=True)[:limit]:
        stored = _stored_report(path, mtime)
        if stored is None:
            if left_out is not None:
                left_out.append(path.name)
        elif Path(str(stored.report.get("config", ""))).name == Path(cfg.path).name:
            found.append(stored)
    return found[::-1]


def _stored_report(path: Path, mtime: float) -> StoredReport | None:
    parsed = settings.parse_report_file_name(path.name)
    if parsed is None:
        return None
    dag_id, task_id, _, try_number = parsed
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # being written, not text, or nested past the parser
        return None
    if not isinstance(report, dict) or not task_id:
        return None
    finished = _iso(dt.datetime.fromtimestamp(mtime, dt.timezone.utc))
    return StoredReport(dag_id, task_id, try_number, finished, report, path.name)


def _each(
    reports: Iterable[StoredReport], entry: Callable[[StoredReport], dict[str, Any]], left_out: list[str] | None = None
) -> list[dict[str, Any]]:
    """``entry`` of every report whose fields have the types a stage writes; one that does not is left out (and
    named in ``left_out``)."""
    entries = []
    for r in reports:
        try:
            entries.append(entry(r))
        except (TypeError, ValueError, AttributeError, OverflowError):
            if left_out is not None:
                left_out.append(r.file_name)
    return entries


def backfill_runs(
    reports: Sequence[StoredReport], runs: int = RECENT_BACKFILLS, left_out: list[str] | None = None
) -> list[dict[str, Any]]:
    """The ``runs`` newest classifications (oldest first): accounts per case, and how their case stages ended."""
    classified = [r for r in reports if r.mode == CLASSIFY][-runs:]
    case_modes = set(CASE_STAGES.values())
    stages: dict[str, dict[str, str]] = {}  # classification run id -> case stage -> status of its newest try
    for r in reports:
        if r.mode in case_modes:
            classification = str((r.report.get("details") or {}).get("classification", ""))
            stages.setdefault(classification, {})[r.mode] = str(r.report.get("status", ""))
    return _each(
        classified,
        lambda r: {
            "run_id": str(r.report.get("run_id", "")),
            "task_id": r.task_id,
            "finished_at": r.finished_at,
            "status": str(r.report.get("status", "")),
            "dry_run": bool(r.report.get("dry_run")),
            "accounts_by_case": {c: _count((r.report.get("accounts_by_case") or {}).get(c)) for c in CASES},
            "case_stages": stages.get(str(r.report.get("run_id", "")), {}),
        },
        left_out,
    )


def quality_gate(reports: Sequence[StoredReport], left_out: list[str] | None = None) -> dict[str, Any] | None:
    """The newest ``check`` report (the ``quality_gate`` task's): its verdict and the rules broken, or None."""
    for newest in reversed([r for r in reports if r.mode == CHECK]):
        gates = _each([newest], _gate, left_out)
        if gates:
            return gates[0]
    return None


def _gate(newest: StoredReport) -> dict[str, Any]:
    details = newest.report.get("details") or {}
    rules = details.get("checks") or {}
    broken = [
        {
            "rule": name,
            "violations": _count(result.get("violations")),
            "meaning": str(result.get("rule", "")),
            "examples": [str(e) for e in result.get("examples") or []],
        }
        for name, result in rules.items()
        if isinstance(result, dict) and result.get("violations")
    ]
    return {
        "run_id": str(newest.report.get("run_id", "")),
        "dag_id": newest.dag_id,
        "task_id": newest.task_id,
        "finished_at": newest.finished_at,
        "status": str(newest.report.get("status", "")),
        "passed": newest.report.get("status") == "ok" and not broken,
        "violations": _count(details.get("violations")) or sum(b["violations"] for b in broken),
        "months_checked": _scope(details.get("scope") or {}),
        "rules_checked": len(rules),
        "broken_rules": broken,
        "error": None if newest.report.get("error") is None else str(newest.report.get("error")),
    }


def _scope(scope: Mapping[str, Any]) -> str:
    """The months a check judged (the gate checks only what its run touched), e.g. "2024-02..2024-05"."""
    start, end = scope.get("start_month"), scope.get("end_month")
    if start and end:
        return f"{start}..{end}"
    return f"from {start}" if start else f"up to {end}" if end else "all"


def stage_runs(
    reports: Sequence[StoredReport], runs: int = RECENT_STAGE_RUNS, left_out: list[str] | None = None
) -> list[dict[str, Any]]:
    """Seconds of the ``runs`` newest stage runs, oldest first (forward runs with their phases)."""
    return _each(
        reports[-runs:],
        lambda r: {
            "dag_id": r.dag_id,
            "task_id": r.task_id,
            "try_number": r.try_number,
            "mode": r.mode,
            "run_id": str(r.report.get("run_id", "")),
            "status": str(r.report.get("status", "")),
            "seconds": _seconds(r.report.get("seconds")),
            "finished_at": r.finished_at,
            "phase_seconds": {
                str(k): _seconds(v) for k, v in dict((r.report.get("details") or {}).get("phase_seconds") or {}).items()
            },
        },
        left_out,
    )


def _count(value: Any) -> int:
    """A report's count; anything but a whole number of records is not one (ValueError: the report is left out)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"not a count: {value!r}")
    return value


def _seconds(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"not a duration: {value!r}")
    return float(value)


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)  # Iceberg's timestamp without zone, written as UTC
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


# ---------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------


def _e(value: object) -> str:
    """Every string from data goes through here (run ids, reasons and examples come from source records)."""
    return html.escape(str(value), quote=True)


CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 16px 24px; color: #1f2328; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 28px 0 2px; border-top: 2px solid #d0d7de; padding-top: 14px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.sub, .empty { color: #59636e; }
.note { color: #9a6700; }
table { border-collapse: collapse; margin: 4px 0 8px; }
td, th { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: 13px; }
.ok { color: #1a7f37; font-weight: 600; }
.failed { color: #b3261e; font-weight: 600; }
svg.chart { display: block; max-width: 100%; height: auto; }
.legend span { margin-right: 14px; }
.swatch { display: inline-block; width: 11px; height: 11px; margin-right: 4px; vertical-align: -1px; }
"""


def render_page(pages: Sequence[Mapping[str, Any]], problems: Sequence[str] = (), root: str = ".") -> str:
    """The whole page: one section per config. ``root`` is the app's root relative to the page, for links."""
    sections = "\n".join(render_section(page, root) for page in pages) or '<p class="empty">No valid pipeline config.</p>'
    invalid = ""
    if problems:
        invalid = "<h2>Configs not shown (invalid)</h2><ul>" + "".join(f"<li><pre>{_e(p)}</pre></li>" for p in problems) + "</ul>"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Summary pipeline</title>'
        f"<style>{CSS}</style></head><body>\n<h1>Summary pipeline</h1>"
        '<p class="sub">From Iceberg metadata (PyIceberg) and the stage run reports; reload for fresh figures.</p>\n'
        f"{sections}\n{invalid}\n</body></html>\n"
    )


def render_section(page: Mapping[str, Any], root: str = ".") -> str:
    """One config's section: months, backfills, rejects, quality gate, stage times."""
    name = str(page["name"])
    link = f"{root}/page/{quote(name)}"
    data = f"{root}/page-data/{quote(name)}"
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in page.get("notes", []))
    return (
        f'<section id="cfg-{_e(name)}"><h2><a href="{_e(link)}">{_e(name)}</a></h2>'
        f'<p class="sub">{_e(page["source_table"])} &rarr; {_e(page["summary_table"])} '
        f'&middot; generated {_e(page.get("generated_at", ""))} &middot; <a href="{_e(data)}">JSON</a></p>{notes}'
        f"{months_part(page['months'], str(page.get('month_column', 'month')))}"
        f"{backfills_part(page['backfills'])}{rejects_part(page['rejects'])}"
        f"{gate_part(page['quality_gate'])}{stages_part(page['stage_runs'])}</section>"
    )


def months_part(months: Sequence[Mapping[str, Any]], column: str) -> str:
    head = f"<h3>Rows per month ({_e(column)}): summary vs source</h3>"
    if not months:
        return head + '<p class="empty">No months yet in either table.</p>'
    missing = [m["month"] for m in months if m["missing_in_summary"]]
    warning = (
        f'<p class="failed">Source records but no summary rows: {_e(", ".join(missing))}</p>'
        if missing
        else '<p class="ok">Every month with source records has summary rows.</p>'
    )
    groups = [
        Group(
            str(m["month"]),
            (
                Bar(m["summary_rows"], "summary", f"{m['month']}: {m['summary_rows']:,} summary rows"),
                Bar(m["source_records"], "source", f"{m['month']}: {m['source_records']:,} source records"),
            ),
            bool(m["missing_in_summary"]),
        )
        for m in months
    ]
    colours = {"summary": SUMMARY_COLOUR, "source": SOURCE_COLOUR}
    legend = _legend({"summary rows": SUMMARY_COLOUR, "source records": SOURCE_COLOUR, "source but no summary": FLAG_COLOUR})
    return head + warning + legend + bar_chart(groups, colours, "months", "rows")


def backfills_part(backfills: Sequence[Mapping[str, Any]]) -> str:
    head = "<h3>Accounts per case, recent backfills</h3>"
    if not backfills:
        return head + '<p class="empty">No classification report yet.</p>'
    groups = [Group(b["finished_at"][5:16], tuple(_case_bar(b, c) for c in CASES)) for b in backfills]
    colours = {f"case-{c}": CASE_COLOURS[c] for c in CASES}
    legend = _legend({f"Case {c}": CASE_COLOURS[c] for c in CASES})
    rows = [
        [
            _e(b["finished_at"]),
            f"<code>{_e(b['run_id'])}</code>",
            _status(b["status"]) + (" (dry run)" if b["dry_run"] else ""),
            *[_num(b["accounts_by_case"][c]) for c in CASES],
            _e(", ".join(f"{k}: {v}" for k, v in sorted(b["case_stages"].items())) or "-"),
        ]
        for b in reversed(backfills)
    ]
    table = _table(["finished", "classification", "status", "#Case I", "#Case II", "#Case III", "case stages"], rows)
    return head + legend + bar_chart(groups, colours, "backfills", "accounts") + table


def _case_bar(backfill: Mapping[str, Any], case: str) -> Bar:
    accounts = backfill["accounts_by_case"][case]
    return Bar(accounts, f"case-{case}", f"{backfill['run_id']}: Case {case}, {accounts:,} accounts")


def rejects_part(rejects: Sequence[Mapping[str, Any]]) -> str:
    head = "<h3>Rejected records by run and reason</h3>"
    if not rejects:
        return head + '<p class="empty">No rejected records.</p>'
    rows = [
        [f"<code>{_e(r['run_id'])}</code>", _e(r["reason"]), _num(r["records"]), _e(r["last_rejected_at"] or "")] for r in rejects
    ]
    return head + _table(["run", "reason", "#records", "rejected at"], rows)


def gate_part(gate: Mapping[str, Any] | None) -> str:
    head = "<h3>Last quality gate (check)</h3>"
    if gate is None:
        return head + '<p class="empty">No check report yet.</p>'
    verdict = '<span class="ok">passed</span>' if gate["passed"] else '<span class="failed">failed</span>'
    summary = (
        f"<p>{verdict}: {gate['violations']:,} violation(s) over {gate['rules_checked']} rule(s), "
        f"months {_e(gate['months_checked'])} &middot; "
        f"task <code>{_e(gate['dag_id'])}.{_e(gate['task_id'])}</code> &middot; run <code>{_e(gate['run_id'])}</code>"
        f" &middot; {_e(gate['finished_at'])}</p>"
    )
    error = f'<p class="failed">{_e(gate["error"])}</p>' if gate.get("error") else ""
    if not gate["broken_rules"]:
        return head + summary + error
    rows = [
        [f"<code>{_e(b['rule'])}</code>", _num(b["violations"]), _e(b["meaning"]), _e("; ".join(b["examples"]))]
        for b in gate["broken_rules"]
    ]
    return head + summary + error + _table(["broken rule", "#violations", "meaning", "example keys"], rows)


def stages_part(runs: Sequence[Mapping[str, Any]]) -> str:
    head = "<h3>Seconds per stage run, recent runs</h3>"
    if not runs:
        return head + '<p class="empty">No run report yet.</p>'
    groups = []
    for r in runs:
        phases = ", ".join(f"{k} {v:g} s" for k, v in r["phase_seconds"].items())
        tooltip = f"{r['dag_id']}.{r['task_id']} try {r['try_number']} ({r['mode']}, {r['status']}): {r['seconds']:g} s"
        bar = Bar(r["seconds"], r["mode"], tooltip + (f"; {phases}" if phases else ""), failed=r["status"] != "ok")
        groups.append(Group(r["finished_at"][5:16], (bar,)))
    modes = list(dict.fromkeys(r["mode"] for r in runs))
    colours = {m: STAGE_COLOURS.get(m, OTHER_COLOUR) for m in modes}
    legend = _legend(colours, f'<span style="color:{FLAG_TEXT}">red outline: the run failed</span>')
    return head + legend + bar_chart(groups, colours, "stages", "seconds")


def _status(status: str) -> str:
    return f'<span class="{"ok" if status == "ok" else "failed"}">{_e(status)}</span>'


def _num(value: float) -> str:
    return f'<td class="num">{value:,}</td>'


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Cells are HTML already (escaped by the caller); a cell starting with <td is used as is (numbers)."""
    head = "".join(f'<th class="num">{_e(h[1:])}</th>' if h.startswith("#") else f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _legend(colours: Mapping[str, str], extra: str = "") -> str:
    items = "".join(f'<span><i class="swatch" style="background:{_e(c)}"></i>{_e(label)}</span>' for label, c in colours.items())
    return f'<p class="legend">{items}{extra}</p>'


# --- SVG: one grouped bar chart serves all three pictures ------------------------------


@dataclass(frozen=True)
class Bar:
    value: float
    series: str  # the key of its colour, and its CSS class
    tooltip: str
    failed: bool = False  # outlined in red


@dataclass(frozen=True)
class Group:
    label: str
    bars: tuple[Bar, ...]
    flagged: bool = False  # drawn on a red band, its label in red


CHART_HEIGHT = 220  # plot area
MARGIN_LEFT, MARGIN_TOP, MARGIN_BOTTOM = 64, 12, 58
MAX_LABELS = 30


def bar_chart(groups: Sequence[Group], colours: Mapping[str, str], name: str, unit: str) -> str:
    """Grouped vertical bars with a value axis; bars of value 0 are not drawn, so bars can be counted."""
    per_group = max(len(g.bars) for g in groups)
    slot = max(14.0, min(90.0, 1100 / len(groups)))
    width = MARGIN_LEFT + slot * len(groups) + 16
    height = MARGIN_TOP + CHART_HEIGHT + MARGIN_BOTTOM
    top, step = axis_scale(max((b.value for g in groups for b in g.bars), default=0))
    label_every = math.ceil(len(groups) / MAX_LABELS)
    parts = [_axis(top, step, width, unit)]
    for i, group in enumerate(groups):
        x0 = MARGIN_LEFT + i * slot
        show_label = group.flagged or i % label_every == 0 or i == len(groups) - 1
        parts.append(_group_svg(group, x0, slot, per_group, top, colours, show_label))
    return (
        f'<svg class="chart" data-chart="{_e(name)}" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'aria-label="{_e(name)} chart" width="{width:.0f}" height="{height}" viewBox="0 0 {width:.0f} {height}">'
        + "".join(parts)
        + "</svg>"
    )


def _group_svg(
    group: Group, x0: float, slot: float, per_group: int, top: float, colours: Mapping[str, str], show_label: bool
) -> str:
    baseline = MARGIN_TOP + CHART_HEIGHT
    classes = "group flagged" if group.flagged else "group"
    out = [f'<g class="{classes}" data-label="{_e(group.label)}">']
    if group.flagged:
        out.append(
            f'<rect class="flag" x="{x0:.1f}" y="{MARGIN_TOP}" width="{slot:.1f}" height="{CHART_HEIGHT}" fill="{FLAG_COLOUR}"/>'
        )
    bar_width = slot * 0.8 / per_group
    for j, bar in enumerate(group.bars):
        if bar.value <= 0:
            continue
        bar_height = max(1.0, CHART_HEIGHT * bar.value / top)
        x = x0 + slot * 0.1 + j * bar_width
        fill = _e(colours.get(bar.series, OTHER_COLOUR))
        failed = f' stroke="{FLAG_TEXT}" stroke-width="2"' if bar.failed else ""
        out.append(
            f'<rect class="bar {_e(bar.series)}{" failed" if bar.failed else ""}" x="{x:.1f}" y="{baseline - bar_height:.1f}" '
            f'width="{bar_width:.1f}" height="{bar_height:.1f}" fill="{fill}"{failed}><title>{_e(bar.tooltip)}</title></rect>'
        )
    if show_label:
        cx, cy = x0 + slot / 2, baseline + 10
        colour = f' fill="{FLAG_TEXT}" font-weight="bold"' if group.flagged else ' fill="#444"'
        out.append(
            f'<text class="label" x="{cx:.1f}" y="{cy}" font-size="11" text-anchor="end"{colour} '
            f'transform="rotate(-45 {cx:.1f} {cy})">{_e(group.label)}</text>'
        )
    out.append("</g>")
    return "".join(out)


def _axis(top: float, step: float, width: float, unit: str) -> str:
    """Value axis: a gridline and a compact label at every ``step`` up to ``top``."""
    baseline = MARGIN_TOP + CHART_HEIGHT
    out = []
    for k in range(round(top / step) + 1):
        value = step * k
        y = baseline - CHART_HEIGHT * value / top
        out.append(f'<line x1="{MARGIN_LEFT}" x2="{width - 8:.0f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e6ea"/>')
        out.append(
            f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#444">{compact(value)}</text>'
        )
    out.append(
        f'<text x="12" y="{MARGIN_TOP + CHART_HEIGHT / 2}" font-size="11" fill="#444" text-anchor="middle" '
        f'transform="rotate(-90 12 {MARGIN_TOP + CHART_HEIGHT / 2})">{_e(unit)}</text>'
    )
    return "".join(out)


def axis_scale(largest: float) -> tuple[float, float]:
    """(top, step) of a value axis: about four steps of 1, 2 or 5 times a power of ten, so labels stay round."""
    if largest <= 0:
        return 1.0, 1.0
    rough = largest / 4
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    return math.ceil(largest / step) * step, step


def compact(value: float) -> str:
    """1200 -> 1.2k, 3500000 -> 3.5M: axis labels stay short."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"
