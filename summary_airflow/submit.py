"""What the operator submits, as plain values (unit-tested): each stage's spark-submit application arguments,
the Case I/II/III stages a classification leaves to run, and the months a run's stage reports applied."""

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from spark_jobs.names import CASE_STAGES, CASES, STAGES


def application_args(config_path: str | Path, mode: str, report_file: str | Path, start_month: str | None = None,
                     end_month: str | None = None, run_id: str | None = None, backfill_filter: str | None = None,
                     dry_run: bool = False, lock_wait_seconds: int | None = None, paths: Iterable[str] = (),
                     through_newest: bool = False) -> list[str]:  # fmt: skip
    """``through_newest``: give only ``--start-month`` (check: from there to the newest month)."""
    if mode not in STAGES:
        raise ValueError(f"unknown stage {mode!r}; the jobs accept {', '.join(STAGES)}")
    args = ["--config", str(config_path), "--mode", mode, "--report-file", str(report_file)]
    if start_month and through_newest:
        args += ["--start-month", start_month]
    elif start_month:
        args += ["--start-month", start_month, "--end-month", end_month or start_month]
    # `--flag=value` in one argv element: a value that begins with "-" is data, never an option of its own.
    args += [f"--path={path}" for path in paths]
    if run_id:
        args += ["--run-id", run_id]
    if backfill_filter:
        args.append(f"--backfill-filter={backfill_filter}")
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


def touched_months(reports: Iterable[Mapping[str, Any] | None]) -> tuple[str | None, str | None]:
    """(first, last) month the given stage reports applied; (None, None) when they applied none (dry runs do not count)."""
    months = sorted(m for r in reports if r and not r.get("dry_run") for m in r.get("months") or ())
    return (months[0], months[-1]) if months else (None, None)
