"""core/timeline.py: the one-join fast path (``shifted``) gives exactly what the full timeline (``recompute``) gives.

The batch engine takes ``shifted`` for every account whose one new month
follows its latest row and ``recompute`` for the rest, on the claim that both
give the same rows, though ``recompute`` never reads a history array (it
rebuilds them from stored scalar values). Random accounts with random stored
rows (any gap, NULLs anywhere, legacy dates) check that claim.
``SUMMARY_TIMELINE_SEEDS=1,2,3,...`` tries more seeds.
"""

import datetime as dt
import os
import random

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from spark_jobs.core.mapping import map_records, valid_records, winners
from spark_jobs.core.next_month import FIRST_ROW, FOLLOWS_LATEST, IS_NEW, KEPT, ROW_KIND, next_month_rows
from spark_jobs.core.timeline import EARLIER, ROLE, build_timeline, new_rows, recompute, shifted, stored_rows
from spark_jobs.months import month_from_number, month_number
from spark_jobs.names import CARRIED_COLUMNS, INSERT, MONTH_NUMBER, PREVIOUS_MONTH, RECORD_DIGEST
from spark_jobs.storage.tables import summary_schema
from tests.support import SOURCE_COLUMNS, load, record, source_schema

pytestmark = pytest.mark.spark
SEEDS = [int(s) for s in os.environ.get("SUMMARY_TIMELINE_SEEDS", "11,12,13").split(",")]


def maybe(rng, value, none_share=0.3):
    return None if rng.random() < none_share else value


def random_batch(rng, accounts=40):
    """(new records, stored rows as dicts): each account one new month, most of them after a few stored months.

    The stored rows' history arrays are written here from their own scalar values (element i is the value of
    month - i when that month is stored), as the table contract says they are.
    """
    records, stored = [], []
    for acct in range(1, accounts + 1):
        new_month = month_number("2024-06") + rng.randint(0, 12)
        records.append(
            record(
                acct, month_from_number(new_month), rng.randint(1, 30), bal=maybe(rng, rng.randint(-5, 500)),
                dpd=maybe(rng, rng.choice([0, 35, 70])), acct_type=rng.choice(["", "5", "7"]),
                open_dt=maybe(rng, rng.choice([dt.date(1, 1, 1), dt.date(2020, 5, 1)])), status=maybe(rng, "11"),
                acct_dt=maybe(rng, dt.date(2024, 1, 15)), member=maybe(rng, rng.choice(["M1", "M2"])),
            )
        )  # fmt: skip
        if rng.random() < 0.2:
            continue  # a new account
        months, month = [], new_month - rng.choice([1, 1, 2, 3, 5, 7])
        for _ in range(rng.randint(1, 5)):
            months.append(month)
            month -= rng.choice([1, 1, 2, 4])
        values = {
            m: {
                "acct": acct, "month": month_from_number(m), "ts": dt.datetime(2025, 1, 1),
                "balance": maybe(rng, rng.randint(0, 500)), "dpd": maybe(rng, 10), "acct_type": rng.choice(["5", "999"]),
                "open_dt": maybe(rng, dt.date(2019, 1, 1)), "status": maybe(rng, "13"), "acct_dt": dt.date(2023, 12, 1),
                "member": maybe(rng, "M0"), "rating": maybe(rng, rng.choice(["0", "1", "2"])),
                RECORD_DIGEST: rng.randint(1, 10**12), PREVIOUS_MONTH: None, CARRIED_COLUMNS: [], MONTH_NUMBER: m,
            }
            for m in months
        }  # fmt: skip
        for m, row in values.items():
            row["balance_history"] = [values[m - i]["balance"] if m - i in values else None for i in range(4)]
            row["rating_history"] = [values[m - i]["rating"] if m - i in values else None for i in range(6)]
            row["rating_grid"] = "|".join(v or "?" for v in row["rating_history"])
        stored += [values[m] for m in months]
    return records, stored


