"""Benchmark scenarios: ``python -m bench.scenarios JSON_PLAN`` runs ``[[name, args], ...]`` in one process.

Each scenario builds its state untimed, then times our stage and the v4
baseline on the same data, with the JVM heap peak of each timed step, and
prints its result as one JSON line. A scenario is a list of steps (``STEPS``):
``args["steps"]`` runs some of them, ``args["state"]`` carries what earlier ones
returned. The full run gives each timed step a fresh process on the warehouse
the set-up step left (``BENCH_WAREHOUSE``), so ours, v4 and the floor each start
as cold as a scheduled ``spark-submit`` does: timed in one process, whatever
runs first pays the JVM's just-in-time compilation for the ones after it.
``--small`` runs every step of its plan in one process and shares the session,
each scenario in its own namespace (JVM start-up is a large part of a small run).
"""

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from bench import floors, v4_baseline
from spark_jobs.config import config_from_dict
from spark_jobs.months import add_months, month_range
from spark_jobs.names import BOOKKEEPING_COLUMNS
from spark_jobs.report import RunReport
from spark_jobs.stages.backfill import run_backfill, run_classify
from spark_jobs.stages.forward import run_months
from spark_jobs.stages.ingest import create_source_table
from spark_jobs.stages.runs import prepare_tables
from spark_jobs.storage.iceberg import current_snapshot
from spark_jobs.storage.session import build_session
from spark_jobs.storage.writers import newest_per_account

ROOT = Path(__file__).resolve().parents[1]

CONFIG = ROOT / "include" / "configs" / "summary_config.json"
CORRECTION_TS = "2030-01-01 00:00:00"
RESULT_PREFIX = "BENCH-RESULT "
SCAN_METRICS = {"number of result data files": "files", "total data file size (bytes)": "bytes"}


def synthetic_source(spark, accounts, months, seed=11):
    """accounts x months of bureau records: 3% of months unreported, 1% sent twice, 1% stale resends."""
    account_types = F.array(*[F.lit(v) for v in ("5", "10", "13", "214", "")])
    legacy_date, open_date = F.lit("0001-01-01").cast("date"), F.lit("2019-06-01").cast("date")
    ids = spark.range(accounts).withColumnRenamed("id", "k")
    month_rows = spark.createDataFrame([(m, i) for i, m in enumerate(months)], "m string, i int")
    grid = ids.crossJoin(month_rows).where(F.rand(seed) >= 0.03)
    noise = lambda n: F.rand(seed + n)  # noqa: E731
    records = grid.select(
        (F.col("k") + 100_000).alias("cons_acct_key"),
        F.concat(F.lit("MBR"), (F.col("k") % 40).cast("string")).alias("bureau_mbr_id"),
        F.when(noise(1) < 0.05, None).otherwise(F.lit("I")).alias("port_type_cd"),
        F.element_at(account_types, (F.col("k") % 5 + 1).cast("int")).alias("acct_type_dtl_cd"),
        F.when(F.col("k") % 50 == 0, legacy_date).otherwise(open_date).alias("acct_open_dt"),
        F.lit(None).cast("date").alias("acct_closed_dt"),
        F.to_date(F.concat(F.col("m"), F.lit("-15"))).alias("acct_dt"),
        F.lit("11").alias("acct_stat_cd"),
        (F.lit(50_000) + (F.col("k") % 20) * 10_000).cast("int").alias("acct_credit_ext_am"),
        F.when(noise(2) < 0.02, F.lit(-1)).otherwise((noise(3) * 400_000).cast("int")).alias("acct_bal_am"),
        (noise(4) * 5_000).cast("int").alias("past_due_am"),
        (noise(5) * 30_000).cast("int").alias("actual_pymt_am"),
        F.to_date(F.concat(F.col("m"), F.lit("-10"))).alias("last_pymt_dt"),
        (F.lit(60_000) + (F.col("k") % 20) * 10_000).cast("int").alias("high_credit_am_4in"),
        F.when(noise(6) < 0.9, F.lit(0)).otherwise((noise(7) * 200).cast("int")).alias("days_past_due_ct_4in"),
        F.lit("01").alias("asset_class_cd_4in"),
        F.when(noise(8) < 0.1, None).otherwise(F.lit(14.5)).alias("interest_rate_4in"),
        F.col("m").alias("rpt_as_of_mo"),
        (F.to_timestamp(F.concat(F.col("m"), F.lit("-28 06:00:00"))) + F.expr("INTERVAL 1 SECOND") * (F.col("k") % 3600)).alias(
            "base_ts"
        ),
    )
    duplicates = records.where(F.rand(seed + 20) < 0.01)
    stale = records.where(F.rand(seed + 21) < 0.01).withColumn("base_ts", F.col("base_ts") - F.expr("INTERVAL 3 DAYS"))
    return records.unionByName(duplicates).unionByName(stale)


