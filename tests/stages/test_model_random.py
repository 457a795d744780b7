"""Random sequences of ingests, forward runs (in and out of order, re-runs), initial loads and backfills.

After every step both tables must equal the plain-Python model of
the table contract (tests/model.py) applied to every record the runs have read so
far. Set SUMMARY_MODEL_SEEDS=1,2,3 and SUMMARY_MODEL_STEPS=N to explore more.
"""

import datetime as dt
import os
import random

import pytest

from spark_jobs.months import month_range
from spark_jobs.storage import writers
from spark_jobs.storage.session import QUICK_START_CONF
from tests.stages.test_backfill import backfill
from tests.support import append_source, assert_matches_model, load, record, run

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SEEDS = [int(s) for s in os.environ.get("SUMMARY_MODEL_SEEDS", "20261127").split(",")]
STEPS = int(os.environ.get("SUMMARY_MODEL_STEPS", "12"))
MONTHS = month_range("2023-10", "2024-05")
LEGACY = dt.date(1, 1, 1)


def random_records(rng, count):
    rows = []
    for _ in range(count):
        r = record(
            acct=rng.choice([1, 2, 3, 4, 5, 6]),
            month=rng.choice(MONTHS),
            ts=rng.randint(1, 6),  # few distinct versions: ties and stale records happen
            bal=rng.choice([None, -1, 0, rng.randint(1, 500)]),
            dpd=rng.choice([None, 0, 35, 75]),
            acct_type=rng.choice(["", None, "5", "7"]),
            open_dt=rng.choice([None, LEGACY, dt.date(2020, 1, 1), dt.date(2021, 6, 15)]),
            status=rng.choice([None, "A", "B"]),
            acct_dt=rng.choice([None, LEGACY, dt.date(2024, 2, 14)]),
            member=rng.choice([None, None, "M1", "M2"]),
        )
        roll = rng.random()
        if roll < 0.04:
            r["acct_id"] = None
        elif roll < 0.08:
            r["ts"] = None
        rows.append(r)
        if rng.random() < 0.1:
            rows.append(dict(r))  # exact duplicate
    return rows


@pytest.fixture(params=["generated", "interpreted"])
def sql_execution(request, spark):
    """Spark SQL as it runs by default (generated code), and as spark_config.quick_start runs it (interpreted)."""
    if request.param == "generated":
        yield request.param
        return
    before = {key: spark.conf.get(key, None) for key in QUICK_START_CONF}
    for key, value in QUICK_START_CONF.items():
        spark.conf.set(key, value)
    try:
        yield request.param
    finally:
        for key, value in before.items():
            spark.conf.unset(key) if value is None else spark.conf.set(key, value)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_sequences_match_the_model(spark, namespace, seed, monkeypatch, sql_execution):
    rng = random.Random(seed)
    raw, cfg = load(namespace)
    source, read, log = [], [], []
    append_source(spark, cfg, (first := random_records(rng, 25)))
    source += first
    for _ in range(STEPS):
        op = rng.choices(["ingest", "forward", "initial", "backfill", "staged", "filtered"], weights=[4, 4, 1, 2, 1, 1])[0]
        # latest_summary is MERGEd or rewritten depending on the batch's size: try both ways on every kind of step.
        latest_write = rng.choice(["merge", "rewrite"])
        monkeypatch.setattr(writers, "LATEST_REWRITE_SHARE", float("inf") if latest_write == "merge" else 0.0)
        if op == "ingest":
            new = random_records(rng, rng.randint(3, 12))
            append_source(spark, cfg, new)
            source += new
            log.append(f"ingest {len(new)}")
            continue
        if op == "backfill":
            backfill(spark, cfg)
            read += source  # all appended since the last backfill; everything before was read by that one
        elif op == "staged":
            run_id = backfill(spark, cfg, "classify").run_id
            stages = rng.sample(["case-i", "case-ii", "case-iii"], 3)
            for stage in stages:
                backfill(spark, cfg, stage, run_id=run_id)
            op = f"classify + {stages}"
            read += source
        elif op == "filtered":
            account = rng.choice([1, 2, 3, 4, 5, 6])
            backfill(spark, cfg, backfill_filter=f"acct_id = {account}")
            op = f"backfill acct_id = {account}"
            read += [r for r in source if r["acct_id"] == account]
        else:
            if op == "forward":
                start = end = rng.choice(MONTHS)
            else:
                a, b = sorted(rng.sample(range(len(MONTHS)), 2))
                start, end = MONTHS[a], MONTHS[b]
            run(spark, cfg, op, start, end)
            months = set(month_range(start, end))
            read += [r for r in source if r["rpt_mo"] in months]
            op = f"{op} {start}..{end}"
        log.append(f"{op} ({latest_write} latest)")
        try:
            assert_matches_model(spark, cfg, raw, read)
        except AssertionError as exc:
            raise AssertionError(f"seed {seed}, after steps {log}:\n{exc}") from None


@pytest.mark.parametrize("seed", SEEDS)
def test_random_writers_then_backfills_follow_the_source(spark, namespace, seed):
    """Appends, MERGE INTO, INSERT OVERWRITE of a month and DELETE in a random order, each followed now and then
    by an automatic or a staged backfill: after each backfill both tables equal the model of the source as it
    stands (docs/table-contract.md, section 6a)."""
    from tests.support import delete_source, merge_source, overwrite_source_month, source_records

    rng = random.Random(seed)
    raw, cfg = load(namespace)
    append_source(spark, cfg, random_records(rng, 25))
    run(spark, cfg, "initial", MONTHS[0], MONTHS[-1])
    log = []
    for _ in range(max(STEPS // 2, 4)):
        writer = rng.choice(["append", "merge", "overwrite", "delete"])
        if writer == "append":
            append_source(spark, cfg, random_records(rng, rng.randint(2, 6)))
        elif writer == "merge":
            by_key = {(r["acct_id"], r["rpt_mo"]): r for r in random_records(rng, rng.randint(2, 6))}
            merge_source(spark, cfg, list(by_key.values()))  # (MERGE refuses two source rows for one target row)
        elif writer == "overwrite":
            month = rng.choice(MONTHS)
            overwrite_source_month(spark, cfg, month, [{**r, "rpt_mo": month} for r in random_records(rng, rng.randint(0, 4))])
            writer += f" {month}"
        else:
            account, month = rng.choice([1, 2, 3, 4, 5, 6]), rng.choice(MONTHS)
            delete_source(spark, cfg, f"acct_id = {account} AND rpt_mo >= '{month}'")
            writer += f" acct {account} from {month}"
        log.append(writer)
        if rng.random() < 0.6:
            if rng.random() < 0.5:
                backfill(spark, cfg)
                log.append("backfill")
            else:
                run_id = backfill(spark, cfg, "classify").run_id
                for stage in rng.sample(["case-i", "case-ii", "case-iii"], 3):
                    backfill(spark, cfg, stage, run_id=run_id)
                log.append("classify + cases")
            try:
                assert_matches_model(spark, cfg, raw, source_records(spark, cfg))
            except AssertionError as exc:
                raise AssertionError(f"seed {seed}, after steps {log}:\n{exc}") from None
    backfill(spark, cfg)
    assert_matches_model(spark, cfg, raw, source_records(spark, cfg))
