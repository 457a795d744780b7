"""The example configs a newcomer copies (include/examples/) build the tables the contract says."""

import json
from pathlib import Path

import pytest

from spark_jobs.config import config_from_dict
from tests.support import append_source, assert_matches_model, read_tables, record, run

pytestmark = pytest.mark.spark
EXAMPLES = Path(__file__).resolve().parents[2] / "include" / "examples"


def test_the_minimal_example_builds_a_36_month_balance_history(spark, namespace):
    raw = json.loads((EXAMPLES / "minimal.json").read_text())
    for key in ("source_table", "destination_table", "latest_history_table"):
        raw[key] = raw[key].replace("local.lending.", f"local.{namespace}.")
    cfg = config_from_dict(raw, "include/examples/minimal.json")
    rows = [record(1, m, 1, bal=b) for m, b in (("2024-01", 100), ("2024-02", 200), ("2024-04", 400))]
    rows += [record(2, "2024-02", 1, bal=20), record(2, "2024-02", 2, bal=21)]  # the newer version wins
    append_source(spark, cfg, rows)  # the test source has more columns than the example reads: they are ignored
    run(spark, cfg, "initial", "2024-01", "2024-02")
    run(spark, cfg, "forward", "2024-03", "2024-04")

    summary, latest = read_tables(spark, cfg)
    assert sorted(summary) == [(1, "2024-01"), (1, "2024-02"), (1, "2024-04"), (2, "2024-02")]
    assert summary[(1, "2024-04")]["balance_history"] == [400, None, 200, 100] + [None] * 32
    assert summary[(2, "2024-02")]["balance_history"] == [21] + [None] * 35
    assert {k: r["month"] for k, r in latest.items()} == {1: "2024-04", 2: "2024-02"}
    assert_matches_model(spark, cfg, raw, rows)