def _java(seq, jvm):
    return jvm.scala.jdk.javaapi.CollectionConverters.asJava(seq)


def last_execution_id(spark):
    ids = [e.executionId() for e in _java(spark._jsparkSession.sharedState().statusStore().executionsList(), spark._jvm)]
    return max(ids, default=-1)


def settled(spark, after_execution_id, timeout=10):
    """Wait until Spark's SQL listener, which runs asynchronously, recorded the end of every execution since the given one."""
    store = spark._jsparkSession.sharedState().statusStore()
    deadline, seen = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        executions = [e for e in _java(store.executionsList(), spark._jvm) if e.executionId() > after_execution_id]
        ended = [e.executionId() for e in executions if e.completionTime().isDefined()]
        if executions and len(ended) == len(executions) and ended == seen:  # and nothing new for one poll
            return
        seen = ended
        time.sleep(0.5)


def scanned(spark, after_execution_id):
    """Data files and bytes each Iceberg table's scans read, per Spark's SQL metrics, in executions after the given one."""
    jvm = spark._jvm
    store = spark._jsparkSession.sharedState().statusStore()
    totals = {}
    for execution in _java(store.executionsList(), jvm):
        execution_id = execution.executionId()
        if execution_id <= after_execution_id:
            continue
        values = {entry.getKey(): entry.getValue() for entry in _java(store.executionMetrics(execution_id), jvm).entrySet()}
        for node in _java(store.planGraph(execution_id).allNodes(), jvm):
            if not node.name().startswith("BatchScan "):
                continue
            table = node.name().split(" ", 1)[1].split("[", 1)[0].strip()
            entry = totals.setdefault(table, {"scans": 0, "files": 0, "bytes": 0, "columns": []})
            entry["scans"] += 1
            for column in scan_columns(node.desc()):
                if column not in entry["columns"]:
                    entry["columns"].append(column)
            for metric in _java(node.metrics(), jvm):
                field = SCAN_METRICS.get(metric.name())
                value = values.get(metric.accumulatorId())
                if field and value:
                    entry[field] += int(str(value).replace(",", "").split()[0])
    return totals


def scan_columns(description):
    """The columns a BatchScan node reads, from its description "BatchScan t[a#1, b#2, ...] ..."."""
    inside = description.split("[", 1)[1].split("]", 1)[0] if "[" in description else ""
    return [part.strip().split("#", 1)[0] for part in inside.split(",") if part.strip()]


def heap(jvm, reset=False):
    """Sum of the heap pools' peak use since the last reset (an upper bound of the peak heap)."""
    pools = [
        p for p in jvm.java.lang.management.ManagementFactory.getMemoryPoolMXBeans() if p.getType().toString() == "Heap memory"
    ]
    if reset:
        jvm.java.lang.System.gc()
        for pool in pools:
            pool.resetPeakUsage()
        return 0
    return sum(p.getPeakUsage().getUsed() for p in pools)


def timed(spark, action):
    heap(spark._jvm, reset=True)
    start = time.monotonic()
    action()
    return round(time.monotonic() - start, 2), round(heap(spark._jvm) / 2**30, 2)


WAREHOUSE = []  # the process's warehouse directory, once a scenario started the session


def setup(namespace, driver_memory):
    """The config with its tables in ``local.<namespace>``, and the session (started once per process)."""
    raw = json.loads(CONFIG.read_text())
    for key in ("source_table", "destination_table", "latest_history_table"):
        raw[key] = f"local.{namespace}.{raw[key].rsplit('.', 1)[1]}"
    cfg = config_from_dict(raw, f"{CONFIG} (namespace {namespace})")
    spark = SparkSession.getActiveSession()
    if spark is None:
        kept = os.environ.get("BENCH_WAREHOUSE")  # a run of separate step processes: the caller removes it
        warehouse = Path(kept) if kept else Path(tempfile.mkdtemp(prefix="summary-bench-"))
        if not kept:
            WAREHOUSE.append(warehouse)
        spark = build_session(
            cfg,
            str(warehouse),
            app_name="summary-bench",
            extra_conf={"spark.ui.enabled": "false", "spark.driver.memory": driver_memory, "spark.sql.shuffle.partitions": "8"},
        )
    return cfg, spark


def copy_for_v4(spark, cfg):
    """v4 tables: the same rows without this project's bookkeeping columns, v4's default table properties."""
    names = {}
    for table in (cfg.summary_table, cfg.latest_table):
        columns = ", ".join(f"`{c}`" for c in spark.table(table).columns if c not in BOOKKEEPING_COLUMNS)
        copy = f"{table}_v4"
        partition = f"PARTITIONED BY (`{cfg.month_column}`)" if table == cfg.summary_table else ""
        spark.sql(
            f"CREATE TABLE {copy} USING iceberg {partition} TBLPROPERTIES ('format-version'='2') AS SELECT {columns} FROM {table}"
        )
        names[table] = copy
    return names[cfg.summary_table], names[cfg.latest_table]


