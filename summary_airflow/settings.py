"""Names and places the Airflow side shares with the rest of the project: one place for each."""

import os
import re
from pathlib import Path

import spark_jobs
from spark_jobs.names import CONFIGS_DIR_ENV, REPORTS_DIR_ENV, SPARK_CONN_ENV, SPARK_EVENT_LOG_DIR_ENV, SPARK_HISTORY_URL_ENV

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # the checkout the project is installed from (pip install -e .)
ENTRY_SCRIPT = Path(spark_jobs.__file__).resolve().parent / "summary_pipeline.py"
DEFAULT_SPARK_CONN_ID = "spark_summary"


def configs_dir() -> Path:
    """Folder of pipeline configs: $SUMMARY_CONFIGS_DIR, else include/configs/ of the project."""
    return Path(os.environ.get(CONFIGS_DIR_ENV, PROJECT_ROOT / "include" / "configs"))


def spark_conn_id() -> str:
    return os.environ.get(SPARK_CONN_ENV, DEFAULT_SPARK_CONN_ID)


def pool_name(config_name: str) -> str:
    """One pool of one slot per table set: no two stages write the same tables at once."""
    return f"summary_{config_name}_writers"


def dag_id(config_name: str, kind: str) -> str:
    return f"{config_name}_{kind}"


def reports_dir() -> Path:
    """Where stage tasks write their run reports and the pipeline page reads them: $SUMMARY_REPORTS_DIR, else
    $AIRFLOW_HOME/summary_reports. Workers and the api-server must see the same folder (a shared volume)."""
    if os.environ.get(REPORTS_DIR_ENV):
        return Path(os.environ[REPORTS_DIR_ENV])
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow") / "summary_reports"


def spark_history_url() -> str | None:
    """The Spark history server's address as the UI's users reach it ($SUMMARY_SPARK_HISTORY_URL), for task links."""
    return os.environ.get(SPARK_HISTORY_URL_ENV, "").rstrip("/") or None


def event_log_dir() -> str | None:
    """Where stage tasks keep Spark event logs (for Spark's history server): $SUMMARY_SPARK_EVENT_LOG_DIR (a path or
    a URI such as s3a://bucket/spark-events; "off" turns them off), else $AIRFLOW_HOME/spark-events.

    Each stage task writes one rolling, zstd-compressed log there (about 1 MB for a tiny stage, far more at scale),
    with its catalog credentials redacted (``spark_jobs/storage/redaction.py``). A local folder is pruned by age at
    the start of every stage task (``retention.py``, ``airflow.spark_event_log_retention_days``); it is shared by
    every config, so the shortest retention applies. A URI folder is left to a history server's cleaner."""
    chosen = os.environ.get(SPARK_EVENT_LOG_DIR_ENV)
    if chosen == "off":
        return None
    if chosen:
        return chosen
    return str(Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow") / "spark-events")


def report_file_name(dag_id: str, task_id: str, run_id: str, try_number: int) -> str:
    """``{dag_id}.{task_id}.{run}.{try}.json``: one file per task try of each DAG run (``run``: the run id with
    everything but letters, digits, ``-`` and ``_`` replaced, so it holds no dot). Task ids may hold dots (groups)."""
    return f"{dag_id}.{task_id}.{re.sub(r'[^A-Za-z0-9_-]', '_', run_id)}.{try_number}.json"


def parse_report_file_name(name: str) -> tuple[str, str, str, int] | None:
    """(dag_id, task_id, run, try_number) of a ``report_file_name``; None for any other name."""
    parts = name.removesuffix(".json").split(".")
    if not name.endswith(".json") or len(parts) < 4 or not parts[-1].isdigit():
        return None
    return parts[0], ".".join(parts[1:-2]), parts[-2], int(parts[-1])


def seconds_from_env(env: str, default: float, most: float, zero_allowed: bool = False) -> float:
    """A number of seconds from ``$env`` (``default`` when unset), refused with the variable's name when it is not
    one, or is not within (0 or more, or more than 0) .. ``most``."""
    text = os.environ.get(env) or str(default)
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"${env}: {text!r} is not a number of seconds") from None
    if not (0 <= seconds if zero_allowed else 0 < seconds) or seconds > most:
        least = "at least 0" if zero_allowed else "more than 0"
        raise ValueError(f"${env}: {text!r} must be {least} and at most {most:g} seconds")
    return seconds
