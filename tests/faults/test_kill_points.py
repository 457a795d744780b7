"""Kill a stage's spark-submit (SIGKILL to its process tree) anywhere in its run, retry it, compare with the model.

Kill moments: ``TIMED_POINTS`` spread evenly over the stage's last clean run
(JVM start-up included), plus named crash points between the table commits.
Each trial gives the stage fresh work (the next month, a new late batch), so
every kill lands in a run that has something to commit. The killed run is a
real spark-submit; setup, the retry and the comparison run in the shared
in-process session (the same code a retried spark-submit runs, without paying
for another JVM start), so the retry also meets the dead run's lock.
"""

import random
import time

import pytest

from spark_jobs.months import add_months, month_range
from spark_jobs.report import RunReport
from spark_jobs.stages.backfill import run_case, run_classify
from spark_jobs.stages.check import check_tables
from spark_jobs.stages.maintenance import maintain
from tests.cli_support import submit_and_kill, write_config
from tests.fault_tally import CRASH_POINTS, FULL, TIMED_POINTS
from tests.support import (
    append_source,
    delete_source,
    load,
    merge_source,
    model_problems,
    record,
    run,
    source_records,
)

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.faults]

BACKFILL_STAGES = ("classify", "case-i", "case-ii", "case-iii")


def kill_plan(crash_points=CRASH_POINTS, then_another="after_summary_published"):
    """(kind, point) per trial: timed kills, named crash points, and one crash followed by a different run."""
    plan = [("timed", i) for i in range(TIMED_POINTS)] + [("crash", p) for p in crash_points]
    return plan + ([("crash, then another run", then_another)] if then_another else [])


def kill(config, warehouse, args, kind, point, duration):
    """Run ``args`` in spark-submit and kill it as the plan says; returns (died before finishing, seconds it ran)."""
    if kind == "timed":
        return submit_and_kill(config, warehouse, *args, after_seconds=duration * (point + 0.5) / TIMED_POINTS)
    return submit_and_kill(config, warehouse, *args, crash_at=point)


def in_process(spark, cfg, mode, run_id=None):
    """Run one stage in the shared session, as a retried spark-submit would; returns its report."""
    report = RunReport(mode=mode, config=cfg.path, run_id=f"{mode}-retry-{time.time_ns()}")
    if mode == "classify":
        run_classify(spark, cfg, report, lock_wait_seconds=30)
    elif mode in ("case-i", "case-ii", "case-iii"):
        run_case(spark, cfg, report, mode, run_id, lock_wait_seconds=30)
    elif mode == "maintenance":
        maintain(spark, cfg, report, lock_wait_seconds=30)
    return report.finish()


def bureau_rows(accounts, months, seed):
    """Monthly records with gaps, NULLs to carry forward, negative balances, stale resends and rejects."""
    rng = random.Random(seed)
    rows = []
    for acct in accounts:
        for i, month in enumerate(months):
            if rng.random() < 0.15:
                continue  # a month the account did not report
            rows.append(
                record(
                    acct,
                    month,
                    2 + i,
                    bal=rng.choice([None, -5, rng.randint(0, 999), rng.randint(0, 999)]),
                    dpd=rng.choice([None, 0, 35, 75]),
                    member=rng.choice([None, "M1", "M2"]),
                    status=rng.choice([None, "11", "13"]),
                )
            )
            if rng.random() < 0.1:
                rows.append(record(acct, month, 1 + i, bal=1))  # an older version: loses
    rows += [record(None, m, 1, bal=3) for m in months[::5]]  # no key: rejected
    return rows


def check_clean(spark, cfg):
    report = RunReport(mode="check", config=cfg.path, run_id="faults-check")
    check_tables(spark, cfg, report)  # raises RuleViolations naming the broken rules
    return report.details["violations"]


def test_forward_killed_at_any_moment_is_repaired_by_its_retry(spark, spark_warehouse, namespace, tmp_path, tally):
    raw, cfg = load(namespace)
    config = write_config(tmp_path, namespace)
    plan = kill_plan()
    months = month_range("2022-01", add_months("2022-01", len(plan) + 1))  # the initial month, one per trial, one more
    rows = bureau_rows(range(1, 7), months, seed=1)
    append_source(spark, cfg, rows)
    run(spark, cfg, "initial", months[0])
    duration = 30.0  # until the first run that finishes says otherwise

    for step, (kind, point) in enumerate(plan):
        month = months[1 + step]
        started = time.monotonic()
        killed, seconds = kill(config, spark_warehouse, ("--mode", "forward", "--start-month", month), kind, point, duration)
        duration = duration if killed else seconds
        read_up_to = month
        if kind.startswith("crash, then"):  # the next month runs first and must finish the dead run
            read_up_to = months[-1]
            assert len(run(spark, cfg, "forward", read_up_to).recovered_runs) == 1
        run(spark, cfg, "forward", month)
        problems = model_problems(spark, cfg, raw, [r for r in rows if r["rpt_mo"] <= read_up_to])
        tally.add(f"kill forward ({kind})", killed=int(killed), differences=len(problems), seconds=time.monotonic() - started)
        assert not problems, f"forward {month} killed ({kind} {point}) then retried:\n" + "\n".join(problems)
    assert check_clean(spark, cfg) == 0


