"""core/timeline.py: the one-join fast path (``shifted``) gives exactly what the full timeline (``recompute``) gives.

The batch engine takes ``shifted`` for every account whose one new month
follows its latest row (most of a forward month) and ``recompute`` for the
rest, on the claim that both give the same rows. Random accounts with random
anchors (latest rows: any gap, NULLs anywhere, legacy dates) check that claim.
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
from spark_jobs.core.timeline import ANCHOR, ROLE, build_timeline, new_rows, recompute, shifted, stored_rows
from spark_jobs.months import month_from_number, month_number
from spark_jobs.names import CARRIED_COLUMNS, INSERT, MONTH_NUMBER, PREVIOUS_MONTH, RECORD_DIGEST
from spark_jobs.storage.tables import summary_schema
from tests.support import SOURCE_COLUMNS, load, record, source_schema

pytestmark = pytest.mark.spark
SEEDS = [int(s) for s in os.environ.get("SUMMARY_TIMELINE_SEEDS", "11,12,13").split(",")]


def maybe(rng, value, none_share=0.3):
    return None if rng.random() < none_share else value


def random_batch(rng, accounts=40):
    """(new records, anchor rows as dicts): each account one new month, most of them after an anchor."""
    records, anchors = [], []
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
        if rng.random() < 0.8:
            gap = rng.choice([1, 1, 2, 3, 5, 7])
            anchor_month = new_month - gap
            anchors.append(
                {
                    "acct": acct, "month": month_from_number(anchor_month), "ts": dt.datetime(2025, 1, 1),
                    "balance": maybe(rng, rng.randint(0, 500)), "dpd": maybe(rng, 10), "acct_type": rng.choice(["5", "999"]),
                    "open_dt": maybe(rng, dt.date(2019, 1, 1)), "status": maybe(rng, "13"), "acct_dt": dt.date(2023, 12, 1),
                    "member": maybe(rng, "M0"), "rating": maybe(rng, rng.choice(["0", "1", "2"])),
                    "balance_history": [maybe(rng, rng.randint(0, 500)) for _ in range(4)],
                    "rating_history": [maybe(rng, rng.choice(["0", "1", "2"])) for _ in range(6)],
                    "rating_grid": "unused", RECORD_DIGEST: rng.randint(1, 10**12),
                    PREVIOUS_MONTH: None, CARRIED_COLUMNS: [], MONTH_NUMBER: anchor_month,
                }
            )  # fmt: skip
    return records, anchors


@pytest.mark.parametrize("seed", SEEDS)
def test_the_single_shift_equals_the_full_timeline(spark, seed):
    _, cfg = load("core_timeline")
    records, anchor_dicts = random_batch(random.Random(seed))
    source = spark.createDataFrame([tuple(r[c] for c in SOURCE_COLUMNS) for r in records], source_schema())
    mapped = map_records(source, cfg)
    changes = winners(valid_records(mapped, cfg), cfg).withColumn(INSERT, F.lit(True))
    schema = summary_schema(cfg, mapped.schema).add(MONTH_NUMBER, T.IntegerType())
    stored = spark.createDataFrame([tuple(a[f.name] for f in schema.fields) for a in anchor_dicts], schema)

    new = new_rows(changes, cfg)
    anchors = stored_rows(stored, cfg, ANCHOR)
    fast = shifted(new, anchors, cfg)
    full = recompute(build_timeline([new, anchors]), cfg)

    assert fast.count() == len(records)
    assertDataFrameEqual(fast.select(*full.columns), full)
    assert full.where(F.col(ROLE) == ANCHOR).count() == 0, "anchors are context, never output"
