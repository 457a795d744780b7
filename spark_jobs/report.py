"""The one-line JSON report every run prints last (and writes to --report-file).

Airflow tasks push it to XCom; people read it in the task log. Its fields are
defined here and nowhere else.
"""

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from spark_jobs import __version__
from spark_jobs.names import CASES

COUNTERS = (
    "records_read",
    "records_rejected",
    "superseded_records",
    "version_conflicts",
    "stale_records",
    "unchanged_records",
    "changed_records",
    "removed_rows",
)


def _cases() -> dict[str, int]:
    return {k: 0 for k in CASES}


@dataclass
class BatchCounts:
    """What one batch (a month, or an initial range) did."""

    months: list = field(default_factory=list)
    records_read: int = 0
    records_rejected: int = 0
    superseded_records: int = 0
    version_conflicts: int = 0
    stale_records: int = 0
    unchanged_records: int = 0
    changed_records: int = 0
    removed_rows: int = 0  # summary rows whose record the source no longer holds (removed by a MERGE, overwrite or delete)
    records_by_case: dict = field(default_factory=_cases)
    accounts_by_case: dict = field(default_factory=_cases)
    rows_written: dict = field(default_factory=lambda: {"summary": 0, "latest_summary": 0})
    seconds: dict = field(default_factory=dict)


@dataclass
class RunReport:
    mode: str
    config: str
    run_id: str
    status: str = "running"
    version: str = __version__  # of the package that ran the stage
    dry_run: bool = False
    months: list = field(default_factory=list)
    records_read: int = 0
    records_rejected: int = 0
    superseded_records: int = 0
    version_conflicts: int = 0
    stale_records: int = 0
    unchanged_records: int = 0
    changed_records: int = 0
    removed_rows: int = 0
    records_by_case: dict = field(default_factory=_cases)
    accounts_by_case: dict = field(default_factory=_cases)
    rows_written: dict = field(default_factory=lambda: {"summary": 0, "latest_summary": 0, "rejects": 0, "source": 0})
    recovered_runs: list = field(default_factory=list)
    details: dict = field(default_factory=dict)
    error: str | None = None
    exit_code: int | None = None  # the process's exit code (spark_jobs.names.EXIT_*), set when it finishes
    seconds: float = 0.0
    _started: float = field(default_factory=time.monotonic, repr=False)

    def add(self, batch: BatchCounts) -> None:
        self.months += [m for m in batch.months if m not in self.months]
        for name in COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(batch, name))
        for case in CASES:
            self.records_by_case[case] += batch.records_by_case[case]
            self.accounts_by_case[case] += batch.accounts_by_case[case]
        for table, rows in batch.rows_written.items():
            self.rows_written[table] = self.rows_written.get(table, 0) + (rows or 0)
        phases = self.details.setdefault("phase_seconds", {})
        for phase, seconds in batch.seconds.items():
            phases[phase] = round(phases.get(phase, 0.0) + seconds, 3)

    def finish(self, status: str = "ok", error: str | None = None, exit_code: int | None = None) -> "RunReport":
        self.status = status
        self.error = error
        self.exit_code = exit_code if exit_code is not None else (0 if status == "ok" else None)
        self.seconds = round(time.monotonic() - self._started, 3)
        return self

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_started")
        for optional in ("error", "exit_code"):
            if data[optional] is None:
                data.pop(optional)
        if not data["details"]:
            data.pop("details")
        return data

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=False, default=str)


def summarize(report: dict[str, Any]) -> str:
    """A few human lines from a report dict (``python -m spark_jobs.report FILE``)."""
    lines = [
        f"{report['mode']} {report['run_id']}: {report['status']}, {report['seconds']} s",
        f"  records read {report['records_read']}, rejected {report['records_rejected']}, "
        f"superseded in the batch {report.get('superseded_records', 0)}, stale {report['stale_records']}, "
        f"already applied {report['unchanged_records']}, changed {report['changed_records']}, "
        f"removed from the source {report.get('removed_rows', 0)}",
        "  records by case: " + ", ".join(f"{k}={v}" for k, v in report["records_by_case"].items()),
        "  accounts by case: " + ", ".join(f"{k}={v}" for k, v in report["accounts_by_case"].items()),
        "  rows written: " + ", ".join(f"{k}={v}" for k, v in report["rows_written"].items()),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as handle:
            print(summarize(json.loads(handle.read())))
