"""core/mapping.py on hand-made DataFrames: renaming and expressions, reject reasons, digests and winners.

Expected values are written by hand (or, for the digest, computed here with
hashlib from the rule the README documents), never by the code under test.
"""

import datetime as dt
import hashlib

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from spark_jobs.core.mapping import map_records, rejected_records, valid_records, winners, with_steps
from spark_jobs.names import MONTH_NUMBER, RECORD_DIGEST, REJECT_REASON, RUN_ID, VERSION_CONFLICT
from tests.support import SOURCE_COLUMNS, load, record, source_schema

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def cfg():
    return load("core_mapping")[1]


def source(spark, rows):
    return spark.createDataFrame([tuple(r[c] for c in SOURCE_COLUMNS) for r in rows], source_schema())


def digest(values):
    """The README's rule: SHA-256 of the values as strings, joined by U+001F, NULL as U+0000; 15 hex digits."""
    text = "\u001f".join("\u0000" if v is None else str(v) for v in values)
    return int(hashlib.sha256(text.encode()).hexdigest()[:15], 16)


def test_records_are_renamed_then_transformed_then_inferred_then_mapped_and_cast(spark, cfg):
    rows = [
        record(1, "2024-01", 1, bal=-5, dpd=45, acct_type=""),  # '' -> '999'; dpd 45 -> rating '1'; balance < 0 -> NULL
        record(2, "2024-01", 1, bal=70, dpd=None, acct_type="7"),
    ]
    mapped = map_records(source(spark, rows), cfg).select("acct", "month", "acct_type", "rating", "balance")
    expected = spark.createDataFrame(
        [(1, "2024-01", "999", "1", None), (2, "2024-01", "7", None, 70)],
        "acct bigint, month string, acct_type string, rating string, balance int",
    )
    assertDataFrameEqual(mapped, expected)


def test_the_digest_follows_the_documented_rule(spark, cfg):
    row = record(3, "2024-02", dt.datetime(2025, 1, 2, 3, 4, 5), bal=12, dpd=None, status="11", member="M9")
    got = map_records(source(spark, [row]), cfg).select(RECORD_DIGEST).first()[0]
    values = [row["acct_id"], "2024-02", "2025-01-02 03:04:05", 12, None, "5", None, "11", None, "M9"]
    assert got == digest(values)


@pytest.mark.parametrize(
    "bad, reason",
    [
        (dict(acct_id=None), "NULL acct (primary_column)"),
        (dict(ts=None), "NULL ts (max_identifier_column)"),
        (dict(rpt_mo="2024-13"), 'month (partition_column) is not a YYYY-MM month: "2024-13"'),
        (dict(rpt_mo="2024-02\n"), 'month (partition_column) is not a YYYY-MM month: "2024-02\\n"'),
        (dict(rpt_mo=None), "month (partition_column) is not a YYYY-MM month: NULL"),
        (dict(rpt_mo="x" * 50), 'is not a YYYY-MM month: "' + "x" * 40 + '"... (50 characters)'),
    ],
)
def test_reject_reasons_name_the_column_and_show_the_value(spark, cfg, bad, reason):
    mapped = map_records(source(spark, [dict(record(1, "2024-01", 1), **bad)]), cfg)
    assert mapped.select(REJECT_REASON).first()[0].endswith(reason)
    assert valid_records(mapped, cfg).count() == 0
    rejected = rejected_records(mapped, cfg, "run-1").first()
    assert rejected[RUN_ID] == "run-1" and rejected.reason.endswith(reason) and '"acct_id"' in rejected.record


def test_the_greatest_version_wins_and_a_tie_goes_to_the_greatest_digest_flagged(spark, cfg):
    rows = [
        record(1, "2024-01", 1, bal=10),
        record(1, "2024-01", 5, bal=50),  # newest version of account 1: wins
        record(2, "2024-01", 5, bal=20),
        record(2, "2024-01", 5, bal=21),  # same version, other content: a data error, greatest digest wins
    ]
    mapped = map_records(source(spark, rows), cfg)
    won = winners(valid_records(mapped, cfg), cfg).select("acct", "balance", VERSION_CONFLICT, MONTH_NUMBER)
    tied = [rows[2], rows[3]]
    tie_winner = max(tied, key=lambda r: digest([r[c] if c != "ts" else str(r[c]) for c in SOURCE_COLUMNS]))
    expected = spark.createDataFrame(
        [(1, 50, False, 2024 * 12 + 1), (2, tie_winner["bal"], True, 2024 * 12 + 1)],
        f"acct bigint, balance int, {VERSION_CONFLICT} boolean, {MONTH_NUMBER} int",
    )
    assertDataFrameEqual(won, expected)


def test_steps_see_the_values_of_the_steps_before_them_as_one_withcolumn_each_would(spark):
    frame = spark.createDataFrame([(1, 10)], "a int, b int")
    steps = [
        ("c", "a + 1", F.expr("a + 1")),  # new column
        ("b", "b * 2", F.expr("b * 2")),  # redefines an input column: later steps must see 20
        ("d", "B + C", F.expr("B + C")),  # mentions both (in another case): sees b = 20 and c = 2
        ("e", "a * 100", F.expr("a * 100")),  # independent of everything before it
        ("a", "a - 1", F.expr("a - 1")),  # redefines an input the group above still read as 1
        ("f", "`a` + e", F.expr("`a` + e")),  # sees a = 0 and e = 100
    ]
    one_by_one = frame
    for name, _, column in steps:
        one_by_one = one_by_one.withColumn(name, column)
    grouped = with_steps(frame, steps)
    assert grouped.columns == one_by_one.columns == ["a", "b", "c", "d", "e", "f"]
    assert grouped.first().asDict() == {"a": 0, "b": 20, "c": 2, "d": 22, "e": 100, "f": 100}
    assertDataFrameEqual(grouped, one_by_one)
    # in three plan nodes, not six: {c, b}, then {d, e, a} (d reads b and c), then {f} (f reads a and e)
    assert grouped._jdf.queryExecution().analyzed().toString().count("Project [") == 3
