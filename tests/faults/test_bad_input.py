"""Bad source files and bad records: a clear error naming the file, or a rejects row; never a damaged table.

(Bad configs and hostile backfill filters are tried in tests/unit/test_config.py
and tests/stages/test_backfill.py; they count in the same table.)
"""

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spark_jobs.errors import SourceDataError
from spark_jobs.report import RunReport
from spark_jobs.stages.ingest import ingest
from tests.cli_support import ARROW_SCHEMA, write_parquet
from tests.support import load, model_problems, read_tables, record, run

pytestmark = [pytest.mark.spark, pytest.mark.faults]


def ingest_files(spark, cfg, *paths):
    report = RunReport(mode="ingest", config=cfg.path, run_id=f"ingest-{dt.datetime.now():%H%M%S%f}")
    ingest(spark, cfg, [str(p) for p in paths], report)
    return report


def source_snapshot(spark, cfg):
    return spark.sql(f"SELECT max(committed_at) FROM {cfg.source_table}.snapshots").first()[0]


def with_field(name, arrow_type):
    return pa.schema([pa.field(name, arrow_type) if f.name == name else f for f in ARROW_SCHEMA])


BAD_FILES = {
    "missing column": lambda d: write_parquet(
        d / "missing.parquet", [record(9, "2024-01", 1)], pa.schema([f for f in ARROW_SCHEMA if f.name != "dpd"])
    ),
    "wrong type": lambda d: write_parquet(
        d / "text_dpd.parquet", [dict(record(9, "2024-01", 1), dpd="30")], with_field("dpd", pa.string())
    ),
    "extra column": lambda d: write_parquet(
        d / "extra.parquet", [dict(record(9, "2024-01", 1), note="x")], pa.schema([*ARROW_SCHEMA, ("note", pa.string())])
    ),
    "zero-byte file": lambda d: (d / "empty.parquet").write_bytes(b"") or d / "empty.parquet",
    "not Parquet at all": lambda d: (d / "text.parquet").write_text("acct_id,rpt_mo\n1,2024-01\n") or d / "text.parquet",
    "CSV with a malformed row": lambda d: (
        (d / "rows.csv").write_text(",".join(ARROW_SCHEMA.names) + "\n1,2024-01,2025-01-02 00:00:00,abc,0,5,,11,,M1\n")
        or d / "rows.csv"
    ),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_bad_file_is_refused_by_name_and_the_source_is_unchanged(spark, namespace, tmp_path, kind, tally):
    _, cfg = load(namespace)
    ingest_files(spark, cfg, write_parquet(tmp_path / "good.parquet", [record(1, "2024-01", 1, bal=5)]))
    before = source_snapshot(spark, cfg)
    bad = BAD_FILES[kind](tmp_path)

    with pytest.raises(SourceDataError) as refused:
        ingest_files(spark, cfg, bad)

    assert str(bad) in str(refused.value), f"the error must name the file: {refused.value}"
    assert source_snapshot(spark, cfg) == before and spark.table(cfg.source_table).count() == 1
    tally.add("bad input: source file")


def test_a_csv_that_does_not_fit_is_refused_without_echoing_its_first_line(spark, namespace, tmp_path, tally):
    """Any file's first line is its CSV header: the refusal counts the extra columns and never names them."""
    _, cfg = load(namespace)
    ingest_files(spark, cfg, write_parquet(tmp_path / "good.parquet", [record(1, "2024-01", 1, bal=5)]))
    secret = [f"s3cr3t_{i}_" + "y" * 50 for i in range(12)]
    planted = tmp_path / "planted.csv"
    planted.write_text(",".join([*ARROW_SCHEMA.names[:3], *secret]) + "\n" + ",".join(["1"] * 15) + "\n")

    with pytest.raises(SourceDataError) as refused:
        ingest_files(spark, cfg, planted)

    message = str(refused.value)
    assert str(planted) in message and "12 extra column(s) not in the source table" in message
    assert "s3cr3t" not in message and "yyyy" not in message, message
    tally.add("bad input: source file")


def test_an_empty_file_with_the_right_columns_appends_nothing(spark, namespace, tmp_path, tally):
    _, cfg = load(namespace)
    ingest_files(spark, cfg, write_parquet(tmp_path / "good.parquet", [record(1, "2024-01", 1, bal=5)]))
    empty = tmp_path / "no_rows.parquet"
    pq.write_table(ARROW_SCHEMA.empty_table(), empty)
    report = ingest_files(spark, cfg, empty)
    assert report.rows_written["source"] == 0 and spark.table(cfg.source_table).count() == 1
    tally.add("bad input: source file")


def test_bad_records_are_rejected_with_their_reason_and_the_rest_follow_the_rules(spark, namespace, tmp_path, tally):
    raw, cfg = load(namespace)
    good = [record(1, "2024-01", 1, bal=10), record(2, "2024-01", 1, bal=20)]
    no_key = record(None, "2024-01", 1, bal=1)
    no_version = dict(record(3, "2024-01", 1, bal=1), ts=None)
    bad_months = [record(4, m, 1, bal=1) for m in ("2024-13", "24-01", "2024/01", "", None)]
    duplicate = [record(1, "2024-01", 1, bal=10)]  # the same record twice
    future = [record(2, "2024-01", dt.datetime(2999, 1, 1), bal=99)]  # a version from the future wins like any other
    rows = good + [no_key, no_version] + bad_months + duplicate + future
    report = ingest_files(spark, cfg, write_parquet(tmp_path / "mixed.parquet", rows))
    assert report.records_rejected == 7

    forward = run(spark, cfg, "forward", "2024-01")

    reasons = sorted(r.reason for r in spark.table(cfg.rejects_table).collect())  # each record once, at ingest or later
    assert len(reasons) == 7, reasons
    assert [r.startswith("NULL acct") for r in reasons].count(True) == 1
    assert [r.startswith("NULL ts") for r in reasons].count(True) == 1
    assert ["is not a YYYY-MM month" in r for r in reasons].count(True) == 5
    assert forward.superseded_records == 2  # the duplicate, and the record the future version beat
    assert read_tables(spark, cfg)[0][(2, "2024-01")]["balance"] == 99
    problems = model_problems(spark, cfg, raw, rows)
    tally.add("bad input: records (null key/version, bad month, duplicate, future)", tried=5, differences=len(problems))
    assert not problems, "\n".join(problems)


def test_a_million_records_of_one_account_month_become_one_row(spark, namespace, tmp_path, tally):
    _, cfg = load(namespace)
    n = 1_000_000
    start = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    table = pa.table(
        {
            "acct_id": pa.array([7] * n, pa.int64()),
            "rpt_mo": pa.array(["2024-03"] * n),
            "ts": pa.array([start + dt.timedelta(seconds=i) for i in range(n)], pa.timestamp("us", tz="UTC")),
            "bal": pa.array(range(n), pa.int32()),
            "dpd": pa.array([0] * n, pa.int32()),
            "acct_type": pa.array(["5"] * n),
            "open_dt": pa.nulls(n, pa.date32()),
            "status": pa.array(["11"] * n),
            "acct_dt": pa.nulls(n, pa.date32()),
            "member": pa.array(["M1"] * n),
        },
        schema=ARROW_SCHEMA,
    )
    path = tmp_path / "one_key.parquet"
    pq.write_table(table, path)
    ingest_files(spark, cfg, path)

    report = run(spark, cfg, "forward", "2024-03")

    summary, latest = read_tables(spark, cfg)
    assert list(summary) == [(7, "2024-03")] and summary[(7, "2024-03")]["balance"] == n - 1  # the newest version
    assert report.superseded_records == n - 1 and latest[7]["balance_history"] == [n - 1, None, None, None]
    tally.add("bad input: a million records of one key")


def test_months_are_checked_exactly_and_a_malformed_one_never_fails_the_file(spark, namespace, tmp_path, tally):
    """'2024-02\\n' passed Java's and Python's '^...$' (and then broke every unfiltered backfill); a 5000-character
    month made the whole file fail at ingest (its partition directory name was too long)."""
    from tests.stages.test_backfill import backfill

    raw, cfg = load(namespace)
    good = [record(1, "2024-02", 1, bal=10)]
    malformed = [record(2, m, 1, bal=1) for m in ("2024-02\n", "2024-02\r\n", " 2024-02", "2024-2", "9" * 5000)]
    report = ingest_files(spark, cfg, write_parquet(tmp_path / "months.parquet", good + malformed))

    assert (report.records_read, report.records_rejected, report.rows_written["source"]) == (6, 5, 1)
    assert [r.acct_id for r in spark.table(cfg.source_table).collect()] == [1], "malformed months stay out of the source"
    rejected = {r.record_month: r.reason for r in spark.table(cfg.rejects_table).collect()}
    assert sorted(rejected) == sorted(r["rpt_mo"] for r in malformed)
    assert all("is not a YYYY-MM month" in reason and len(reason) < 300 for reason in rejected.values())
    run(spark, cfg, "forward", "2024-02")
    backfill(spark, cfg)  # unfiltered: reads every appended record
    problems = model_problems(spark, cfg, raw, good + malformed)
    tally.add("bad input: records (month with a line break, 5000-character month)", tried=5, differences=len(problems))
    assert not problems, "\n".join(problems)