def late_batch(trial, case_ii_account):
    """Late records of all three cases, with a duplicate and a stale correction."""
    new_account = [record(1000 + trial, "2023-02", 40, bal=7), record(1000 + trial, "2023-03", 40, bal=8, member=None)]
    newer_month = [record(case_ii_account, "2023-08", 50, bal=800 + trial, dpd=40)]
    correction = [
        record(900, f"2023-0{2 + trial % 4}", 100 + trial, bal=1000 + trial, member=None),
        record(900, "2023-05", 0, bal=-1),  # older than what is stored: stale, changes nothing
    ]
    return new_account + new_account[-1:] + newer_month + correction


def test_backfill_stages_killed_at_any_moment_are_repaired_by_their_retry(spark, spark_warehouse, namespace, tmp_path, tally):
    raw, cfg = load(namespace)
    config = write_config(tmp_path, namespace)
    plan = kill_plan()
    base_months = month_range("2023-01", "2023-06")
    rows = bureau_rows(range(1, len(plan) + 1), base_months, seed=2)
    rows += [record(900, m, 2 + i, bal=i * 10, member="M9") for i, m in enumerate(base_months)]
    append_source(spark, cfg, rows)
    run(spark, cfg, "initial", base_months[0], base_months[-1])
    durations = dict.fromkeys(BACKFILL_STAGES, 30.0)

    for trial, (kind, point) in enumerate(plan):
        started = time.monotonic()
        late = late_batch(trial, case_ii_account=trial + 1)
        append_source(spark, cfg, late)
        # Writers other than an append in the same batch: account 900's first month corrected in place (same
        # version) by a MERGE, one of its months deleted (docs/table-contract.md, section 6a).
        merge_source(spark, cfg, [record(900, "2023-01", 2, bal=5000 + trial, member="M9")])
        delete_source(spark, cfg, f"acct_id = 900 AND rpt_mo = '2023-0{6 - trial % 3}'")
        # The reduced plan has three trials and kills every stage once over them: case-i, case-ii, then classify and
        # case-iii in the last (the crash followed by another run, which must come before case-iii's retry).
        killed_stages = BACKFILL_STAGES if FULL else BACKFILL_STAGES[(trial + 1) % len(plan) :: len(plan)]
        run_id = None
        for stage in BACKFILL_STAGES:
            if stage in killed_stages:
                args = ["--mode", stage] + (["--run-id", run_id] if run_id else [])
                killed, seconds = kill(config, spark_warehouse, args, kind, point, durations[stage])
                durations[stage] = durations[stage] if killed else seconds
                tally.add(f"kill {stage} ({kind})", killed=int(killed))
                if kind.startswith("crash, then") and stage == "case-iii":  # a forward run comes before the retry
                    run(spark, cfg, "forward", "2023-08")  # (after case-ii: before it, it would apply Case II itself)
            report = in_process(spark, cfg, stage, run_id)  # the retry, or the stage's clean run
            if stage == "classify":
                run_id = report.run_id
                assert report.details["stages_to_run"] == ["case-i", "case-ii", "case-iii"], report
        problems = model_problems(spark, cfg, raw, source_records(spark, cfg))
        tally.add("backfill trials compared with the model", differences=len(problems), seconds=time.monotonic() - started)
        assert not problems, f"backfill trial {trial} killed ({kind} {point}) then retried:\n" + "\n".join(problems)
    assert check_clean(spark, cfg) == 0


def test_maintenance_killed_at_any_moment_is_repaired_by_its_retry(spark, spark_warehouse, namespace, tmp_path, tally):
    raw, cfg = load(namespace)
    config = write_config(tmp_path, namespace)
    plan = kill_plan(crash_points=("after_lock",), then_another=None)
    months = month_range("2021-01", add_months("2021-01", len(plan) + 1))
    rows = bureau_rows(range(1, 6), months, seed=3)
    append_source(spark, cfg, rows)
    run(spark, cfg, "initial", months[0], months[1])
    duration = 40.0
    for step, (kind, point) in enumerate(plan):
        started = time.monotonic()
        month = months[2 + step]
        run(spark, cfg, "forward", month)  # new snapshots and delete files to compact
        killed, seconds = kill(config, spark_warehouse, ("--mode", "maintenance"), kind, point, duration)
        duration = duration if killed else seconds
        in_process(spark, cfg, "maintenance")
        problems = model_problems(spark, cfg, raw, [r for r in rows if r["rpt_mo"] <= month])
        tally.add(f"kill maintenance ({kind})", killed=int(killed), differences=len(problems), seconds=time.monotonic() - started)
        assert not problems, f"maintenance killed ({kind} {point}) then retried:\n" + "\n".join(problems)
    assert check_clean(spark, cfg) == 0