class Stopwatch:
    """Seconds of each untimed set-up step, so a slow set-up is visible next to the timed figures."""

    def __init__(self):
        self.started, self.seconds = time.monotonic(), {}

    def lap(self, step):
        now = time.monotonic()
        self.seconds[step] = round(now - self.started, 2)
        self.started = now


def report(mode):
    return RunReport(mode=mode, config=str(CONFIG), run_id=f"bench-{mode}-{time.time_ns()}")


STEPS = {"forward": ["setup", "ours", "v4", "floor"], "case_iii": ["setup", "classify", "ours", "v4", "floor"]}


def forward(accounts, driver_memory="4g", steps=STEPS["forward"], state=None):
    """Month 3 forward, on tables loaded with months 1-2 (ours) and a copy of them (v4)."""
    watch = Stopwatch()
    cfg, spark = setup(f"forward_{accounts}", driver_memory)
    months = month_range("2024-01", "2024-03")
    summary_v4, latest_v4 = f"{cfg.summary_table}_v4", f"{cfg.latest_table}_v4"  # copy_for_v4's names
    result = {"scenario": "forward", "accounts": accounts}
    if "setup" in steps:
        watch.lap("session")
        source = synthetic_source(spark, accounts, months)
        create_source_table(spark, cfg, source.schema)
        source.writeTo(cfg.source_table).append()
        watch.lap("source")
        run_months(spark, cfg, months[:2], report("initial"), one_batch=True)
        watch.lap("initial_load")
        assert copy_for_v4(spark, cfg) == (summary_v4, latest_v4)
        watch.lap("v4_copy")
        result["setup_seconds"] = watch.seconds
    if "ours" in steps:
        forward_report = report("forward")
        ours, ours_heap = timed(spark, lambda: run_months(spark, cfg, months[2:], forward_report, one_batch=False))
        # How many files each wide write produced: one file means the write ran in one task.
        files_written = {t: files_added_by_last_append(spark, t) for t in (cfg.summary_table, cfg.latest_table)}
        rows = spark.table(cfg.summary_table).where(F.col(cfg.month_column) == months[2]).count()
        phases = forward_report.details["phase_seconds"]
        result.update(ours_s=ours, ours_heap_gb=ours_heap, rows=rows, phases=phases, files_written=files_written)
    if "v4" in steps:
        v4, v4_heap = timed(spark, lambda: v4_baseline.forward_month(spark, cfg, months[2], summary_v4, latest_v4))
        v4_rows = spark.table(summary_v4).where(F.col(cfg.month_column) == months[2]).count()
        result.update(v4_s=v4, v4_heap_gb=v4_heap, v4_rows=v4_rows)
    if "floor" in steps:
        result.update(floors.forward_floor(spark, cfg, months[2]))
    return result


def files_added_by_last_append(spark, table):
    """Data files the table's newest append or overwrite added (its snapshot summary's count)."""
    row = spark.sql(
        f"SELECT summary['added-data-files'] AS files FROM {table}.snapshots "
        "WHERE operation IN ('append', 'overwrite') ORDER BY committed_at DESC LIMIT 1"
    ).first()
    return int(row.files) if row and row.files else 0


LOADED = {}  # config of each Case III scenario of this process, with its tables' snapshots right after the initial load


def load_from(spark, cfg, loaded, last_month):
    """Fill cfg's tables with another scenario's initial load up to ``last_month``, as of before its corrections.

    A summary row depends only on records of its month and earlier ones, so these
    rows are what an initial load of just those months writes: ``--small`` copies
    them instead of loading the 24-month data and then a 12-month one.
    """
    other, snapshots = loaded
    month = cfg.month_column
    source = spark.read.option("versionAsOf", snapshots[other.source_table]).table(other.source_table)
    create_source_table(spark, cfg, source.schema)
    source.where(F.col(cfg.source_column(month)) <= last_month).writeTo(cfg.source_table).append()
    prepare_tables(spark, cfg, spark.table(cfg.source_table))
    summary = spark.read.option("versionAsOf", snapshots[other.summary_table]).table(other.summary_table)
    summary.where(F.col(month) <= last_month).writeTo(cfg.summary_table).append()
    newest_per_account(spark.table(cfg.summary_table), cfg).writeTo(cfg.latest_table).append()


