"""Command-line usage errors: refused with exit code 2 and a report naming the problem, before Spark starts."""

import json
from pathlib import Path

import pytest

from spark_jobs.cli import main
from spark_jobs.names import EXIT_BAD_INPUT

EXAMPLE = Path(__file__).resolve().parents[2] / "include" / "configs" / "summary_config.json"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--mode", "maintenance", "--dry-run"], "--dry-run applies to initial, forward, backfill, classify, not maintenance"),
        (["--mode", "forward", "--start-month", "2024-01", "--backfill-filter", "x = 1"], "--backfill-filter applies to"),
        (["--mode", "ingest"], "--mode ingest needs --path"),
        (["--mode", "forward", "--start-month", "2024-13"], "--start-month '2024-13' is not a YYYY-MM month"),
        (["--mode", "forward", "--start-month", "2024-02\n"], "is not a YYYY-MM month"),
        (["--mode", "forward", "--start-month", "2024-05", "--end-month", "2024-01"], "end month 2024-01 is before start"),
        (["--mode", "check", "--end-month", "2024-01"], "--mode check takes --end-month only with --start-month"),
        (["--mode", "check", "--start-month", "2024-1"], "--start-month '2024-1' is not a YYYY-MM month"),
        (["--mode", "check", "--start-month", "2024-05", "--end-month", "2024-01"], "--end-month 2024-01 is before"),
    ],
)
def test_usage_errors_exit_2_with_the_reason_in_the_report(capsys, args, message):
    code = main(["--config", str(EXAMPLE), *args])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == EXIT_BAD_INPUT and report["exit_code"] == EXIT_BAD_INPUT and report["status"] == "failed"
    assert message in report["error"]
