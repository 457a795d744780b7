"""Build the forward, backfill, maintenance and ingest DAGs of every config (the DAG files only call ``register``)."""

import datetime as dt
import logging
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator, ShortCircuitOperator
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import (
    DAG,
    Asset,
    AssetOrTimeSchedule,
    AssetWatcher,
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    Param,
    TaskGroup,
    TriggerRule,
)
from airflow.sdk.types import DagRunProtocol, RuntimeTaskInstanceProtocol

from spark_jobs.catalogs import pyiceberg_problems, split_identifier
from spark_jobs.config import SummaryConfig, driver_launch_conf
from spark_jobs.config_set import load_all
from spark_jobs.core.expressions import FILTER
from spark_jobs.errors import ConfigError
from spark_jobs.ingest_paths import MAX_FILES
from spark_jobs.months import MONTH_LENGTH, MONTH_REGEX
from spark_jobs.names import CASE_STAGES, CASES, CHECK, CLASSIFY, FORWARD, INGEST, MAINTENANCE, application_name
from summary_airflow import settings
from summary_airflow.alerts import failure_notifiers, forward_deadline
from summary_airflow.months import first_scheduled_month, initial_load_months, run_month
from summary_airflow.operators import SummaryStageOperator
from summary_airflow.source_watch import NewSourceRecordsSensor, SourceSnapshotWatcher
from summary_airflow.submit import case_task_id, cases_to_run

START_DATE_FALLBACK = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
# A text Param must not begin with "-": refused when the run is triggered, so it can never look like an option
# (the operator passes it as one `--flag=value` argument anyway).
NOT_AN_OPTION = "^[^-]"
PATH_MAX_LENGTH = 4096

log = logging.getLogger(__name__)


def _default_args(cfg: SummaryConfig) -> dict[str, Any]:
    args: dict[str, Any] = {
        "owner": "summary-pipeline",
        "retries": cfg.airflow.retries,
        "retry_delay": dt.timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(minutes=30),
    }
    notifiers = failure_notifiers(cfg)
    if notifiers:
        args["on_failure_callback"] = notifiers  # called once a task fails for good, not on each retry
    return args


def source_uri(cfg: SummaryConfig) -> str:
    catalog, name = split_identifier(cfg.source_table, cfg.catalog.default)
    return f"iceberg://{catalog}/{name.replace('.', '/')}"


def source_asset(cfg: SummaryConfig, deployment: Sequence[SummaryConfig] = ()) -> Asset:
    """The source table as an Airflow Asset: the ingest DAG and the source's watcher update it, the backfill DAG
    runs on it. One Asset per table: configs sharing a source table share it and each event starts all of them.

    Airflow keeps one definition per Asset, whichever DAG it met last, so every use carries the same watchers:
    one per config of the ``deployment`` reading this table with ``airflow.watch_source`` on."""
    uri = source_uri(cfg)
    sharing = sorted({c.name: c for c in (cfg, *deployment) if source_uri(c) == uri}.values(), key=lambda c: c.name)
    watchers = [
        AssetWatcher(
            name=f"{c.name}_source_snapshots", trigger=SourceSnapshotWatcher(str(c.path), c.airflow.backfill_poke_seconds)
        )
        for c in sharing
        if c.airflow.watch_source
    ]
    return Asset(name=uri, uri=uri, watchers=watchers)


def _quality_gate(cfg: SummaryConfig, touched_from: tuple[str, ...], through_newest: bool) -> SummaryStageOperator:
    return _stage(
        cfg,
        "quality_gate",
        CHECK,
        "Check the table rules on the months this run touched (`--mode check --start-month ...`); broken rules fail "
        "the run, naming each rule with example keys (log, and XCom key `report`).",
        months="touched",
        touched_from=touched_from,
        through_newest=through_newest,
    )


def _month_param(description: str) -> Param:
    """An optional YYYY-MM Param; the lengths stop the pattern's ``$`` from accepting a trailing line break."""
    return Param(
        None,
        type=["null", "string"],
        pattern=f"^{MONTH_REGEX}$",
        minLength=MONTH_LENGTH,
        maxLength=MONTH_LENGTH,
        description=description,
    )


