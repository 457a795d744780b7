"""A SparkSubmitOperator that runs one pipeline stage and returns its JSON report (to XCom)."""

import json
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import BaseHook, BaseOperator, BaseOperatorLink, Context
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from airflow.sdk.types import TaskInstanceKey

from spark_jobs.config import load_config
from spark_jobs.errors import SourceDataError
from spark_jobs.ingest_paths import expand_paths
from spark_jobs.names import RETRYABLE_EXIT_CODES
from spark_jobs.storage.class_archive import with_driver_java_options
from spark_jobs.storage.jars import ensure_jars, with_jars
from spark_jobs.storage.redaction import redaction_conf
from summary_airflow import settings
from summary_airflow.months import run_month
from summary_airflow.retention import prune_stage_leftovers
from summary_airflow.submit import application_args, touched_months


class MissingSparkConnection(RuntimeError):
    pass


def event_log_conf() -> dict[str, str]:
    """Spark conf that keeps each stage's event log in ``settings.event_log_dir()`` (created when it is a path), and
    hides every catalog credential in it and in the UI (``spark_jobs/storage/redaction.py``; the job's session sets
    the same, this covers spark-submit's own JVM and its verbose output too)."""
    folder = settings.event_log_dir()
    if folder is None:
        return redaction_conf()
    if "://" not in folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        folder = Path(folder).resolve().as_uri()
    return {"spark.eventLog.enabled": "true", "spark.eventLog.dir": folder, **redaction_conf()}


