"""Which month a run processes, and which months an initial load chains."""

import datetime as dt
from collections.abc import Mapping
from typing import Any

from spark_jobs.config import SummaryConfig
from spark_jobs.months import add_months, is_valid_month, month_range


def run_month(params: Mapping[str, Any] | None, data_interval_start: dt.datetime | None, run_after: dt.datetime | None) -> str:
    """The month a forward run processes.

    A ``month`` param wins (manual runs); else the start of the run's data
    interval (the month that just ended: a run on 2024-03-01 processes
    2024-02); else, for a manual run without a logical date, the month before
    the one it runs in.
    """
    month = (params or {}).get("month")
    if month:
        if not is_valid_month(month):
            raise ValueError(f"param month {month!r} is not a YYYY-MM month")
        return month
    if data_interval_start is not None:
        return data_interval_start.strftime("%Y-%m")
    when = run_after or dt.datetime.now(dt.timezone.utc)
    return add_months(when.strftime("%Y-%m"), -1)


def initial_load_months(cfg: SummaryConfig) -> list[str]:
    initial = cfg.airflow.initial_load
    return month_range(initial["start_month"], initial["end_month"]) if initial else []


def first_scheduled_month(cfg: SummaryConfig) -> str | None:
    """The forward DAG's first month: airflow.start_month, else the month after the initial load."""
    if cfg.airflow.start_month:
        return cfg.airflow.start_month
    months = initial_load_months(cfg)
    return add_months(months[-1], 1) if months else None