def _month_start(month: str) -> dt.datetime:
    return dt.datetime(int(month[:4]), int(month[5:7]), 1, tzinfo=dt.timezone.utc)


def _tags(cfg: SummaryConfig, kind: str) -> list[str]:
    return ["summary-pipeline", cfg.name, kind, *cfg.airflow.tags]


def _dag(
    cfg: SummaryConfig,
    kind: str,
    schedule: Any,
    description: str,
    doc: str,
    start_date: dt.datetime = START_DATE_FALLBACK,
    catchup: bool = False,
    **kwargs: Any,
) -> DAG:
    """What every DAG of a config shares: id, one active run, retries with backoff, tags."""
    return DAG(
        dag_id=settings.dag_id(cfg.name, kind),
        description=description,
        schedule=schedule,
        start_date=start_date,
        catchup=catchup,
        max_active_runs=1,
        default_args=_default_args(cfg),
        tags=_tags(cfg, kind),
        doc_md=doc,
        # Registered through the DAG file's globals (register), not by `with dag:`: the second DAG file builds
        # them too, to report the configs whose DAGs fail to build, and must not register duplicates.
        auto_register=False,
        **kwargs,
    )


def _stage(cfg: SummaryConfig, task_id: str, stage: str, doc: str, **kwargs: Any) -> SummaryStageOperator:
    return SummaryStageOperator(
        task_id=task_id,
        config_path=cfg.path,
        stage=stage,
        name=application_name(cfg.name, stage),
        conf=driver_launch_conf(cfg),  # read when the driver starts: only spark-submit's command line sets them
        quick_start=cfg.spark.quick_start,
        pool=settings.pool_name(cfg.name),
        # A stage stopped here leaves nothing half-done (a retry, or the next run, finishes it) and frees the lock.
        execution_timeout=dt.timedelta(minutes=cfg.airflow.stage_timeout_minutes),
        doc_md=doc,
        **kwargs,
    )


# ---------------------------------------------------------------------------------------
def forward_dag(cfg: SummaryConfig) -> DAG:
    """Monthly: each run applies the month that just ended; the first run also does the initial load."""
    first_month = first_scheduled_month(cfg)
    start = _month_start(first_month) if first_month else START_DATE_FALLBACK
    initial = initial_load_months(cfg)
    dag = _dag(
        cfg,
        "forward",
        # The data-interval timetable: the run on 2024-03-01 covers 2024-02-01..2024-03-01 and processes 2024-02.
        CronDataIntervalTimetable("0 0 1 * *", timezone="UTC"),
        f"Monthly forward run of {cfg.summary_table}",
        start_date=start,  # the first data interval starts here
        end_date=_month_start(cfg.airflow.end_month) if cfg.airflow.end_month else None,  # the last one
        catchup=True,
        deadline=forward_deadline(cfg),
        params={
            "month": _month_param("Process this month (YYYY-MM) instead of the run's"),
            "initial_load": Param(False, type="boolean", description="Also run the initial-load months of the config"),
        },
        doc=f"""
### {cfg.name}: forward

Applies one month of `{cfg.source_table}` to `{cfg.summary_table}` and `{cfg.latest_table}` per run,
strictly in order (one active run; each month waits for the previous month's success). The run for logical
date 2024-03-01 processes **2024-02**; trigger with param `month` to re-process any month (safe: nothing changes
unless its source records did). The first scheduled run ({first_month or "n/a"}) also runs the initial load
({f"{initial[0]}..{initial[-1]}" if initial else "none configured"}) as chained per-month tasks.
`quality_gate` then checks the table rules on the months the run applied; a broken rule fails the run, and
the next scheduled month waits for it. Every stage task pushes its run report to XCom. Config: `{cfg.path}`.
""",
    )
    with dag:
        forward = _stage(
            cfg,
            "forward_month",
            FORWARD,
            "Apply the run's month (`spark_jobs --mode forward`); report in XCom.",
            months="run",
            depends_on_past=True,
            wait_for_downstream=True,  # and for the previous month's quality gate: never build on broken rows
            trigger_rule=TriggerRule.NONE_FAILED,
        )
        forward_tasks = ["forward_month"]
        if initial:
            needs_initial = ShortCircuitOperator(
                task_id="initial_load_needed",
                python_callable=_initial_load_needed,
                op_kwargs={"first_month": first_month},
                ignore_downstream_trigger_rules=False,
                doc_md="True on the first scheduled month or with param `initial_load`: else the initial load is skipped.",
            )
            with TaskGroup("initial_load", tooltip="the config's initial months, one forward run each, in order") as group:
                previous = None
                for month in initial:
                    task = _stage(
                        cfg, f"forward_{month.replace('-', '_')}", FORWARD, f"Initial load of {month}.", months=(month, month)
                    )
                    if previous is not None:
                        previous >> task
                    previous = task
                    forward_tasks.append(task.task_id)
            needs_initial >> group >> forward
        due = ShortCircuitOperator(
            task_id="maintenance_due",
            python_callable=lambda ti: bool(
                (ti.xcom_pull(task_ids="forward_month") or {}).get("details", {}).get("maintenance_due")
            ),
            doc_md="True once `performance.snapshot_interval` months were applied since the last maintenance (v4's counter).",
        )
        trigger = TriggerDagRunOperator(
            task_id="trigger_maintenance",
            trigger_dag_id=settings.dag_id(cfg.name, "maintenance"),
            doc_md="Start the maintenance DAG (compaction, snapshot expiry).",
        )
        # Through the newest month: re-running an older month (param `month`, `airflow backfill create`) may
        # rewrite the later rows of its accounts; for the ordinary run its month is the newest anyway.
        gate = _quality_gate(cfg, tuple(forward_tasks), through_newest=True)
        forward >> gate >> due >> trigger
    return dag


