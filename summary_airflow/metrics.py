"""The status API's figures in Prometheus' text format: ``GET /summary-pipeline/metrics``, one series per config.

What a monitor alerts on without reading the page: records no backfill has
applied, months the summary lacks or trails the source by, the last quality
gate, a held run lock. Built from what ``/status`` and the page already read
(the same catalog reads, the same cache), so scraping costs no extra commits or
scans. Pure: ``prometheus_text`` formats, the status API does the I/O.
"""

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from spark_jobs.months import is_valid_month, month_number

# name -> (type, help); the order of the output
METRICS = {
    "summary_pipeline_up": ("gauge", "1 when the config's tables could be read, 0 when the catalog failed"),
    "summary_pipeline_unapplied_source_records": ("gauge", "1 when the source has snapshots no backfill has applied"),
    "summary_pipeline_source_commit_timestamp_seconds": ("gauge", "when the source's current snapshot was committed"),
    "summary_pipeline_summary_commit_timestamp_seconds": ("gauge", "when the summary's current snapshot was committed"),
    "summary_pipeline_months_behind": ("gauge", "months from the summary's newest month to the source's newest month"),
    "summary_pipeline_months_missing": ("gauge", "months with source records and no summary rows"),
    "summary_pipeline_quality_gate_passed": ("gauge", "1 when the newest quality gate passed, 0 when it failed"),
    "summary_pipeline_quality_gate_violations": ("gauge", "rows breaking a table rule at the newest quality gate"),
    "summary_pipeline_quality_gate_timestamp_seconds": ("gauge", "when the newest quality gate finished"),
    "summary_pipeline_run_lock_held": ("gauge", "1 while a stage holds the tables' run lock"),
    "summary_pipeline_forward_months_since_maintenance": ("gauge", "forward months applied since the last maintenance"),
}


def config_metrics(status: Mapping[str, Any] | None, page: Mapping[str, Any] | None) -> dict[str, float]:
    """One config's values by metric name; a figure nobody could read is left out rather than reported as 0."""
    if status is None or "error" in status:
        return {"summary_pipeline_up": 0}
    values: dict[str, float] = {
        "summary_pipeline_up": 1,
        "summary_pipeline_unapplied_source_records": int(bool(status.get("unapplied_source_records"))),
        "summary_pipeline_run_lock_held": int(bool(status.get("run_lock"))),
        "summary_pipeline_forward_months_since_maintenance": int(status.get("forward_months_since_maintenance") or 0),
    }
    for metric, key in (("source", "source_committed_at"), ("summary", "summary_committed_at")):
        stamp = _seconds(status.get(key))
        if stamp is not None:
            values[f"summary_pipeline_{metric}_commit_timestamp_seconds"] = stamp
    months = [m for m in (page or {}).get("months") or [] if is_valid_month(m.get("month"))]
    if months:
        newest_source = max((m["month"] for m in months if m.get("source_records")), default=None)
        newest_summary = max((m["month"] for m in months if m.get("summary_rows")), default=None)
        if newest_source is not None:
            behind = month_number(newest_source) - month_number(newest_summary) if newest_summary else len(months)
            values["summary_pipeline_months_behind"] = max(behind, 0)
        values["summary_pipeline_months_missing"] = sum(1 for m in months if m.get("missing_in_summary"))
    gate = (page or {}).get("quality_gate")
    if gate:
        values["summary_pipeline_quality_gate_passed"] = int(bool(gate.get("passed")))
        values["summary_pipeline_quality_gate_violations"] = int(gate.get("violations") or 0)
        stamp = _seconds(gate.get("finished_at"))
        if stamp is not None:
            values["summary_pipeline_quality_gate_timestamp_seconds"] = stamp
    return values


def prometheus_text(configs: Iterable[tuple[str, Mapping[str, Any] | None, Mapping[str, Any] | None]]) -> str:
    """The exposition text of (config name, its status, its page data) for every config a reader may see."""
    per_config = [(name, config_metrics(status, page)) for name, status, page in configs]
    lines = []
    for metric, (kind, text) in METRICS.items():
        samples = [(name, values[metric]) for name, values in per_config if metric in values]
        if not samples:
            continue
        lines += [f"# HELP {metric} {text}", f"# TYPE {metric} {kind}"]
        lines += [f'{metric}{{config="{_label(name)}"}} {_number(value)}' for name, value in samples]
    return "\n".join(lines) + "\n"


def _seconds(text: object) -> float | None:
    """Seconds since the epoch of the ISO times the status ("2026-12-08T00:25:50+00:00") and the page
    ("2026-12-08 00:25:50Z") give."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)).timestamp()


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
