"""The spark-submit application arguments of every stage, as plain lists (unit-tested)."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spark_jobs.names import CASE_STAGES, CASES, STAGES


def application_args(config_path: str | Path, mode: str, report_file: str | Path, start_month: str | None = None,
                     end_month: str | None = None, run_id: str | None = None, backfill_filter: str | None = None,
                     dry_run: bool = False, lock_wait_seconds: int | None = None) -> list[str]:  # fmt: skip
    if mode not in STAGES:
        raise ValueError(f"unknown stage {mode!r}; the jobs accept {', '.join(STAGES)}")
    args = ["--config", str(config_path), "--mode", mode, "--report-file", str(report_file)]
    if start_month:
        args += ["--start-month", start_month, "--end-month", end_month or start_month]
    if run_id:
        args += ["--run-id", run_id]
    if backfill_filter:
        args += ["--backfill-filter", backfill_filter]
    if dry_run:
        args.append("--dry-run")
    if lock_wait_seconds is not None:
        args += ["--lock-wait-seconds", str(lock_wait_seconds)]
    return args


def cases_to_run(classify_report: Mapping[str, Any] | None) -> list[str]:
    """Task ids of the Case I/II/III stages that have accounts to apply (none for a dry run)."""
    if not classify_report or classify_report.get("dry_run"):
        return []
    accounts = classify_report.get("accounts_by_case", {})
    return [case_task_id(case) for case in CASES if accounts.get(case)]


def case_task_id(case: str) -> str:
    """Task id of the stage applying ``case`` ("I" -> ``case_i``): the stage name, as a valid task id."""
    return CASE_STAGES[case].replace("-", "_")