def _initial_load_needed(
    params: Mapping[str, Any],
    dag_run: DagRunProtocol,
    first_month: str | None,
    data_interval_start: dt.datetime | None = None,
    **_: Any,
) -> bool:
    # A run triggered from the UI or the REST API has no logical date, hence no data interval in its context.
    if params.get("initial_load"):
        return True
    return run_month(params, data_interval_start, getattr(dag_run, "run_after", None)) == first_month


# ---------------------------------------------------------------------------------------
def backfill_dag(cfg: SummaryConfig, deployment: Sequence[SummaryConfig] = ()) -> DAG:
    """Sensor -> classify -> only the cases with records, one after another -> report."""
    asset = source_asset(cfg, deployment)
    schedule: Any = [asset]
    if cfg.airflow.backfill_schedule:
        timetable = CronTriggerTimetable(cfg.airflow.backfill_schedule, timezone="UTC")
        timetable.validate()  # DAG() checks a schedule string, not a timetable object
        schedule = AssetOrTimeSchedule(timetable=timetable, assets=asset)
    dag = _dag(
        cfg,
        "backfill",
        schedule,
        f"Apply late and corrected records to {cfg.summary_table}",
        params={
            "backfill_filter": Param(
                None,
                type=["null", "string"],
                maxLength=FILTER.max_length,
                pattern=NOT_AN_OPTION,
                description="One boolean condition over the source columns, e.g. cons_acct_key = 42: comparisons, "
                "AND/OR/NOT, IN, BETWEEN, LIKE, IS NULL and a short list of functions (see the README; checked before use)",
            ),
            "dry_run": Param(False, type="boolean", description="Classify and report what would change; write nothing"),
            "start_month": _month_param("Only records of months from (YYYY-MM)"),
            "end_month": _month_param("Only records of months up to (YYYY-MM)"),
        },
        doc=f"""
### {cfg.name}: backfill

Runs on each event of the Asset `{asset.uri}`: the `{cfg.name}_ingest` DAG appended records, or (with
`airflow.watch_source`, {"on" if cfg.airflow.watch_source else "off"} here) the source's watcher saw a snapshot no backfill
has applied, whoever wrote it; and on its schedule (`{cfg.airflow.backfill_schedule}`) as a safety net. Goes on only
when `{cfg.source_table}` has records no backfill has applied ({
            "else skipped at once"
            if cfg.airflow.watch_source
            else "waiting for them, deferred in the triggerer, up to 50 minutes"
        }), then classifies them against
`{cfg.latest_table}` and runs only the Case I/II/III stages that have accounts, one after another; `quality_gate`
checks the table rules from the first month they applied on. Trigger it by hand with a `backfill_filter`, a
month range or `dry_run`. Each stage's run report is in XCom; `backfill_report` sums them up. Config: `{cfg.path}`.
""",
    )
    with dag:
        wait = NewSourceRecordsSensor(
            task_id="wait_for_new_records",
            config_path=cfg.path,
            poke_seconds=cfg.airflow.backfill_poke_seconds,
            wait=not cfg.airflow.watch_source,  # the watcher starts a run when records arrive: nothing to wait for
            timeout=50 * 60,  # then skipped: nothing new; a trigger or catalog error fails the task instead
            doc_md="Passes when the source has unapplied records, or at once for a filtered manual run; else skipped "
            "(or, with `airflow.watch_source` off, deferred until records arrive).",
        )
        classify = _stage(
            cfg, "classify", CLASSIFY, "Judge and classify the batch; the report's `accounts_by_case` drives the branch.",
            months="params", backfill_params=True,
        )  # fmt: skip
        branch = BranchPythonOperator(
            task_id="choose_cases",
            python_callable=lambda ti: [*cases_to_run(ti.xcom_pull(task_ids="classify")), "backfill_report"],
            doc_md="Follow only the case stages with accounts to apply (none for a dry run).",
        )
        cases = [
            _stage(
                cfg,
                case_task_id(case),
                CASE_STAGES[case],
                f"Apply the Case {case} accounts of this classification.",
                run_id_from="classify",
                trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
            )  # fmt: skip
            for case in CASES
        ]
        report = PythonOperator(
            task_id="backfill_report",
            python_callable=_backfill_report,
            trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
            doc_md="Sum up the classification and case reports (XCom).",
        )
        wait >> classify >> branch >> [*cases, report]
        cases[0] >> cases[1] >> cases[2] >> report  # never two commits to the same tables at once
        report >> _quality_gate(cfg, tuple(case_task_id(case) for case in CASES), through_newest=True)
    return dag