def _read_report(path: str | Path) -> dict[str, Any] | None:
    """The stage's JSON report, or None when the process died before writing it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class SparkApplicationLink(BaseOperatorLink):
    """The task's "Spark application" link: its stage in the Spark history server ($SUMMARY_SPARK_HISTORY_URL).

    Airflow computes it on the worker when the task ends (and keeps it in XCom), when the stage's own UI has
    already closed: so the history server, which reads the event logs (SUMMARY_SPARK_EVENT_LOG_DIR), or nothing.
    """

    name = "Spark application"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        facts = getattr(operator, "spark_application", None) or {}  # what the stage's report said (execute)
        application, history = facts.get("application_id"), settings.spark_history_url()
        if not (history and application and facts.get("event_log")):
            return ""  # no history server, or no event log of this stage for it to show
        return f"{history}/history/{quote(str(application), safe='')}/jobs/"


class SummaryStageOperator(SparkSubmitOperator):
    """Run ``spark_jobs/summary_pipeline.py --mode <stage>`` and push the run report to XCom.

    ``months``: a fixed (start, end) pair, ``"run"`` for the month the run
    processes (see ``months.run_month``), ``"params"`` for the optional
    start/end month params of a manual backfill, or ``"touched"`` for the months
    the reports of the ``touched_from`` tasks applied (the quality gate; with
    ``through_newest``, from the first of them to the newest month, as a Case III
    correction rewrites every later row of its account). ``run_id_from`` names
    the task whose report carries the classification run id (case stages).
    ``path_param``: the param holding the files to ingest (``landing_dir`` when empty; only files under it).
    """

    ui_color = "#f4d7a1"
    operator_extra_links = (SparkApplicationLink(),)

    def __init__(
        self,
        *,
        config_path: str | Path,
        stage: str,
        months: Literal["run", "params", "touched"] | tuple[str, str] | None = None,
        touched_from: tuple[str, ...] = (),
        through_newest: bool = False,
        path_param: str | None = None,
        landing_dir: str | None = None,
        run_id_from: str | None = None,
        backfill_params: bool = False,
        lock_wait_seconds: int | None = None,
        quick_start: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("conn_id", settings.spark_conn_id())
        kwargs.setdefault("application", str(settings.ENTRY_SCRIPT))
        kwargs.setdefault("name", f"summary-{stage}")
        super().__init__(**kwargs)
        self.config_path = str(config_path)
        self.stage = stage
        self.months = months
        self.touched_from = tuple(touched_from)
        self.through_newest = through_newest
        self.path_param = path_param
        self.landing_dir = landing_dir
        self.run_id_from = run_id_from
        self.backfill_params = backfill_params
        self.lock_wait_seconds = lock_wait_seconds  # None: the job's default (names.LOCK_WAIT_SECONDS)
        self.quick_start = quick_start  # the config's spark_config.quick_start: the driver JVM compiles with C1 only
        self.spark_application: dict[str, Any] = {}  # the report's details.spark, for the task's link

    # The report is the task's XCom value: SparkSubmitOperator.execute returns nothing.
    def execute(self, context: Context) -> dict[str, Any]:  # type: ignore[override]
        self._check_connection()
        params = context.get("params") or {}
        start = end = None
        if self.months == "run":
            dag_run = context.get("dag_run")
            start = run_month(params, context.get("data_interval_start"), getattr(dag_run, "run_after", None))
        elif self.months == "params":
            start, end = params.get("start_month") or None, params.get("end_month") or None
            if end and not start:
                start = end
        elif self.months == "touched":
            reports = [context["ti"].xcom_pull(task_ids=task_id) for task_id in self.touched_from]
            start, end = touched_months(reports)
            if start is None:
                raise AirflowSkipException(f"{', '.join(self.touched_from)} applied no month: nothing to check")
        elif self.months:
            start, end = self.months
        paths: list[str] = []
        if self.path_param is not None:
            paths = [self._confined_path(params.get(self.path_param))]
        run_id = None
        if self.run_id_from:
            classified = context["ti"].xcom_pull(task_ids=self.run_id_from) or {}
            run_id = classified.get("run_id")
        report_dir = settings.reports_dir()
        report_dir.mkdir(parents=True, exist_ok=True)
        ti = context["ti"]
        report_file = report_dir / settings.report_file_name(ti.dag_id, ti.task_id, ti.run_id, ti.try_number)
        self.application_args = application_args(
            self.config_path,
            self.stage,
            report_file,
            start_month=start,
            end_month=end,
            run_id=run_id,
            backfill_filter=params.get("backfill_filter") if self.backfill_params else None,
            dry_run=bool(params.get("dry_run")) if self.backfill_params else False,
            lock_wait_seconds=self.lock_wait_seconds,
            paths=paths,
            through_newest=self.through_newest,
        )
        self._prune_old_files(report_dir)
        # The DAG author's conf wins; the driver JVM starts from the class archive when one is built (class_archive.py),
        # and compiles with C1 only for a config with spark_config.quick_start (the job sets the SQL side itself).
        self.conf = with_driver_java_options({**event_log_conf(), **(self.conf or {})}, quick_start=self.quick_start)
        # The Iceberg runtime and the catalog's jars reach the driver and every executor the supported way.
        ours = [str(path) for path in ensure_jars(log=self.log.info)]
        self.jars = ",".join(with_jars([jar for jar in (self.jars or "").split(",") if jar], ours))
        self.log.info("stage %s: spark-submit %s %s", self.stage, self.application, " ".join(self.application_args))
        try:
            super().execute(context)
        except AirflowException as exc:
            report = _read_report(report_file)
            self.spark_application = ((report or {}).get("details") or {}).get("spark") or {}
            if report:
                self.log.error("run report: %s", json.dumps(report, indent=1))
                context["ti"].xcom_push(key="report", value=report)  # a failed task has no return value to show it
            code = (report or {}).get("exit_code")
            if code is not None and code not in RETRYABLE_EXIT_CODES:
                # Bad input or broken table rules: the same run would fail the same way, so do not retry it.
                message = f"stage {self.stage} failed with exit code {code}, not retried: {report['error']}"  # type: ignore[index]  # the code came from it
                raise AirflowFailException(message) from exc
            raise  # killed, out of memory, a busy lock: retrying the stage is safe and may succeed
        report = json.loads(report_file.read_text(encoding="utf-8"))
        self.spark_application = (report.get("details") or {}).get("spark") or {}
        self.log.info("run report: %s", json.dumps(report, indent=1))
        event_log = (report.get("details", {}).get("spark") or {}).get("event_log")
        if event_log:
            self.log.info("Spark event log of this stage (open it with Spark's history server): %s", event_log)
        return report

    def _prune_old_files(self, report_dir: Path) -> None:
        """Delete event logs and this config's run reports older than the config's retention (``retention.py``)."""
        try:
            cfg = load_config(self.config_path)
        except Exception as exc:  # the stage itself reports a broken config; housekeeping only steps aside
            self.log.warning("not pruning old event logs and reports: %s", exc)
            return
        prune_stage_leftovers(
            cfg.name,
            cfg.airflow.spark_event_log_retention_days,
            cfg.airflow.report_retention_days,
            settings.event_log_dir(),
            report_dir,
            log_line=self.log.info,
        )

    def _confined_path(self, given: str | None) -> str:
        """The run's path (``landing_dir`` when not given), refused unless every file it names lies under ``landing_dir``.

        Checked here, before spark-submit and without retries: a trigger may not read outside the config's landing
        folder (the job checks again). A config without ``landing_dir`` cannot ingest from Airflow.
        """
        if not self.landing_dir:
            raise AirflowFailException(
                f"no files to {self.stage}: set airflow.landing_dir in {self.config_path}; an ingest started from "
                "Airflow reads only under it (the command line can read elsewhere)"
            )
        path = given or self.landing_dir
        try:
            expand_paths([path], roots=[self.landing_dir])
        except SourceDataError as exc:
            raise AirflowFailException(f"the run's `{self.path_param}` was refused, not retried: {exc}") from None
        return path

    def _check_connection(self) -> None:
        """Refuse to run without the project's Spark connection: the provider would silently use yarn."""
        try:
            connection = BaseHook.get_connection(self._conn_id)
        except Exception as exc:
            raise MissingSparkConnection(
                f"Airflow connection {self._conn_id!r} is not defined; define it (for the embedded default: "
                f'AIRFLOW_CONN_{self._conn_id.upper()}=\'{{"conn_type": "spark", "host": "local[*]"}}\'), '
                "or the Spark provider would submit to yarn"
            ) from exc
        if not connection.host:
            raise MissingSparkConnection(f"Airflow connection {self._conn_id!r} has no host (the Spark master URL)")