def case_iii(accounts, history, driver_memory="4g", copy_from_history=None, steps=STEPS["case_iii"], state=None):
    """1% of accounts get one corrected month among the last 24 of ``history`` months (all of them when fewer).

    With ``copy_from_history``, the tables start as a copy of the first months of
    that (longer) scenario's initial load, which must have run in this process.
    """
    watch = Stopwatch()
    cfg, spark = setup(f"case_iii_{accounts}_{history}", driver_memory)
    last = add_months("2024-12", history - copy_from_history) if copy_from_history else "2024-12"
    months = month_range(add_months(last, -(history - 1)), last)
    summary_v4, latest_v4 = f"{cfg.summary_table}_v4", f"{cfg.latest_table}_v4"  # copy_for_v4's names
    selector = f"base_ts >= TIMESTAMP '{CORRECTION_TS}'"
    result = {"scenario": "case_iii", "accounts": accounts, "history": history}
    if "setup" in steps:
        watch.lap("session")
        if copy_from_history:
            load_from(spark, cfg, LOADED[(accounts, copy_from_history)], last)
            watch.lap("copy_of_initial_load")
        else:
            source = synthetic_source(spark, accounts, months)
            create_source_table(spark, cfg, source.schema)
            source.writeTo(cfg.source_table).append()
            watch.lap("source")
            run_months(spark, cfg, months, report("initial"), one_batch=True)
            watch.lap("initial_load")
        tables = (cfg.source_table, cfg.summary_table)
        LOADED[(accounts, history)] = (cfg, {t: current_snapshot(spark, t)[0] for t in tables})
        assert copy_for_v4(spark, cfg) == (summary_v4, latest_v4)
        watch.lap("v4_copy")
        recent = months[-24:]
        source = spark.table(cfg.source_table)
        picks = source.where(F.col("rpt_as_of_mo").isin(recent)).where(F.rand(5) < 0.01 / len(recent))
        corrections = picks.dropDuplicates(["cons_acct_key"]).withColumn("acct_bal_am", F.col("acct_bal_am") + 777)
        corrections = corrections.withColumn("base_ts", F.lit(CORRECTION_TS).cast("timestamp"))
        corrections.writeTo(cfg.source_table).append()
        watch.lap("corrections")
        summary_bytes = spark.sql(f"SELECT sum(file_size_in_bytes) FROM {cfg.summary_table}.files").first()[0]
        rows = spark.table(cfg.summary_table).count()  # a correction replaces rows: the count after it is the same
        result.update(summary_bytes=summary_bytes, summary_rows=rows, setup_seconds=watch.seconds)
    if "classify" in steps:
        result.update(classify_figures(spark, cfg, selector))
    if "ours" in steps:
        backfill_report = report("backfill")
        ours, ours_heap = timed(spark, lambda: run_backfill(spark, cfg, backfill_report, selector))
        phases = backfill_report.details.get("phase_seconds")
        result.update(ours_s=ours, ours_heap_gb=ours_heap, rows_written=backfill_report.rows_written, phases=phases)
    corrected = spark.table(cfg.source_table).where(selector)
    if "v4" in steps:
        v4, v4_heap = timed(spark, lambda: v4_baseline.case_iii(spark, cfg, corrected, summary_v4, latest_v4))
        result.update(v4_s=v4, v4_heap_gb=v4_heap)
    if "floor" in steps:
        rows_written = {**(state or {}), **result}["rows_written"]["summary"]
        result.update(floors.case_iii_floor(spark, cfg, corrected, rows_written))
    return result


def classify_figures(spark, cfg, selector):
    """The classifier's dry run: its seconds, what it read of summary, and how many accounts fell in each case."""
    try:
        before_classify = last_execution_id(spark)
    except Exception:
        before_classify = -1
    classify_report = report("classify")
    classify, _ = timed(spark, lambda: run_classify(spark, cfg, classify_report, selector, dry_run=True))
    settled(spark, before_classify)
    try:
        classify_scans = scanned(spark, before_classify)
    except Exception as exc:  # a figure missing is no reason to lose the run's other figures
        classify_scans = {"error": str(exc).splitlines()[0][:300]}
    read_columns = classify_scans.get(cfg.summary_table, {}).get("columns", []) if isinstance(classify_scans, dict) else []
    try:
        column_share = floors.classifier_column_share(spark, cfg.summary_table, read_columns) if read_columns else None
    except ValueError as exc:
        column_share, classify_scans["column_share_error"] = None, str(exc)
    return {
        "classify_s": classify, "classify_scans": classify_scans, "classify_column_share": column_share,
        "corrections": classify_report.records_read, "accounts_by_case": classify_report.accounts_by_case,
    }  # fmt: skip


if __name__ == "__main__":
    for name, arguments in json.loads(sys.argv[1]):
        result = {"forward": forward, "case_iii": case_iii}[name](**arguments)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
    if SparkSession.getActiveSession() is not None:
        SparkSession.getActiveSession().stop()
    for warehouse in WAREHOUSE:
        shutil.rmtree(warehouse, ignore_errors=True)