def _backfill_report(ti: RuntimeTaskInstanceProtocol, **_: Any) -> dict[str, Any]:
    classified = ti.xcom_pull(task_ids="classify") or {}
    stages = {t: ti.xcom_pull(task_ids=t) for t in map(case_task_id, CASES)}
    summary = {
        "classification": classified.get("run_id"),
        "dry_run": classified.get("dry_run"),
        "records_read": classified.get("records_read"),
        "records_by_case": classified.get("records_by_case"),
        "accounts_by_case": classified.get("accounts_by_case"),
        "rows_written": {t: r.get("rows_written") for t, r in stages.items() if r},
        "seconds": round(sum((r or {}).get("seconds", 0) for r in (classified, *stages.values())), 3),
    }
    log.info("backfill report: %s", summary)
    return summary


# ---------------------------------------------------------------------------------------
def maintenance_dag(cfg: SummaryConfig) -> DAG:
    dag = _dag(
        cfg,
        "maintenance",
        cfg.airflow.maintenance_schedule,
        f"Iceberg maintenance of {cfg.summary_table} and {cfg.latest_table}",
        doc=f"""
### {cfg.name}: maintenance

Compaction (applying merge-on-read deletes), manifest rewrite, snapshot expiry (retention
{cfg.performance.snapshot_retention_days} days) and orphan removal on `{cfg.summary_table}` and
`{cfg.latest_table}`, under the pipeline's run lock. Runs on its schedule and whenever the forward DAG
has applied `performance.snapshot_interval` ({cfg.performance.snapshot_interval}) months since the last one.
""",
    )
    with dag:
        _stage(cfg, "maintenance", MAINTENANCE, "rewrite_data_files, rewrite_manifests, expire_snapshots, remove_orphan_files.")
    return dag


