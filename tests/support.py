"""Helpers shared by the Spark tests: the model test config, source rows, runs, table comparison."""

import datetime as dt
import json
from pathlib import Path

from tests.model import SummaryModel

FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Python versions of the SQL expressions in fixtures/configs/model_config.json, written by hand.
MODEL_EXPRS = {
    ("column_transformations", 0): lambda r: "999" if r["acct_type"] == "" else r["acct_type"],
    ("inferred_columns", 0): lambda r: None if r["dpd"] is None else ("0" if r["dpd"] < 30 else "1" if r["dpd"] < 60 else "2"),
    ("rolling_columns", 0): lambda r: None if r["balance"] is None or r["balance"] < 0 else r["balance"],
    ("rolling_columns", 1): lambda r: r["rating"],
}

SOURCE_COLUMNS = ("acct_id", "rpt_mo", "ts", "bal", "dpd", "acct_type", "open_dt", "status", "acct_dt", "member")


def model_config(namespace, **overrides):
    text = (FIXTURES / "configs" / "model_config.json").read_text().replace("NAMESPACE", namespace)
    raw = json.loads(text)
    raw.update(overrides)
    return raw


def load(namespace, **overrides):
    """(raw config dict, SummaryConfig) for the model test config in ``namespace``."""
    from spark_jobs.config import config_from_dict

    raw = model_config(namespace, **overrides)
    return raw, config_from_dict(raw, f"model_config[{namespace}]")


def source_schema():
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField("acct_id", T.LongType()),
            T.StructField("rpt_mo", T.StringType()),
            T.StructField("ts", T.TimestampType()),
            T.StructField("bal", T.IntegerType()),
            T.StructField("dpd", T.IntegerType()),
            T.StructField("acct_type", T.StringType()),
            T.StructField("open_dt", T.DateType()),
            T.StructField("status", T.StringType()),
            T.StructField("acct_dt", T.DateType()),
            T.StructField("member", T.StringType()),
        ]
    )


def record(acct, month, ts, bal=None, dpd=None, acct_type="5", open_dt=None, status="11", acct_dt=None, member="M1"):
    """One source record; ``ts`` may be an int (day of 2025-01) for brevity."""
    if isinstance(ts, int):
        ts = dt.datetime(2025, 1, 1) + dt.timedelta(days=ts)
    return {
        "acct_id": acct,
        "rpt_mo": month,
        "ts": ts,
        "bal": bal,
        "dpd": dpd,
        "acct_type": acct_type,
        "open_dt": open_dt,
        "status": status,
        "acct_dt": acct_dt,
        "member": member,
    }


def append_source(spark, cfg, rows):
    from spark_jobs.stages.ingest import create_source_table

    schema = source_schema()
    if not spark.catalog.tableExists(cfg.source_table):
        create_source_table(spark, cfg, schema)
    spark.createDataFrame([tuple(r[c] for c in SOURCE_COLUMNS) for r in rows], schema).writeTo(cfg.source_table).append()


def run(spark, cfg, mode, start, end=None, dry_run=False):
    """Run initial (one batch) or forward (month by month) over start..end in-process; returns the report."""
    from spark_jobs.months import month_range
    from spark_jobs.report import RunReport
    from spark_jobs.stages.forward import run_months

    months = month_range(start, end or start)
    report = RunReport(mode=mode, config=cfg.path, run_id=f"{mode}-test-{dt.datetime.now().strftime('%H%M%S%f')}")
    run_months(spark, cfg, list(months), report, one_batch=mode == "initial", dry_run=dry_run, lock_wait_seconds=30)
    return report.finish()


def read_tables(spark, cfg):
    """Both tables as dicts: summary keyed by (key, month), latest_summary keyed by key."""
    summary = {}
    for row in spark.table(cfg.summary_table).collect():
        values = row.asDict(recursive=True)
        summary[(values[cfg.key_column], values[cfg.month_column])] = values
    latest = {}
    for row in spark.table(cfg.latest_table).collect():
        values = row.asDict(recursive=True)
        assert values[cfg.key_column] not in latest, f"two latest_summary rows for {values[cfg.key_column]}"
        latest[values[cfg.key_column]] = values
    return summary, latest


def differences(actual, expected, label, limit=12):
    problems = []
    for k in sorted(set(actual) | set(expected), key=str):
        if k not in actual:
            problems.append(f"{label}: missing row {k}: expected {expected[k]}")
        elif k not in expected:
            problems.append(f"{label}: unexpected row {k}: {actual[k]}")
        else:
            for column, value in expected[k].items():
                if actual[k].get(column) != value:
                    problems.append(f"{label} {k}.{column}: got {actual[k].get(column)!r}, expected {value!r}")
    return problems[:limit] + ([f"... and {len(problems) - limit} more"] if len(problems) > limit else [])


def model_problems(spark, cfg, raw, source_rows_read):
    """How both tables differ from the table contract applied to the records read so far (the plain-Python model)."""
    expected_summary, expected_latest = SummaryModel(raw, MODEL_EXPRS).tables(source_rows_read)
    summary, latest = read_tables(spark, cfg)
    return differences(summary, expected_summary, "summary") + differences(latest, expected_latest, "latest_summary")


def assert_matches_model(spark, cfg, raw, source_rows_read):
    """Both tables equal the table contract applied to the records read so far (per the plain-Python model)."""
    problems = model_problems(spark, cfg, raw, source_rows_read)
    assert not problems, "tables differ from the model:\n" + "\n".join(problems)


# Writers other than an append, as users run them on the source (docs/operations.md, "Who may write the source").


def _source_view(spark, rows, name):
    schema = source_schema()
    spark.createDataFrame([tuple(r[c] for c in SOURCE_COLUMNS) for r in rows], schema).createOrReplaceTempView(name)


def merge_source(spark, cfg, rows):
    """``MERGE INTO`` the source on (account, month): matching records are updated in place, the rest inserted."""
    _source_view(spark, rows, "late_delivery")
    spark.sql(
        f"MERGE INTO {cfg.source_table} t USING late_delivery s ON t.acct_id = s.acct_id AND t.rpt_mo = s.rpt_mo "
        "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
    )


def overwrite_source_month(spark, cfg, month, rows):
    """``INSERT OVERWRITE`` one month of the source with ``rows`` (a redelivered month)."""
    assert all(r["rpt_mo"] == month for r in rows)
    _source_view(spark, rows, "redelivered_month")
    columns = ", ".join(c for c in SOURCE_COLUMNS if c != "rpt_mo")
    spark.sql(f"INSERT OVERWRITE {cfg.source_table} PARTITION (rpt_mo = '{month}') SELECT {columns} FROM redelivered_month")


def delete_source(spark, cfg, condition):
    spark.sql(f"DELETE FROM {cfg.source_table} WHERE {condition}")


def source_records(spark, cfg):
    """Every record the source holds now, as ``record`` dicts (what the model of a followed source reads)."""
    return [row.asDict() for row in spark.table(cfg.source_table).collect()]