@pytest.mark.parametrize("seed", SEEDS)
def test_the_single_shift_equals_the_full_timeline(spark, seed):
    """``shifted`` reads the latest row's arrays; ``recompute`` rebuilds them from the stored rows' scalars."""
    _, cfg = load("core_timeline")
    records, stored_dicts = random_batch(random.Random(seed))
    source = spark.createDataFrame([tuple(r[c] for c in SOURCE_COLUMNS) for r in records], source_schema())
    mapped = map_records(source, cfg)
    changes = winners(valid_records(mapped, cfg), cfg).withColumn(INSERT, F.lit(True))
    schema = summary_schema(cfg, mapped.schema).add(MONTH_NUMBER, T.IntegerType())
    stored = spark.createDataFrame([tuple(a[f.name] for f in schema.fields) for a in stored_dicts], schema)
    latest_month = stored.groupBy("acct").agg(F.max(MONTH_NUMBER).alias(MONTH_NUMBER))

    new = new_rows(changes, cfg)
    fast = shifted(new, stored.join(latest_month, ["acct", MONTH_NUMBER]), cfg)
    full = recompute(build_timeline([new, stored_rows(stored, cfg, EARLIER)]), cfg)

    assert fast.count() == len(records)
    assertDataFrameEqual(fast.select(*full.columns), full)
    assert full.where(F.col(ROLE) == EARLIER).count() == 0, "earlier rows are never output"


@pytest.mark.parametrize("seed", SEEDS)
def test_the_next_month_pass_equals_the_full_timeline_whichever_join_it_takes(spark, seed):
    """``next_month_rows`` (a scheduled forward month: one join with latest_summary) gives month M's rows as
    ``recompute`` does, keeps the latest row of every account that did not report, and gives the same rows
    whether it broadcasts the winners (few of them) or joins them in one full outer join (a full month)."""
    _, cfg = load("core_timeline")
    all_records, stored_dicts = random_batch(random.Random(seed))
    records = [r for r in all_records if r["acct_id"] % 4]  # every fourth account does not report this month
    source = spark.createDataFrame([tuple(r[c] for c in SOURCE_COLUMNS) for r in records], source_schema())
    mapped = map_records(source, cfg)
    month_winners = winners(valid_records(mapped, cfg), cfg)
    schema = summary_schema(cfg, mapped.schema).add(MONTH_NUMBER, T.IntegerType())
    stored = spark.createDataFrame([tuple(a[f.name] for f in schema.fields) for a in stored_dicts], schema)
    latest_month = stored.groupBy("acct").agg(F.max(MONTH_NUMBER).alias(MONTH_NUMBER))
    latest = stored.join(latest_month, ["acct", MONTH_NUMBER]).select(*cfg.summary_columns)

    changes = month_winners.withColumn(INSERT, F.lit(True))
    expected_new = recompute(build_timeline([new_rows(changes, cfg), stored_rows(stored, cfg, EARLIER)]), cfg)
    silent = latest.where(F.col("acct") % 4 == 0)
    stored_accounts = {a["acct"] for a in stored_dicts}
    reporting = {r["acct_id"] for r in records}
    expected_cases = {
        FIRST_ROW: len(reporting - stored_accounts), FOLLOWS_LATEST: len(reporting & stored_accounts),
        KEPT: len(stored_accounts - reporting),
    }  # fmt: skip
    assert all(expected_cases.values()), "the batch must have new accounts, following rows and silent accounts"

    results = {}
    for broadcast in (True, False):
        rows = next_month_rows(month_winners, latest, cfg, broadcast).localCheckpoint()
        assertDataFrameEqual(rows.where(F.col(IS_NEW)).select(*cfg.summary_columns), expected_new.select(*cfg.summary_columns))
        assertDataFrameEqual(rows.where(~F.col(IS_NEW)).select(*cfg.summary_columns), silent)
        assert {r[ROW_KIND]: r["n"] for r in rows.groupBy(ROW_KIND).agg(F.count(F.lit(1)).alias("n")).collect()} == expected_cases
        results[broadcast] = rows
    assertDataFrameEqual(results[True], results[False])