# ---------------------------------------------------------------------------------------
def ingest_dag(cfg: SummaryConfig, deployment: Sequence[SummaryConfig] = ()) -> DAG:
    """Append files to the source table; when records arrived, announce it (the Asset the backfill DAG runs on)."""
    asset = source_asset(cfg, deployment)
    landing = cfg.airflow.landing_dir
    dag = _dag(
        cfg,
        "ingest",
        None,
        f"Append source files to {cfg.source_table}",
        params={
            "path": Param(
                landing,
                type=["null", "string"],
                minLength=1,
                maxLength=PATH_MAX_LENGTH,
                pattern=NOT_AN_OPTION,
                description=f"A file, folder or glob of Parquet/CSV files that must lie under airflow.landing_dir "
                f"({landing or 'not set: set it in the config to ingest from Airflow'}), the default. Anything that "
                f"resolves outside it (symlinks too), a path starting with '-' and more than {MAX_FILES} files are refused",
            )
        },
        doc=f"""
### {cfg.name}: ingest

Appends the Parquet/CSV files at the run's `path` (default `{landing or "none: set airflow.landing_dir"}`) to
`{cfg.source_table}`; files already ingested (same content) are skipped, so a landing folder can be ingested again and
again. Only files under `airflow.landing_dir` are read: a path or symlink resolving outside it is refused before Spark
starts, and so is a run of more than {MAX_FILES} files.
When records arrived, `source_updated` records an event of the Asset `{asset.uri}`, which starts
`{settings.dag_id(cfg.name, "backfill")}` at once. Config: `{cfg.path}`.
""",
    )
    with dag:
        ingest = _stage(
            cfg, "ingest", INGEST, "`--mode ingest --path ...`; report (files, records, skipped) in XCom.",
            path_param="path", landing_dir=landing,
        )  # fmt: skip
        arrived = ShortCircuitOperator(
            task_id="records_arrived",
            python_callable=lambda ti: bool(((ti.xcom_pull(task_ids="ingest") or {}).get("rows_written") or {}).get("source")),
            doc_md="False when every file was already ingested (or empty): then no Asset event.",
        )
        announce = EmptyOperator(task_id="source_updated", outlets=[asset], doc_md=f"Records an event of `{asset.uri}`.")
        ingest >> arrived >> announce
    return dag


# ---------------------------------------------------------------------------------------
def build_dags(folder: Path | None = None) -> tuple[dict[str, DAG], tuple[ConfigError, ...]]:
    """(dags by id, config errors) for every config in ``folder`` (default: settings.configs_dir()).

    Each config's DAGs are built inside their own error boundary: whatever makes Airflow refuse one config's
    DAG (a schedule it cannot parse, say) becomes that config's error, reported like an invalid config.
    """
    loaded = load_all(folder or settings.configs_dir())
    dags: dict[str, DAG]
    dags, errors = {}, list(loaded.errors)
    readable = []
    for cfg in loaded.configs:
        unreadable = pyiceberg_problems(cfg)  # the watcher, the sensor and the page read every catalog through PyIceberg
        if unreadable:
            errors.append(ConfigError(cfg.path, unreadable))
        else:
            readable.append(cfg)
    for cfg in readable:
        built, problems = [], []
        kinds = (
            ("forward", forward_dag),
            ("backfill", lambda c: backfill_dag(c, readable)),
            ("maintenance", maintenance_dag),
            ("ingest", lambda c: ingest_dag(c, readable)),
        )
        for kind, build in kinds:
            try:
                dag = build(cfg)
                dag.validate()  # what the DagBag checks after import: schedules, params, ...
                built.append(dag)
            except Exception as exc:
                problems.append(f"its {kind} DAG cannot be built: {type(exc).__name__}: {exc}")
        if problems:
            schedules = (cfg.airflow.backfill_schedule, cfg.airflow.maintenance_schedule)
            given = "airflow.backfill_schedule {!r}, airflow.maintenance_schedule {!r}".format(*schedules)
            errors.append(ConfigError(cfg.path, [f"{problem} ({given})" for problem in problems]))
            continue
        dags.update({dag.dag_id: dag for dag in built})
    return dags, tuple(errors)


def register(namespace: MutableMapping[str, Any]) -> dict[str, DAG]:
    """Put every valid config's DAGs into a DAG file's globals."""
    dags, _ = build_dags()
    namespace.update(dags)
    return dags


def raise_config_errors(folder: Path | None = None) -> None:
    """For the second DAG file: turn invalid configs into an import error naming each file and key path."""
    _, errors = build_dags(folder)
    if errors:
        listed = "\n".join(str(e) for e in errors)
        raise ValueError(f"invalid summary pipeline config(s); their DAGs are not loaded, every other config's are:\n{listed}")
